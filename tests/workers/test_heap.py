"""A worker's start-up heap is frozen: its full garbage collections skip what starting made (``operations.heap``)."""

from __future__ import annotations

import subprocess
import sys

from rq.job import JobStatus

from dispatcher.storage.runtime import Runtime
from tests.support import Workers, until

# What a worker imports before it takes its first job: counted in a fresh interpreter, collected.
FRESH_WORKER_HEAP = (
    "import gc, workers.main, workers.jobs; gc.collect(); print(len(gc.get_objects()))"  # tracked objects
)


async def test_a_worker_freezes_what_it_made_as_it_started_before_its_first_job(
    workers: Workers, runtime: Runtime
) -> None:
    """An urgent job runs in a process whose collector keeps every object of its start (the service's modules,
    the vendor libraries') out of full collections: it holds up an urgent alert's first send no more."""
    fresh = int(subprocess.run([sys.executable, "-c", FRESH_WORKER_HEAP], capture_output=True, check=True).stdout)
    job = runtime.urgent_queue.enqueue("gc.get_freeze_count")
    workers.start("urgent")

    await until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, timeout=60, what="the job to run")

    assert int(job.return_value()) >= fresh
