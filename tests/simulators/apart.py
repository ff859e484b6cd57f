"""Simulators served from an event loop of their own, in a thread of the test process.

A simulator on the test's own loop notes a request's arrival only when that loop gets to it:
behind the web app under test, a burst of webhooks, the test's own work. Requests that reached
it tens of milliseconds apart are then noted together, and a rate meter refuses them although
they kept the rate, as no provider, whose clock runs apart from ours, would. On a loop of its own
the simulator notes arrivals as they come (give or take the interpreter's switch interval).

``VendorLoop.serving(simulator)`` enters a simulator on that loop and yields it; its coroutines
(a member's update, waiting for callbacks) run there through ``run``. Its ledgers are plain
lists, read from the test's thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class VendorLoop:
    """The loop and its thread, from ``async with`` to its end."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vendors", daemon=True)

    async def __aenter__(self) -> VendorLoop:
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.run(_settle())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        self._loop.close()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the simulators' loop and wait for its result."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    @asynccontextmanager
    async def serving(self, simulator: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
        """Enter ``simulator`` on the simulators' loop; exit it there when the block ends."""
        entered = await self.run(simulator.__aenter__())
        try:
            yield entered
        finally:
            await self.run(simulator.__aexit__(None, None, None))


async def _settle() -> None:
    """End what still runs on the loop (a handler of a connection the simulator closed): a loop stopped with a
    handler still running never closes its socket. The closes the ended handlers scheduled are queued before the
    stop that follows, so the loop runs them before it stops."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    async with asyncio.timeout(10):
        await asyncio.gather(*others, return_exceptions=True)
