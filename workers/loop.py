"""One event loop per worker process, kept between jobs, with the connections it keeps open.

RQ runs a coroutine job in a fresh event loop, which would open and close a Redis connection
pool, an HTTP session per provider and the SMTP sessions for every batch. A worker process
instead runs its send jobs on a loop of its own, in a daemon thread, and keeps those
connections between batches.

Batches overlap: ``submit`` starts a batch on the loop at once (it holds its deliveries from
then on) and returns as soon as it is admitted, when fewer than ``PLP_WORKER_BATCHES`` batches
of its queue send (the general lane's, the urgent lane's, or one police zone's urgent sends:
an urgent batch never waits for non-urgent ones to end, nor one zone's for another's),
so RQ hands the worker its next job while the last sends of earlier batches (a slow SMTP
session, a rate-limited tail) are still out; a new urgent batch never waits for them. A queue
whose batches fill its admission is ``saturated``: the worker looks at the other queues
until it is not (``workers.main``), rather than wait with a job it cannot start yet. Nothing
is lost if the process dies meanwhile: a batch holds its deliveries and leases its sends
(``dispatcher.pipeline.sending``), and the clock hands whatever a dead process held to another worker.
``drain`` waits for the batches still running (a worker stopping); ``run`` waits for one (a
forked work horse, tests).

The loop also sends the first batches of each urgent fan-out the worker runs (``SendsHere``), submitted
by the fan-out job itself, each as soon as it has planned it, beside that alert's other batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Future, wait
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import structlog

from dispatcher.pipeline import sending
from dispatcher.pipeline.sending import Connections, connections
from dispatcher.storage.runtime import Runtime

T = TypeVar("T")

log = structlog.get_logger(__name__)


class ProcessLoop:
    def __init__(self, *, batches: int = 2) -> None:
        # Batches admitted at once, per queue (made and used on the loop only; read as a hint by ``saturated``):
        # an urgent batch a general worker takes while its non-urgent batches run is admitted at once, never
        # queued behind them; so is one zone's beside another's.
        self._batches = batches
        self._sending: dict[str, asyncio.Semaphore] = {}
        self._running: set[Future[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="plp-send-loop", daemon=True)
        self._thread.start()
        self._connections: Connections | None = None
        self._opened: AbstractAsyncContextManager[Connections] | None = None
        self._lock = asyncio.Lock()

    def run(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``work()`` on the loop and wait for its result (or exception)."""
        future = asyncio.run_coroutine_threadsafe(work(), self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def submit(
        self, work: Callable[[AbstractAsyncContextManager[object]], Coroutine[Any, Any, Any]], *, queue: str = ""
    ) -> None:
        """Start ``work(admitted)`` on the loop at once; return once it enters ``admitted`` (which it may
        when fewer than ``batches`` works from the same ``queue`` are inside) or ends."""
        entered = threading.Event()
        future = asyncio.run_coroutine_threadsafe(work(self._admission(entered, queue)), self._loop)
        self._running.add(future)
        future.add_done_callback(self._finished)
        future.add_done_callback(lambda _: entered.set())
        entered.wait()

    def spawn(self, work: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Start ``work()`` on the loop and return at once (``drain`` waits for it like for a batch)."""
        future = asyncio.run_coroutine_threadsafe(work(), self._loop)
        self._running.add(future)
        future.add_done_callback(self._finished)

    def saturated(self, queue: str) -> bool:
        """Whether a batch from ``queue`` would wait for its admission now (read from the worker's thread: a hint,
        which a batch ending may make stale at once)."""
        gate = self._sending.get(queue)
        return gate is not None and gate.locked()

    @contextlib.asynccontextmanager
    async def _admission(self, entered: threading.Event, queue: str) -> AsyncIterator[object]:
        gate = self._sending.get(queue)
        if gate is None:
            gate = self._sending[queue] = asyncio.Semaphore(self._batches)
        async with gate:
            entered.set()
            yield None

    def _finished(self, future: Future[Any]) -> None:
        self._running.discard(future)
        if not future.cancelled() and (error := future.exception()) is not None:
            log.error("worker.batch_crashed", error=f"{type(error).__name__}: {error}", exc_info=error)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted work is done; True if it all ended within ``timeout``."""
        _, pending = wait(list(self._running), timeout=timeout)
        return not pending

    def close(self) -> None:
        """Close the connections and stop the loop (the process is ending; tests)."""

        async def release() -> None:
            if self._opened is not None:
                await self._opened.__aexit__(None, None, None)
                self._connections = self._opened = None

        asyncio.run_coroutine_threadsafe(release(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def connections(self, rt: Runtime) -> Connections:
        """The process's connections, opened on first use and kept (closed with the process)."""
        async with self._lock:
            if self._connections is None:
                self._opened = connections(rt)
                self._connections = await self._opened.__aenter__()  # left by close(), or with the process
            return self._connections


async def send_on(
    loop: ProcessLoop,
    rt: Runtime,
    alert_id: str,
    plp_id: str,
    refs: list[str],
    *,
    job_id: str | None,
    admitted: AbstractAsyncContextManager[object] | None = None,
) -> dict[str, int]:
    """Send a batch on ``loop``'s kept connections (``dispatcher.pipeline.sending.send_batch``)."""
    connections = await loop.connections(rt)
    return await sending.send_batch(rt, alert_id, plp_id, refs, using=connections, job_id=job_id, admitted=admitted)


class SendsHere:
    """A process loop as the sender of the first batches of the urgent fan-outs this process runs
    (``dispatcher.pipeline.dispatches.SendsHere``). ``loop`` gives it, made on first use only: a fan-out
    with nothing to send here never starts it."""

    def __init__(self, rt: Runtime, loop: Callable[[], ProcessLoop]) -> None:
        self.rt, self.loop = rt, loop

    def free(self, queue: str) -> bool:
        return not self.loop().saturated(queue)

    def send(self, alert_id: str, plp_id: str, refs: list[str], *, job_id: str, queue: str) -> None:
        rt, loop = self.rt, self.loop()
        loop.submit(
            lambda admitted: send_on(loop, rt, alert_id, plp_id, refs, job_id=job_id, admitted=admitted), queue=queue
        )


_made: ProcessLoop | None = None
_making = threading.Lock()


def process_loop(batches: int = 2) -> ProcessLoop:
    """The process's loop, made on first use with ``batches`` (a worker that never sends never starts it)."""
    global _made
    with _making:
        if _made is None:
            _made = ProcessLoop(batches=batches)
        return _made


def running_loop() -> ProcessLoop | None:
    """The process's loop if it was made."""
    return _made


def drain_process_loop() -> None:
    """A worker stopping: let the batches still running finish, then close the connections."""
    global _made
    with _making:
        loop, _made = _made, None
    if loop is not None:
        loop.drain()
        loop.close()
