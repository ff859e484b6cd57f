"""The clock: hands work whose time has come, or whose owner died, back to the workers.

Three sorted sets say who owns the work not done yet, each scored by when the clock looks at
an entry next; every ``PLP_CLOCK_INTERVAL`` the clock takes what is due:

- ``dispatches``: send jobs waiting in a queue (``dispatcher.pipeline.dispatches``). The queue owns
  them: one still queued is left alone, however long it waits; one a worker took and never
  started is lost, and its deliveries go again.
- ``holds``: deliveries of a running batch, renewed by its worker while it lives. A hold that
  runs out means the worker died: its deliveries not settled go again.
- ``leases``: claimed deliveries (renewed by their worker; one that runs out means it died
  mid-send), retries (scored at their next attempt), deliveries added for the clock (a
  fallback, due at once) and fan-outs.

Work is thus dispatched again only when it is due or its owner is gone, and each delivery
dispatched again is counted by cause (``plp_redispatched_total``, see ``Redispatch``). The
claim script would make a second worker harmless anyway: nothing is ever sent twice because
of the clock, at worst work is wasted. Several clocks may run: taking due entries is atomic.

A fourth sorted set, ``timers``, holds jobs to run at a given time (escalations, checks,
quiet-hours holds, see ``dispatcher.pipeline.jobs``): the clock enqueues each once it is due. A fifth,
``drills``, holds the recurring drills by their next occurrence: the clock sends each once through the
alerts' intake (``dispatcher.pipeline.drills``).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import redis
import structlog

from dispatcher.core.models import DeliveryStatus, Urgency
from dispatcher.operations import queues
from dispatcher.operations.heartbeats import Heartbeat, Role
from dispatcher.pipeline import dispatches, drills, jobs
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import now_ts

log = structlog.get_logger(__name__)

_TAKE = 500  # entries per sweep

#: Field prefix of the re-dispatch counters in the ``metrics`` hash (``rd|<cause>``).
REDISPATCH_FIELD = "rd"


class Redispatch(StrEnum):
    """Why the clock dispatched a delivery again (the ``cause`` of ``plp_redispatched_total``).

    ``retry`` and ``added`` are work scheduled for the clock; the others are work whose owner
    died: ``lease`` (mid-send), ``hold`` (a running batch), ``job`` (a job taken, never started).
    """

    RETRY = "retry"  # its next attempt is due
    ADDED = "added"  # added after the fan-out (a fallback, an escalation), due at once
    LEASE = "lease"  # claimed by a worker that stopped renewing the lease: it died mid-send
    HOLD = "hold"  # held by a batch whose worker stopped renewing the hold: it died before sending it
    JOB = "job"  # its send job was taken from the queue by a worker that never started it


@dataclass(frozen=True)
class Tick:
    """What one sweep did."""

    redispatched: int
    fan_outs: int
    timers: int
    drills: int = 0


def tick(rt: Runtime) -> Tick:
    """One sweep: re-dispatch run-out leases, enqueue due timers, send the scheduled drills that are due, forget
    the urgent alerts' emptied queues."""
    now = now_ts()
    redispatched, fan_outs = _leases(rt, now)
    timers = _timers(rt, now)
    done = Tick(redispatched=redispatched, fan_outs=fan_outs, timers=timers, drills=drills.send_due(rt, now))
    dispatches.forget_empty_queues(rt)  # after the sweep's own enqueues: what it put in a queue keeps it
    return done


def run(rt: Runtime, *, stop_after: float | None = None) -> None:
    """Sweep every ``PLP_CLOCK_INTERVAL`` until stopped (or for ``stop_after`` seconds).

    The loop beats (``dispatcher.operations.heartbeats``), Redis or not: a clock stuck in a sweep stops beating.
    """
    heartbeat = Heartbeat(rt, Role.CLOCK, uuid.uuid4().hex)
    try:
        _sweep_until(rt, heartbeat, stop_after)
    finally:
        heartbeat.leave()


