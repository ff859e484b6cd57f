"""Fan-out: from an alert and its target PLPs to one delivery per member and channel.

For each PLP, members are read a chunk at a time. For each member the charter's plan
for the alert's urgency, the member's accepted channels and contact points give the
channels; the deliveries of a chunk and the send jobs that carry them are written in
one transaction. A member already planned for this alert (through another PLP) is
planned once, atomically, so overlapping PLPs never send twice to one person.

Running the fan-out again after a crash is safe: members already planned are skipped,
and their send jobs were enqueued in the same transaction as their deliveries.

Non-urgent messages that would reach a PLP during its quiet hours are held: that PLP's
fan-out stays pending and the clock runs it again when the quiet hours end. When a PLP's
fan-out of an urgent alert finishes, the follow-ups its charter asks for (escalation of
members who have not acknowledged, the acknowledgement check) are given to the clock, in
the same transaction (see ``dispatcher.pipeline.escalation``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import structlog

from dispatcher.core import segments
from dispatcher.core.models import (
    Alert,
    AlertStatus,
    ChannelName,
    ClassPlan,
    Language,
    Member,
    MemberStatus,
    MessageClass,
    Plp,
)
from dispatcher.pipeline import jobs
from dispatcher.pipeline.compose import sms_text, voice_minutes
from dispatcher.pipeline.dispatches import enqueue_sends
from dispatcher.storage.counters import cost_field
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import delivery_ref, now_ts

log = structlog.get_logger(__name__)


def fan_out(rt: Runtime, alert_id: str, plp_ids: list[str], *, now: datetime | None = None) -> int:
    """Plan and enqueue the deliveries of an alert for the given PLPs; return how many were planned.

    PLPs whose quiet hours hold the alert at ``now`` (default: the current time) are left
    pending and scheduled again for the end of their quiet hours.
    """
    alert = rt.reader.get_alert(alert_id)
    if alert is None:
        log.error("fanout.alert_missing", alert_id=alert_id)
        return 0
    bound = log.bind(alert_id=alert_id, urgency=alert.urgency.value)
    plps = rt.reader.get_plps(plp_ids)
    moment, going = now or datetime.now(UTC), []
    for plp_id, plp in plps.items():
        until = held_until(alert, plp, moment) if plp is not None else None
        if until is None:
            going.append(plp_id)
        else:
            _hold(rt, alert, plp_id, until)
            bound.info("fanout.plp_held", plp_id=plp_id, until=until.isoformat())
    if going:
        _advance(rt, alert_id, AlertStatus.FANNING_OUT)
    planned = 0
    for plp_id in going:
        plp = plps[plp_id]
        if plp is not None:
            planned += _fan_out_plp(rt, alert, plp)
        status = _finish(rt, alert, plp_id, plp)
        bound.info("fanout.plp_done", plp_id=plp_id, alert_status=status)
    return planned


def held_until(alert: Alert, plp: Plp, moment: datetime) -> datetime | None:
    """When the PLP's quiet hours let the alert go out if it arrives at ``moment``; None: at once.

    Urgent alerts are never held; non-urgent ones and police feedback follow their plan's quiet hours.
    """
    if alert.message_class is MessageClass.URGENT:
        return None
    quiet = plp.charter.plan_of(alert.message_class).quiet_hours
    return quiet.release_at(moment, plp.timezone) if quiet is not None else None


def _hold(rt: Runtime, alert: Alert, plp_id: str, until: datetime) -> None:
    """Leave the PLP's fan-out pending: the clock runs it again at ``until``; the alert shows the latest hold."""
    keys, state, at = rt.keys, rt.keys.alert_state(alert.id), until.timestamp()

    def hold(pipe: Any) -> None:
        earlier = float(pipe.hget(state, "held_until") or 0)
        pipe.multi()
        jobs.schedule(rt, at, jobs.FAN_OUT, alert.id, [plp_id], urgent=False, pipe=pipe)
        pipe.zrem(keys.leases(), jobs.fanout_lease(alert.id, plp_id))  # nothing to resume before then
        pipe.hset(state, "held_until", max(earlier, at))

    rt.sync_redis.transaction(hold, state)


def _finish(rt: Runtime, alert: Alert, plp_id: str, plp: Plp | None) -> str:
    """Mark one PLP's fan-out done and hand its follow-ups to the clock, at once; return the alert's status."""
    keys = rt.keys
    with rt.rq_connection.pipeline(transaction=True) as pipe:
        pipe.multi()
        if plp is not None:
            _schedule_follow_ups(rt, alert, plp, pipe)
        rt.sync_scripts.fanout_done(
            keys=[
                keys.alert_fanouts(alert.id),
                keys.alert_state(alert.id),
                keys.alert_counts(alert.id),
                keys.events(),
                keys.metrics(),
            ],
            args=[alert.id, plp_id, now_ts()],
            client=pipe,
        )
        pipe.zrem(keys.leases(), jobs.fanout_lease(alert.id, plp_id))
        status = pipe.execute()[-2]
    return bytes(status).decode()


def _schedule_follow_ups(rt: Runtime, alert: Alert, plp: Plp, pipe: Any) -> None:
    """Escalation and acknowledgement check of an urgent alert, at the times the PLP's charter sets."""
    if alert.message_class is not MessageClass.URGENT:
        return
    plan, created = plp.charter.urgent, alert.created_at.timestamp()
    follow_ups = (
        (jobs.ESCALATE, plan.escalate_after_seconds),
        (jobs.CHECK_ACKNOWLEDGEMENTS, plan.ack_check_after_seconds),
    )
    for job, after in follow_ups:
        if after is not None:
            jobs.schedule(rt, created + after, job, alert.id, plp.id, urgent=True, pipe=pipe)


