"""Simulators served from an event loop of their own, in a thread of the test process.

A simulator on the test's own loop notes a request's arrival only when that loop gets to it:
behind the web app under test, a burst of webhooks, the test's own work. Requests that reached
it tens of milliseconds apart are then noted together, and a rate meter refuses them although
they kept the rate, as no provider, whose clock runs apart from ours, would. On a loop of its own
the simulator notes arrivals as they come (give or take the interpreter's switch interval).

``VendorLoop.serving(cls, **kwargs)`` builds a simulator and enters it on that loop and yields it;
its coroutines (a member's update, waiting for callbacks) run there through ``run``. Its ledgers
are plain lists, read from the test's thread.

``VendorProcess`` serves them from a process of their own, with the same two calls, for tests that
count a provider's refusals at its real rate: there the simulator's clock does not wait for the test
process's interpreter lock either.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import itertools
import multiprocessing
import os
import pickle
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

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
    async def serving(self, cls: type[AbstractAsyncContextManager[T]], **kwargs: Any) -> AsyncIterator[T]:
        """Build ``cls(**kwargs)`` and enter it on the simulators' loop; exit it there when the block ends."""
        simulator = cls(**kwargs)
        entered = await self.run(simulator.__aenter__())
        try:
            yield entered
        finally:
            await self.run(simulator.__aexit__(None, None, None))


