"""Fan-out: from an alert and its target PLPs to one delivery per member and channel.

For each PLP, members are read a chunk at a time. For each member the charter's plan
for the alert's urgency, the member's accepted channels and contact points give the
channels; the deliveries of a chunk and the send jobs that carry them are written in
one transaction. A member already planned for this alert (through another PLP) is
planned once, atomically, so overlapping PLPs never send twice to one person.

Running the fan-out again after a crash is safe: members already planned are skipped,
and their send jobs were enqueued in the same transaction as their deliveries.

An alert to part of its PLPs (``Alert.area``: sectors, a circle, streets) plans only the members
inside it (``dispatcher.geo.areas``), and those whose place is unknown when the PLP's charter says
area alerts reach them (``area_reaches_unlocated``), counted apart (``unlocated``). Each member
planned is counted in their sector, when their PLP has sectors (``sector:<plp>:<sector>``).

A member who chose, on their own page, to receive no non-urgent messages is recorded as opted out
for every alert but urgent ones. Non-urgent messages that would reach a PLP during its quiet hours are held: that PLP's
fan-out stays pending and the clock runs it again when the quiet hours end. A member's own quiet hours (chosen
on their page, in the PLP's time zone) hold the same way, for that member only: the others are planned at once,
and the PLP's fan-out runs again at the end of the earliest of the waiting members' quiet hours. A member's own
order of channels decides which of the charter's channels is tried first (``Member.preferred``). When a PLP's
fan-out of an urgent alert finishes, the follow-ups its charter asks for (escalation of
members who have not acknowledged, the acknowledgement check) are given to the clock, in
the same transaction (see ``dispatcher.pipeline.escalation``).

A follow-up (an update or an all-clear of an alert, see ``dispatcher.pipeline.follow_ups``) plans the
members its alert reached instead of the PLPs' members; while that alert is still sending, its fan-out
stays pending and looks again every ``FOLLOW_UP_AGAIN`` seconds (a timer of the clock, on its lane), so
that the members reached later get it too, until the alert has ended or the follow-up's time-to-live.

An urgent fan-out run by a worker sends its first batches itself (``dispatches.SendsHere``), on the worker's
event loop, each as soon as the transaction that plans it has run: no queue, no second job between the alert
and its first sends. Each is recorded as a send job already taken (``dispatches.keep_sends``) in the same
transaction, so that the clock dispatches it again if the worker dies before it starts. The first of them holds
the first ``LEAD_MEMBERS`` members only: the first request waits for their planning, not for a batch's, and the
next batch is planned while they send. The loop sends as many batches of the alert at once as it admits
(``PLP_WORKER_BATCHES``); the rest of the alert's batches are queued as usual, for any worker. Until then, chunks
are no larger than a batch: the first requests do not wait for a thousand members to be planned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import structlog

from config import Settings
from dispatcher.core import segments
from dispatcher.core.models import (
    FINAL_ALERT,
    Alert,
    AlertStatus,
    ChannelName,
    DeliveryStatus,
    Language,
    Member,
    MemberStatus,
    MessageClass,
    Plp,
    Urgency,
)
from dispatcher.geo.areas import Reach, Targeting
from dispatcher.pipeline import jobs
from dispatcher.pipeline.compose import message_text, sms_text, voice_minutes, with_answers
from dispatcher.pipeline.dispatches import SendsHere, enqueue_sends, keep_sends
from dispatcher.storage.counters import cost_field, sector_field
from dispatcher.storage.keys import ALL_CLEAR_FIELD
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import delivery_ref, now_ts

log = structlog.get_logger(__name__)

#: Seconds between two looks of a follow-up at the members its alert reached, while that alert is still sending.
FOLLOW_UP_AGAIN: dict[Urgency, float] = {Urgency.URGENT: 5.0, Urgency.NON_URGENT: 60.0}


def fan_out(
    rt: Runtime, alert_id: str, plp_ids: list[str], *, now: datetime | None = None, here: SendsHere | None = None
) -> int:
    """Plan and enqueue the deliveries of an alert for the given PLPs; return how many were planned.

    PLPs whose quiet hours hold the alert at ``now`` (default: the current time) are left
    pending and scheduled again for the end of their quiet hours. ``here``: the process can send, and
    sends the first batches of an urgent alert itself instead of queueing them (see the module's docstring).
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
    planned, first = 0, FirstBatches(here if alert.urgency is Urgency.URGENT else None, rt.settings)
    for plp_id in going:
        plp = plps[plp_id]
        if plp is not None:
            count, waiting = _fan_out_plp(rt, alert, plp, moment, first)
            planned += count
            if waiting is not None:  # members in their own quiet hours: the PLP's fan-out runs again at their end
                _hold(rt, alert, plp_id, waiting)
                bound.info("fanout.members_held", plp_id=plp_id, until=waiting.isoformat())
                continue
            if (again := _look_again(rt, alert, moment)) is not None:
                _later(rt, alert, plp_id, again)
                bound.info("fanout.follow_up_again", plp_id=plp_id, at=again)
                continue
        status = _finish(rt, alert, plp_id, plp)
        bound.info("fanout.plp_done", plp_id=plp_id, alert_status=status)
    return planned


def _look_again(rt: Runtime, alert: Alert, moment: datetime) -> float | None:
    """When a follow-up looks again at the members its alert reached, while that alert is still sending (it
    reaches more of them) and the follow-up's time-to-live lets it; None: its fan-out is done."""
    if alert.follows is None:
        return None
    status = rt.sync_redis.hget(rt.keys.alert_state(alert.follows), "status")
    if status is None or AlertStatus(str(status)) in FINAL_ALERT:
        return None
    at = moment.timestamp() + FOLLOW_UP_AGAIN[alert.urgency]
    return at if at < alert.created_at.timestamp() + alert.ttl_seconds else None


def _later(rt: Runtime, alert: Alert, plp_id: str, at: float) -> None:
    """Leave the follow-up's fan-out to the PLP pending: the clock runs it again at ``at``, on its lane."""
    with rt.sync_redis.pipeline(transaction=True) as pipe:
        jobs.schedule(rt, at, jobs.FAN_OUT, alert.id, [plp_id], urgent=alert.urgency is Urgency.URGENT, pipe=pipe)
        pipe.zrem(rt.keys.leases(), jobs.fanout_lease(alert.id, plp_id))  # the timer holds it until then
        pipe.execute()


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
    """Escalation and acknowledgement check of an urgent alert, at the times the PLP's charter sets (none for a
    follow-up, nor for an alert that already has its all-clear)."""
    if alert.message_class is not MessageClass.URGENT or alert.follows is not None:
        return
    if rt.sync_redis.hexists(rt.keys.alert_state(alert.id), ALL_CLEAR_FIELD):
        return
    plan, created = plp.charter.urgent, alert.created_at.timestamp()
    follow_ups = (
        (jobs.ESCALATE, plan.escalate_after_seconds),
        (jobs.CHECK_ACKNOWLEDGEMENTS, plan.ack_check_after_seconds),
    )
    for job, after in follow_ups:
        if after is not None:
            jobs.schedule(rt, created + after, job, alert.id, plp.id, urgent=True, pipe=pipe)


#: Members planned before an urgent fan-out's first sends leave from its own process: a few, so that the first
#: request waits for their planning only, not for a whole batch's (the next batch is planned while they send).
LEAD_MEMBERS = 10


class FirstBatches:
    """The batches of a fan-out job that its own process sends, if it can: the first ones planned, as many as its
    event loop admits at once from the alert's queue (``PLP_WORKER_BATCHES``), the very first of a few members."""

    def __init__(self, here: SendsHere | None, settings: Settings) -> None:
        self._here, self._left, self._reads = here, settings.worker_batches, 0

    def chunk(self, settings: Settings) -> int:
        """Members to read next. The first read: ``LEAD_MEMBERS`` (where the loop admits two batches at once).
        Then, while batches are still to be sent here, no more than a batch holds, so that each leaves after
        planning a batch's worth of members, not a chunk's."""
        self._reads += 1
        if self._here is None:
            return settings.fanout_chunk
        # a lead smaller than a batch only where the loop sends the next batch beside it, not after it
        lead = self._reads == 1 and settings.worker_batches > 1
        return min(LEAD_MEMBERS if lead else settings.fanout_chunk, settings.send_batch_size)

    def take(self, queue: str) -> SendsHere | None:
        """The sender, for a chunk that has sends, while the process may send another batch of ``queue`` at once;
        None once it has taken its share or its loop is full (the rest is queued, for any worker)."""
        here = self._here
        if here is None or not here.free(queue):
            self._here = None
            return None
        self._left -= 1
        if self._left <= 0:
            self._here = None
        return here


class Places:
    """Where one PLP's members stand for an alert: inside its area (if it has one), and in which sector."""

    def __init__(self, targeting: Targeting) -> None:
        self.targeting = targeting
        self.unlocated: set[str] = set()  # planned without a known place (the charter reaches them)
        self.sector: dict[str, str] = {}  # member id -> their sector, in a PLP with sectors

    def keep(self, members: list[Member]) -> list[Member]:
        """The members the alert goes to through this PLP (all of them, without an area), placed at once."""
        kept = []
        for member, (reach, sector) in zip(members, self.targeting.place(members), strict=True):
            if reach is Reach.UNLOCATED:
                self.unlocated.add(member.id)
            if sector is not None:
                self.sector[member.id] = sector
            if reach in (Reach.REACHED, Reach.UNLOCATED):
                kept.append(member)
        return kept

    def count(self, rt: Runtime, alert: Alert, planned: list[Member]) -> None:
        """Add the members newly planned to the alert's counts per sector, and those planned without a place."""
        fields: dict[str, int] = {}
        for member in planned:
            sector = self.sector.pop(member.id, None)
            if sector is not None:
                name = sector_field(self.targeting.plp.id, sector)
                fields[name] = fields.get(name, 0) + 1
            if member.id in self.unlocated:
                fields["unlocated"] = fields.get("unlocated", 0) + 1
        if fields:
            with rt.sync_redis.pipeline(transaction=False) as pipe:
                for name, count in fields.items():
                    pipe.hincrby(rt.keys.alert_counts(alert.id), name, count)
                pipe.execute()


def member_held_until(alert: Alert, plp: Plp, member: Member, moment: datetime) -> datetime | None:
    """When the member's own quiet hours (in the PLP's time zone) let a non-urgent message arriving at ``moment``
    reach them; None: at once (an urgent alert, no quiet hours of theirs, or outside them)."""
    if alert.message_class is MessageClass.URGENT or member.quiet_hours is None:
        return None
    return member.quiet_hours.release_at(moment, plp.timezone)


def _fan_out_plp(
    rt: Runtime, alert: Alert, plp: Plp, moment: datetime, first: FirstBatches
) -> tuple[int, datetime | None]:
    """Plan the PLP's members; return how many deliveries, and the earliest end of the quiet hours of the members
    left for later (None: nobody waits). A member in their own quiet hours is neither planned nor recorded: the
    fan-out, run again when their quiet hours end, plans them then (those planned meanwhile are skipped)."""
    if alert.follows is not None:
        return _fan_out_follow_up(rt, alert, alert.follows, plp, first), None
    reader, keys = rt.reader, rt.keys
    plan = plp.charter.plan_of(alert.message_class)
    places = Places(Targeting.of(alert.area, plp, reader.get_sectors(plp.id)))
    last, planned, waiting = None, 0, None
    lease = jobs.fanout_lease(alert.id, plp.id)
    while True:
        # Held while it works: if this worker dies, the clock runs the fan-out again (it resumes).
        rt.sync_redis.zadd(keys.leases(), {lease: now_ts() + rt.settings.lease_seconds})
        member_ids = reader.plp_member_ids(plp.id, after=last, limit=first.chunk(rt.settings))
        if not member_ids:
            break
        found, opted_out = reader.get_members(member_ids), reader.opted_out(member_ids)
        # A member already planned through another PLP of this alert is left out here; the
        # planning script checks again atomically, for fan-outs of two PLPs running at once.
        already = cast(list[int], rt.sync_redis.smismember(keys.alert_members(alert.id), member_ids))
        rows = [
            (m, member, out)
            for m, member, out, done in zip(member_ids, found, opted_out, already, strict=True)
            if not done and member is not None
        ]
        kept = {id(member) for member in places.keep([member for _, member, _ in rows if member is not None])}
        rows = [row for row in rows if id(row[1]) in kept]
        # a member who takes no non-urgent messages is recorded like one who opted out, for this alert only
        rows = [(m, member, out or not member.accepts(alert.message_class)) for m, member, out in rows if member]
        members = []
        for member in (member for _, member, out in rows if not out):
            until = member_held_until(alert, plp, member, moment)
            if until is None:
                members.append(member)
            else:
                waiting = until if waiting is None else min(waiting, until)
        skipped = [m for m, _, out in rows if out]
        planned += _plan_chunk(
            rt, alert, plp, members, skipped, lambda member: member.reachable_channels(plan), places, first=first
        )
        last = member_ids[-1]
    return planned, waiting


def _fan_out_follow_up(rt: Runtime, alert: Alert, original_id: str, plp: Plp, first: FirstBatches) -> int:
    """A follow-up goes to the members its original alert reached (a delivery ``sent`` or ``delivered``) through
    this PLP, once each, on one of the channels that reached them (the first in the PLP's plan for the original's
    class): not a new audience. A member who opted out since, is in none of the alert's PLPs any more, or can no
    longer be reached on any of those channels gets nothing."""
    reader, keys = rt.reader, rt.keys
    original = reader.get_alert(original_id)
    if original is None:
        return 0
    order, targets = plp.charter.plan_of(original.message_class).channels, set(original.plp_ids)
    reached = reached_channels(rt, original_id)
    filed = cast(set[str], rt.sync_redis.smembers(keys.alert_plp_members(original_id, plp.id)))
    lease, planned = jobs.fanout_lease(alert.id, plp.id), 0
    for chunk in _portions(sorted(m for m in filed if m in reached), first, rt.settings):
        rt.sync_redis.zadd(keys.leases(), {lease: now_ts() + rt.settings.lease_seconds})
        found, opted_out = reader.get_members(chunk), reader.opted_out(chunk)
        already = cast(list[int], rt.sync_redis.smismember(keys.alert_members(alert.id), chunk))
        rows = [
            (m, member, out)
            for m, member, out, done in zip(chunk, found, opted_out, already, strict=True)
            if not done and member is not None and targets & set(member.plp_ids)  # still in one of its PLPs
        ]
        rows = [(m, member, out or not member.accepts(alert.message_class)) for m, member, out in rows]
        members = [member for _, member, out in rows if not out]
        skipped = [m for m, _, out in rows if out]

        def choose(member: Member) -> list[ChannelName]:
            return follow_up_channel(member, reached[member.id], order)

        planned += _plan_chunk(rt, alert, plp, members, skipped, choose, first=first)
    return planned


def reached_channels(rt: Runtime, alert_id: str) -> dict[str, set[ChannelName]]:
    """The members an alert reached (a delivery ``sent`` or ``delivered``) and the channels that reached each."""
    reached: dict[str, set[ChannelName]] = {}
    for status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED):
        for ref in cast(list[str], rt.sync_redis.zrange(rt.keys.alert_deliveries_in(alert_id, status.value), 0, -1)):
            channel, member_id = ref.split(":", 1)
            reached.setdefault(member_id, set()).add(ChannelName(channel))
    return reached


