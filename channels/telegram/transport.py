"""python-telegram-bot's HTTP layer on aiohttp (``AiohttpRequest``), in place of its default on httpx.

PTB lets a bot bring its own HTTP layer (``telegram.request.BaseRequest``: one ``do_request`` returning the HTTP
status and the body). This one sends each Bot API call through one ``aiohttp.ClientSession``; measured against
PTB's ``HTTPXRequest`` in the same run, it costs less CPU a message (``python -m tests.bench.telegram_transport``,
figures in docs/performance.md).

It keeps what PTB's ``HTTPXRequest`` does: form fields (objects JSON-encoded) as
``application/x-www-form-urlencoded``, the same bytes (it uploads no files: the service sends none), PTB's
``User-Agent``, a connect and a read timeout, a bounded pool of connections; a timeout raises ``TimedOut``, any
other failure of the exchange ``NetworkError`` naming aiohttp's exception. A ``trace`` (an
``aiohttp.TraceConfig``) given to it sees each request's steps: the channel's spaces the writes and notes when
a request went out (``channels.telegram.bot``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

#: The type of PTB's "not given" timeouts (``BaseRequest.DEFAULT_NONE`` and its like), as ``HTTPXRequest`` tests.
_DEFAULT = type(BaseRequest.DEFAULT_NONE)


class AiohttpRequest(BaseRequest):
    """Bot API calls over aiohttp, at most ``pool_size`` connections at once, each step bounded by ``timeout``.

    The session is built on the first call (inside the running loop) and closed by ``shutdown``; a request that
    is never used (PTB's second one, for ``getUpdates``) opens nothing.
    """

    __slots__ = ("_pool_size", "_session", "_timeout", "_trace")

    def __init__(self, *, pool_size: int, timeout: float, trace: aiohttp.TraceConfig | None = None) -> None:
        self._pool_size = pool_size
        self._timeout = timeout
        self._trace = trace
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float:
        """Seconds to wait for Telegram's answer once the request is written (PTB adds it to long polls)."""
        return self._timeout

    async def initialize(self) -> None:
        """Nothing to do ahead: the session is built on the first call, or by ``open``."""

    def open(self) -> None:
        """Build the session now (in the running loop), without connecting."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._pool_size)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets no cookies: none to keep or send
                trace_configs=[self._trace] if self._trace is not None else None,
            )

    async def shutdown(self) -> None:
        """Close the session and its connections (a request never used has none)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """The HTTP status and body Telegram answered. Raises ``TimedOut`` (no connection or no answer in time) or
        ``NetworkError`` (refused, reset, closed). ``write_timeout`` and ``pool_timeout`` are not used: a form of a
        few kilobytes goes to the socket without waiting (aiohttp waits for it to drain only past 64 KiB), and a
        wait for a free connection is the caller's to bound (the channel lets no more calls in flight than the pool
        holds)."""
        self.open()
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=_seconds(connect_timeout, self._timeout),
            sock_read=_seconds(read_timeout, self._timeout),
        )
        try:
            async with self._session.request(method, url, data=_body(request_data), timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError and ConnectionTimeoutError among them
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _body(request_data: RequestData | None) -> dict[str, str] | None:
    """The form PTB built, its fields urlencoded (as ``HTTPXRequest`` sends them). Raises ``TypeError`` for a call
    that uploads files: the service sends none, and a call must not go out without them."""
    if request_data is None:
        return None
    if request_data.contains_files:
        raise TypeError("AiohttpRequest does not upload files")
    return request_data.json_parameters


def _seconds(given: Any, default: float) -> float | None:
    """A timeout PTB passed for one call, or ours when it passed its ``DEFAULT_NONE``."""
    return default if isinstance(given, _DEFAULT) else given
