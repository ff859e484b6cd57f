"""The health of the work queues, read in two Redis round trips: for ``plp status``, ``/v1/status``, metrics.

Per lane (urgent, general): jobs waiting, how long the next one has waited, RQ's scheduled,
started and failed registries, and the workers alive for it; the urgent lane adds up its own
queue and each urgent alert's send queue, and lists the police zones with send jobs waiting. Plus whether the clock is
sweeping, and the provider limits the workers pace their sends under.

*Alive* is the process's own heartbeat (``dispatcher.operations.heartbeats``): a worker or clock whose last
beat is under ``STALE_SECONDS`` old. RQ's worker key is no guide (a busy worker's lives for its
job's timeout + 60 s after a crash); its ``state`` (idle, busy) is shown beside the beat. A general
worker serves the urgent queue too, so it counts for both lanes. Processes that stopped beating
without a clean stop are listed as ``lost`` for a day.

Each provider's recent health comes from the send scripts (``dispatcher.storage.scripts``): how many of
its calls in a row failed for a reason of its own (an outage, an error, credentials refused).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from rq import Queue, Worker
from rq.utils import utcparse

from channels import describe_channels, rates_for
from config import Settings
from dispatcher.core.models import ChannelName
from dispatcher.operations.heartbeats import FORGET_SECONDS, Beat, Role, beat_of
from dispatcher.storage.runtime import Runtime

#: Queue entries looked at to find the oldest job (a job deleted under the queue leaves a stale id).
_HEAD = 5
#: How many clock periods may pass without a sweep before the clock is taken for stopped (at least 10 s).
CLOCK_STALE_PERIODS = 20
CLOCK_STALE_MIN = 10.0
#: How long the clock's heartbeat key outlives its last sweep: ``plp status`` can still say when it was.
CLOCK_HEARTBEAT_TTL = 86400


#: A provider whose last calls, this many in a row, all failed for a reason of its own is failing.
PROVIDER_FAILING_STREAK = 3


@dataclass(frozen=True)
class WorkerHealth:
    """One live worker: its name, RQ's state (``idle``, ``busy``... ``unknown``), seconds since its last beat."""

    name: str
    state: str
    heartbeat_age: float | None
    pid: int | None = None
    host: str | None = None


@dataclass(frozen=True)
class ProviderHealth:
    """A provider's calls for one channel: ``failures`` in a row (of its own making), the last ones' times."""

    channel: str
    provider: str
    failures: int
    last_failure: str | None  # the kind of the last failure (``transient``, ``not_configured``, ``internal``)
    last_failure_age: float | None
    last_success_age: float | None

    @property
    def failing(self) -> bool:
        return self.failures >= PROVIDER_FAILING_STREAK


@dataclass(frozen=True)
class LaneHealth:
    """One lane: ``pending`` jobs, ``oldest_age`` seconds the next one has waited (None: empty), registries; the
    urgent lane's counts add its shared queue's and every police zone's send queue's."""

    lane: str
    queue: str
    pending: int
    oldest_age: float | None
    scheduled: int
    started: int
    failed: int
    workers: tuple[WorkerHealth, ...]
    #: The urgent lane's send jobs waiting, per police zone (the zones with some); its ``pending`` includes them.
    zones: dict[str, int] = field(default_factory=dict)

    @property
    def workers_alive(self) -> int:
        return len(self.workers)


@dataclass(frozen=True)
class ClockHealth:
    """The clock: seconds since its last sweep (None: never seen, or not for a day) and whether that is recent."""

    last_sweep_age: float | None
    alive: bool
    stale_after: float


@dataclass(frozen=True)
class ProviderLimit:
    """A limit in effect: ``per_second`` sends over ``channel``, explained in ``detail``."""

    channel: str
    name: str
    per_second: float
    detail: str


@dataclass(frozen=True)
class QueueHealth:
    """Everything ``queue_health`` reads; ``to_dict()`` gives plain JSON-ready data."""

    lanes: tuple[LaneHealth, ...]
    clock: ClockHealth
    limits: tuple[ProviderLimit, ...]
    channels: dict[str, str]  # channel -> class serving it (``OutboxChannel`` when not configured)
    clocks: tuple[Beat, ...] = ()  # the clock processes beating
    lost: tuple[Beat, ...] = ()  # workers and clocks that stopped beating without a clean stop (a day at most)
    providers: tuple[ProviderHealth, ...] = ()

    def lane(self, name: str) -> LaneHealth:
        """The lane called ``name`` (``urgent`` or ``general``); ``KeyError`` otherwise."""
        for lane in self.lanes:
            if lane.lane == name:
                return lane
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lanes": [
                {**asdict(lane), "workers": [asdict(w) for w in lane.workers], "workers_alive": lane.workers_alive}
                for lane in self.lanes
            ],
            "clock": asdict(self.clock),
            "clocks": [asdict(beat) for beat in self.clocks],
            "lost": [asdict(beat) for beat in self.lost],
            "limits": [asdict(limit) for limit in self.limits],
            "providers": [{**asdict(p), "failing": p.failing} for p in self.providers],
            "channels": dict(self.channels),
        }


