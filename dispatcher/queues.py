"""The health of the work queues, read in two Redis round trips: for ``plp status``, readiness, metrics.

Per lane (urgent, general): jobs waiting, how long the next one has waited, RQ's scheduled,
started and failed registries, and the workers alive for it. Plus whether the clock is
sweeping, and the provider limits the workers pace their sends under.

*Alive* is RQ's own notion: a worker's key exists, which its heartbeats keep alive (for
``worker_ttl + 60`` s after the last one; a worker that stops cleanly removes it at once).
A general worker serves the urgent queue too, so it counts for both lanes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from rq.utils import utcparse
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from channels import describe_channels
from config import Settings
from dispatcher.limits import limits_for
from dispatcher.models import ChannelName
from dispatcher.runtime import Runtime

#: Queue entries looked at to find the oldest job (a job deleted under the queue leaves a stale id).
_HEAD = 5
#: How many clock periods may pass without a sweep before the clock is taken for stopped (at least 10 s).
CLOCK_STALE_PERIODS = 20
CLOCK_STALE_MIN = 10.0
#: How long the clock's heartbeat key outlives its last sweep: ``plp status`` can still say when it was.
CLOCK_HEARTBEAT_TTL = 86400


@dataclass(frozen=True)
class WorkerHealth:
    """One live RQ worker: its name, state (``idle``, ``busy``...) and seconds since its last heartbeat."""

    name: str
    state: str
    heartbeat_age: float | None


@dataclass(frozen=True)
class LaneHealth:
    """One queue: ``pending`` jobs, ``oldest_age`` seconds the next one has waited (None: empty), registries."""

    lane: str
    queue: str
    pending: int
    oldest_age: float | None
    scheduled: int
    started: int
    failed: int
    workers: tuple[WorkerHealth, ...]

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
            "limits": [asdict(limit) for limit in self.limits],
            "channels": dict(self.channels),
        }


def queue_health(runtime: Runtime, *, now: float | None = None) -> QueueHealth:
    """Read the queues, workers and clock of ``runtime`` (synchronous; two pipelined round trips).

    Ages are counted up to ``now`` (Unix time; default: this moment). Raises
    ``redis.RedisError`` (or ``OSError``) when Redis cannot be reached.
    """
    now = time.time() if now is None else now
    queues = {"urgent": runtime.urgent_queue, "general": runtime.general_queue}
    conn = runtime.rq_connection
    with conn.pipeline(transaction=False) as pipe:
        for queue in queues.values():
            pipe.llen(queue.key)
            pipe.lrange(queue.key, 0, _HEAD - 1)
            pipe.zcard(queue.scheduled_job_registry.key)
            pipe.zcount(queue.started_job_registry.key, now, "+inf")  # scores are deadlines: past ones are stale
            pipe.zcount(queue.failed_job_registry.key, now, "+inf")
            pipe.smembers(WORKERS_BY_QUEUE_KEY % queue.name)
        pipe.get(runtime.keys.clock_heartbeat())
        first = pipe.execute()
    per_queue = [first[i : i + 6] for i in range(0, 6 * len(queues), 6)]
    heads = [[_text(j) for j in row[1]] for row in per_queue]
    workers = [sorted(_text(w) for w in row[5]) for row in per_queue]
    with conn.pipeline(transaction=False) as pipe:
        for queue, ids in zip(queues.values(), heads, strict=True):
            for job_id in ids:
                pipe.hget(queue.job_class.key_for(job_id), "enqueued_at")
        for keys in workers:
            for key in keys:
                pipe.hmget(key, ["state", "last_heartbeat"])
        second = iter(pipe.execute())
    enqueued = [[next(second) for _ in ids] for ids in heads]
    states = [[next(second) for _ in keys] for keys in workers]
    lanes = tuple(
        LaneHealth(
            lane=lane,
            queue=queue.name,
            pending=int(row[0]),
            oldest_age=_oldest_age(times, now),
            scheduled=int(row[2]),
            started=int(row[3]),
            failed=int(row[4]),
            workers=_alive(keys, found, now),
        )
        for (lane, queue), row, times, keys, found in zip(
            queues.items(), per_queue, enqueued, workers, states, strict=True
        )
    )
    return QueueHealth(
        lanes=lanes,
        clock=_clock(runtime.settings, first[-1], now),
        limits=provider_limits(runtime.settings),
        channels=describe_channels(runtime.settings),
    )


def urgent_workers_alive(runtime: Runtime) -> int:
    """Workers alive for the urgent queue (two round trips); ``redis.RedisError`` if Redis is unreachable."""
    return queue_health(runtime).lane("urgent").workers_alive


def provider_limits(settings: Settings) -> tuple[ProviderLimit, ...]:
    """The providers' limits the workers pace sends under (``dispatcher.limits.limits_for``), at the
    providers' rates: the workers keep ``PLP_LIMIT_MARGIN`` below them. A channel served by the
    outbox (no credentials) has none.
    """
    settings = settings.model_copy(update={"limit_margin": 0.0})
    details = {
        "twilio-sms": (
            f"{settings.limit_sms_per_second:g}/s per sender × {max(1, len(settings.twilio_sms_from))} sender(s)"
        ),
        "twilio-voice": "calls for the account",
        "telegram": "messages for the bot",
        "telegram-chat": "messages per chat",
        "smtp": f"{settings.limit_email_per_minute:g}/min for the relay",
    }
    found: list[ProviderLimit] = []
    for channel in ChannelName:
        for limit in limits_for(settings, channel, ""):
            name = limit.name.partition(":")[0]  # the per-chat limit, whatever the chat
            found.append(ProviderLimit(channel.value, name, limit.per_second, details.get(name, "")))
    return tuple(found)


def clock_stale_after(settings: Settings) -> float:
    """Seconds without a sweep after which the clock is taken for stopped."""
    return max(CLOCK_STALE_MIN, CLOCK_STALE_PERIODS * settings.clock_interval)


def record_clock_sweep(runtime: Runtime, at: float | None = None) -> None:
    """The clock's heartbeat: note the time of a sweep (called by ``dispatcher.clock.run``)."""
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


def _alive(keys: list[str], found: list[list[bytes | None]], now: float) -> tuple[WorkerHealth, ...]:
    workers = []
    for key, (state, beat) in zip(keys, found, strict=True):
        if state is None and beat is None:  # its key expired: a worker that died without unregistering
            continue
        age = None if beat is None else max(0.0, now - utcparse(_text(beat)).timestamp())
        workers.append(WorkerHealth(name=key.rpartition(":")[2], state=_text(state or b"starting"), heartbeat_age=age))
    return tuple(workers)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = [
    "ClockHealth",
    "LaneHealth",
    "ProviderLimit",
    "QueueHealth",
    "WorkerHealth",
    "clock_stale_after",
    "provider_limits",
    "queue_health",
    "record_clock_sweep",
    "urgent_workers_alive",
]
