"""Prometheus metrics, correct across every process of the service, read from Redis at scrape time.

The web process, the workers (forked or not) and the clock each change deliveries and
alerts, so counters kept in one process's memory would each see a part. Instead the Lua
scripts that move deliveries and alerts (``dispatcher.storage.scripts``) also count, in one Redis
hash, ``metrics``: a send is counted by the script that records it, in the same round trip.
``RedisCollector`` turns that hash, and the queues' health (``dispatcher.operations.queues``), into
Prometheus metric families when ``/metrics`` is scraped, whichever web process answers.

Every metric is listed, with its labels and meaning, in docs/metrics.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from channels import Channel, ChannelError, NotConfigured, PermanentError, RateLimited, TransientError
from dispatcher.operations.health import OUTBOX, Concern, problems
from dispatcher.operations.queues import QueueHealth, queue_health
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.scripts import ALERT_SECONDS_BOUNDS, SEND_SECONDS_BOUNDS

PREFIX = "plp_"


class SendOutcome(StrEnum):
    """How one call to a provider ended: ``ok``, or the kind of error (``channels.base``'s tree)."""

    OK = "ok"
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"
    NOT_CONFIGURED = "not_configured"
    INTERNAL = "internal"  # a defect: the channel raised something outside its error tree

    @classmethod
    def of(cls, exc: BaseException) -> SendOutcome:
        """The kind of a channel's error (subclasses first: a rate limit is a transient error)."""
        for kind, outcome in (
            (RateLimited, cls.RATE_LIMITED),
            (TransientError, cls.TRANSIENT),
            (PermanentError, cls.PERMANENT),
            (NotConfigured, cls.NOT_CONFIGURED),
            (ChannelError, cls.NOT_CONFIGURED),
        ):
            if isinstance(exc, kind):
                return outcome
        return cls.INTERNAL


@dataclass(frozen=True, slots=True)
class SendAttempt:
    """One call to a provider, for the metrics: who served it, how it ended, how long it took."""

    provider: str
    outcome: SendOutcome
    seconds: float

    @classmethod
    def of(cls, channel: Channel, outcome: SendOutcome, seconds: float) -> SendAttempt:
        """The attempt of ``channel``, labelled with the provider its class names (``Channel.provider``)."""
        return cls(channel.provider, outcome, max(0.0, seconds))

    def script_args(self) -> list[str | float]:
        """The trailing arguments of the record and retry scripts that count this attempt."""
        return [self.provider, self.outcome.value, round(self.seconds, 6)]


class RedisCollector(Collector):
    """Builds the metric families from Redis at each scrape (synchronous: run it off the event loop)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        try:
            raw: dict[str, str] = self.runtime.sync_redis.hgetall(self.runtime.keys.metrics())  # type: ignore[assignment]
            health = queue_health(self.runtime)
        except (redis.RedisError, OSError):
            yield _gauge(
                "redis_up", "1 if Redis answered this scrape, else 0 (nothing else is shown then).", [], [([], 0)]
            )
            return
        yield _gauge("redis_up", "1 if Redis answered this scrape, else 0 (nothing else is shown then).", [], [([], 1)])
        yield from counter_families(raw)
        yield from queue_families(health)
        yield from problem_families(health, self.runtime)


def render(runtime: Runtime) -> bytes:
    """The text exposition of every metric (synchronous: it reads Redis)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(runtime))
    return generate_latest(registry)


# -- from the metrics hash --------------------------------------------------------------------