def follow_up_channel(member: Member, reached: set[ChannelName], order: list[ChannelName]) -> list[ChannelName]:
    """The one channel a follow-up takes to a member: of those that reached them, the first in the plan's order
    (then any other, by name) that they still accept and can be reached on; none if there is no such channel."""
    ranked = [c for c in order if c in reached] + sorted(reached - set(order))
    usable = [c for c in ranked if c in member.channels and c not in member.unusable and member.address_for(c)]
    return usable[:1]


def _portions(items: list[str], first: FirstBatches, settings: Settings) -> Iterator[list[str]]:
    """``items`` a chunk at a time, each of the size ``first`` gives as it is read (see ``FirstBatches.chunk``)."""
    start = 0
    while start < len(items):
        size = first.chunk(settings)
        yield items[start : start + size]
        start += size


def _plan_chunk(
    rt: Runtime,
    alert: Alert,
    plp: Plp,
    members: list[Member],
    skipped: list[str],
    choose: Callable[[Member], list[ChannelName]],
    places: Places | None = None,
    *,
    first: FirstBatches,
) -> int:
    """Plan each member on the channels ``choose`` gives them (none: unreachable), and ``skipped`` (opted
    out), with their send jobs, in one transaction; return the deliveries created. ``places``: where the
    members stand, counted per sector (an alert's own fan-out; a follow-up's goes to members already counted).
    ``first``: the process's sender, which takes the chunk's first batch while it may send here
    (``FirstBatches``), as soon as the transaction has run."""
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
            channels = [c.value for c in choose(member)]
            outcome = "plan" if channels and member.status is MemberStatus.ACTIVE else "unreachable"
            if member.status is not MemberStatus.ACTIVE:
                outcome = "opted_out"
            args = [alert.id, member.id, now, outcome, plp.id, *channels]
            rt.sync_scripts.plan_member(keys=script_keys, args=args, client=pipe)
            if outcome == "plan":
                refs.extend(delivery_ref(c, member.id) for c in channels)
        zone = plp.police_zone
        here = first.take(rt.queue_for(alert.urgency, zone, alert.id).name) if refs else None
        kept, refs = (refs[: rt.settings.send_batch_size], refs[rt.settings.send_batch_size :]) if here else ([], refs)
        # recorded for the clock at once: a worker may die as it takes the job, or before it sends its own
        own = keep_sends(rt, pipe, alert.id, plp.id, kept, zone=zone, now=now) if kept else None
        enqueue_sends(rt, pipe, alert.id, plp.id, refs, urgency=alert.urgency, zone=zone, now=now)
        results = pipe.execute()
    if here is not None and own is not None:
        here.send(alert.id, plp.id, kept, job_id=own[0], queue=own[1])
    created = [int(r) for r in results[len(skipped) : len(skipped) + len(members)]]
    new = [(m, choose(m)) for m, n in zip(members, created, strict=True) if n > 0]
    count_costs(rt, alert, plp, new)
    if places is not None:
        places.count(rt, alert, [m for m, _ in new])
    return sum(max(n, 0) for n in created)


def count_costs(
    rt: Runtime, alert: Alert, plp: Plp, planned: list[tuple[Member, list[ChannelName]]], *, pipe: Any = None
) -> None:
    """Add the SMS segments and call minutes of new deliveries (members, and their channels) to the alert's
    counters; with ``pipe``, the additions are queued on it (a transaction the caller executes)."""
    relay = rt.reader.get_relay(alert.id, plp.id)
    sizes: dict[Language, tuple[int, int]] = {}
    for language in {m.language for m, _ in planned}:
        text = message_text(alert, language, relay, plp.default_language)
        wire = sms_text(with_answers(text, alert, language), language)
        sizes[language] = (segments.measure(wire).segments, voice_minutes(text, language))
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
