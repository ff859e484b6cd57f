"""Follow-ups of an urgent alert that members do not acknowledge, as a PLP's charter sets them.

When a PLP's fan-out of an urgent alert finishes, the fan-out gives the clock two jobs for
that PLP (``dispatcher.pipeline.fanout``), each at the alert's creation plus the delay its urgent plan
sets:

- ``escalate``: every member planned through that PLP who has not acknowledged, is still
  in, and accepts and can be reached on the plan's ``escalate_to`` channel (a call, by
  default) gets one more delivery on it. A delivery is one per alert, member and channel,
  so a member is escalated once, and not at all if they already had a delivery there.
- ``check_acknowledgements``: when the share of those members who acknowledged is below
  the plan's ``ack_threshold``, the PLP's coordinators and the alert's author are notified
  (``dispatcher.pipeline.notifications``) and the PLP's reply-to addresses get an e-mail, once.

Neither does anything for an alert that was cancelled, has expired or has an all-clear
(``dispatcher.pipeline.follow_ups``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import cast
from zoneinfo import ZoneInfo

import structlog
from redis.exceptions import WatchError

from channels import ChannelError, OutboundMessage, open_channels
from dispatcher.core.models import (
    Alert,
    AlertStatus,
    ChannelName,
    Member,
    MemberStatus,
    MessageClass,
    Plp,
    Role,
    Urgency,
)
from dispatcher.core.wording import few_acknowledgements
from dispatcher.pipeline.fanout import count_costs
from dispatcher.pipeline.notifications import Notification, NotificationKind, Notifications, notification_id
from dispatcher.storage.keys import ALL_CLEAR_FIELD
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, delivery_ref, now_ts

log = structlog.get_logger(__name__)

#: Alert statuses after which nothing more is sent.
_OVER = frozenset({AlertStatus.CANCELLED.value, AlertStatus.EXPIRED.value, AlertStatus.DECLINED.value})
#: What is read of an alert's state to tell whether it is still live.
_STATE_FIELDS = ["status", "expires_at", ALL_CLEAR_FIELD]


@dataclass(frozen=True)
class Escalation:
    """What one escalation did: members of the PLP who had not acknowledged, and deliveries it added."""

    unacknowledged: int
    added: int


@dataclass(frozen=True)
class AckCheck:
    """What one acknowledgement check found; ``notification`` is set when this check sent one."""

    planned: int
    acknowledged: int
    threshold: float
    notification: Notification | None = None


def escalate(rt: Runtime, alert_id: str, plp_id: str, *, now: datetime | None = None) -> Escalation:
    """Reach once more, on the plan's ``escalate_to`` channel, the PLP's members who have not acknowledged.

    ``now`` (default: the current time) is checked against the alert's time-to-live.
    """
    redis, keys = rt.sync_redis, rt.keys
    found = _urgent(rt.reader.get_alert(alert_id), rt.reader.get_plp(plp_id))
    state = cast(list[str | None], redis.hmget(keys.alert_state(alert_id), _STATE_FIELDS))
    moment = (now or datetime.now(UTC)).timestamp()
    if found is None or found[1].charter.urgent.escalate_after_seconds is None or not _live(state, moment):
        log.info("escalation.skipped", alert_id=alert_id, plp_id=plp_id)
        return Escalation(0, 0)
    alert, plp = found
    channel = plp.charter.urgent.escalate_to
    pending = sorted(cast(set[str], redis.sdiff([keys.alert_plp_members(alert_id, plp_id), keys.alert_acks(alert_id)])))
    added = 0
    for chunk in _chunks(pending, rt.settings.fanout_chunk):
        added += len(_add_deliveries(rt, alert, plp, _reachable(rt, chunk, channel), channel))
    log.info("escalation.done", alert_id=alert_id, plp_id=plp_id, channel=channel.value, added=added)
    return Escalation(unacknowledged=len(pending), added=added)


async def check_acknowledgements(
    rt: Runtime, alert_id: str, plp_id: str, *, now: datetime | None = None
) -> AckCheck | None:
    """Tell the coordinators and the author when too few of the PLP's members acknowledged; None if not checked.

    ``now`` (default: the current time) dates the notification.
    """
    redis = rt.async_redis()
    try:
        store = Store(redis, rt.keys)
        found = await _checkable(store, alert_id, plp_id)
        if found is None:
            log.info("ack_check.skipped", alert_id=alert_id, plp_id=plp_id)
            return None
        alert, plp, threshold = found
        planned, acknowledged = await _acknowledged(store, alert_id, plp_id)
        check = AckCheck(planned=planned, acknowledged=acknowledged, threshold=threshold)
        bound = log.bind(alert_id=alert_id, plp_id=plp_id, planned=planned, acknowledged=acknowledged)
        if planned == 0 or acknowledged / planned >= threshold:
            bound.info("ack_check.enough")
            return check
        notice = _notice(alert, plp, check, now or datetime.now(UTC))
        if not await Notifications(redis, rt.keys).publish(notice, await _recipients(store, alert, plp)):
            return check  # told already, by an earlier run
        bound.warning("ack_check.few", notification_id=notice.id)
        await _email_reply_to(rt, plp, notice)
        return replace(check, notification=notice)
    finally:
        await redis.aclose()


async def _checkable(store: Store, alert_id: str, plp_id: str) -> tuple[Alert, Plp, float] | None:
    """The urgent alert, the PLP and its threshold, if its charter sets a check and the alert was not
    cancelled (past its time-to-live is fine: the coordinators may still pass the message on)."""
    found = _urgent(await store.get_alert(alert_id), await store.get_plp(plp_id))
    state = cast(list[str | None], await store.redis.hmget(store.keys.alert_state(alert_id), _STATE_FIELDS))
    if found is None or found[1].charter.urgent.ack_threshold is None or not _live(state, None):
        return None
    return found[0], found[1], found[1].charter.urgent.ack_threshold


def _urgent(alert: Alert | None, plp: Plp | None) -> tuple[Alert, Plp] | None:
    """The alert and the PLP, if both exist and the alert is urgent."""
    if alert is None or plp is None or alert.message_class is not MessageClass.URGENT:
        return None
    return alert, plp


def _live(state: list[str | None], now: float | None) -> bool:
    """Whether the alert may still be followed up: not cancelled nor expired, no all-clear (nor, if ``now`` is
    given, past its time-to-live). ``state``: the alert state's ``_STATE_FIELDS``."""
    status, expires_at, all_clear = state
    if status is None or status in _OVER or all_clear is not None:
        return False
    return now is None or now < float(expires_at or 0)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _reachable(rt: Runtime, member_ids: list[str], channel: ChannelName) -> list[Member]:
    """The members still in, not opted out, who accept ``channel`` and have a usable contact point on it."""
    found, opted_out = rt.reader.get_members(member_ids), rt.reader.opted_out(member_ids)
    members = [m for m, out in zip(found, opted_out, strict=True) if m is not None and not out]
    return [
        m
        for m in members
        if m.status is MemberStatus.ACTIVE
        and channel in m.channels
        and channel not in m.unusable
        and m.address_for(channel)
    ]


