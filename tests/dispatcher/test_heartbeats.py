"""Heartbeats: each worker and clock process beats to a file (``plp probe``), to systemd's watchdog and to Redis.

Real ``plp worker`` / ``plp clock`` processes; systemd's notification socket is a real datagram socket of the
test's own; the Redis that goes down is a server of the test's own.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from dispatcher.operations.heartbeats import STALE_SECONDS, probe
from dispatcher.operations.queues import queue_health
from dispatcher.storage.runtime import Runtime
from tests.support import RedisServer, Workers, until


def _beat_time(path: Path) -> float:
    try:
        return float(json.loads(path.read_text())["at"])
    except (OSError, ValueError):
        return 0.0


def _states(runtime: Runtime) -> list[str]:
    return [w.state for w in queue_health(runtime).lane("urgent").workers]


def _with_file(settings: Settings, path: Path) -> Settings:
    return settings.model_copy(update={"heartbeat_file": path})


async def test_a_running_worker_passes_its_probe_and_a_killed_one_fails_it(
    settings: Settings, runtime: Runtime, workers: Workers
) -> None:
    """The probe reads the file the worker rewrites every few seconds: alive while it runs; once it is killed,
    the probe fails as soon as the file is older than the probe's bound, saying so."""
    process = workers.start("urgent")
    beats = _with_file(settings, workers.heartbeat_file(0))
    found = await until(lambda: probe(beats, "worker").alive and probe(beats, "worker"), timeout=20, what="a beat")
    assert found.sentence.startswith(f"the worker (pid {process.pid} on {socket.gethostname()}) is alive")
    workers.kill(process)
    dead = await until(lambda: (p := probe(beats, "worker", max_age=1)).alive is False and p, timeout=10, what="age")
    assert "it is dead or stuck" in dead.sentence


async def test_a_clean_stop_removes_the_file_and_the_process_from_redis(
    settings: Settings, runtime: Runtime, workers: Workers
) -> None:
    """A worker stopped by SIGTERM leaves at once: its file goes and it is neither alive nor lost."""
    process = workers.start("general")
    beats = _with_file(settings, workers.heartbeat_file(0))
    await until(lambda: queue_health(runtime).lane("general").workers_alive == 1, timeout=20, what="the worker")
    process.terminate()
    process.wait(timeout=20)
    assert not workers.heartbeat_file(0).exists()
    assert probe(beats, "worker").sentence.startswith("no worker heartbeat in ")
    later = queue_health(runtime, now=time.time() + STALE_SECONDS + 1)
    assert (later.lane("general").workers_alive, later.lost) == (0, ())


async def test_the_clock_beats_from_its_loop_and_is_probed_as_a_clock(
    settings: Settings, runtime: Runtime, workers: Workers
) -> None:
    """``plp clock`` beats its own file, listed among the clocks with its pid; probed as a worker, its file says
    whose it is."""
    process = workers.start_clock()
    beats = _with_file(settings, workers.heartbeat_file(0))
    await until(lambda: probe(beats, "clock").alive, timeout=20, what="the clock's beat")
    assert "is the heartbeat of a clock, not of a worker" in probe(beats, "worker").sentence
    clocks = await until(lambda: queue_health(runtime).clocks, timeout=10, what="the clock in Redis")
    assert [c.pid for c in clocks] == [process.pid]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    yield server
    server.kill()


async def test_a_worker_beats_its_file_through_a_redis_outage(settings: Settings, own_redis: RedisServer) -> None:
    """With Redis down, the worker rides the outage out and its file keeps beating: its probe passes, so an
    orchestrator restarts nothing for Redis's fault."""
    workers = Workers(settings.model_copy(update={"redis_url": own_redis.url}), python=sys.executable)
    try:
        workers.start("urgent")
        path = workers.heartbeat_file(0)
        runtime = Runtime.from_settings(workers.settings)
        await until(lambda: _states(runtime) == ["idle"], timeout=20, what="the worker to wait for work")
        runtime.close()
        first = _beat_time(path)
        own_redis.kill()
        down = time.time()
        await until(lambda: _beat_time(path) > max(first, down), timeout=15, what="a beat with Redis down")
        assert probe(_with_file(settings, path), "worker").alive
        assert workers.alive("urgent")
    finally:
        workers.stop()


async def test_a_worker_tells_systemds_watchdog_it_lives(settings: Settings, runtime: Runtime, tmp_path: Path) -> None:
    """Under systemd (NOTIFY_SOCKET set), a worker says READY=1 and WATCHDOG=1 at its first beat, WATCHDOG=1 at
    each next one, and STOPPING=1 when it stops: ``WatchdogSec=`` restarts one that stops beating."""
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(address)
        notify.setblocking(False)
        workers = Workers(settings, python=sys.executable)
        try:
            process = workers.start("urgent", NOTIFY_SOCKET=address)
            loop = asyncio.get_running_loop()
            first = await asyncio.wait_for(loop.sock_recv(notify, 256), timeout=20)
            assert first == b"READY=1\nWATCHDOG=1"
            assert await asyncio.wait_for(loop.sock_recv(notify, 256), timeout=20) == b"WATCHDOG=1"
            process.terminate()
            process.wait(timeout=20)
            assert await asyncio.wait_for(loop.sock_recv(notify, 256), timeout=5) == b"STOPPING=1"
        finally:
            workers.stop()
