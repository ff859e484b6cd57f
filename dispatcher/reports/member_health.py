"""Members' health, from the delivery history: who has not been reachable for months, who never
acknowledges, who has no working channel.

The history is the PLP's latest ``HISTORY_ALERTS`` alerts (as long as their deliveries are kept): for
each, the members it planned through the PLP, those it reached (a delivery ``sent`` or ``delivered``)
and those who acknowledged it. A member is flagged

- ``not_reachable`` when none of the PLP's alerts of the last ``UNREACHABLE_DAYS`` days reached them,
  though at least ``UNREACHABLE_AFTER`` of them were planned for them (a single failure is not months);
- ``never_acknowledges`` when at least ``NEVER_ACKNOWLEDGES_AFTER`` alerts reached them and they
  acknowledged none;
- ``no_working_channel`` when they are active and none of their channels works: each one they accept
  lacks a contact point or failed for good (a number that does not exist, a blocked bot).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import cast

from dispatcher.core.models import ChannelName, DeliveryStatus, Member, MemberStatus
from dispatcher.storage.store import Store

#: Days without any alert reaching a member, while alerts were planned for them, that flag ``not_reachable``.
UNREACHABLE_DAYS = 90
#: Alerts of those days planned for the member, none reaching them, that flag ``not_reachable``.
UNREACHABLE_AFTER = 2
#: Alerts that reached a member, none acknowledged, that flag ``never_acknowledges``.
NEVER_ACKNOWLEDGES_AFTER = 3
#: The PLP's latest alerts read (newest first) as its delivery history.
HISTORY_ALERTS = 200

_REACHED = (DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value)


class Problem(StrEnum):
    NOT_REACHABLE = "not_reachable"
    NEVER_ACKNOWLEDGES = "never_acknowledges"
    NO_WORKING_CHANNEL = "no_working_channel"


@dataclass
class History:
    """One member's part of the PLP's delivery history."""

    planned: int = 0
    planned_recently: int = 0
    reached: int = 0
    acknowledged: int = 0
    last_reached_at: float | None = None
    last_acknowledged_at: float | None = None


@dataclass(frozen=True)
class Health:
    """A member's health: their history, their working channels, the problems these show."""

    member: Member
    history: History
    working_channels: list[ChannelName]
    problems: list[Problem] = field(default_factory=list)


def working_channels(member: Member) -> list[ChannelName]:
    """The channels the member accepts, has a contact point for, and that have not failed for good."""
    if member.status is not MemberStatus.ACTIVE:
        return []
    return [c for c in member.channels if c not in member.unusable and member.address_for(c)]


def problems_of(member: Member, history: History, working: list[ChannelName]) -> list[Problem]:
    """The problems the thresholds of this module find in a member's history."""
    found = []
    recently = datetime.now(UTC) - timedelta(days=UNREACHABLE_DAYS)
    if history.planned_recently >= UNREACHABLE_AFTER and not _reached_since(history, recently):
        found.append(Problem.NOT_REACHABLE)
    if history.reached >= NEVER_ACKNOWLEDGES_AFTER and not history.acknowledged:
        found.append(Problem.NEVER_ACKNOWLEDGES)
    if member.status is MemberStatus.ACTIVE and not working:
        found.append(Problem.NO_WORKING_CHANNEL)
    return found


def _reached_since(history: History, moment: datetime) -> bool:
    return history.last_reached_at is not None and history.last_reached_at >= moment.timestamp()


async def histories(store: Store, plp_id: str, *, now: datetime | None = None) -> dict[str, History]:
    """Each member's history over the PLP's latest ``HISTORY_ALERTS`` alerts (members never planned: absent)."""
    keys = store.keys
    newest = cast(
        list[tuple[str, float]],
        await store.redis.zrange(keys.plp_alerts(plp_id), 0, HISTORY_ALERTS - 1, desc=True, withscores=True),
    )
    recent = ((now or datetime.now(UTC)) - timedelta(days=UNREACHABLE_DAYS)).timestamp()
    found: dict[str, History] = {}
    for alert_id, created in newest:
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(keys.alert_plp_members(alert_id, plp_id))
            pipe.smembers(keys.alert_acks(alert_id))
            for status in _REACHED:
                pipe.zrange(keys.alert_deliveries_in(alert_id, status), 0, -1)
            planned, acks, *reached_refs = await pipe.execute()
        reached = {ref.split(":", 1)[1] for refs in reached_refs for ref in refs}
        for member_id in planned:
            _count(found.setdefault(member_id, History()), created, recent, member_id in reached, member_id in acks)
    return found


def _count(history: History, created: float, recent: float, reached: bool, acknowledged: bool) -> None:
    history.planned += 1
    history.planned_recently += created >= recent
    if reached:
        history.reached += 1
        history.last_reached_at = max(history.last_reached_at or 0.0, created)
    if acknowledged:
        history.acknowledged += 1
        history.last_acknowledged_at = max(history.last_acknowledged_at or 0.0, created)


async def member_health(store: Store, plp_id: str) -> list[Health]:
    """Every member of the PLP with their health, by name."""
    found = await histories(store, plp_id)
    result: list[Health] = []
    cursor = None
    while True:
        page = await store.list_members(plp_id, cursor=cursor, limit=1000)
        for member in page.items:
            history, working = found.get(member.id, History()), working_channels(member)
            result.append(Health(member, history, working, problems_of(member, history, working)))
        if page.next_cursor is None:
            return sorted(result, key=lambda h: (h.member.name.casefold(), h.member.id))
        cursor = page.next_cursor


CSV_COLUMNS = (
    "member_id",
    "name",
    "problems",
    "working_channels",
    "alerts_planned",
    "alerts_reached",
    "alerts_acknowledged",
    "last_reached_at",
    "last_acknowledged_at",
)


def to_csv(rows: Iterable[Health]) -> str:
    """The rows as CSV (comma separated, UTF-8, times in UTC ISO 8601); no contact point."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for h in rows:
        writer.writerow(
            (
                h.member.id,
                _cell(h.member.name),
                " ".join(p.value for p in h.problems),
                " ".join(c.value for c in h.working_channels),
                h.history.planned,
                h.history.reached,
                h.history.acknowledged,
                _iso(h.history.last_reached_at),
                _iso(h.history.last_acknowledged_at),
            )
        )
    return out.getvalue()


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _iso(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds") if at is not None else ""
