"""The process-wide handles on Redis and the work queues, built from the settings.

Urgent and non-urgent work never share a queue: each urgency has its own lane,
served first (or only) by its own worker process. Within the urgent lane, each alert's send
jobs wait in a queue of their own, named after its police zone (``alert_queue``), which the
workers take in turn (``workers.main``): one zone's zone-wide burst never holds another
alert behind it, in another zone or its own. The urgent lane's other jobs (fan-outs,
answers, escalations) share its first queue, which every worker looks at first. RQ talks to Redis synchronously
and needs a client that does not decode responses; the service's own synchronous
reads use a second, decoding client on the same server.

Redis is one server (``REDIS_URL``) or a primary found through Redis Sentinel
(``PLP_REDIS_SENTINELS``): every client is then made by redis-py's ``Sentinel.master_for``,
whose connections ask the sentinels where the primary is when they connect, and drop a
connection to a primary that became a replica, so that a failover is, to every process, an
outage of a few seconds that it rides out as any other (workers and the clock wait for Redis,
the API answers 503 with Retry-After meanwhile).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version
from typing import Any

import redis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import parse_url
from redis.driver_info import DriverInfo
from redis.sentinel import Sentinel
from rq import Queue

from config import Settings
from dispatcher.core.links import Links
from dispatcher.core.models import Urgency
from dispatcher.storage.keys import Keys
from dispatcher.storage.reader import Reader
from dispatcher.storage.redis_server import redis_address, resolve_redis_url
from dispatcher.storage.scripts import Scripts

REDIS_PY_VERSION = version("redis")
#: Tries again of an asyncio client's command on a lost connection: its pooled connections all die with a Redis
#: restart, and without a retry each one failed its next command once Redis was back. Few, and quick: while
#: Redis is down, the web answers 503 (Retry-After) at once, and its clients retry.
ASYNC_REDIS_RETRIES = 3
#: Seconds a client waits for an answer from Redis before it takes the connection for dead (redis-py's default).
REDIS_READ_TIMEOUT = 5.0
#: Seconds a sentinel may take to answer where the primary is.
SENTINEL_TIMEOUT = 1.0
#: Between the urgent queue's name, a police zone's and an alert's id, in the name of an urgent alert's send queue.
ZONE_MARK = "@"


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class _SentinelPool(AsyncSentinelPool):
    """The primary's connections, found through sentinels that belong to this pool alone: closed with it."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # the client closes (a failover disconnects only the idle connections)
            for sentinel in self.sentinel_manager.sentinels:
                # Closing is done once each socket's close has begun: a sentinel too busy to see it end within
                # its timeout (redis-py raises then) must not fail the caller, nor leave the next sentinels open.
                with contextlib.suppress(redis.RedisError):
                    await sentinel.aclose()


class _BlockingSentinelPool(_SentinelPool, BlockingConnectionPool):
    """As ``_SentinelPool``, and its callers wait for a free connection (``BlockingConnectionPool``'s bound and
    timeout) instead of erring when it is full."""


