"""The clock: hands work whose time has come back to the workers.

One sorted set, ``leases``, holds every delivery (and fan-out) someone is working on or
will work on, scored by the time its lease ends: a batch renews the leases of its
deliveries while it works, a retry sets it to the next attempt, a fallback to now. Every
``PLP_CLOCK_INTERVAL`` the clock takes what has run out and enqueues it again on its
alert's lane: due retries, and the work of a worker that died (it stopped renewing). The
claim script makes a second worker harmless, so the clock may err on the side of
dispatching. Several clocks may run: taking due entries is atomic.

A second sorted set, ``timers``, holds jobs to run at a given time (escalations, checks,
quiet-hours holds): the clock enqueues each once it is due.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass

import redis
import structlog

from dispatcher import queues, retention
from dispatcher.fanout import SEND_JOB
from dispatcher.intake import FAN_OUT_JOB, FANOUT_REF, fanout_lease
from dispatcher.models import Alert, DeliveryStatus, Urgency
from dispatcher.runtime import Runtime
from dispatcher.store import now_ts

log = structlog.get_logger(__name__)

_TAKE = 500  # entries per sweep


@dataclass(frozen=True)
class Tick:
    """What one sweep did."""

    redispatched: int
    fan_outs: int
    timers: int


def schedule(rt: Runtime, at: float, job: str, *args: object, urgent: bool, pipe: object | None = None) -> None:
    """Have the clock enqueue ``job(*args)`` on a lane at Unix time ``at`` (once)."""
    spec = json.dumps({"job": job, "args": list(args), "urgent": urgent}, sort_keys=True)
    (pipe or rt.sync_redis).zadd(rt.keys.timers(), {spec: at})  # type: ignore[attr-defined]


def tick(rt: Runtime) -> Tick:
    """One sweep: re-dispatch run-out leases, enqueue due timers."""
    now = now_ts()
    redispatched, fan_outs = _leases(rt, now)
    return Tick(redispatched=redispatched, fan_outs=fan_outs, timers=_timers(rt, now))


def run(rt: Runtime, *, stop_after: float | None = None) -> None:
    """Sweep every ``PLP_CLOCK_INTERVAL`` until stopped (or for ``stop_after`` seconds)."""
    started = time.monotonic()
    log.info("clock.started", interval=rt.settings.clock_interval, lease=rt.settings.lease_seconds)
    outage: float | None = None  # when Redis stopped answering, logged once per outage
    scheduled = False
    while stop_after is None or time.monotonic() - started < stop_after:
        try:
            if not scheduled:  # at the first sweep that reaches Redis: the clock may start before it
                retention.schedule_first(rt)
                scheduled = True
            done = tick(rt)
            queues.record_clock_sweep(rt)
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # Redis restarting: keep ticking once it is back
            if outage is None:
                log.warning("clock.redis_lost", error=type(exc).__name__)
                outage = time.monotonic()
            time.sleep(1.0)
            continue
        if outage is not None:
            log.warning("clock.redis_back", outage_s=round(time.monotonic() - outage, 1))
            outage = None
        if done.redispatched or done.fan_outs or done.timers:
            log.info("clock.tick", redispatched=done.redispatched, fan_outs=done.fan_outs, timers=done.timers)
        time.sleep(rt.settings.clock_interval)  # the clock's period: there is no event for "time passed"


def _leases(rt: Runtime, now: float) -> tuple[int, int]:
    keys = rt.keys
    # Run-out leases are taken out: the claim of the next worker sets a new one.
    leased = _entries(rt.sync_scripts.take_due(keys=[keys.leases()], args=[now, _TAKE, "pop"]))
    # Run-out holds are pushed back: a hold is only a sign of life, the claim ignores it.
    held = _entries(rt.sync_scripts.take_due(keys=[keys.holds()], args=[now, _TAKE, now + rt.settings.lease_seconds]))
    fan_outs = [(a, ref.removeprefix(FANOUT_REF)) for a, ref in leased if ref.startswith(FANOUT_REF)]
    deliveries = [(a, ref) for a, ref in leased if not ref.startswith(FANOUT_REF)]
    work = _still_to_send(rt, deliveries)
    held_work = _still_to_send(rt, held)
    for batch_key, refs in held_work.items():
        work.setdefault(batch_key, set()).update(refs)
    settled = {(a, r) for a, r in held} - {(a, r) for (a, _), refs in held_work.items() for r in refs}
    if settled:  # nothing left to do for these: drop their holds
        rt.sync_redis.zrem(keys.holds(), *(f"{a}|{r}" for a, r in settled))
    lanes = _lanes(rt, {alert_id for alert_id, _ in work} | {alert_id for alert_id, _ in fan_outs})
    for (alert_id, plp_id), pending in work.items():
        ordered = sorted(pending)
        until = now + rt.horizon(lanes[alert_id])
        for start in range(0, len(ordered), rt.settings.send_batch_size):
            batch = ordered[start : start + rt.settings.send_batch_size]
            with rt.rq_connection.pipeline(transaction=True) as pipe:
                pipe.multi()  # held at once, like the fan-out's: its job may be lost as a worker takes it
                pipe.zadd(keys.holds(), {f"{alert_id}|{ref}": until for ref in batch})
                rt.queue_for(lanes[alert_id]).enqueue_call(
                    SEND_JOB,
                    args=(alert_id, plp_id, batch),
                    timeout=rt.settings.send_job_timeout,
                    result_ttl=0,
                    pipeline=pipe,
                )
                pipe.execute()
    for alert_id, plp_id in fan_outs:
        with rt.rq_connection.pipeline(transaction=True) as pipe:
            pipe.multi()
            pipe.zadd(keys.leases(), {fanout_lease(alert_id, plp_id): now + rt.horizon(lanes[alert_id])})
            rt.queue_for(lanes[alert_id]).enqueue_call(
                FAN_OUT_JOB,
                args=(alert_id, [plp_id]),
                timeout=rt.settings.send_job_timeout,
                result_ttl=0,
                pipeline=pipe,
            )
            pipe.execute()
    return sum(len(refs) for refs in work.values()), len(fan_outs)


def _entries(raw: list[bytes | str]) -> list[tuple[str, str]]:
    texts = [entry.decode() if isinstance(entry, bytes) else str(entry) for entry in raw]
    return [(alert_id, ref) for alert_id, _, ref in (t.partition("|") for t in texts)]


def _still_to_send(rt: Runtime, entries: list[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """Group by (alert, PLP) the deliveries not settled yet: queued, or sending (a live lease makes
    the claim refuse a second worker, so dispatching one that is being sent is only wasted)."""
    if not entries:
        return {}
    with rt.sync_redis.pipeline(transaction=False) as pipe:
        for alert_id, ref in entries:
            pipe.hmget(rt.keys.delivery(alert_id, ref), ["status", "plp"])
        states = pipe.execute()
    wanted = {DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value}
    work: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (alert_id, ref), (status, plp) in zip(entries, states, strict=True):
        if status in wanted and plp:
            work[alert_id, plp].add(ref)
    return work


def _lanes(rt: Runtime, alert_ids: set[str]) -> dict[str, Urgency]:
    ids = sorted(alert_ids)
    raws = rt.sync_redis.mget([rt.keys.alert(i) for i in ids]) if ids else []
    return {i: Alert.model_validate_json(r).urgency if r else Urgency.URGENT for i, r in zip(ids, raws, strict=True)}


def _timers(rt: Runtime, now: float) -> int:
    keys = rt.keys
    due = rt.sync_scripts.take_due(keys=[keys.timers()], args=[now, _TAKE, now + rt.settings.lease_seconds])
    for raw in due:
        spec = json.loads(raw)
        queue = rt.queue_for(Urgency.URGENT if spec["urgent"] else Urgency.NON_URGENT)
        with rt.rq_connection.pipeline(transaction=True) as pipe:
            pipe.multi()
            queue.enqueue_call(spec["job"], args=tuple(spec["args"]), result_ttl=0, pipeline=pipe)
            pipe.zrem(keys.timers(), raw)
            pipe.execute()
    return len(due)
