"""One event loop per worker process, kept between jobs, with the connections it keeps open.

RQ runs a coroutine job in a fresh event loop, which would open and close a Redis connection
pool, an HTTP session per provider and the SMTP sessions for every batch. A worker process
instead runs its send jobs on a loop of its own, in a daemon thread, and keeps those
connections between batches. The job (in RQ's thread) waits for its coroutine; if RQ
interrupts it (a job timeout, a shutdown), the coroutine is cancelled before the exception
goes on, so no send outlives its job.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from functools import lru_cache
from typing import Any, TypeVar

from dispatcher.runtime import Runtime
from dispatcher.sending import Connections, connections

T = TypeVar("T")


class ProcessLoop:
    def __init__(self) -> None:
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


@lru_cache(maxsize=1)
def process_loop() -> ProcessLoop:
    return ProcessLoop()