@dataclass
class Runtime:
    """Settings plus the clients derived from them; cheap to build, clients made on first use."""

    settings: Settings
    redis_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """Resolve the Redis to use (starting the embedded one if none is configured)."""
        return cls(settings=settings, redis_url=resolve_redis_url(settings))

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)

    @cached_property
    def links(self) -> Links:
        return Links(self.settings)

    @property
    def redis_description(self) -> str:
        """Where this process's Redis is, for messages: the URL's address, or the sentinels and the master name."""
        if self.settings.redis_sentinels:
            sentinels = ", ".join(self.settings.redis_sentinels)
            return f"primary {self.settings.redis_sentinel_master!r} of the sentinels {sentinels}"
        return redis_address(self.redis_url)

    @cached_property
    def _connection_options(self) -> dict[str, Any]:
        """What REDIS_URL says besides its address (password, user, database, TLS): all of it with Sentinel."""
        options = parse_url(self.redis_url)
        for address in ("host", "port", "path"):
            options.pop(address, None)
        if options.pop("connection_class", None) is redis.SSLConnection:
            options["ssl"] = True
        return options

    def _sentinel_options(self) -> dict[str, Any]:
        password = self.settings.redis_sentinel_password
        return {
            "socket_timeout": SENTINEL_TIMEOUT,
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            **({"password": password.get_secret_value()} if password else {}),
        }

    @cached_property
    def _sentinel(self) -> Sentinel:
        return Sentinel(self.settings.sentinel_addresses, sentinel_kwargs=self._sentinel_options())

    def close(self) -> None:
        """Close the synchronous clients made so far (and the sentinels' connections)."""
        for made in ("rq_connection", "sync_redis"):
            if made in self.__dict__:
                self.__dict__[made].close()
        if "_sentinel" in self.__dict__:
            for sentinel in self._sentinel.sentinels:
                sentinel.close()

    def sync_client(self, *, decode_responses: bool = False, **options: Any) -> redis.Redis:
        """A new synchronous client of the service's Redis (the current primary, with Sentinel)."""
        if self.settings.redis_sentinels:
            return self._sentinel.master_for(
                self.settings.redis_sentinel_master,
                decode_responses=decode_responses,
                **self._connection_options,
                **options,
            )
        return redis.Redis.from_url(self.redis_url, decode_responses=decode_responses, **options)

    @cached_property
    def rq_connection(self) -> redis.Redis:
        """Synchronous, non-decoding client: RQ's, and for writes that enqueue work."""
        return self.sync_client()

    @cached_property
    def sync_redis(self) -> redis.Redis:
        """Synchronous, decoding client for the workers' reads."""
        return self.sync_client(decode_responses=True)

    @cached_property
    def reader(self) -> Reader:
        """The ``Store``'s reads, synchronous: for the jobs and the clock."""
        return Reader(self.sync_redis, self.keys)

    @cached_property
    def sync_scripts(self) -> Scripts:
        return Scripts.register(self.rq_connection)

    @cached_property
    def urgent_queue(self) -> Queue:
        return Queue(self.settings.urgent_queue, connection=self.rq_connection)

    @cached_property
    def general_queue(self) -> Queue:
        return Queue(self.settings.general_queue, connection=self.rq_connection)

    def queue_for(self, urgency: Urgency, zone: str | None = None, alert_id: str | None = None) -> Queue:
        """The lane of an urgency: urgent work never waits behind non-urgent work. With a police ``zone`` and an
        ``alert_id``, the urgent lane's queue of that alert's send jobs (``alert_queue``)."""
        if urgency is not Urgency.URGENT:
            return self.general_queue
        return self.alert_queue(zone, alert_id) if zone and alert_id else self.urgent_queue

    @property
    def queues_register(self) -> str:
        """RQ's register of queues: the key of the set of every queue's key."""
        return Queue.redis_queues_keys

    def queue_named(self, name: str) -> Queue:
        """The queue called ``name`` (a job's origin, a send job's record)."""
        return Queue(name, connection=self.rq_connection)

    def alert_queue(self, zone: str, alert_id: str) -> Queue:
        """The queue of one urgent alert's send jobs, in its police zone: ``<urgent queue>@<zone>@<alert>``."""
        return Queue(
            f"{self.settings.urgent_queue}{ZONE_MARK}{zone}{ZONE_MARK}{alert_id}", connection=self.rq_connection
        )

    def alert_queues(self, zone: str | None = None) -> list[Queue]:
        """Every urgent alert's send queue registered (RQ's register of queues: those that hold jobs, and those
        emptied since the clock last forgot the empty ones), by name; with ``zone``, that police zone's only."""
        namespace = Queue.redis_queue_namespace_prefix
        registered = f"{namespace}{self.settings.urgent_queue}{ZONE_MARK}"
        if zone is not None:
            registered += f"{zone}{ZONE_MARK}"
        found = (_text(raw) for raw in self.rq_connection.smembers(self.queues_register))
        keys = sorted(key for key in found if key.startswith(registered))
        return [Queue(key.removeprefix(namespace), connection=self.rq_connection) for key in keys]

    def zone_of(self, queue_name: str) -> str | None:
        """The police zone of an urgent alert's send queue; None for any other queue."""
        prefix = f"{self.settings.urgent_queue}{ZONE_MARK}"
        if not queue_name.startswith(prefix):
            return None
        return queue_name.removeprefix(prefix).rpartition(ZONE_MARK)[0]

    def urgent_queues(self) -> list[Queue]:
        """The urgent lane: its shared queue first, then each urgent alert's send queue."""
        return [self.urgent_queue, *self.alert_queues()]

    def is_urgent(self, queue_name: str) -> bool:
        """Whether a job from the queue ``queue_name`` (its origin) is urgent work."""
        name = self.settings.urgent_queue
        return queue_name == name or queue_name.startswith(f"{name}{ZONE_MARK}")

    def horizon(self, urgency: Urgency) -> float:
        """How long a fan-out job may wait in its queue before the clock takes it for lost.

        A lease on the urgent lane, which its own worker serves at once; twenty on the general
        lane, which may hold a backlog (a job dispatched twice is harmless, only wasted). Send
        jobs are followed in their queue instead (``dispatcher.pipeline.dispatches``).
        """
        return self.settings.lease_seconds * (1 if urgency is Urgency.URGENT else 20)

    def async_redis(self) -> AsyncRedis:
        """A new asyncio client for the running event loop (a worker keeps one; RQ's own async jobs each get one).

        Its pool holds at most PLP_REDIS_MAX_CONNECTIONS connections; callers beyond wait for a free
        one, so a burst of webhooks or sends queues instead of erring, but for PLP_REDIS_POOL_TIMEOUT
        seconds at most: then ``redis.ConnectionError`` (a 503 from the API), never a hang. Nothing holds
        a pooled connection while it waits for something (live follow has ``async_subscriber``).
        """
        options: dict[str, Any] = {
            "decode_responses": True,
            "max_connections": self.settings.redis_max_connections,
            "timeout": self.settings.redis_pool_timeout,
            # given, so that no new connection reads the package's metadata from disk again
            "driver_info": DriverInfo(name="redis-py", lib_version=REDIS_PY_VERSION),
            "retry": AsyncRetry(ExponentialWithJitterBackoff(base=0.01, cap=0.25), ASYNC_REDIS_RETRIES),
            # an intake's WAIT for replicas reads nothing until its PLP_REDIS_WAIT_TIMEOUT (up to 30 s) has passed
            "socket_timeout": max(REDIS_READ_TIMEOUT, self.settings.redis_wait_timeout + 1.0),
        }
        if self.settings.redis_sentinels:
            sentinel = self._async_sentinel()
            return sentinel.master_for(
                self.settings.redis_sentinel_master,
                connection_pool_class=_BlockingSentinelPool,
                **self._connection_options,
                **options,
            )
        return AsyncRedis.from_pool(BlockingConnectionPool.from_url(self.redis_url, **options))

    def async_subscriber(self) -> AsyncRedis:
        """A new asyncio client of its own, outside the pool, for one long-lived subscription (``api.hub``)."""
        options: dict[str, Any] = {
            "decode_responses": True,
            "max_connections": 1,
            "driver_info": DriverInfo(name="redis-py", lib_version=REDIS_PY_VERSION),
        }
        if self.settings.redis_sentinels:
            sentinel = self._async_sentinel()
            return sentinel.master_for(
                self.settings.redis_sentinel_master,
                connection_pool_class=_SentinelPool,
                **self._connection_options,
                **options,
            )
        return AsyncRedis.from_url(self.redis_url, **options)

    def _async_sentinel(self) -> AsyncSentinel:
        """The sentinels, asked from the running event loop (an asyncio client belongs to the loop that made it)."""
        return AsyncSentinel(self.settings.sentinel_addresses, sentinel_kwargs=self._sentinel_options())
