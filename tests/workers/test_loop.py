"""A worker process's own event loop: jobs run on it, keep their connections, and are cancelled when interrupted."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from dispatcher.runtime import Runtime
from workers.loop import ProcessLoop


class Interrupted(Exception):
    """What RQ raises in the job's thread when the job's time is up (its death penalty uses SIGALRM)."""


@pytest.fixture
def loop() -> Iterator[ProcessLoop]:
    process_loop = ProcessLoop()
    yield process_loop
    process_loop.close()


def test_a_job_returns_its_coroutines_result_and_raises_its_error(loop: ProcessLoop) -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def broken() -> None:
        raise ValueError("no such alert")

    assert loop.run(answer) == 42
    with pytest.raises(ValueError, match="no such alert"):
        loop.run(broken)


def test_the_coroutines_run_on_one_loop_in_a_thread_of_their_own(loop: ProcessLoop) -> None:
    async def where() -> tuple[asyncio.AbstractEventLoop, str]:
        return asyncio.get_running_loop(), threading.current_thread().name

    first, second = loop.run(where), loop.run(where)

    assert first == second
    assert first[1] != threading.current_thread().name


def test_jobs_share_the_connections_opened_by_the_first(loop: ProcessLoop, runtime: Runtime) -> None:
    async def connections() -> object:
        opened = await loop.connections(runtime)
        assert await opened.redis.ping()
        return opened

    assert loop.run(connections) is loop.run(connections)


def test_an_interrupted_job_cancels_its_coroutine(loop: ProcessLoop) -> None:
    """When RQ interrupts the job (a timeout), the send it was waiting for is cancelled, not left running."""
    started, cancelled = threading.Event(), threading.Event()

    async def endless() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            loop.run(endless)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert started.is_set()
    assert cancelled.wait(timeout=5)