async def _settle(*keep: asyncio.Task[Any]) -> None:
    """End what still runs on the loop (a handler of a connection the simulator closed): a loop stopped with a
    handler still running never closes its socket. The closes the ended handlers scheduled are queued before the
    stop that follows, so the loop runs them before it stops."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task() and task not in keep]
    for task in others:
        task.cancel()
    async with asyncio.timeout(10):
        await asyncio.gather(*others, return_exceptions=True)


class VendorProcess:
    """Simulators served from a process of their own: no interpreter lock shared with the test process.

    On a thread of the test process (``VendorLoop``), a simulator still waits for the interpreter's lock
    behind the web app and the test, for a switch interval (5 ms) or longer under a burst; two requests
    that reached it one interval apart can then be noted closer, and a rate meter refuses one. Tests that
    count the provider's refusals at its real rate run the simulators here.

    ``serving(cls, **kwargs)`` builds and enters ``cls(**kwargs)`` in the child and yields a ``Remote``:
    reading an attribute or calling a plain method asks the child and waits for the answer (pickled);
    calling a coroutine method gives a call to pass to ``run``; setting an attribute sets it there. A
    value read is a copy: change the simulator by setting its attributes or calling its methods, never by
    mutating what was read.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_child, args=(child,), name="vendors", daemon=True)
        self._child_end = child
        self._lock = threading.Lock()
        self._waiting: dict[int, concurrent.futures.Future[Any]] = {}
        self._ids = itertools.count()
        self._reader = threading.Thread(target=self._read, name="vendors-reader", daemon=True)

    async def __aenter__(self) -> VendorProcess:
        self._process.start()
        self._child_end.close()
        self._reader.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.wrap_future(self._request("stop"))
        await asyncio.to_thread(self._process.join, 10)
        self._conn.close()

    async def run(self, work: RemoteCall) -> Any:
        """Run a simulator's coroutine method in the child and wait for its result."""
        return await asyncio.wrap_future(self._request("await", work.name, work.method, work.args, work.kwargs))

    @asynccontextmanager
    async def serving(self, cls: type[T], **kwargs: Any) -> AsyncIterator[T]:
        name = f"{cls.__name__}-{next(self._ids)}"
        await asyncio.wrap_future(self._request("enter", name, cls, kwargs))
        try:
            yield cast(T, Remote(self, name, cls))
        finally:
            await asyncio.wrap_future(self._request("exit", name))

    def ask(self, *request: Any) -> Any:
        """Ask the child and block until it answers (reads and plain calls: the child answers at once)."""
        return self._request(*request).result(timeout=30)

    def _request(self, *request: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            number = next(self._ids)
            self._waiting[number] = future
            self._conn.send((number, *request))
        return future

    def _read(self) -> None:
        while True:
            try:
                number, ok, value = self._conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                future = self._waiting.pop(number)
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.set_exception(RuntimeError("the vendors' process ended"))


@dataclass(frozen=True, slots=True)
class RemoteCall:
    """A coroutine method of a simulator in a ``VendorProcess``, called: pass it to the process's ``run``."""

    name: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Remote:
    """A simulator in a ``VendorProcess``, seen from the test process (see ``VendorProcess``)."""

    def __init__(self, process: VendorProcess, name: str, cls: type) -> None:
        object.__setattr__(self, "_where", (process, name, cls))

    def __getattr__(self, attribute: str) -> Any:
        process, name, cls = object.__getattribute__(self, "_where")
        declared = inspect.getattr_static(cls, attribute, None)
        if inspect.iscoroutinefunction(declared):
            return lambda *args, **kwargs: RemoteCall(name, attribute, args, kwargs)
        if inspect.isfunction(declared):
            return lambda *args, **kwargs: process.ask("call", name, attribute, args, kwargs)
        return process.ask("get", name, attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        process, name, _ = object.__getattribute__(self, "_where")
        process.ask("set", name, attribute, value)


def ahead_of_the_service() -> None:
    """Put this (the vendors') process ahead of the service's processes for the scheduler, as a provider's own
    clock is (where the test runs as root: a provider's arrival times should not wait for a busy host's cores)."""
    with contextlib.suppress(PermissionError):
        os.nice(-10)


def _child(conn: Connection) -> None:
    """The vendors' process (``ahead_of_the_service``)."""
    ahead_of_the_service()
    asyncio.run(_serve(conn))


async def _serve(conn: Connection) -> None:
    """The child's side: build, enter and answer for the simulators until told to stop."""
    loop, stopped, main = asyncio.get_running_loop(), asyncio.Event(), asyncio.current_task()
    assert main is not None
    simulators: dict[str, Any] = {}
    exits: dict[str, Any] = {}
    sending = threading.Lock()

    def answer(number: int, ok: bool, value: Any) -> None:
        try:  # what does not pickle both ways (an exception of some library) comes back as its text
            pickle.loads(pickle.dumps(value))
        except Exception as error:
            ok, value = False, RuntimeError(f"{type(value).__name__}: {value} (cannot cross processes: {error})")
        with sending:
            conn.send((number, ok, value))

    async def handle(number: int, verb: str, *args: Any) -> None:
        try:
            if verb == "enter":
                name, cls, kwargs = args
                exits[name] = cls(**kwargs)
                simulators[name] = await exits[name].__aenter__()
                if (warm_up := getattr(simulators[name], "warm_up", None)) is not None:
                    await warm_up()  # a fresh process's first request is slow: not a request the test counts
                value: Any = None
            elif verb == "exit":
                await exits.pop(args[0]).__aexit__(None, None, None)
                simulators.pop(args[0])
                value = None
            elif verb == "get":
                value = getattr(simulators[args[0]], args[1])
            elif verb == "set":
                setattr(simulators[args[0]], args[1], args[2])
                value = None
            elif verb == "call":
                name, method, call_args, kwargs = args
                value = getattr(simulators[name], method)(*call_args, **kwargs)
            elif verb == "await":
                name, method, call_args, kwargs = args
                value = await getattr(simulators[name], method)(*call_args, **kwargs)
            elif verb == "stop":
                for simulator in reversed(list(exits.values())):
                    await simulator.__aexit__(None, None, None)
                exits.clear()
                await _settle(main)
                value = None
                stopped.set()
            else:
                raise ValueError(f"unknown request {verb!r}")
        except Exception as error:
            answer(number, False, error)
        else:
            answer(number, True, value)

    tasks: set[asyncio.Task[None]] = set()

    def spawn(request: tuple[Any, ...]) -> None:
        task = loop.create_task(handle(*request))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def read() -> None:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):  # the test process is gone: stop too
                loop.call_soon_threadsafe(stopped.set)
                return
            loop.call_soon_threadsafe(spawn, request)

    threading.Thread(target=read, name="requests", daemon=True).start()
    await stopped.wait()
