"""A TCP relay in front of a real ``redis-server`` that cuts a transaction's connection at its EXEC.

Killing Redis with a signal cannot hit the instant between a transaction's EXEC and its
reply; this relay does, on purpose: armed, it takes the next chunk a client sends that
holds ``EXEC`` and either drops it (the transaction never reaches Redis) or forwards it and
drops Redis' reply (the transaction is applied, its client never hears so). It then closes
that connection and calls ``on_cut`` (the test kills the server there, or not). Everything
else passes through untouched, so the clients see a real server and a real lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any, TypeVar

from tests.support import free_port

T = TypeVar("T")
EXEC = b"$4\r\nEXEC\r\n"


class Cut(Enum):
    BEFORE_EXEC = "before"  # the chunk with EXEC is not forwarded: nothing of the transaction is applied
    AFTER_EXEC = "after"  # the chunk is forwarded, the reply dropped: the transaction is applied, unheard


class RedisCut:
    """``with RedisCut(upstream_port) as relay``: clients use ``relay.url``; ``arm`` sets up one cut.

    It runs on an event loop of its own, in a thread, so that the test's synchronous Redis
    calls (and the app's, in its threads) go through it whatever the test's loop is doing.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port, self.port = upstream_port, free_port()
        self._armed: tuple[Cut, Callable[[], None], bytes] | None = None
        self.done = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="redis-cut", daemon=True)
        self._connections: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arm(self, cut: Cut, on_cut: Callable[[], None] = lambda: None, *, containing: bytes = b"") -> None:
        """Cut the next transaction (that holds ``containing``) as ``cut`` says, then call ``on_cut``; ``done`` is
        set once it is cut."""
        self.done.clear()
        self._armed = (cut, on_cut, containing)

    def __enter__(self) -> RedisCut:
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._relay, "127.0.0.1", self.port))
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _close(self) -> None:
        """Stop listening, close every client connection, and wait until each relay has closed both its sockets:
        stopping the loop with a close still pending would leave the socket open (Python 3.11's
        ``Server.wait_closed`` returns at once, without waiting for the connections)."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._connections):
            writer.close()
        await asyncio.gather(*self._relays, return_exceptions=True)
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        relay = asyncio.current_task()
        assert relay is not None
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)
        self._connections.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:  # the server is down: so is the relay
            self._connections.discard(writer)
            await _closed(writer)
            return
        replies = asyncio.create_task(_pipe(up_reader, writer))
        try:
            while chunk := await reader.read(65536):
                if self._armed is not None and EXEC in chunk and self._armed[2] in chunk:
                    await self._cut(chunk, replies, up_reader, up_writer)
                    return
                up_writer.write(chunk)
                await up_writer.drain()
        except OSError:
            pass
        finally:
            replies.cancel()
            self._connections.discard(writer)
            await asyncio.gather(_closed(writer), _closed(up_writer))

    async def _cut(
        self,
        chunk: bytes,
        replies: asyncio.Task[None],
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        assert self._armed is not None
        (cut, on_cut, _), self._armed = self._armed, None
        replies.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replies
        if cut is Cut.AFTER_EXEC:
            up_writer.write(chunk)
            await up_writer.drain()
            # Redis answers a chunk once it has run all of it: its first reply bytes say the EXEC ran.
            await up_reader.read(65536)
        on_cut()
        self.done.set()


async def _closed(stream: asyncio.StreamWriter) -> None:
    """Close ``stream`` and wait until its socket is (a reset on the way out changes nothing)."""
    stream.close()
    with contextlib.suppress(OSError):
        await stream.wait_closed()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Relay Redis' replies; once Redis closes the connection (killed), close the client's too."""
    with contextlib.suppress(OSError):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    sink.close()
