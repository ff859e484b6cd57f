"""Follow-ups of an alert: an update, or an all-clear ("the suspect was arrested, thank you"), to exactly
the members the alert reached.

A follow-up is an alert of its own (``Alert.follows``: the alert it follows; ``Alert.kind``), with the
alert's urgency (so its lane), category and PLPs, stored and enqueued as any alert is
(``intake.accept_alert``, one transaction, before the 202). Its fan-out (``dispatcher.pipeline.fanout``)
plans, instead of the PLPs' members, the members the alert reached (a delivery ``sent`` or
``delivered``), each once, on a channel that reached them; each gets it in their language, marked as
an update or an all-clear (``dispatcher.pipeline.compose``). The alert lists its follow-ups.

An all-clear also ends what the alert still had to do, in the same transaction: its escalation and
acknowledgement-check timers go, its state notes the all-clear (``escalate`` and
``check_acknowledgements`` then do nothing for it, and the claim script cancels a retry that comes due),
and its deliveries waiting for a retry end ``cancelled``, cause ``all-clear``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from dispatcher.core.models import Actor, Alert, FollowUpIn, FollowUpKind, Plp, Relay, RelayState
from dispatcher.pipeline import intake, jobs
from dispatcher.storage.keys import ALL_CLEAR_FIELD
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.scripts import ALL_CLEAR_CAUSE
from dispatcher.storage.store import now_ts

#: The timers of an urgent alert that an all-clear removes (each per PLP: ``job(alert id, PLP id)``).
_TIMERS = (jobs.ESCALATE, jobs.CHECK_ACKNOWLEDGEMENTS)


def follow_up_of(
    original: Alert, body: FollowUpIn, *, follow_up_id: str, actor: Actor, plps: list[Plp], now: datetime
) -> Alert:
    """The follow-up ``body`` asks for, as an alert: the original's urgency, category and PLPs; the time-to-live
    of the shortest of the PLPs' plans for that class (as an alert without one)."""
    ttl = min((p.charter.plan_of(original.message_class).ttl_seconds for p in plps), default=original.ttl_seconds)
    return Alert(
        id=follow_up_id,
        author_id=actor.id,
        author_role=actor.role,
        urgency=original.urgency,
        category=original.category,
        plp_ids=list(original.plp_ids),
        texts=dict(body.texts),
        ttl_seconds=ttl,
        created_at=now,
        follows=original.id,
        kind=body.kind,
        exercise=original.exercise,  # an update or all-clear of a drill is part of the drill
    )


class AlreadyAllClear(Exception):
    """The alert already has its all-clear (``all_clear``: its id): an alert has one."""

    def __init__(self, all_clear: str) -> None:
        super().__init__(f"the alert already has its all-clear ({all_clear})")
        self.all_clear = all_clear


#: Times an all-clear is tried again when another follow-up of the same alert was accepted meanwhile.
_TRIES = 3


def accept_follow_up(
    rt: Runtime,
    follow_up: Alert,
    *,
    once: intake.Once | None = None,
    audit: dict[str, str] | None = None,
) -> intake.Accepted:
    """Store and enqueue the follow-up (as ``intake.accept_alert``, whose errors it raises), filed under the
    alert it follows; an all-clear ends that alert's timers and waiting retries in the same transaction.

    The transaction watches the alert's follow-ups: of two all-clears at once, one is accepted and the other
    raises ``AlreadyAllClear`` (as does an all-clear of an alert that has one; a replay is answered first)."""
    assert follow_up.follows is not None, "a follow-up follows an alert"
    original = follow_up.follows
    relays = [Relay(plp_id=plp_id, state=RelayState.AUTO) for plp_id in follow_up.plp_ids]
    clears = follow_up.kind is FollowUpKind.ALL_CLEAR

    def effects(pipe: Any) -> None:
        pipe.zadd(rt.keys.alert_follow_ups(original), {follow_up.id: follow_up.created_at.timestamp()})
        if clears:
            _end_alert(rt, pipe, original, follow_up, _waiting_refs(rt, original))

    def check(pipe: Any) -> None:
        found = pipe.hget(rt.keys.alert_state(original), ALL_CLEAR_FIELD)
        if clears and found is not None:
            raise AlreadyAllClear(found.decode() if isinstance(found, bytes) else str(found))

    watched = (rt.keys.alert_follow_ups(original),)
    for attempt in range(1, _TRIES + 1):
        try:
            return intake.accept_alert(
                rt, follow_up, relays, once=once, audit=audit, also=effects, watch=watched, check=check
            )
        except intake.NotSettled:
            if attempt == _TRIES:
                raise
    raise AssertionError("unreachable")


def _waiting_refs(rt: Runtime, alert_id: str) -> list[str]:
    """The deliveries of the alert in ``sending``: those waiting for a retry among them (the script tells)."""
    return cast(list[str], rt.sync_redis.zrange(rt.keys.alert_deliveries_in(alert_id, "sending"), 0, -1))


def _end_alert(rt: Runtime, pipe: Any, alert_id: str, all_clear: Alert, waiting: list[str]) -> None:
    """On ``pipe``: note the all-clear on the alert, drop its timers, cancel its deliveries waiting for a retry
    (one that comes due later, or that was being sent as this was read, the claim script cancels)."""
    keys, now = rt.keys, now_ts()
    pipe.hset(keys.alert_state(alert_id), ALL_CLEAR_FIELD, all_clear.id)
    specs = [jobs.timer_spec(job, alert_id, plp_id, urgent=True) for plp_id in all_clear.plp_ids for job in _TIMERS]
    pipe.zrem(keys.timers(), *specs)
    for ref in waiting:
        channel = ref.split(":", 1)[0]
        rt.sync_scripts.cancel_waiting(
            keys=keys.delivery_move(alert_id, ref), args=[alert_id, ref, channel, now, ALL_CLEAR_CAUSE], client=pipe
        )