_COUNTERS = {
    # field prefix: (name, help, labels)
    "d": ("deliveries", "Deliveries that moved into a status.", ["channel", "status"]),
    "r": (
        "deliveries_handed_over",
        "Deliveries handed over to their provider (first sent or delivered).",
        ["channel", "urgency"],
    ),
    "a": ("acknowledgements", "Deliveries acknowledged by their member (first time).", ["channel", "urgency"]),
    "s": ("provider_sends", "Calls to a provider to send a delivery, by outcome.", ["channel", "provider", "outcome"]),
    "f": ("alerts_finished", "Alerts that reached a final status.", ["urgency", "status"]),
    "xr": (
        "exercise_deliveries_handed_over",
        "Deliveries of exercises (drills) handed over to their provider (first sent or delivered).",
        ["channel", "urgency"],
    ),
    "xa": (
        "exercise_acknowledgements",
        "Deliveries of exercises (drills) acknowledged by their member (first time).",
        ["channel", "urgency"],
    ),
    "xf": ("exercises_finished", "Exercises (drills) that reached a final status.", ["urgency", "status"]),
    "rd": (
        "redispatched",
        "Deliveries the clock dispatched again, by cause: retry, added (work scheduled for it); "
        "lease, hold, job (work whose worker died).",
        ["cause"],
    ),
    "dup": (
        "possible_duplicates",
        "Sends made again after one that may have reached the provider, by cause: taken_over (its worker died or "
        "stalled during it) or in_doubt (it failed with no answer, or a 5xx, once the request was out).",
        ["channel", "cause"],
    ),
    "rw": (
        "replication_waits",
        "Alerts' intakes that waited for PLP_REDIS_WAIT_REPLICAS replicas, by outcome: confirmed, or missed "
        "(fewer replicas in PLP_REDIS_WAIT_TIMEOUT).",
        ["outcome"],
    ),
}
_HISTOGRAMS = {
    # histogram name in the hash: (metric name, help, labels, bounds)
    "send": (
        "provider_send_duration_seconds",
        "Time of one call to a provider to send a delivery.",
        ["channel", "provider"],
        SEND_SECONDS_BOUNDS,
    ),
    "first_send": (
        "alert_first_send_seconds",
        "From an alert's creation to its first delivery handed over.",
        ["urgency"],
        ALERT_SECONDS_BOUNDS,
    ),
    "completion": (
        "alert_completion_seconds",
        "From an alert's creation to its completion (every delivery handed over or ended).",
        ["urgency"],
        ALERT_SECONDS_BOUNDS,
    ),
}


def counter_families(raw: dict[str, str]) -> Iterator[Metric]:
    """The counters and histograms kept in the ``metrics`` hash (fields: see ``dispatcher.storage.scripts``)."""
    counters: dict[str, dict[tuple[str, ...], float]] = {kind: {} for kind in _COUNTERS}
    bins: dict[str, dict[tuple[str, ...], dict[int, int]]] = {name: defaultdict(dict) for name in _HISTOGRAMS}
    sums: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in _HISTOGRAMS}
    for field, value in raw.items():
        kind, _, rest = field.partition("|")
        parts = tuple(rest.split("|"))
        if kind in counters and len(parts) == len(_COUNTERS[kind][2]):
            counters[kind][parts] = float(value)
        elif kind == "h" and parts[0] in bins and len(parts) == len(_HISTOGRAMS[parts[0]][2]) + 2:
            bins[parts[0]][parts[1:-1]][int(parts[-1])] = int(value)
        elif kind == "hs" and parts[0] in sums:
            sums[parts[0]][parts[1:]] = float(value)
    for kind, (name, doc, labels) in _COUNTERS.items():
        yield _counter(name, doc, labels, sorted(counters[kind].items()))
    errors = {labels: v for labels, v in counters["s"].items() if labels[2] != SendOutcome.OK}
    yield _counter(
        "provider_errors",
        "Calls to a provider that failed, by kind: transient, rate_limited, permanent, not_configured, internal.",
        ["channel", "provider", "kind"],
        sorted(errors.items()),
    )
    for hist, (name, doc, labels, bounds) in _HISTOGRAMS.items():
        yield _histogram(name, doc, labels, bounds, bins[hist], sums[hist])
    yield from _ack_ratio(counters["a"], counters["r"])


def _ack_ratio(acks: dict[tuple[str, ...], float], handed: dict[tuple[str, ...], float]) -> Iterator[Metric]:
    by_urgency: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (_, urgency), value in acks.items():
        by_urgency[urgency][0] += value
    for (_, urgency), value in handed.items():
        by_urgency[urgency][1] += value
    yield _gauge(
        "acknowledgement_ratio",
        "Deliveries acknowledged / deliveries handed over, since the counters began (see the rate in PromQL).",
        ["urgency"],
        [([u], a / h) for u, (a, h) in sorted(by_urgency.items()) if h],
    )


# -- from the queues ----------------------------------------------------------------------------