def _fan_out_plp(rt: Runtime, alert: Alert, plp: Plp) -> int:
    reader, keys = rt.reader, rt.keys
    plan = plp.charter.plan_of(alert.message_class)
    last, planned = None, 0
    lease = jobs.fanout_lease(alert.id, plp.id)
    while True:
        # Held while it works: if this worker dies, the clock runs the fan-out again (it resumes).
        rt.sync_redis.zadd(keys.leases(), {lease: now_ts() + rt.settings.lease_seconds})
        member_ids = reader.plp_member_ids(plp.id, after=last, limit=rt.settings.fanout_chunk)
        if not member_ids:
            break
        found, opted_out = reader.get_members(member_ids), reader.opted_out(member_ids)
        # A member already planned through another PLP of this alert is left out here; the
        # planning script checks again atomically, for fan-outs of two PLPs running at once.
        already = cast(list[int], rt.sync_redis.smismember(keys.alert_members(alert.id), member_ids))
        rows = [
            (m, member, out)
            for m, member, out, done in zip(member_ids, found, opted_out, already, strict=True)
            if not done
        ]
        members = [member for _, member, out in rows if member is not None and not out]
        skipped = [m for m, member, out in rows if member is not None and out]
        planned += _plan_chunk(rt, alert, plp, plan, members, skipped)
        last = member_ids[-1]
    return planned


def _plan_chunk(rt: Runtime, alert: Alert, plp: Plp, plan: ClassPlan, members: list[Member], skipped: list[str]) -> int:
    keys, now = rt.keys, now_ts()
    script_keys = [
        keys.alert_members(alert.id),
        keys.alert_counts(alert.id),
        keys.alert_deliveries(alert.id),
        keys.delivery(alert.id, ""),
        keys.alert_deliveries_in(alert.id, ""),
        keys.alert_unreachable(alert.id),
        keys.leases(),
        keys.alert_plp_members(alert.id, plp.id),
    ]
    refs: list[str] = []
    with rt.rq_connection.pipeline(transaction=True) as pipe:
        pipe.multi()  # explicit, so that RQ enqueues inside this transaction
        for member_id in skipped:
            rt.sync_scripts.plan_member(
                keys=script_keys, args=[alert.id, member_id, now, "opted_out", plp.id], client=pipe
            )
        for member in members:
            channels = [c.value for c in member.reachable_channels(plan)]
            outcome = "plan" if channels and member.status is MemberStatus.ACTIVE else "unreachable"
            if member.status is not MemberStatus.ACTIVE:
                outcome = "opted_out"
            args = [alert.id, member.id, now, outcome, plp.id, *channels]
            rt.sync_scripts.plan_member(keys=script_keys, args=args, client=pipe)
            if outcome == "plan":
                refs.extend(delivery_ref(c, member.id) for c in channels)
        # recorded for the clock at once: a worker may die as it takes the job
        enqueue_sends(rt, pipe, alert.id, plp.id, refs, urgency=alert.urgency, now=now)
        results = pipe.execute()
    created = [int(r) for r in results[len(skipped) : len(skipped) + len(members)]]
    new = [(m, m.reachable_channels(plan)) for m, n in zip(members, created, strict=True) if n > 0]
    count_costs(rt, alert, plp, new)
    return sum(max(n, 0) for n in created)


def count_costs(
    rt: Runtime, alert: Alert, plp: Plp, planned: list[tuple[Member, list[ChannelName]]], *, pipe: Any = None
) -> None:
    """Add the SMS segments and call minutes of new deliveries (members, and their channels) to the alert's
    counters; with ``pipe``, the additions are queued on it (a transaction the caller executes)."""
    relay = rt.reader.get_relay(alert.id, plp.id)
    sizes: dict[Language, tuple[int, int]] = {}
    for language in {m.language for m, _ in planned}:
        text = alert.text_for(language, relay, plp.default_language)
        sizes[language] = (segments.measure(sms_text(text, language)).segments, voice_minutes(text, language))
    sms = voice = 0
    for member, channels in planned:
        sms += sizes[member.language][0] if ChannelName.SMS in channels else 0
        voice += sizes[member.language][1] if ChannelName.VOICE in channels else 0
    if not (sms or voice):
        return
    target = pipe if pipe is not None else rt.sync_redis.pipeline(transaction=False)
    target.hincrby(rt.keys.alert_counts(alert.id), "sms_segments", sms)
    target.hincrby(rt.keys.alert_counts(alert.id), "voice_minutes", voice)
    # and per PLP, for its annual evaluation: the alert's counts outlive its deliveries
    target.hincrby(rt.keys.alert_counts(alert.id), cost_field(plp.id, "sms_segments"), sms)
    target.hincrby(rt.keys.alert_counts(alert.id), cost_field(plp.id, "voice_minutes"), voice)
    if pipe is None:
        target.execute()


def _advance(rt: Runtime, alert_id: str, status: AlertStatus) -> None:
    rt.sync_scripts.advance_alert(
        keys=[rt.keys.alert_state(alert_id), rt.keys.events(), rt.keys.metrics()],
        args=[alert_id, status.value, now_ts()],
    )
