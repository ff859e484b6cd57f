"""A worker process's own event loop: jobs run on it, keep their connections, and are cancelled when interrupted."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from types import FrameType

import pytest

from dispatcher.storage.runtime import Runtime
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


def test_a_submitted_batch_runs_on_after_the_job_returns_and_drain_waits_for_it(loop: ProcessLoop) -> None:
    """RQ gets the worker back at once (the next job can start) while the batch goes on; stopping waits for it."""
    release, done = threading.Event(), threading.Event()

    async def batch(admitted: AbstractAsyncContextManager[object]) -> None:
        async with admitted:
            await asyncio.to_thread(release.wait)
        done.set()

    loop.submit(batch)  # returns although the batch is still running

    assert not done.is_set()
    assert not loop.drain(timeout=0.05)
    release.set()
    assert loop.drain(timeout=5)
    assert done.is_set()


def test_no_more_batches_run_at_once_than_the_process_takes() -> None:
    """Past ``batches`` admitted, submitting waits for one to end (RQ leaves further jobs to other workers),
    while the waiting batch already runs up to its admission (it holds its deliveries meanwhile)."""
    process_loop = ProcessLoop(batches=2)
    release = threading.Event()
    running: list[int] = []

    started: list[int] = []

    async def batch(n: int, admitted: AbstractAsyncContextManager[object]) -> None:
        started.append(n)  # it holds its deliveries from here, admitted or not
        async with admitted:
            running.append(n)
            await asyncio.to_thread(release.wait)

    try:
        process_loop.submit(lambda admitted: batch(1, admitted))
        process_loop.submit(lambda admitted: batch(2, admitted))
        third = threading.Thread(target=process_loop.submit, args=(lambda admitted: batch(3, admitted),))
        third.start()
        third.join(timeout=0.2)

        assert third.is_alive()  # waiting for room
        assert sorted(started) == [1, 2, 3] and sorted(running) == [1, 2]  # the third already runs, not admitted
        release.set()
        third.join(timeout=5)
        assert not third.is_alive()
        assert process_loop.drain(timeout=5)
        assert sorted(running) == [1, 2, 3]
    finally:
        process_loop.close()


def test_a_crashed_batch_frees_its_place(loop: ProcessLoop) -> None:
    async def broken(admitted: AbstractAsyncContextManager[object]) -> None:
        async with admitted:
            raise RuntimeError("defect in a channel")

    for _ in range(6):  # more than the loop's batches: each crash gave its place back
        loop.submit(broken)

    assert loop.drain(timeout=5)


def test_each_queue_has_its_own_admission_so_urgent_work_and_each_zone_never_wait_behind_another() -> None:
    """Batches are admitted per queue: a general worker whose batches are all non-urgent admits an urgent batch at
    once, and one police zone's urgent batches never hold another zone's back. Past ``batches`` from one queue,
    the queue is saturated (what the worker reads to look elsewhere) and a further batch from it waits."""
    process_loop = ProcessLoop(batches=1)
    release = threading.Event()
    admitted: list[str] = []

    async def batch(name: str, entry: AbstractAsyncContextManager[object]) -> None:
        async with entry:
            admitted.append(name)
            await asyncio.to_thread(release.wait)

    try:
        assert not process_loop.saturated("plp-urgent@5340")
        process_loop.submit(lambda entry: batch("advice", entry), queue="plp-general")
        process_loop.submit(lambda entry: batch("zone 5340", entry), queue="plp-urgent@5340")  # admitted at once
        process_loop.submit(lambda entry: batch("zone 5341", entry), queue="plp-urgent@5341")  # and this one
        assert sorted(admitted) == ["advice", "zone 5340", "zone 5341"]
        assert [process_loop.saturated(q) for q in ("plp-general", "plp-urgent@5340", "plp-urgent@5342")] == [
            True,
            True,
            False,
        ]
        second = threading.Thread(
            target=process_loop.submit,
            kwargs={"work": lambda entry: batch("zone 5340 again", entry), "queue": "plp-urgent@5340"},
        )
        second.start()
        second.join(timeout=0.2)
        assert second.is_alive()  # a second batch of zone 5340 waits for room
        release.set()
        second.join(timeout=5)
        assert process_loop.drain(timeout=5)
        assert not process_loop.saturated("plp-urgent@5340")
    finally:
        process_loop.close()
