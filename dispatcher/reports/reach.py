"""An alert's reach report, meant for drills: per channel, how long from the alert's creation (its POST) to
the provider's hand-off and to delivery, from each delivery's own status times (``t_sent``,
``t_delivered``); the share of the planned members who acknowledged, over time; and the members not
reached, with the reason, for a coordinator to fix their member data.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from pydantic import BaseModel, Field

from dispatcher.core.models import Alert, ChannelName, DeliveryStatus
from dispatcher.storage.store import Store

#: The marks (seconds after the alert's creation) of the acknowledgement curve.
ACK_MARKS = (30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 24 * 3600)
_REACHED = {DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value}
_NO_DELIVERY = "no contact point on the channels of the PLP's plan"


class Timing(BaseModel):
    """Seconds from the alert's creation, over the deliveries that got there (nearest-rank percentiles)."""

    count: int
    p50: float | None
    p90: float | None
    max: float | None


class ChannelReach(BaseModel):
    channel: ChannelName
    deliveries: int = Field(description="Deliveries planned on the channel")
    by_status: dict[DeliveryStatus, int] = Field(description="Deliveries per status now, zero included")
    to_hand_over: Timing = Field(description="To the provider's hand-off (sent, else delivered)")
    to_delivery: Timing = Field(description="To delivery, where the provider reports it")


class AcknowledgedBy(BaseModel):
    after_seconds: int
    acknowledged: int = Field(description="Planned members who had acknowledged by then, on any channel")
    share: float | None = Field(description="acknowledged / members planned (null without any)")


class NotReached(BaseModel):
    member_id: str
    plp_id: str
    name: str | None = Field(description="The member's name; null if erased since")
    reason: str = Field(description="Per channel, what became of the delivery and why; or no contact point")


class ReachReport(BaseModel):
    """How an alert reached its members (exercise or not)."""

    alert_id: str
    exercise: bool
    members: int = Field(description="Members planned (through the PLPs the reader may see)")
    reached: int = Field(description="Of them, with at least one delivery sent or delivered")
    acknowledged: int
    channels: list[ChannelReach]
    acknowledged_over_time: list[AcknowledgedBy]
    members_not_reached: int
    not_reached: list[NotReached] | None = Field(
        default=None, description="The members not reached, with the reason; never shown to the police"
    )


def timing(seconds: Iterable[float]) -> Timing:
    """Nearest-rank p50 and p90, and the maximum, rounded to the millisecond."""
    values = sorted(seconds)
    if not values:
        return Timing(count=0, p50=None, p90=None, max=None)

    def rank(p: float) -> float:
        return round(values[max(0, math.ceil(p * len(values)) - 1)], 3)

    return Timing(count=len(values), p50=rank(0.5), p90=rank(0.9), max=round(values[-1], 3))


async def reach_report(store: Store, alert: Alert, plp_ids: Sequence[str]) -> ReachReport:
    """The report of ``alert`` through ``plp_ids`` (those of its PLPs the reader may see), with the members
    not reached; the caller hides them from whom may not see them."""
    planned = await _planned(store, alert.id, plp_ids)
    deliveries = await _deliveries(store, alert.id, set(planned))
    created = alert.created_at.timestamp()
    by_member: dict[str, list[dict[str, str]]] = defaultdict(list)
    for raw in deliveries:
        by_member[raw["member_id"]].append(raw)
    reached = {m for m, rows in by_member.items() if any(r["status"] in _REACHED for r in rows)}
    acks = [min(float(r["ack_at"]) for r in rows if "ack_at" in r) for rows in by_member.values() if _acked(rows)]
    missing = sorted(set(planned) - reached)
    names = {m.id: m.name for m in await store.get_members(missing) if m is not None}
    return ReachReport(
        alert_id=alert.id,
        exercise=alert.exercise,
        members=len(planned),
        reached=len(reached),
        acknowledged=len(acks),
        channels=[_channel(c, [d for d in deliveries if d["channel"] == c.value], created) for c in _used(deliveries)],
        acknowledged_over_time=[_by(mark, acks, created, len(planned)) for mark in ACK_MARKS],
        members_not_reached=len(missing),
        not_reached=[
            NotReached(member_id=m, plp_id=planned[m], name=names.get(m), reason=_reason(by_member.get(m, [])))
            for m in missing
        ],
    )


async def _planned(store: Store, alert_id: str, plp_ids: Sequence[str]) -> dict[str, str]:
    """Member id -> the PLP they were planned through."""
    async with store.redis.pipeline(transaction=False) as pipe:
        for plp_id in plp_ids:
            pipe.smembers(store.keys.alert_plp_members(alert_id, plp_id))
        found = await pipe.execute()
    return {m: plp_id for plp_id, members in zip(plp_ids, found, strict=True) for m in sorted(members)}


async def _deliveries(store: Store, alert_id: str, members: set[str]) -> list[dict[str, str]]:
    """The raw delivery hashes of these members (their ``t_<status>`` times as stored), with channel and member."""
    refs = cast(list[str], await store.redis.zrange(store.keys.alert_deliveries(alert_id), 0, -1))
    refs = [ref for ref in refs if ref.split(":", 1)[1] in members]
    async with store.redis.pipeline(transaction=False) as pipe:
        for ref in refs:
            pipe.hgetall(store.keys.delivery(alert_id, ref))
        raws = await pipe.execute()
    rows = []
    for ref, raw in zip(refs, raws, strict=True):
        channel, member_id = ref.split(":", 1)
        if raw:
            rows.append({**cast(dict[str, str], raw), "channel": channel, "member_id": member_id})
    return rows


def _acked(rows: list[dict[str, str]]) -> bool:
    return any("ack_at" in r for r in rows)


def _used(deliveries: list[dict[str, Any]]) -> list[ChannelName]:
    present = {d["channel"] for d in deliveries}
    return [c for c in ChannelName if c.value in present]


def _channel(channel: ChannelName, rows: list[dict[str, str]], created: float) -> ChannelReach:
    handed = [min(float(r[k]) for k in ("t_sent", "t_delivered") if k in r) - created for r in rows if _handed(r)]
    delivered = [float(r["t_delivered"]) - created for r in rows if "t_delivered" in r]
    counts = {s: sum(1 for r in rows if r["status"] == s.value) for s in DeliveryStatus}
    return ChannelReach(
        channel=channel,
        deliveries=len(rows),
        by_status=counts,
        to_hand_over=timing(handed),
        to_delivery=timing(delivered),
    )


def _handed(row: dict[str, str]) -> bool:
    return "t_sent" in row or "t_delivered" in row


def _by(mark: int, acks: list[float], created: float, planned: int) -> AcknowledgedBy:
    count = sum(1 for at in acks if at - created <= mark)
    return AcknowledgedBy(after_seconds=mark, acknowledged=count, share=round(count / planned, 4) if planned else None)


def _reason(rows: list[dict[str, str]]) -> str:
    if not rows:
        return _NO_DELIVERY
    parts = []
    for row in sorted(rows, key=lambda r: r["channel"]):
        why = row.get("last_error") or row.get("cause")
        parts.append(f"{row['channel']}: {row['status']}" + (f" ({why})" if why else ""))
    return "; ".join(parts)
