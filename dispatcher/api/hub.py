"""One web process's fan-in for live follow: one Redis subscription, one poll per followed alert.

A follower (``GET /v1/alerts/{id}/events``, ``dispatcher.api.stream``) holds no Redis connection
while it waits: it waits on an in-process signal of this hub. The hub holds one pub/sub connection
of its own, outside the pool, on the ``events`` channel, and, for each alert followed here, reads
the alert's state and counters every ``POLL_SECONDS`` through the pool (one short pipeline,
whatever the number of its followers). It wakes the followers of an alert when a status event
names it or when what it read changed. Woken, the followers of an alert share one reading of
where it stands per part of it they see (``Follower.shared``), for a second at most, and only
shape it for their role themselves. 500 followers thus cost one connection, one pipeline a
second per alert followed, and one reading per change per part.

The subscription is opened with the first follower and kept until the app stops; if Redis goes,
it is opened again with backoff, and every follower is woken once it is back (an event may have
been missed meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import structlog
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from dispatcher.storage.keys import Keys

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: An alert's counters are read this often while someone here follows it.
POLL_SECONDS = 1.0
#: Waits before subscribing again after Redis went: doubled each time up to the last.
RESUBSCRIBE_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass
class _Watch:
    """The followers of one alert here, the poll that reads its counters for them all, and their shared readings."""

    followers: set[Follower] = field(default_factory=set)
    seen: object = None
    poll: asyncio.Task[None] | None = None
    #: reading key -> (when it began, monotonic; the reading), dropped at each change
    readings: dict[Hashable, tuple[float, asyncio.Task[Any]]] = field(default_factory=dict)

    def wake(self) -> None:
        self.readings.clear()
        for follower in self.followers:
            follower.changed.set()


@dataclass(eq=False)
class Follower:
    """One follower of one alert: ``wait`` returns on the alert's next change, or after ``timeout`` seconds."""

    watch: _Watch
    max_age: float = POLL_SECONDS
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout=max(0.0, timeout))
        self.changed.clear()

    async def shared(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``'s result, shared with the alert's other followers asking for the same ``key`` since its
        last change (and ``max_age`` seconds at most): one reading for them all."""
        found = self.watch.readings.get(key)
        if found is None or found[1].cancelled() or time.monotonic() - found[0] > self.max_age:
            found = (time.monotonic(), asyncio.ensure_future(read()))
            self.watch.readings[key] = found
        return cast(T, await asyncio.shield(found[1]))


class AlertHub:
    """The live follow of one web process (see the module's docstring)."""

    def __init__(
        self, redis: AsyncRedis, subscriber: Callable[[], AsyncRedis], keys: Keys, *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.redis, self.subscriber, self.keys, self.poll_seconds = redis, subscriber, keys, poll_seconds
        self.closing = asyncio.Event()
        self._watches: dict[str, _Watch] = {}
        self._listener: asyncio.Task[None] | None = None

    @property
    def followers(self) -> int:
        """How many followers this process has now (all alerts)."""
        return sum(len(watch.followers) for watch in self._watches.values())

    @contextlib.asynccontextmanager
    async def follow(self, alert_id: str) -> AsyncIterator[Follower]:
        """Follow ``alert_id`` for the duration of the block."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="alert-hub-listener")
        watch = self._watches.get(alert_id)
        if watch is None:
            watch = self._watches[alert_id] = _Watch()
            watch.poll = asyncio.create_task(self._poll(alert_id, watch), name=f"alert-hub-poll-{alert_id}")
        follower = Follower(watch, max_age=self.poll_seconds)
        watch.followers.add(follower)
        try:
            yield follower
        finally:
            watch.followers.discard(follower)
            if not watch.followers and self._watches.get(alert_id) is watch:
                del self._watches[alert_id]
                if watch.poll is not None:
                    watch.poll.cancel()

    def shut_down(self) -> None:
        """The app stops: every follower wakes and ends its stream."""
        self.closing.set()
        for watch in self._watches.values():
            watch.wake()

    async def close(self) -> None:
        """Stop the subscription and the polls (after ``shut_down``)."""
        self.shut_down()
        tasks = [t for t in (self._listener, *(w.poll for w in self._watches.values())) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _poll(self, alert_id: str, watch: _Watch) -> None:
        while not self.closing.is_set():
            try:
                seen = await self._read(alert_id)
            except (RedisError, OSError):
                seen = None  # Redis out of reach: the followers find out themselves when woken
            if seen != watch.seen:
                watch.seen = seen
                watch.wake()
            await asyncio.sleep(self.poll_seconds)  # the counters publish no event: they are read this often

    async def _read(self, alert_id: str) -> object:
        keys = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.alert_state(alert_id))
            pipe.hgetall(keys.alert_counts(alert_id))
            pipe.hgetall(keys.alert_relays(alert_id))
            pipe.scard(keys.alert_acks(alert_id))
            pipe.scard(keys.alert_unreachable(alert_id))
            return await pipe.execute()

    async def _listen(self) -> None:
        attempt = 0
        while not self.closing.is_set():
            client = self.subscriber()
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.keys.events())
                if attempt:
                    log.info("stream.hub_resubscribed", attempts=attempt)
                attempt = 0
                for watch in self._watches.values():  # an event may have gone by while it was not subscribed
                    watch.wake()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._dispatch(message.get("data"))
            except (RedisError, OSError) as exc:
                if attempt == 0:
                    log.warning("stream.hub_lost_redis", error=type(exc).__name__)
                await asyncio.sleep(RESUBSCRIBE_BACKOFF[min(attempt, len(RESUBSCRIBE_BACKOFF) - 1)])
                attempt += 1
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
                    await client.aclose()

    def _dispatch(self, data: object) -> None:
        try:
            alert_id = json.loads(str(data)).get("alert_id")
        except (ValueError, AttributeError):
            return
        watch = self._watches.get(alert_id) if isinstance(alert_id, str) else None
        if watch is not None:
            watch.wake()


__all__ = ["POLL_SECONDS", "AlertHub", "Follower"]