def _sweep_until(rt: Runtime, heartbeat: Heartbeat, stop_after: float | None) -> None:
    started = time.monotonic()
    log.info("clock.started", interval=rt.settings.clock_interval, lease=rt.settings.lease_seconds)
    outage: float | None = None  # when Redis stopped answering, logged once per outage
    scheduled = False
    while stop_after is None or time.monotonic() - started < stop_after:
        heartbeat.beat()
        try:
            if not scheduled:  # at the first sweep that reaches Redis: the clock may start before it
                jobs.schedule_recurring(rt)
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


def take_due_leases(rt: Runtime, now: float) -> list[tuple[str, str]]:
    """Take the run-out leases (the claim of the next worker sets a new one), holding their work in the same
    script: if this clock or Redis dies before the work is enqueued again, the hold runs out and a later sweep
    takes it up, instead of the work being left with neither lease nor hold. Returns (alert id, ref) pairs."""
    keys, again = rt.keys, now + rt.settings.lease_seconds
    return _entries(rt.sync_scripts.take_due(keys=[keys.leases(), keys.holds()], args=[now, _TAKE, "move", again]))


def _leases(rt: Runtime, now: float) -> tuple[int, int]:
    keys = rt.keys
    again = now + rt.settings.lease_seconds
    # Run-out holds are pushed back: a hold is only a sign of life, the claim ignores it.
    held = _entries(rt.sync_scripts.take_due(keys=[keys.holds()], args=[now, _TAKE, again]))
    leased = take_due_leases(rt, now)
    lost = dispatches.take_lost(rt, now)
    fan_outs = [(a, plp) for a, ref in [*leased, *held] if (plp := jobs.leased_fanout(ref)) is not None]
    held = [(a, ref) for a, ref in held if jobs.leased_fanout(ref) is None]
    deliveries = [(a, ref) for a, ref in leased if jobs.leased_fanout(ref) is None]
    work = _still_to_send(rt, deliveries, _lease_cause)
    for entries, cause in (
        (held, Redispatch.HOLD),
        ([(job.alert_id, ref) for job in lost for ref in job.refs], Redispatch.JOB),
    ):
        for batch_key, refs in _still_to_send(rt, entries, _always(cause)).items():
            work.setdefault(batch_key, {}).update(refs)
    settled = {*held, *deliveries} - {(a, r) for (a, _), refs in work.items() for r in refs}
    if settled:  # nothing left to do for these: drop their holds
        rt.sync_redis.zrem(keys.holds(), *(f"{a}|{r}" for a, r in settled))
    lost_jobs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for job in lost:
        lost_jobs[job.alert_id, job.plp_id].append(job.job_id)
    lanes = _lanes(rt, {alert_id for alert_id, _ in [*work, *lost_jobs, *fan_outs]})
    zones = _zones(rt, {plp_id for _, plp_id in [*work, *lost_jobs]})
    for batch_key in sorted(work.keys() | lost_jobs.keys()):
        lane = (lanes[batch_key[0]], zones[batch_key[1]])
        _redispatch(rt, batch_key, work.get(batch_key, {}), lost_jobs.get(batch_key, []), lane, now)
    for alert_id, plp_id in fan_outs:
        with rt.rq_connection.pipeline(transaction=True) as pipe:
            pipe.multi()
            jobs.enqueue_fan_out(rt, pipe, alert_id, [plp_id], lane=lanes[alert_id], now=now)
            pipe.zrem(keys.holds(), jobs.fanout_lease(alert_id, plp_id))  # the lease is back: the hold's work is done
            pipe.execute()
    return sum(len(refs) for refs in work.values()), len(fan_outs)


