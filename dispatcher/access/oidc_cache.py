"""The identity provider's discovery document and key set, kept in memory for a while by each web process.

Reading both on every sign-in would make every sign-in wait on two more calls to the provider, and
fail whenever the provider's discovery is briefly unreachable. ``ProviderCache`` keeps each document
by its URL (so per issuer) for as long as the response's ``Cache-Control: max-age`` says, else
``DEFAULT_SECONDS``, never more than ``MAX_SECONDS``; ``no-store`` or ``no-cache`` keeps nothing.
While a document is fresh it is served without asking the provider, reachable or not; once stale,
it is read again (concurrent readers wait for one read), and a failure is the caller's, as without
a cache.

A provider rotates its signing keys: an ID token may name a ``kid`` the kept key set lacks. The
caller may then ask for the key set again (``renew``), but ``renewable`` allows that at most once
per ``RENEW_SECONDS`` per URL, so that a flood of forged tokens with made-up ``kid``\\ s costs the
provider one read a minute, not one per token.

The clock is a parameter (``time.monotonic`` by default): the tests move it instead of waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: Seconds a document is kept when its response does not say (``Cache-Control: max-age``).
DEFAULT_SECONDS = 3600
#: Seconds a document is kept at most, whatever its response says.
MAX_SECONDS = 86400
#: Seconds between two reads of a key set asked for because a token names a key it lacks.
RENEW_SECONDS = 60


@dataclass(frozen=True)
class Fetched:
    """A document as read from the provider, and how long its response lets us keep it (``None``: it does not say)."""

    body: dict[str, Any]
    max_age: int | None


@dataclass(frozen=True)
class _Kept:
    body: dict[str, Any]
    until: float


def max_age(cache_control: str | None) -> int | None:
    """The seconds a response's ``Cache-Control`` lets it be kept: 0 for ``no-store``/``no-cache``, ``None`` if it
    does not say."""
    pairs = (directive.strip().partition("=") for directive in (cache_control or "").split(","))
    directives = {name.lower(): value for name, _, value in pairs}
    if "no-store" in directives or "no-cache" in directives:
        return 0
    seconds = directives.get("max-age", "").strip('"')
    return int(seconds) if seconds.isdigit() else None


class ProviderCache:
    """Documents read from identity providers, each kept until its response's freshness runs out."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        default_seconds: int = DEFAULT_SECONDS,
        renew_seconds: int = RENEW_SECONDS,
    ) -> None:
        self.clock, self.default_seconds, self.renew_seconds = clock, default_seconds, renew_seconds
        self._kept: dict[str, _Kept] = {}
        self._renewed: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def read(self, url: str, fetch: Callable[[], Awaitable[Fetched]], *, renew: bool = False) -> dict[str, Any]:
        """The document at ``url``: the one kept while fresh (unless ``renew``), else ``fetch``'s, kept for next
        time. Raises whatever ``fetch`` raises, keeping nothing."""
        async with self._locks.setdefault(url, asyncio.Lock()):
            kept = self._kept.get(url)
            if kept is not None and kept.until > self.clock() and not renew:
                return kept.body
            fetched = await fetch()
            self._keep(url, fetched)
            return fetched.body

    def renewable(self, url: str) -> bool:
        """Whether the document at ``url`` may be read again before it is stale (no renewal in the last
        ``renew_seconds``); answering yes counts as that renewal."""
        now, last = self.clock(), self._renewed.get(url)
        if last is not None and now - last < self.renew_seconds:
            return False
        self._renewed[url] = now
        return True

    def _keep(self, url: str, fetched: Fetched) -> None:
        seconds = self.default_seconds if fetched.max_age is None else fetched.max_age
        seconds = min(seconds, MAX_SECONDS)
        if seconds > 0:
            self._kept[url] = _Kept(fetched.body, self.clock() + seconds)
        else:
            self._kept.pop(url, None)