def queue_health(runtime: Runtime, *, now: float | None = None) -> QueueHealth:
    """Read the queues, workers, clock and providers of ``runtime`` (synchronous; two pipelined round trips).

    Ages are counted up to ``now`` (Unix time; default: this moment). Raises
    ``redis.RedisError`` (or ``OSError``) when Redis cannot be reached.
    """
    now = time.time() if now is None else now
    # the urgent lane is its shared queue and each urgent alert's send queue; read together, shown as one
    queues = [("urgent", queue) for queue in runtime.urgent_queues()] + [("general", runtime.general_queue)]
    conn, keys = runtime.rq_connection, runtime.keys
    with conn.pipeline(transaction=False) as pipe:
        for _, queue in queues:
            pipe.llen(queue.key)
            pipe.lrange(queue.key, 0, _HEAD - 1)
            pipe.zcard(queue.scheduled_job_registry.key)
            pipe.zcount(queue.started_job_registry.key, now, "+inf")  # scores are deadlines: past ones are stale
            pipe.zcount(queue.failed_job_registry.key, now, "+inf")
        for role in Role:
            pipe.zrangebyscore(keys.beats(role.value), now - FORGET_SECONDS, "+inf", withscores=True)
        pipe.hgetall(keys.metrics())
        pipe.get(keys.clock_heartbeat())
        first = pipe.execute()
    per_queue = [first[i : i + 5] for i in range(0, 5 * len(queues), 5)]
    heads = [[_text(j) for j in row[1]] for row in per_queue]
    listed = {
        role: [(_text(name), float(score)) for name, score in found]
        for role, found in zip(Role, first[5 * len(queues) : -2], strict=True)
    }
    with conn.pipeline(transaction=False) as pipe:
        for (_, queue), ids in zip(queues, heads, strict=True):
            for job_id in ids:
                pipe.hget(queue.job_class.key_for(job_id), "enqueued_at")
        for role, names in listed.items():
            for name, _ in names:
                pipe.get(keys.beat(role.value, name))
                pipe.hget(f"{Worker.redis_worker_namespace_prefix}{name}", "state")
        second = iter(pipe.execute())
    enqueued = [[next(second) for _ in ids] for ids in heads]
    beats = {role: [_beat(role, name, score, second, now) for name, score in names] for role, names in listed.items()}
    workers = {role: tuple(w for w, beat in found if beat.alive) for role, found in beats.items()}
    lanes = tuple(
        _lane(
            runtime,
            lane,
            [
                (queue, row, times)
                for (name, queue), row, times in zip(queues, per_queue, enqueued, strict=True)
                if name == lane
            ],
            workers[Role.URGENT] + workers[Role.GENERAL] if lane == "urgent" else workers[Role.GENERAL],
            now,
        )
        for lane in ("urgent", "general")
    )
    return QueueHealth(
        lanes=lanes,
        clock=_clock(runtime.settings, first[-1], now),
        limits=provider_limits(runtime.settings),
        channels=describe_channels(runtime.settings),
        clocks=tuple(beat for _, beat in beats[Role.CLOCK] if beat.alive),
        lost=tuple(beat for found in beats.values() for _, beat in found if not beat.alive),
        providers=provider_health(first[-2], now),
    )


def _lane(
    runtime: Runtime,
    lane: str,
    read: list[tuple[Queue, list[Any], list[Any]]],
    workers: tuple[WorkerHealth, ...],
    now: float,
) -> LaneHealth:
    """One lane from its queues' readings (the first is the lane's own queue; the urgent lane's others are its
    alerts' send queues): their jobs and registries added up, the oldest job's age over all of them, and the
    send jobs waiting per police zone."""
    ages = [age for _, _, times in read if (age := _oldest_age(times, now)) is not None]
    zones: dict[str, int] = {}
    for queue, row, _ in read[1:]:
        if int(row[0]) and (zone := runtime.zone_of(queue.name)) is not None:
            zones[zone] = zones.get(zone, 0) + int(row[0])
    return LaneHealth(
        lane=lane,
        queue=read[0][0].name,
        pending=sum(int(row[0]) for _, row, _ in read),
        oldest_age=max(ages) if ages else None,
        scheduled=sum(int(row[2]) for _, row, _ in read),
        started=sum(int(row[3]) for _, row, _ in read),
        failed=sum(int(row[4]) for _, row, _ in read),
        workers=workers,
        zones=zones,
    )