def _add_deliveries(rt: Runtime, alert: Alert, plp: Plp, members: list[Member], channel: ChannelName) -> list[Member]:
    """Add a delivery on ``channel`` for each member who has none there yet; return those who got one.

    The ``escalated`` counter and the costs move in the same transaction as the deliveries. The
    keys of the deliveries to add are watched, so one created meanwhile (a fallback, another run
    of this job) is neither added nor counted twice: the chunk is looked at again.
    """
    keys = rt.keys
    script_keys = [
        keys.alert_counts(alert.id),
        keys.alert_deliveries(alert.id),
        keys.delivery(alert.id, ""),
        keys.alert_deliveries_in(alert.id, ""),
        keys.leases(),
    ]
    todo = {keys.delivery(alert.id, delivery_ref(channel.value, m.id)): m for m in members}
    while todo:
        with rt.sync_redis.pipeline(transaction=False) as look:
            for key in todo:
                look.exists(key)
            todo = {key: m for (key, m), found in zip(todo.items(), look.execute(), strict=True) if not found}
        if not todo:
            break
        with rt.rq_connection.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(*todo)
                if pipe.exists(*todo):
                    continue  # created between the look and the watch: look again
                pipe.multi()
                for member in todo.values():
                    args = [alert.id, member.id, channel.value, plp.id, now_ts()]
                    rt.sync_scripts.add_delivery(keys=script_keys, args=args, client=pipe)
                pipe.hincrby(keys.alert_counts(alert.id), "escalated", len(todo))
                count_costs(rt, alert, plp, [(m, [channel]) for m in todo.values()], pipe=pipe)
                pipe.execute()
                return list(todo.values())
            except WatchError:
                continue
    return []


async def _acknowledged(store: Store, alert_id: str, plp_id: str) -> tuple[int, int]:
    """Members planned through the PLP, and how many of them acknowledged."""
    planned_key = store.keys.alert_plp_members(alert_id, plp_id)
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.scard(planned_key)
        pipe.sdiff([planned_key, store.keys.alert_acks(alert_id)])
        planned, unacknowledged = await pipe.execute()
    return int(planned), int(planned) - len(unacknowledged)


async def _recipients(store: Store, alert: Alert, plp: Plp) -> list[str]:
    """The alert's author and the PLP's coordinators."""
    found = {alert.author_id}
    async for actors in store.all_actors():
        found.update(a.id for a in actors if a.role is Role.COORDINATOR and plp.id in a.plp_ids)
    return sorted(found)


def _notice(alert: Alert, plp: Plp, check: AckCheck, now: datetime) -> Notification:
    language = plp.default_language
    subject, text = few_acknowledgements(
        plp_name=plp.name,
        category=alert.category,
        sent_at=alert.created_at.astimezone(ZoneInfo(plp.timezone)).strftime("%d/%m/%Y %H:%M"),
        acknowledged=check.acknowledged,
        planned=check.planned,
        threshold=check.threshold,
        text=alert.text_for(language, None, language),
        language=language,
    )
    kind = NotificationKind.FEW_ACKNOWLEDGEMENTS
    return Notification(
        id=notification_id(kind, alert.id, plp.id),
        kind=kind,
        alert_id=alert.id,
        plp_id=plp.id,
        created_at=now,
        language=language,
        subject=subject,
        text=text,
        planned=check.planned,
        acknowledged=check.acknowledged,
        threshold=check.threshold,
    )


async def _email_reply_to(rt: Runtime, plp: Plp, notice: Notification) -> int:
    """E-mail the notice to the PLP's reply-to addresses (its coordinators); return how many went.

    A failure is logged, not retried: the notification itself is kept for the API.
    """
    sent = 0
    if not plp.reply_to:
        return sent
    async with open_channels(rt.settings) as channels:
        for n, address in enumerate(plp.reply_to):
            message = OutboundMessage(
                delivery_id=f"notice-{notice.id}-{n}",
                alert_id=notice.alert_id or "",
                member_id="",
                channel=ChannelName.EMAIL,
                address=address,
                language=notice.language,
                urgency=Urgency.URGENT,
                subject=notice.subject,
                text=notice.text,
            )
            try:
                await channels[ChannelName.EMAIL].send(message)
                sent += 1
            except ChannelError as exc:
                log.warning("ack_check.email_failed", notification_id=notice.id, error=str(exc))
    return sent
