"""Recurring drills: their schedules kept per PLP, and each occurrence sent by the clock when it comes round.

A schedule (``dispatcher.core.drills``) names its author: each occurrence goes in as if its author posted it
that moment, through the same intake as ``POST /v1/alerts`` (``intake.accept_alert``), as an exercise, with
the author's rights checked again then (an author who lost them, or was deleted, sends nothing: the
occurrence is skipped and logged), and the audit entry written as theirs.

Once, whatever the clocks do: every clock sweep takes the schedules whose ``next_at`` has passed, and sends
each occurrence with an Idempotency-Key of its own (``drill:<id>:sent:<time>``) and an alert id derived from
it, in the intake's one transaction. A clock that dies after sending and before moving the schedule on, or
two clocks sweeping at once, find the key and send nothing more. An occurrence found more than
``LATE_AFTER`` seconds late (every clock was down) is skipped, not sent late: a drill at 3 a.m. instead of
18:00 tests nothing and wakes people.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

import structlog

from dispatcher.access import policy
from dispatcher.access.audit import Action, entry_fields
from dispatcher.core.drills import DrillSchedule
from dispatcher.core.models import Actor, Alert, Plp, Relay, RelayMode, RelayState, Role, Urgency
from dispatcher.core.wording import default_answers
from dispatcher.pipeline import intake
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store

log = structlog.get_logger(__name__)

#: Seconds after its time an occurrence is still sent; a later one is skipped (logged ``drill.missed``).
LATE_AFTER = 3600
#: Seconds an occurrence's Idempotency-Key is kept: longer than a month, the longest rule.
SENT_KEPT = 40 * 86400
_TAKE = 100


# -- the schedules (the API's side) --------------------------------------------------------------------------


async def save(store: Store, schedule: DrillSchedule) -> None:
    keys = store.keys
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.drill(schedule.id), schedule.model_dump_json())
        pipe.sadd(keys.plp_drills(schedule.plp_id), schedule.id)
        pipe.zadd(keys.drills(), {schedule.id: schedule.next_at.timestamp()})
        await pipe.execute()


async def of_plp(store: Store, plp_id: str) -> list[DrillSchedule]:
    """The PLP's drill schedules, next first."""
    ids = sorted(cast(set[str], await store.redis.smembers(store.keys.plp_drills(plp_id))))
    raws = await store.redis.mget([store.keys.drill(i) for i in ids]) if ids else []
    found = [DrillSchedule.model_validate_json(raw) for raw in raws if raw]
    return sorted(found, key=lambda s: (s.next_at, s.id))


async def delete(store: Store, plp_id: str, drill_id: str) -> bool:
    """Delete one of the PLP's schedules; False if it has none of that id. Its next occurrence is not sent."""
    keys = store.keys
    if not await store.redis.sismember(keys.plp_drills(plp_id), drill_id):
        return False
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.drills(), drill_id)
        pipe.srem(keys.plp_drills(plp_id), drill_id)
        pipe.delete(keys.drill(drill_id))
        await pipe.execute()
    return True


# -- the occurrences (the clock's side) ----------------------------------------------------------------------


def send_due(rt: Runtime, now: float) -> int:
    """Send each drill occurrence due at ``now`` (Unix time) once, and move its schedule on; return how many
    occurrences this sweep saw accepted (a replay of one sent earlier is not counted; a clock that lost the
    race to another in the same instant counts the one alert the other stored)."""
    conn, keys = rt.rq_connection, rt.keys
    taken = conn.zrangebyscore(keys.drills(), "-inf", now, 0, _TAKE)
    due = [i.decode() if isinstance(i, bytes) else str(i) for i in taken]
    return sum(_occurrence(rt, drill_id, now) for drill_id in due)


def _occurrence(rt: Runtime, drill_id: str, now: float) -> int:
    conn, keys = rt.rq_connection, rt.keys
    raw = conn.get(keys.drill(drill_id))
    if raw is None:
        conn.zrem(keys.drills(), drill_id)  # deleted meanwhile
        return 0
    schedule = DrillSchedule.model_validate_json(raw)
    if schedule.next_at.timestamp() > now:
        return 0  # another clock sent this occurrence and moved the schedule on since it was taken
    plp = rt.reader.get_plp(schedule.plp_id)
    sent = 0
    if plp is not None:
        sent = _send(rt, schedule, plp, now)
        following = schedule.rule.next_after(max(schedule.next_at, datetime.fromtimestamp(now, UTC)), plp.timezone)
        moved = schedule.model_copy(update={"next_at": following})
        with conn.pipeline(transaction=True) as pipe:
            pipe.set(keys.drill(drill_id), moved.model_dump_json(), xx=True)
            pipe.zadd(keys.drills(), {drill_id: following.timestamp()}, xx=True)
            pipe.execute()
    else:
        conn.zrem(keys.drills(), drill_id)
    return sent


def _send(rt: Runtime, schedule: DrillSchedule, plp: Plp, now: float) -> int:
    at = schedule.next_at.timestamp()
    bound = log.bind(drill_id=schedule.id, plp_id=plp.id, occurrence=int(at))
    if now - at > LATE_AFTER:
        bound.warning("drill.missed", late_seconds=int(now - at))
        return 0
    raw_actor = rt.rq_connection.get(rt.keys.actor(schedule.author_id))
    actor = Actor.model_validate_json(raw_actor) if raw_actor else None
    try:
        if actor is None:
            raise policy.Denied("its author is no longer an actor")
        policy.can_send(actor, schedule.urgency, [plp])
    except policy.Denied as exc:
        bound.warning("drill.skipped", reason=str(exc))
        return 0
    alert = _alert(schedule, plp, actor, at)
    once = intake.Once(key=rt.keys.drill_sent(schedule.id, int(at)), digest=schedule.id, ttl=SENT_KEPT)
    audit = entry_fields(
        actor=actor,
        action=Action.ALERT_CREATED,
        target={"alert": alert.id},
        detail=f"{alert.urgency.value} {alert.category.value}, exercise of scheduled drill {schedule.id}",
    )
    accepted = intake.accept_alert(rt, alert, _relays(actor, schedule.urgency, [plp]), once=once, audit=audit)
    bound.info("drill.sent", alert_id=accepted.alert_id, replayed=accepted.replayed)
    return 0 if accepted.replayed else 1


def _alert(schedule: DrillSchedule, plp: Plp, actor: Actor, at: float) -> Alert:
    alert = Alert(
        id=hashlib.sha256(f"drill:{schedule.id}:{int(at)}".encode()).hexdigest()[:16],  # the same for a replay
        author_id=actor.id,
        author_role=actor.role,
        urgency=schedule.urgency,
        category=schedule.category,
        plp_ids=[plp.id],
        texts=dict(schedule.texts),
        ttl_seconds=60,
        created_at=datetime.now(UTC),
        exercise=True,
        answers=default_answers(schedule.category),
    )
    return alert.model_copy(update={"ttl_seconds": plp.charter.plan_of(alert.message_class).ttl_seconds})


def _relays(actor: Actor, urgency: Urgency, plps: Iterable[Plp]) -> list[Relay]:
    """As for an alert posted: police advice waits for the coordinator where the charter says so."""

    def waits(plp: Plp) -> bool:
        advice = urgency is Urgency.NON_URGENT and actor.role is Role.POLICE
        return advice and plp.charter.relay is RelayMode.COORDINATOR

    return [Relay(plp_id=p.id, state=RelayState.AWAITING if waits(p) else RelayState.AUTO) for p in plps]
