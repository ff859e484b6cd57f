"""Fixtures of the fault-injection suite: a seed to replay, a Redis of its own, figures to report.

Every random choice of a fault test comes from ``seed``, printed at the start of the test
(``seed=...``, shown with the output of a failing test); ``PLP_FAULT_SEED=<n>`` replays it.
The figures each test measures (deliveries, kills, duplicates observed and counted,
recovery times) are printed in pytest's summary at the end of the run.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import RedisServer

FIGURES: list[tuple[str, dict[str, Any]]] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: the fault-injection suite (real processes killed, Redis restarted)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault-injection figures")
    for test, figures in FIGURES:
        terminalreporter.write_line(f"{test}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


@pytest.fixture
def seed() -> int:
    """The seed of every random choice of the test: ``PLP_FAULT_SEED`` if set, else a fresh one."""
    raw = os.environ.get("PLP_FAULT_SEED")
    chosen = int(raw) if raw else random.SystemRandom().randrange(2**32)
    print(f"seed={chosen}")
    return chosen


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A dict the test fills with what it measured; reported at the end of the run (even if it fails)."""
    found: dict[str, Any] = {}
    yield found
    if found:
        FIGURES.append((request.node.name, found))


@pytest.fixture(scope="session")
def fault_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of the suite's own: other tests flushing the shared server cannot disturb a long scenario."""
    server = RedisServer(Path(tmp_path_factory.mktemp("fault-redis")))
    server.start()
    yield server
    server.stop()
