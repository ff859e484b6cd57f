"""Reading and writing the domain in Redis (asyncio): PLPs, members, actors, tokens, alerts.

Writes that must enqueue work at the same time (accepting an alert, a relay decision)
live in ``dispatcher.pipeline.intake``, which uses RQ's synchronous client.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import WatchError

from config.settings import DEFAULT_TOKEN_TTL_DAYS
from dispatcher.core.contacts import contact_digest
from dispatcher.core.models import (
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
from dispatcher.core.places import Address, LocationSource, Sector
from dispatcher.storage import erasure
from dispatcher.storage.counters import Activity, activity_counter
from dispatcher.storage.keys import Keys
from dispatcher.storage.limits import chat_limit_name, whatsapp_user_limit_name
from dispatcher.storage.records import AlertProgress, DeliveryRecord, NewToken, Page, TokenRecord
from dispatcher.storage.scripts import Scripts

log = structlog.get_logger(__name__)


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


DAY = 86400


def new_token_id() -> str:
    """A token's public id: ``tok_`` and 10 hex digits (shown in listings, used to revoke)."""
    return f"tok_{secrets.token_hex(5)}"


class TokenRefused(Exception):
    """A bearer token that may not be used; ``reason`` is "unknown", "expired" or "revoked"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _token_record(raw: dict[str, str]) -> TokenRecord:
    return TokenRecord(
        id=raw.get("token_id", ""),
        actor_id=raw["actor_id"],
        issued_at=from_ts(raw["issued_at"]),  # type: ignore[arg-type]
        expires_at=from_ts(raw.get("expires_at", raw["issued_at"])),  # type: ignore[arg-type]
        revoked_at=from_ts(raw.get("revoked_at")),
    )


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

    # -- sectors ------------------------------------------------------------------------

    async def save_sector(self, sector: Sector) -> None:
        await self.redis.hset(self.keys.plp_sectors(sector.plp_id), sector.id, sector.model_dump_json())

    async def get_sectors(self, plp_id: str) -> list[Sector]:
        """The PLP's sectors, by name."""
        raws = cast(dict[str, str], await self.redis.hgetall(self.keys.plp_sectors(plp_id)))
        return sorted((Sector.model_validate_json(r) for r in raws.values()), key=lambda s: (s.name, s.id))

    async def delete_sector(self, plp_id: str, sector_id: str) -> bool:
        return bool(await self.redis.hdel(self.keys.plp_sectors(plp_id), sector_id))

    # -- members ------------------------------------------------------------------------

    async def find_member_by_contact(
        self, *, phone: str | None, email: str | None, telegram: str | None = None
    ) -> str | None:
        """The id of the member who owns this phone, e-mail or Telegram chat, if any."""
        for kind, value in (("phone", phone), ("email", email), ("telegram", telegram)):
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

    # Joins, leaves and opt-outs are counted per PLP and month for its annual evaluation
    # (``dispatcher.storage.counters``), by the script that makes the change, and only if it made one.

    async def _counted(self, pipe: Any, op: str, key: str, member_id: str, counters: list[tuple[str, str]]) -> None:
        """Queue on ``pipe``: ``op`` (zadd, zrem, sadd) ``member_id`` in ``key``, counted in ``counters``."""
        await self.scripts.counted_change(
            keys=[key, *(hash_key for hash_key, _ in counters)],
            args=[op, member_id, *(name for _, name in counters)],
            client=pipe,
        )

    async def _existing_plps(self, plp_ids: Iterable[str]) -> dict[str, Plp]:
        return {i: plp for i, plp in (await self.get_plps(set(plp_ids))).items() if plp is not None}

    def _tally(
        self, plps: dict[str, Plp], plp_ids: Iterable[str], event: Activity, at: datetime
    ) -> list[tuple[str, str]]:
        """The counters of ``event`` at ``at`` for those of ``plp_ids`` in ``plps``."""
        return [activity_counter(self.keys, plps[i], event, at) for i in plp_ids if i in plps]

    async def add_new_members(self, members: list[Member], *, chunk: int = 500) -> None:
        """Store members whose contact points nobody uses yet, a pipeline per chunk (joined at their creation)."""
        plps = await self._existing_plps(plp_id for member in members for plp_id in member.plp_ids)
        for start in range(0, len(members), chunk):
            async with self.redis.pipeline(transaction=True) as pipe:
                for member in members[start : start + chunk]:
                    pipe.set(self.keys.member(member.id), member.model_dump_json())
                    for kind, value in (("phone", member.phone), ("email", member.email)):
                        if value:
                            pipe.set(self.keys.contact(contact_digest(kind, value)), member.id, nx=True)
                    for plp_id in member.plp_ids:
                        joined = self._tally(plps, [plp_id], Activity.JOINED, member.created_at)
                        await self._counted(pipe, "zadd", self.keys.plp_members(plp_id), member.id, joined)
                await pipe.execute()

    async def save_member(self, member: Member, *, previous: Member | None = None) -> None:
        """Store a member, its contact index and its PLP memberships.

        A PLP it joins and an opt-out are counted for the evaluation at ``member.updated_at``.
        Raises ``Conflict`` when its phone or e-mail belongs to another member.
        """
        contacts = _contacts(member)
        for kind, value in contacts:
            if value:
                owner = await self.redis.get(self.keys.contact(contact_digest(kind, value)))
                if owner and owner != member.id:
                    raise Conflict(f"{kind}: another member already uses this {kind}")
        plps, at = await self._existing_plps(member.plp_ids), member.updated_at
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.member(member.id), member.model_dump_json())
            for (kind, value), (_, old) in zip(contacts, _contacts(previous), strict=True):
                if old and old != value:
                    pipe.delete(self.keys.contact(contact_digest(kind, old)))
                if value:
                    pipe.set(self.keys.contact(contact_digest(kind, value)), member.id)
            for plp_id in member.plp_ids:
                joined = self._tally(plps, [plp_id], Activity.JOINED, at)
                await self._counted(pipe, "zadd", self.keys.plp_members(plp_id), member.id, joined)
            if member.status is MemberStatus.OPTED_OUT:
                opted_out = self._tally(plps, member.plp_ids, Activity.OPTED_OUT, at)
                await self._counted(pipe, "sadd", self.keys.optouts(), member.id, opted_out)
            else:
                pipe.srem(self.keys.optouts(), member.id)
            await pipe.execute()

    async def settle_place(self, member_id: str, address: Address, update: dict[str, Any]) -> Member | None:
        """Write a geocoder's answer (``update``: the member's ``location`` and ``locating``) on the member if
        their address is still ``address``; take them out of the geocoder's queue either way.

        Returns the member as written, or None when they are gone or their address changed meanwhile
        (then the answer is about an address they no longer have, and is dropped).
        """
        key = self.keys.member(member_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            raw = await pipe.get(key)
            member = Member.model_validate_json(raw) if raw else None
            pipe.multi()
            pipe.zrem(self.keys.locate(), member_id)
            current = (
                member is not None
                and member.address == address
                and (member.location is None or member.location.source is not LocationSource.GIVEN)
            )
            if member is not None and current:
                member = member.model_copy(update=update)
                pipe.set(key, member.model_dump_json())
            try:
                await pipe.execute()
            except WatchError:
                return None  # changed meanwhile: the change queued it again if it must be located
        return member if current else None

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

    async def remove_member(self, member: Member, plp_id: str, *, at: datetime | None = None) -> Member | None:
        """Take a member out of a PLP (at ``at``, default now). With no PLP left, their personal data is
        erased at once.

        Returns the member as they remain, or None once erased. Erasure deletes the record,
        its contact index, the last-delivery pointers, pending Telegram links and the
        member's replies, and takes contact points out of their deliveries (see
        ``dispatcher.storage.erasure``). Deliveries keep only the member's random id, so the PLP's
        figures stay right; the id stays in the opt-out set so that nothing queued reaches them.
        The leave is counted for the PLP's evaluation.
        """
        at = at or datetime.now(UTC)
        left = self._tally(await self._existing_plps([plp_id]), [plp_id], Activity.LEFT, at)
        remaining = [p for p in member.plp_ids if p != plp_id]
        if not remaining:
            await self._erase(member, plp_id, left)
            return None
        sectors = {p: s for p, s in member.sector_ids.items() if p != plp_id}  # a sector set by hand in it goes too
        kept = member.model_copy(update={"plp_ids": remaining, "updated_at": at, "sector_ids": sectors})
        async with self.redis.pipeline(transaction=True) as pipe:
            await self._counted(pipe, "zrem", self.keys.plp_members(plp_id), member.id, left)
            pipe.set(self.keys.member(member.id), kept.model_dump_json())
            # Their deliveries of this PLP's alerts are found through it again on erasure.
            pipe.sadd(self.keys.member_left(member.id), plp_id)
            await pipe.execute()
        return kept

    async def _erase(self, member: Member, plp_id: str, counters: list[tuple[str, str]]) -> None:
        # Traces first, then the record: a crash in between leaves a member who can be deleted again.
        left = cast(set[str], await self.redis.smembers(self.keys.member_left(member.id)))
        deliveries = await self.member_deliveries(member.id, sorted({plp_id, *left}))
        scrubbed = await erasure.scrub_deliveries(self.redis, self.keys, member, deliveries)
        await erasure.erase_telegram_links(self.redis, self.keys, member.id)
        await erasure.erase_replies(self.redis, self.keys, member.id)
        answers = await erasure.erase_answers(self.redis, self.keys, member.id, (d.alert_id for d in deliveries))
        async with self.redis.pipeline(transaction=True) as pipe:
            await self._counted(pipe, "zrem", self.keys.plp_members(plp_id), member.id, counters)
            pipe.delete(self.keys.member(member.id), self.keys.member_left(member.id))
            pipe.zrem(self.keys.locate(), member.id)
            pipe.delete(*(self.keys.member_last(member.id, channel.value) for channel in ChannelName))
            for kind, value in _contacts(member):
                if value:
                    pipe.delete(self.keys.contact(contact_digest(kind, value)))
            if member.telegram_chat_id is not None:
                chat = chat_limit_name(str(member.telegram_chat_id))
                pipe.delete(self.keys.limit(chat), self.keys.departures(chat))
            if member.phone:
                user = whatsapp_user_limit_name(member.phone)
                pipe.delete(self.keys.limit(user), self.keys.departures(user))
            pipe.sadd(self.keys.optouts(), member.id)
            await pipe.execute()
        # Once more, for a reply or a link that came in meanwhile (replies check for this too).
        await erasure.erase_telegram_links(self.redis, self.keys, member.id)
        replies = await erasure.erase_replies(self.redis, self.keys, member.id)
        log.info(
            "member.erased",
            member_id=member.id,
            deliveries=len(deliveries),
            scrubbed=scrubbed,
            replies=replies,
            answers=answers,
        )

    async def member_deliveries(
        self, member_id: str, plp_ids: Iterable[str], *, chunk: int = 500
    ) -> list[DeliveryRecord]:
        """Every delivery to a member of the alerts of these PLPs not yet purged, oldest alert first.

        Found through the PLPs' alert indexes and the delivery keys, one per channel: there
        is no per-member index of deliveries, which would cost memory for every delivery.
        """
        since = await self.redis.get(self.keys.purged_until())
        created: dict[str, float] = {}
        for plp_id in plp_ids:
            for start in itertools.count(0, chunk):
                rows = await self.redis.zrange(
                    self.keys.plp_alerts(plp_id),
                    since or "-inf",
                    "+inf",
                    byscore=True,
                    offset=start,
                    num=chunk,
                    withscores=True,
                )
                created.update(cast(list[tuple[str, float]], rows))
                if len(rows) < chunk:
                    break
        refs = [
            (alert_id, delivery_ref(channel.value, member_id))
            for alert_id in sorted(created, key=created.__getitem__)
            for channel in ChannelName
        ]
        records: list[DeliveryRecord] = []
        for start in range(0, len(refs), chunk):
            part = refs[start : start + chunk]
            async with self.redis.pipeline(transaction=False) as pipe:
                for alert_id, ref in part:
                    pipe.hgetall(self.keys.delivery(alert_id, ref))
                raws = await pipe.execute()
            records += [self._delivery(a, ref, raw) for (a, ref), raw in zip(part, raws, strict=True) if raw]
        return records

    # -- actors and tokens ----------------------------------------------------------------

    async def save_actor(self, actor: Actor) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.actor(actor.id), actor.model_dump_json())
            pipe.zadd(self.keys.actors(), {actor.id: 0})
            await pipe.execute()

    async def delete_actor(self, actor_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.actor(actor_id))
            pipe.zrem(self.keys.actors(), actor_id)
            await pipe.execute()

    async def get_actor(self, actor_id: str) -> Actor | None:
        raw = await self.redis.get(self.keys.actor(actor_id))
        return Actor.model_validate_json(raw) if raw else None

    async def all_actors(self, *, chunk: int = 500) -> AsyncIterator[list[Actor]]:
        """Every actor, ``chunk`` at a time (a round trip each)."""
        ids = cast(list[str], await self.redis.zrange(self.keys.actors(), 0, -1))
        for start in range(0, len(ids), chunk):
            raws = await self.redis.mget([self.keys.actor(i) for i in ids[start : start + chunk]])
            yield [Actor.model_validate_json(raw) for raw in raws if raw]

    async def issue_token(self, actor: Actor, *, ttl_days: int = DEFAULT_TOKEN_TTL_DAYS) -> NewToken:
        """Create a bearer token for the actor, valid ``ttl_days``.

        The secret is in the returned ``NewToken`` only: Redis keeps its hash, under which
        the token's record lives, and an index from the token's public id to that hash.
        """
        secret = f"plp_{secrets.token_urlsafe(32)}"
        digest, issued = hash_token(secret), now_ts()
        token_id = new_token_id()
        while not await self.redis.set(self.keys.token_id(token_id), digest, nx=True):
            token_id = new_token_id()  # 40 random bits: a clash is rare, but would mix two tokens up
        expires = issued + ttl_days * DAY
        record = {"actor_id": actor.id, "token_id": token_id, "issued_at": issued, "expires_at": expires}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.token(digest), mapping=record)  # type: ignore[arg-type]
            pipe.sadd(self.keys.actor_tokens(actor.id), token_id)
            pipe.zadd(self.keys.tokens(), {token_id: issued})
            await pipe.execute()
        return NewToken(
            secret=secret,
            record=TokenRecord(
                id=token_id,
                actor_id=actor.id,
                issued_at=from_ts(issued),  # type: ignore[arg-type]
                expires_at=from_ts(expires),  # type: ignore[arg-type]
                revoked_at=None,
            ),
        )

    async def actor_for_token(self, token: str) -> tuple[Actor, TokenRecord]:
        """The actor a bearer token stands for, and the token's record.

        Raises ``TokenRefused`` with the reason: "unknown", "expired" or "revoked".
        """
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.token(hash_token(token))))
        if not raw:
            raise TokenRefused("unknown")
        if "expires_at" not in raw:  # issued before tokens had an expiry: treated as expired, to be reissued
            raise TokenRefused("expired")
        record = _token_record(raw)
        reason = record.refusal(now_ts())
        if reason is not None:
            raise TokenRefused(reason)
        actor = await self.get_actor(record.actor_id)
        if actor is None:
            raise TokenRefused("unknown")
        return actor, record

    async def get_tokens(self, token_ids: list[str]) -> list[TokenRecord]:
        """The records of these tokens (by public id), in the same order; unknown ids are left out."""
        if not token_ids:
            return []
        digests = await self.redis.mget([self.keys.token_id(i) for i in token_ids])
        async with self.redis.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.hgetall(self.keys.token(str(digest)))
            raws = await pipe.execute()
        return [_token_record(raw) for digest, raw in zip(digests, raws, strict=True) if digest and raw]

    async def list_tokens(self, *, actor_id: str | None, limit: int) -> list[TokenRecord]:
        """Tokens newest first: every token, or the actor's."""
        if actor_id is None:
            ids = cast(list[str], await self.redis.zrange(self.keys.tokens(), 0, limit - 1, desc=True))
        else:
            ids = sorted(cast(set[str], await self.redis.smembers(self.keys.actor_tokens(actor_id))))
        records = await self.get_tokens(ids)
        return sorted(records, key=lambda r: (r.issued_at, r.id), reverse=True)[:limit]

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        """Revoke a token from now on (a second revocation keeps the first time); None if unknown."""
        digest = await self.redis.get(self.keys.token_id(token_id))
        if not digest:
            return None
        await self.redis.hsetnx(self.keys.token(str(digest)), "revoked_at", now_ts())
        found = await self.get_tokens([token_id])
        return found[0] if found else None

    # -- alerts ---------------------------------------------------------------------------

    async def get_alert(self, alert_id: str) -> Alert | None:
        raw = await self.redis.get(self.keys.alert(alert_id))
        return Alert.model_validate_json(raw) if raw else None

    async def get_relay(self, alert_id: str, plp_id: str) -> Relay | None:
        """The relay decision of one PLP for an alert."""
        raw = await self.redis.hget(self.keys.alert_relays(alert_id), plp_id)
        return Relay.model_validate_json(raw) if raw else None

    async def get_progress(self, alert_id: str) -> AlertProgress:
        """Where the alert stands. Relays still awaiting past the time-to-live expire on the way."""
        await self.scripts.expire_relays(
            keys=[
                self.keys.alert_relays(alert_id),
                self.keys.alert_state(alert_id),
                self.keys.alert_counts(alert_id),
                self.keys.events(),
                self.keys.metrics(),
            ],
            args=[alert_id, now_ts()],
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.alert_state(alert_id))
            pipe.hgetall(self.keys.alert_relays(alert_id))
            pipe.hgetall(self.keys.alert_counts(alert_id))
            pipe.scard(self.keys.alert_unreachable(alert_id))
            pipe.zrange(self.keys.alert_follow_ups(alert_id), 0, -1)
            state, relays, counts, unreachable, follow_ups = await pipe.execute()
        return AlertProgress(
            status=AlertStatus(state["status"]),
            times=times_of(state),
            expires_at=from_ts(state["expires_at"]),  # type: ignore[arg-type]
            relays=[Relay.model_validate_json(r) for r in relays.values()],
            counts={k: int(v) for k, v in counts.items()} | {"unreachable": unreachable},
            held_until=from_ts(state.get("held_until")),
            follow_ups=tuple(follow_ups),
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
            failures=int(raw.get("failures", 0)),
            possible_duplicates=int(raw.get("possible_duplicates", 0)),
            provider_id=raw.get("provider_id"),
            last_error=raw.get("last_error"),
            cause=raw.get("cause"),
            acknowledged_at=from_ts(raw.get("ack_at")),
            acknowledged_by=raw.get("ack_channel"),
        )

    async def cancel_alert(self, alert_id: str) -> bool:
        """Cancel an alert: no send that has not started will start. False if it had already ended."""
        moved = await self.scripts.advance_alert(
            keys=[self.keys.alert_state(alert_id), self.keys.events(), self.keys.metrics()],
            args=[alert_id, AlertStatus.CANCELLED.value, now_ts()],
        )
        return int(moved) == 1

    async def sends_landed(self, *, alert_id: str | None = None, member_id: str | None = None) -> int:
        """Wait until each send of the alert (or to the member) already handed to a provider has its answer;
        return how many are still unanswered when their time is up (0: nothing more of theirs can reach
        a provider).

        After a cancel or an opt-out, no send starts any more (the claim script checks at the last
        moment); this waits for those that started just before. Each is waited for until the end
        of its provider call (its score in ``handed``, set as it was handed over): a dead worker's
        send is not waited for past that. Events from the scripts wake the wait (no polling).
        """

        def theirs(entry: str) -> bool:
            alert, _, ref = entry.partition("|")
            return alert == alert_id if alert_id is not None else ref.endswith(f":{member_id}")

        async def pending() -> list[float]:
            entries = cast(list[tuple[str, float]], await self.redis.zrange(self.keys.handed(), 0, -1, withscores=True))
            return [until for entry, until in entries if theirs(entry)]

        left = await pending()
        if not left or max(left) <= now_ts():
            return len(left)
        async with self.redis.pubsub() as pubsub:
            await pubsub.subscribe(self.keys.handed_landed())
            while left := await pending():  # read again once subscribed: nothing lands unheard
                wait = max(left) - now_ts()
                if wait <= 0:
                    return len(left)
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
        return 0

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

    async def acknowledge(self, alert_id: str, ref: str, *, via: str, at: float | None = None) -> bool:
        """Record that the member acknowledged this delivery (``<channel>:<member>``) at ``at`` (Unix time,
        default now); True the first time only."""
        channel, member_id = ref.split(":", 1)
        result = await self.scripts.acknowledge(
            keys=[
                self.keys.delivery(alert_id, ref),
                self.keys.alert_counts(alert_id),
                self.keys.alert_acks(alert_id),
                self.keys.alert_state(alert_id),
                self.keys.metrics(),
            ],
            args=[via, now_ts() if at is None else at, member_id, channel],
        )
        return int(result) == 1

    async def answer(self, alert_id: str, ref: str, *, answer_id: str, via: str, at: float | None = None) -> int:
        """Record the member's answer ``answer_id`` on this delivery (``<channel>:<member>``) at ``at`` (Unix
        time, default now), while the alert is live: kept in the alert's answer log; it counts (and moves the tally)
        if no later answer of theirs does. Returns 1 if it counts now, 0 if the tally is unchanged, -1 if there is
        no such delivery, -2 if the alert has ended (cancelled, all-clear, past its time-to-live)."""
        member_id = ref.split(":", 1)[1]
        result = await self.scripts.answer(
            keys=[
                self.keys.delivery(alert_id, ref),
                self.keys.alert_answers(alert_id),
                self.keys.alert_answer_log(alert_id),
                self.keys.alert_counts(alert_id),
                self.keys.alert_state(alert_id),
            ],
            args=[member_id, answer_id, now_ts() if at is None else at, via],
        )
        return int(result)

    async def answers(self, alert_id: str) -> dict[str, tuple[str, float]]:
        """Each member's answer that counts on an alert, with its time: member -> (answer id, Unix time)."""
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.alert_answers(alert_id)))
        return {member: (value.rsplit("|", 1)[0], float(value.rsplit("|", 1)[1])) for member, value in raw.items()}

    async def answer_log(self, alert_id: str) -> list[tuple[str, str, float, str]]:
        """Every answer given on an alert, in the order received: (member, answer id, Unix time, channel)."""
        raw = cast(list[str], await self.redis.lrange(self.keys.alert_answer_log(alert_id), 0, -1))
        return [(str(m), str(a), float(t), str(c)) for m, a, t, c in map(json.loads, raw)]