def _redispatch(
    rt: Runtime,
    batch_key: tuple[str, str],
    pending: dict[str, Redispatch],
    lost_jobs: list[str],
    lane: tuple[Urgency, str | None],
    now: float,
) -> None:
    """Enqueue a PLP's deliveries of an alert again on their ``lane`` (urgency, police zone), count why, and
    forget what they were held by, at once."""
    alert_id, plp_id = batch_key
    keys, refs = rt.keys, sorted(pending)
    with rt.rq_connection.pipeline(transaction=True) as pipe:
        pipe.multi()  # recorded like the fan-out's: its job may be lost as a worker takes it
        if refs:
            pipe.zrem(keys.holds(), *(f"{alert_id}|{ref}" for ref in refs))  # the new job's record holds them
            for cause, count in Counter(pending.values()).items():
                pipe.hincrby(keys.metrics(), f"{REDISPATCH_FIELD}|{cause.value}", count)
            dispatches.enqueue_sends(rt, pipe, alert_id, plp_id, refs, urgency=lane[0], zone=lane[1], now=now)
        for job_id in lost_jobs:
            dispatches.drop(pipe, keys, job_id)
        pipe.execute()


def _lease_cause(phase: str | None) -> Redispatch:
    """Why a delivery's lease ran out: its retry is due, it was added for the clock, or its worker died mid-send."""
    if phase == "waiting":
        return Redispatch.RETRY
    if phase == "in_flight":
        return Redispatch.LEASE
    return Redispatch.ADDED


def _always(cause: Redispatch) -> Callable[[str | None], Redispatch]:
    return lambda _phase: cause


def _entries(raw: list[bytes | str]) -> list[tuple[str, str]]:
    texts = [entry.decode() if isinstance(entry, bytes) else str(entry) for entry in raw]
    return [(alert_id, ref) for alert_id, _, ref in (t.partition("|") for t in texts)]


def _still_to_send(
    rt: Runtime, entries: list[tuple[str, str]], cause: Callable[[str | None], Redispatch]
) -> dict[tuple[str, str], dict[str, Redispatch]]:
    """Group by (alert, PLP) the deliveries not settled yet, with why they go again: queued, or sending
    (a live lease makes the claim refuse a second worker, so dispatching one being sent is only wasted)."""
    if not entries:
        return {}
    with rt.sync_redis.pipeline(transaction=False) as pipe:
        for alert_id, ref in entries:
            pipe.hmget(rt.keys.delivery(alert_id, ref), ["status", "plp", "phase"])
        states = pipe.execute()
    wanted = {DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value}
    work: dict[tuple[str, str], dict[str, Redispatch]] = defaultdict(dict)
    for (alert_id, ref), (status, plp, phase) in zip(entries, states, strict=True):
        if status in wanted and plp:
            work[alert_id, plp][ref] = cause(phase)
    return work


def _lanes(rt: Runtime, alert_ids: set[str]) -> dict[str, Urgency]:
    """Each alert's lane; the urgent one for an alert that is gone (its jobs only find it gone, and stop)."""
    alerts = rt.reader.get_alerts(sorted(alert_ids))
    return {i: alert.urgency if alert is not None else Urgency.URGENT for i, alert in alerts.items()}


def _zones(rt: Runtime, plp_ids: set[str]) -> dict[str, str | None]:
    """Each PLP's police zone; None for a PLP that is gone (its jobs only find it gone, and stop)."""
    plps = rt.reader.get_plps(sorted(plp_ids))
    return {i: plp.police_zone if plp is not None else None for i, plp in plps.items()}


def _timers(rt: Runtime, now: float) -> int:
    keys = rt.keys
    due = rt.sync_scripts.take_due(keys=[keys.timers()], args=[now, _TAKE, now + rt.settings.lease_seconds])
    for raw in due:
        with rt.rq_connection.pipeline(transaction=True) as pipe:
            pipe.multi()
            jobs.enqueue_timer(rt, pipe, raw)
            pipe.zrem(keys.timers(), raw)
            pipe.execute()
    return len(due)