def _beat(role: Role, name: str, score: float, read: Iterator[Any], now: float) -> tuple[WorkerHealth, Beat]:
    beat = beat_of(role.value, name, score, next(read), now)
    state = next(read)
    worker = WorkerHealth(
        name=name, state=_text(state) if state else "unknown", heartbeat_age=beat.age, pid=beat.pid, host=beat.host
    )
    return worker, beat


def provider_health(metrics: dict[bytes, bytes] | dict[str, str], now: float) -> tuple[ProviderHealth, ...]:
    """Each provider's recent calls, from the fields ``dispatcher.storage.scripts`` keeps in the metrics hash."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for raw_field, raw_value in metrics.items():
        kind, _, labels = _text(raw_field).partition("|")
        if kind in _PROVIDER_FIELDS:
            channel, _, provider = labels.partition("|")
            found.setdefault((channel, provider), {})[kind] = _text(raw_value)
    return tuple(
        ProviderHealth(
            channel=channel,
            provider=provider,
            failures=int(fields.get("pf", "0")),
            last_failure=fields.get("pfk"),
            last_failure_age=_age_of(fields.get("pft"), now),
            last_success_age=_age_of(fields.get("pok"), now),
        )
        for (channel, provider), fields in sorted(found.items())
    )


#: The metrics hash's provider fields: failures in a row, the last failure's kind and time, the last success's time.
_PROVIDER_FIELDS = ("pf", "pfk", "pft", "pok")


def _age_of(at: str | None, now: float) -> float | None:
    return None if at is None else max(0.0, now - float(at))


def urgent_workers_alive(runtime: Runtime) -> int:
    """Workers alive for the urgent queue (two round trips); ``redis.RedisError`` if Redis is unreachable."""
    return queue_health(runtime).lane("urgent").workers_alive


def provider_limits(settings: Settings) -> tuple[ProviderLimit, ...]:
    """The providers' limits the workers pace sends under (``channels.rates_for``), at the providers' rates:
    the workers keep ``PLP_LIMIT_MARGIN`` below them. A channel served by the outbox (no credentials) has none.
    """
    found: list[ProviderLimit] = []
    for channel in ChannelName:
        for rate in rates_for(settings, channel, ""):
            name = rate.name.partition(":")[0]  # the per-chat limit, whatever the chat
            found.append(ProviderLimit(channel.value, name, rate.per_second, rate.detail))
    return tuple(found)


def clock_stale_after(settings: Settings) -> float:
    """Seconds without a sweep after which the clock is taken for stopped."""
    return max(CLOCK_STALE_MIN, CLOCK_STALE_PERIODS * settings.clock_interval)


def record_clock_sweep(runtime: Runtime, at: float | None = None) -> None:
    """The clock's heartbeat: note the time of a sweep (called by ``dispatcher.pipeline.clock.run``)."""
    at = time.time() if at is None else at
    runtime.sync_redis.set(runtime.keys.clock_heartbeat(), repr(at), ex=CLOCK_HEARTBEAT_TTL)


def _clock(settings: Settings, raw: bytes | None, now: float) -> ClockHealth:
    stale_after = clock_stale_after(settings)
    age = None if raw is None else max(0.0, now - float(raw))
    return ClockHealth(last_sweep_age=age, alive=age is not None and age <= stale_after, stale_after=stale_after)


def _oldest_age(enqueued: list[bytes | None], now: float) -> float | None:
    for raw in enqueued:  # the head of the list is the next job to run, so the longest waiting
        if raw:
            return max(0.0, now - utcparse(_text(raw)).timestamp())
    return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = [
    "ClockHealth",
    "LaneHealth",
    "ProviderHealth",
    "ProviderLimit",
    "QueueHealth",
    "WorkerHealth",
    "clock_stale_after",
    "provider_health",
    "provider_limits",
    "queue_health",
    "record_clock_sweep",
    "urgent_workers_alive",
]