def queue_families(health: QueueHealth) -> Iterator[Metric]:
    """Gauges of the queues, workers, clock and provider limits, as ``queue_health`` read them."""
    lanes = health.lanes
    yield _gauge("queue_depth", "Jobs waiting in a queue.", ["queue"], [([q.lane], q.pending) for q in lanes])
    yield _gauge(
        "zone_queue_depth",
        "Urgent send jobs waiting, per police zone of their alerts (zones with some; in the urgent queue's depth too).",
        ["zone"],
        [([zone], pending) for q in lanes for zone, pending in sorted(q.zones.items())],
    )
    yield _gauge(
        "queue_oldest_job_age_seconds",
        "How long the next job of a queue has waited (0 when the queue is empty).",
        ["queue"],
        [([q.lane], q.oldest_age or 0.0) for q in lanes],
    )
    yield _gauge(
        "queue_registry_jobs",
        "Jobs in RQ's registries of a queue: scheduled, started (being run), failed.",
        ["queue", "registry"],
        [
            ([q.lane, r], n)
            for q in lanes
            for r, n in (("scheduled", q.scheduled), ("started", q.started), ("failed", q.failed))
        ],
    )
    yield _gauge(
        "workers_alive",
        "RQ workers alive serving a queue (a general worker serves the urgent queue too).",
        ["queue"],
        [([q.lane], q.workers_alive) for q in lanes],
    )
    clock = health.clock
    yield _gauge(
        "clock_up",
        "1 if the clock swept recently (see clock_last_sweep_age_seconds), else 0.",
        [],
        [([], int(clock.alive))],
    )
    if clock.last_sweep_age is not None:
        yield _gauge(
            "clock_last_sweep_age_seconds", "Seconds since the clock's last sweep.", [], [([], clock.last_sweep_age)]
        )
    yield _gauge(
        "clocks_alive",
        "Clock processes whose heartbeat is recent (dispatcher.operations.heartbeats).",
        [],
        [([], len(health.clocks))],
    )
    yield _gauge(
        "provider_consecutive_failures",
        "A provider's last calls in a row that failed for a reason of its own (an outage, an error, credentials "
        "refused); 0 once it answers again.",
        ["channel", "provider"],
        [([p.channel, p.provider], p.failures) for p in health.providers],
    )
    yield _gauge(
        "channel_outbox",
        "1 if the channel is served by the outbox file (no credentials), not by a provider.",
        ["channel"],
        [([channel], int(served_by == OUTBOX)) for channel, served_by in sorted(health.channels.items())],
    )
    yield _gauge(
        "provider_limit_per_second",
        "Sends per second the workers allow themselves under a provider's limit.",
        ["channel", "limit"],
        [([lim.channel, lim.name], lim.per_second) for lim in health.limits],
    )


def problem_families(health: QueueHealth, runtime: Runtime) -> Iterator[Metric]:
    """``plp_problem``: 1 for each problem ``plp status`` and ``/v1/status`` report (``health``), else 0."""
    found = {problem.concern for problem in problems(health, runtime.settings)}
    yield _gauge(
        "problem",
        "1 while a problem plp status reports holds: no_urgent_worker, urgent_late, no_general_worker, "
        "clock_stopped, provider_failing.",
        ["problem"],
        [([concern.value], int(concern in found)) for concern in Concern],
    )


# -- building families --------------------------------------------------------------------------


def _counter(name: str, doc: str, labels: list[str], samples: Iterable[tuple[tuple[str, ...], float]]) -> Metric:
    family = CounterMetricFamily(PREFIX + name, doc, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _gauge(name: str, doc: str, labels: list[str], samples: Iterable[tuple[list[str], float]]) -> Metric:
    family = GaugeMetricFamily(PREFIX + name, doc, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _histogram(
    name: str,
    doc: str,
    labels: list[str],
    bounds: tuple[float, ...],
    bins: dict[tuple[str, ...], dict[int, int]],
    sums: dict[tuple[str, ...], float],
) -> Metric:
    family = HistogramMetricFamily(PREFIX + name, doc, labels=labels)
    edges = [*(repr(b) for b in bounds), "+Inf"]
    for values in sorted(bins):
        running, buckets = 0, []
        for index, edge in enumerate(edges):
            running += bins[values].get(index, 0)
            buckets.append((edge, float(running)))
        family.add_metric(list(values), buckets, sums.get(values, 0.0))
    return family
