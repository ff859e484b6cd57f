"""Reading and writing the domain in Redis (asyncio): PLPs, members, actors, tokens, alerts.

Writes that must enqueue work at the same time (accepting an alert, a relay decision)
live in ``dispatcher.intake``, which uses RQ's synchronous client.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from dispatcher.contacts import contact_digest
from dispatcher.keys import Keys
from dispatcher.models import (
    Actor,
    Alert,
    AlertStatus,
    ChannelName,
    Charter,
    DeliveryStatus,
    Member,
    MemberStatus,
    Plp,
    Relay,
)
from dispatcher.scripts import Scripts


class Conflict(Exception):
    """The change contradicts what is stored; the message says what."""


def new_id() -> str:
    """A new random identifier: 16 lowercase hex digits."""
    return secrets.token_hex(8)


def now_ts() -> float:
    return datetime.now(UTC).timestamp()


def from_ts(value: str | bytes | float | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(float(value), UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


@dataclass(frozen=True)
class AlertProgress:
    """An alert's mutable side: status and its times, relays, counters."""

    status: AlertStatus
    times: dict[str, datetime]
    expires_at: datetime
    relays: list[Relay]
    counts: dict[str, int]


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    alert_id: str
    member_id: str
    channel: ChannelName
    status: DeliveryStatus
    times: dict[str, datetime]
    attempts: int
    provider_id: str | None
    last_error: str | None
    cause: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


def delivery_ref(channel: str, member_id: str) -> str:
    """How a delivery is named inside its alert."""
    return f"{channel}:{member_id}"


def delivery_id(alert_id: str, ref: str) -> str:
    """The public id of a delivery: ``<alert>:<channel>:<member>``."""
    return f"{alert_id}:{ref}"


def split_delivery_id(value: str) -> tuple[str, str, str]:
    """``(alert_id, channel, member_id)`` of a public delivery id; raises ``ValueError``."""
    alert_id, channel, member_id = value.split(":")
    return alert_id, ChannelName(channel).value, member_id


def _contacts(member: Member | None) -> list[tuple[str, str | None]]:
    """A member's contact points by kind, as the contact index knows them."""
    if member is None:
        return [("phone", None), ("email", None), ("telegram", None)]
    chat = str(member.telegram_chat_id) if member.telegram_chat_id is not None else None
    return [("phone", member.phone), ("email", member.email), ("telegram", chat)]


def times_of(raw: dict[str, str]) -> dict[str, datetime]:
    return {k[2:]: from_ts(v) for k, v in raw.items() if k.startswith("t_")}  # type: ignore[misc]


