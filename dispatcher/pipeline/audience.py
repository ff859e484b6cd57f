"""Who an alert reached: members planned, reached, acknowledged, and when each first acknowledged.

An alert's audience is read from the sets the fan-out and the status scripts keep (see
``dispatcher.storage.keys``): the members planned, the deliveries per status, the members who
acknowledged and those no channel of the plan could reach. A member counts as *reached*
once one of their deliveries was handed to its provider or delivered (``sent`` or
``delivered``), and as *acknowledged* once they confirmed on any channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from dispatcher.core.models import ChannelName, DeliveryStatus
from dispatcher.storage.store import Store, delivery_ref

#: Statuses of a delivery that count its member as reached.
REACHED = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


@dataclass(frozen=True)
class Headcount:
    """The numbers of an alert's audience, cheap enough to read every second."""

    members: int
    acknowledged: int
    unreachable: int


@dataclass(frozen=True)
class Audience:
    """An alert's audience, member by member."""

    planned: set[str]
    reached: set[str]
    acknowledged: set[str]
    unreachable: set[str]
    #: each planned member's deliveries: channel -> status
    deliveries: dict[str, dict[ChannelName, DeliveryStatus]] = field(default_factory=dict)

    @property
    def not_reached(self) -> set[str]:
        return self.planned - self.reached

    @property
    def not_acknowledged(self) -> set[str]:
        return self.planned - self.acknowledged


async def headcount(store: Store, alert_id: str, plp_ids: Iterable[str], *, whole: bool) -> Headcount:
    """Members with deliveries planned through these PLPs, those who acknowledged, those nobody could reach.

    ``whole``: these are all the alert's PLPs, and set sizes are enough (each member is planned
    through one PLP only, so the PLPs' sets add up); otherwise the members are looked at.
    """
    keys, plps = store.keys, list(plp_ids)
    if not whole:
        found = await audience(store, alert_id, plps)
        unreachable = await members_of(store, found.unreachable, set(plps))
        return Headcount(members=len(found.planned), acknowledged=len(found.acknowledged), unreachable=len(unreachable))
    async with store.redis.pipeline(transaction=False) as pipe:
        for plp_id in plps:
            pipe.scard(keys.alert_plp_members(alert_id, plp_id))
        pipe.scard(keys.alert_acks(alert_id))
        pipe.scard(keys.alert_unreachable(alert_id))
        *per_plp, acknowledged, unreachable = await pipe.execute()
    return Headcount(members=sum(int(n) for n in per_plp), acknowledged=int(acknowledged), unreachable=int(unreachable))


async def members_of(store: Store, member_ids: set[str], plp_ids: set[str]) -> set[str]:
    """Those of these members who belong to one of these PLPs (erased members belong to none)."""
    members = await store.get_members(sorted(member_ids))
    return {m.id for m in members if m is not None and plp_ids & set(m.plp_ids)}


async def audience(store: Store, alert_id: str, plp_ids: Iterable[str]) -> Audience:
    """The alert's audience through these of its PLPs: who was planned, reached, acknowledged, or could not
    be reached at all (members who opted out are in none of these)."""
    keys, plps = store.keys, list(plp_ids)
    async with store.redis.pipeline(transaction=False) as pipe:
        for plp_id in plps:
            pipe.smembers(keys.alert_plp_members(alert_id, plp_id))
        pipe.smembers(keys.alert_acks(alert_id))
        pipe.smembers(keys.alert_unreachable(alert_id))
        for status in DeliveryStatus:
            pipe.zrange(keys.alert_deliveries_in(alert_id, status.value), 0, -1)
        results = await pipe.execute()
    planned: set[str] = set().union(*results[: len(plps)])
    acknowledged, unreachable, per_status = results[len(plps)], results[len(plps) + 1], results[len(plps) + 2 :]
    deliveries: dict[str, dict[ChannelName, DeliveryStatus]] = {}
    for status, refs in zip(DeliveryStatus, per_status, strict=True):
        for ref in cast(list[str], refs):
            channel, member_id = ref.split(":", 1)
            if member_id in planned:
                deliveries.setdefault(member_id, {})[ChannelName(channel)] = status
    reached = {m for m, by_channel in deliveries.items() if any(s in REACHED for s in by_channel.values())}
    return Audience(
        planned=planned,
        reached=reached,
        acknowledged=set(acknowledged) & planned,
        unreachable=set(unreachable),
        deliveries=deliveries,
    )


async def first_acknowledgements(store: Store, alert_id: str, member_ids: Iterable[str]) -> dict[str, float]:
    """When each of these members first acknowledged the alert (Unix time), on whichever channel."""
    ids = sorted(member_ids)
    refs = [(m, delivery_ref(c.value, m)) for m in ids for c in ChannelName]
    async with store.redis.pipeline(transaction=False) as pipe:
        for _, ref in refs:
            pipe.hget(store.keys.delivery(alert_id, ref), "ack_at")
        times = await pipe.execute()
    first: dict[str, float] = {}
    for (member_id, _), at in zip(refs, times, strict=True):
        if at is not None:
            first[member_id] = min(float(at), first.get(member_id, float("inf")))
    return first


@dataclass(frozen=True)
class LastAcknowledgement:
    alert_id: str
    at: float | None  # None when the alert's deliveries were purged since
    via: str | None


async def last_acknowledgements(
    store: Store, plp_id: str, member_ids: Iterable[str], *, alerts: int = 200
) -> dict[str, LastAcknowledgement]:
    """The last alert of the PLP (of its latest ``alerts``) each of these members acknowledged, and when.

    Read newest alert first, a member at a time leaving the search once found.
    """
    remaining = sorted(set(member_ids))
    newest = cast(list[str], await store.redis.zrange(store.keys.plp_alerts(plp_id), 0, alerts - 1, desc=True))
    found: dict[str, str] = {}
    for start in range(0, len(newest), 50):
        if not remaining:
            break
        chunk = newest[start : start + 50]
        async with store.redis.pipeline(transaction=False) as pipe:
            for alert_id in chunk:
                pipe.smismember(store.keys.alert_acks(alert_id), remaining)
            flags = await pipe.execute()
        for alert_id, acked in zip(chunk, flags, strict=True):
            for member_id, yes in zip(remaining, acked, strict=True):
                if yes and member_id not in found:
                    found[member_id] = alert_id
        remaining = [m for m in remaining if m not in found]
    return {m: await _acknowledgement(store, alert_id, m) for m, alert_id in found.items()}


async def _acknowledgement(store: Store, alert_id: str, member_id: str) -> LastAcknowledgement:
    async with store.redis.pipeline(transaction=False) as pipe:
        for channel in ChannelName:
            pipe.hmget(store.keys.delivery(alert_id, delivery_ref(channel.value, member_id)), "ack_at", "ack_channel")
        rows = await pipe.execute()
    acks = sorted((float(at), via) for at, via in rows if at is not None)
    return LastAcknowledgement(alert_id=alert_id, at=acks[0][0] if acks else None, via=acks[0][1] if acks else None)
