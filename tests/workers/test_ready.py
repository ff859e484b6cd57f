"""A worker does before its first job what that job would otherwise do on an urgent alert's path."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from channels import register, unregister
from dispatcher.pipeline.jobs import JOBS
from dispatcher.storage.runtime import Runtime
from tests.channels.pigeon import LOFT, PigeonChannel
from workers.loop import drain_process_loop, running_loop
from workers.main import ready_to_send


@pytest.fixture
def pigeon() -> Iterator[None]:
    LOFT.readied, LOFT.carried[:] = 0, []
    name = register(PigeonChannel)
    yield
    unregister(name)
    LOFT.readied = 0


def test_a_worker_starting_resolves_every_job_and_opens_its_channels_prepared_before_any_job(
    runtime: Runtime, pigeon: None
) -> None:
    """RQ would import the job functions at the first job (the vendor libraries, numpy, shapely: a third of a second),
    and the first send would build its vendor's client: both happen as the worker starts, none is sent."""
    assert running_loop() is None
    try:
        ready_to_send(runtime)
        assert {path.rsplit(".", 1)[0] for path in JOBS} <= set(sys.modules)
        assert running_loop() is not None  # the loop the jobs will send on, its connections open
        assert LOFT.readied == 1 and LOFT.carried == []
    finally:
        drain_process_loop()