class Store:
    """The domain's persistence, on an asyncio Redis client that decodes responses."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = Scripts.register(redis)

    # -- PLPs ---------------------------------------------------------------------------

    async def save_plp(self, plp: Plp, *, previous_zone: str | None = None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.plp(plp.id), plp.model_dump_json())
            pipe.zadd(self.keys.plps(), {plp.id: 0})
            if previous_zone and previous_zone != plp.police_zone:
                pipe.srem(self.keys.zone_plps(previous_zone), plp.id)
            pipe.sadd(self.keys.zone_plps(plp.police_zone), plp.id)
            await pipe.execute()

    async def get_plp(self, plp_id: str) -> Plp | None:
        raw = await self.redis.get(self.keys.plp(plp_id))
        return Plp.model_validate_json(raw) if raw else None

    async def get_plps(self, plp_ids: Iterable[str]) -> dict[str, Plp | None]:
        ids = list(plp_ids)
        if not ids:
            return {}
        raws = await self.redis.mget([self.keys.plp(i) for i in ids])
        return {i: Plp.model_validate_json(r) if r else None for i, r in zip(ids, raws, strict=True)}

    async def all_plp_ids(self) -> list[str]:
        return cast(list[str], await self.redis.zrange(self.keys.plps(), 0, -1))

    async def zone_plp_ids(self, zone: str) -> list[str]:
        return sorted(cast(set[str], await self.redis.smembers(self.keys.zone_plps(zone))))

    async def set_charter(self, plp: Plp, charter: Charter) -> Plp:
        updated = plp.model_copy(update={"charter": charter})
        await self.redis.set(self.keys.plp(plp.id), updated.model_dump_json())
        return updated

    # -- members ------------------------------------------------------------------------

    async def find_member_by_contact(self, *, phone: str | None, email: str | None) -> str | None:
        """The id of the member who owns this phone or e-mail, if any."""
        for kind, value in (("phone", phone), ("email", email)):
            if value:
                found = await self.redis.get(self.keys.contact(contact_digest(kind, value)))
                if found:
                    return str(found)
        return None

    async def find_members_by_contacts(self, contacts: list[tuple[str | None, str | None]]) -> list[str | None]:
        """For each ``(phone, email)``, the id of the member who owns either, in one round trip."""
        digests = [
            [self.keys.contact(contact_digest(kind, value)) for kind, value in (("phone", p), ("email", e)) if value]
            for p, e in contacts
        ]
        flat = [key for keys in digests for key in keys]
        found = iter(await self.redis.mget(flat) if flat else [])
        owners = []
        for keys in digests:
            ids = [next(found) for _ in keys]
            owners.append(next((str(i) for i in ids if i), None))
        return owners

    async def add_new_members(self, members: list[Member], *, chunk: int = 500) -> None:
        """Store members whose contact points nobody uses yet, a pipeline per chunk."""
        for start in range(0, len(members), chunk):
            async with self.redis.pipeline(transaction=True) as pipe:
                for member in members[start : start + chunk]:
                    pipe.set(self.keys.member(member.id), member.model_dump_json())
                    for kind, value in (("phone", member.phone), ("email", member.email)):
                        if value:
                            pipe.set(self.keys.contact(contact_digest(kind, value)), member.id, nx=True)
                    for plp_id in member.plp_ids:
                        pipe.zadd(self.keys.plp_members(plp_id), {member.id: 0})
                await pipe.execute()

    async def save_member(self, member: Member, *, previous: Member | None = None) -> None:
        """Store a member, its contact index and its PLP memberships.

        Raises ``Conflict`` when its phone or e-mail belongs to another member.
        """
        contacts = _contacts(member)
        for kind, value in contacts:
            if value:
                owner = await self.redis.get(self.keys.contact(contact_digest(kind, value)))
                if owner and owner != member.id:
                    raise Conflict(f"{kind}: another member already uses this {kind}")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.member(member.id), member.model_dump_json())
            for (kind, value), (_, old) in zip(contacts, _contacts(previous), strict=True):
                if old and old != value:
                    pipe.delete(self.keys.contact(contact_digest(kind, old)))
                if value:
                    pipe.set(self.keys.contact(contact_digest(kind, value)), member.id)
            for plp_id in member.plp_ids:
                pipe.zadd(self.keys.plp_members(plp_id), {member.id: 0})
            if member.status is MemberStatus.OPTED_OUT:
                pipe.sadd(self.keys.optouts(), member.id)
            else:
                pipe.srem(self.keys.optouts(), member.id)
            await pipe.execute()

    async def get_member(self, member_id: str) -> Member | None:
        raw = await self.redis.get(self.keys.member(member_id))
        return Member.model_validate_json(raw) if raw else None

    async def get_members(self, member_ids: list[str]) -> list[Member | None]:
        if not member_ids:
            return []
        raws = await self.redis.mget([self.keys.member(i) for i in member_ids])
        return [Member.model_validate_json(r) if r else None for r in raws]

    async def list_members(self, plp_id: str, *, cursor: str | None, limit: int) -> Page:
        ids: list[str] = await self.redis.zrange(  # type: ignore[assignment]
            self.keys.plp_members(plp_id),
            f"({cursor}" if cursor else "-",
            "+",
            bylex=True,
            offset=0,
            num=limit + 1,
        )
        more = len(ids) > limit
        ids = ids[:limit]
        members = [m for m in await self.get_members(ids) if m is not None]
        return Page(items=members, next_cursor=ids[-1] if more else None)

    async def remove_member(self, member: Member, plp_id: str) -> Member | None:
        """Take a member out of a PLP. With no PLP left, their personal data is erased.

        Returns the member as they remain, or None once erased. Deliveries keep only the
        member's id, so the PLP's figures stay right.
        """
        remaining = [p for p in member.plp_ids if p != plp_id]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys.plp_members(plp_id), member.id)
            if remaining:
                kept = member.model_copy(update={"plp_ids": remaining, "updated_at": datetime.now(UTC)})
                pipe.set(self.keys.member(member.id), kept.model_dump_json())
            else:
                kept = None
                pipe.delete(self.keys.member(member.id))
                for kind, value in _contacts(member):
                    if value:
                        pipe.delete(self.keys.contact(contact_digest(kind, value)))
                # Stays in the opt-out set only as an id, so that nothing queued reaches them.
                pipe.sadd(self.keys.optouts(), member.id)
            await pipe.execute()
        return kept

    # -- actors and tokens ----------------------------------------------------------------

    async def save_actor(self, actor: Actor) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.actor(actor.id), actor.model_dump_json())
            pipe.zadd(self.keys.actors(), {actor.id: 0})
            await pipe.execute()

    async def get_actor(self, actor_id: str) -> Actor | None:
        raw = await self.redis.get(self.keys.actor(actor_id))
        return Actor.model_validate_json(raw) if raw else None

    async def issue_token(self, actor: Actor) -> str:
        """Create a bearer token for the actor. The token is returned once; only its hash is kept."""
        token = f"plp_{secrets.token_urlsafe(32)}"
        record = {"actor_id": actor.id, "issued_at": now_ts()}
        await self.redis.hset(self.keys.token(hash_token(token)), mapping=record)  # type: ignore[arg-type]
        return token

    async def actor_for_token(self, token: str) -> Actor | None:
        actor_id = await self.redis.hget(self.keys.token(hash_token(token)), "actor_id")
        return await self.get_actor(str(actor_id)) if actor_id else None

    # -- alerts ---------------------------------------------------------------------------

    async def get_alert(self, alert_id: str) -> Alert | None:
        raw = await self.redis.get(self.keys.alert(alert_id))
        return Alert.model_validate_json(raw) if raw else None

    async def get_progress(self, alert_id: str) -> AlertProgress:
        """Where the alert stands. Relays still awaiting past the time-to-live expire on the way."""
        await self.scripts.expire_relays(
            keys=[
                self.keys.alert_relays(alert_id),
                self.keys.alert_state(alert_id),
                self.keys.alert_counts(alert_id),
                self.keys.events(),
            ],
            args=[alert_id, now_ts()],
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.alert_state(alert_id))
            pipe.hgetall(self.keys.alert_relays(alert_id))
            pipe.hgetall(self.keys.alert_counts(alert_id))
            pipe.scard(self.keys.alert_unreachable(alert_id))
            state, relays, counts, unreachable = await pipe.execute()
        return AlertProgress(
            status=AlertStatus(state["status"]),
            times=times_of(state),
            expires_at=from_ts(state["expires_at"]),  # type: ignore[arg-type]
            relays=[Relay.model_validate_json(r) for r in relays.values()],
            counts={k: int(v) for k, v in counts.items()} | {"unreachable": unreachable},
        )

    async def list_alert_ids(self, *, plp_ids: list[str] | None, limit: int, before: float | None) -> list[str]:
        """Newest first; all alerts, or those targeting any of ``plp_ids``."""
        top = f"({before}" if before is not None else "+inf"
        if plp_ids is None:
            newest = await self.redis.zrange(
                self.keys.alerts(), top, "-inf", desc=True, byscore=True, offset=0, num=limit
            )
            return cast(list[str], newest)
        scored: dict[str, float] = {}
        for plp_id in plp_ids:
            rows = await self.redis.zrange(
                self.keys.plp_alerts(plp_id), top, "-inf", desc=True, byscore=True, offset=0, num=limit, withscores=True
            )
            scored.update(cast(list[tuple[str, float]], rows))
        return sorted(scored, key=lambda i: scored[i], reverse=True)[:limit]

    async def list_deliveries(
        self,
        alert_id: str,
        *,
        status: DeliveryStatus | None,
        channel: ChannelName | None,
        cursor: str | None,
        limit: int,
    ) -> Page:
        """Deliveries of an alert in a stable order (channel, then member), one page at a time."""
        key = self.keys.alert_deliveries_in(alert_id, status.value) if status else self.keys.alert_deliveries(alert_id)
        low = f"[{channel.value}:" if channel else "-"
        high = f"[{channel.value}:\xff" if channel else "+"
        if cursor:
            low = f"({cursor}"
        refs: list[str] = await self.redis.zrange(key, low, high, bylex=True, offset=0, num=limit + 1)  # type: ignore[assignment]
        more = len(refs) > limit
        refs = refs[:limit]
        async with self.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.hgetall(self.keys.delivery(alert_id, ref))
            raws = await pipe.execute()
        items = [self._delivery(alert_id, ref, raw) for ref, raw in zip(refs, raws, strict=True) if raw]
        return Page(items=items, next_cursor=refs[-1] if more else None)

    async def get_delivery(self, alert_id: str, ref: str) -> DeliveryRecord | None:
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.delivery(alert_id, ref)))
        return self._delivery(alert_id, ref, raw) if raw else None

    @staticmethod
    def _delivery(alert_id: str, ref: str, raw: dict[str, str]) -> DeliveryRecord:
        channel, member_id = ref.split(":", 1)
        return DeliveryRecord(
            id=delivery_id(alert_id, ref),
            alert_id=alert_id,
            member_id=member_id,
            channel=ChannelName(channel),
            status=DeliveryStatus(raw["status"]),
            times=times_of(raw),
            attempts=int(raw.get("attempts", 0)),
            provider_id=raw.get("provider_id"),
            last_error=raw.get("last_error"),
            cause=raw.get("cause"),
            acknowledged_at=from_ts(raw.get("ack_at")),
            acknowledged_by=raw.get("ack_channel"),
        )

    async def cancel_alert(self, alert_id: str) -> bool:
        """Cancel an alert: no send that has not started will start. False if it had already ended."""
        moved = await self.scripts.advance_alert(
            keys=[self.keys.alert_state(alert_id), self.keys.events()],
            args=[alert_id, AlertStatus.CANCELLED.value, now_ts()],
        )
        return int(moved) == 1

    async def mark_unusable(self, member_id: str, channel: ChannelName, reason: str) -> None:
        """Note that a member's contact point failed for good on a channel; later alerts skip it."""
        member = await self.get_member(member_id)
        if member is None or member.unusable.get(channel) == reason:
            return
        unusable = {**member.unusable, channel: reason}
        await self.save_member(member.model_copy(update={"unusable": unusable}), previous=member)

    async def remember_last_delivery(self, member_id: str, channel: ChannelName, delivery: str, *, ttl: int) -> None:
        """Note the last delivery on a channel whose replies carry no reference (SMS, Telegram)."""
        await self.redis.set(self.keys.member_last(member_id, channel.value), delivery, ex=ttl)

    async def last_delivery(self, member_id: str, channel: ChannelName) -> str | None:
        found = await self.redis.get(self.keys.member_last(member_id, channel.value))
        return str(found) if found else None

    async def acknowledge(self, alert_id: str, ref: str, *, via: str) -> bool:
        """Record that the member acknowledged this delivery; True the first time only."""
        result = await self.scripts.acknowledge(
            keys=[self.keys.delivery(alert_id, ref), self.keys.alert_counts(alert_id)], args=[via, now_ts()]
        )
        return int(result) == 1
