"""Building blocks for the dispatcher tests, all against the real Redis of the ``runtime`` fixture.

PLPs, members and alerts are stored the way the service stores them; alerts are
accepted through ``dispatcher.pipeline.intake`` and fanned out by ``dispatcher.pipeline.fanout``; the
delivery scripts are driven with the keys and arguments ``dispatcher.pipeline.sending`` uses.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from dispatcher.core.models import (
    DELIVERY_RANK,
    Alert,
    AlertStatus,
    Category,
    ChannelName,
    Charter,
    ClassPlan,
    DeliveryMode,
    DeliveryStatus,
    Language,
    Member,
    MemberStatus,
    Plp,
    PlpKind,
    Relay,
    RelayState,
    Role,
    Urgency,
)
from dispatcher.pipeline.fanout import fan_out
from dispatcher.pipeline.intake import accept_alert
from dispatcher.storage.records import DeliveryRecord
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, new_id, now_ts

SMS, EMAIL, TELEGRAM, VOICE = ChannelName.SMS, ChannelName.EMAIL, ChannelName.TELEGRAM, ChannelName.VOICE

_serial = itertools.count(1)


@asynccontextmanager
async def open_store(rt: Runtime) -> AsyncIterator[Store]:
    """A ``Store`` on a fresh asyncio client of the runtime's Redis, closed afterwards."""
    redis = rt.async_redis()
    try:
        yield Store(redis, rt.keys)
    finally:
        await redis.aclose()


def charter(
    urgent: list[ChannelName],
    *,
    mode: DeliveryMode = DeliveryMode.ALL,
    non_urgent: list[ChannelName] | None = None,
    non_urgent_mode: DeliveryMode = DeliveryMode.FIRST_THAT_WORKS,
) -> Charter:
    """A charter whose urgent (and optionally non-urgent) plan lists these channels."""
    plans = {"urgent": ClassPlan(channels=urgent, mode=mode, ttl_seconds=3600)}
    if non_urgent is not None:
        plans["non_urgent"] = ClassPlan(channels=non_urgent, mode=non_urgent_mode, ttl_seconds=86400)
    return Charter(**plans)


async def add_plp(
    store: Store,
    *,
    charter: Charter | None = None,
    default_language: Language = Language.FR,
    name: str = "PLP Flagey",
    police_zone: str = "5340",
) -> Plp:
    """Store a PLP, as an admin creating it through the API would."""
    plp = Plp(
        id=new_id(),
        name=name,
        commune="Ixelles",
        police_zone=police_zone,
        kind=PlpKind.RESIDENTIAL,
        default_language=default_language,
        charter=charter or Charter(),
        created_at=datetime.now(UTC),
    )
    await store.save_plp(plp)
    return plp


async def add_member(
    store: Store,
    plps: list[Plp],
    *,
    phone: str | None = "",
    email: str | None = "",
    telegram_chat_id: int | None = None,
    language: Language = Language.FR,
    channels: list[ChannelName] | None = None,
    status: MemberStatus = MemberStatus.ACTIVE,
) -> Member:
    """Store a member of these PLPs. Phone and e-mail default to unique ones; pass None for none."""
    n = next(_serial)
    now = datetime.now(UTC)
    member = Member(
        id=new_id(),
        name=f"Member {n}",
        phone=f"+3247{n:07d}" if phone == "" else phone,
        email=f"member{n}@example.org" if email == "" else email,
        telegram_chat_id=telegram_chat_id,
        language=language,
        channels=list(ChannelName) if channels is None else channels,
        consent_at=now,
        status=status,
        opted_out_at=now if status is MemberStatus.OPTED_OUT else None,
        plp_ids=[p.id for p in plps],
        created_at=now,
        updated_at=now,
    )
    await store.save_member(member)
    return member


def new_alert(
    plps: list[Plp],
    *,
    urgency: Urgency = Urgency.URGENT,
    texts: dict[Language, str] | None = None,
    ttl_seconds: int = 3600,
    created_at: datetime | None = None,
) -> Alert:
    """An alert from a police officer to these PLPs (not yet stored)."""
    return Alert(
        id=new_id(),
        author_id="officer",
        author_role=Role.POLICE,
        urgency=urgency,
        category=Category.BURGLARY,
        plp_ids=[p.id for p in plps],
        texts=texts or {Language.FR: "Cambriolage rue du Bailli", Language.NL: "Inbraak in de Baljuwstraat"},
        ttl_seconds=ttl_seconds,
        created_at=created_at or datetime.now(UTC),
    )


async def accept(rt: Runtime, alert: Alert) -> AlertStatus:
    """Accept the alert for all its PLPs at once (no relay waits), as ``dispatcher.pipeline.intake`` does."""
    relays = [Relay(plp_id=p, state=RelayState.AUTO) for p in alert.plp_ids]
    accepted = await asyncio.to_thread(accept_alert, rt, alert, relays)
    assert accepted.status is not None
    return accepted.status


async def run_fan_out(rt: Runtime, alert_id: str, plp_ids: list[str]) -> int:
    """Run the (synchronous) fan-out job's work in a thread; return how many deliveries it planned."""
    return await asyncio.to_thread(fan_out, rt, alert_id, plp_ids)


async def fanned_out(rt: Runtime, plps: list[Plp], **alert_fields: object) -> Alert:
    """An alert accepted and fanned out to all these PLPs."""
    alert = new_alert(plps, **alert_fields)  # type: ignore[arg-type]
    await accept(rt, alert)
    await run_fan_out(rt, alert.id, alert.plp_ids)
    return alert


async def deliveries(store: Store, alert_id: str) -> list[DeliveryRecord]:
    """Every delivery of an alert, ordered by channel then member."""
    page = await store.list_deliveries(alert_id, status=None, channel=None, cursor=None, limit=10_000)
    assert page.next_cursor is None
    return page.items


def ref_of(record: DeliveryRecord) -> str:
    """A delivery's name inside its alert: ``<channel>:<member>``."""
    return f"{record.channel.value}:{record.member_id}"


class Scripted:
    """Claims and records deliveries of one alert with the keys and arguments ``dispatcher.pipeline.sending`` uses."""

    def __init__(self, store: Store, alert: Alert, plp: Plp) -> None:
        self.store = store
        self.alert = alert
        self.keys = store.keys

    async def claim(self, ref: str, *, at: float | None = None, mode: str = "go", answer_by: float = 30) -> str:
        """Claim as a batch does: ``mode`` "check" before the turn, "go" when it comes (the provider is
        then expected to answer within ``answer_by`` seconds)."""
        channel, member_id = ref.split(":", 1)
        now = now_ts() if at is None else at
        result = await self.store.scripts.claim(
            keys=[*self.keys.delivery_move(self.alert.id, ref), self.store.keys.optouts()],
            args=[self.alert.id, ref, channel, member_id, now, now_ts() + 30, mode, now_ts() + answer_by],
        )
        return str(result)

    async def record(
        self, ref: str, status: DeliveryStatus, *, provider_id: str = "", error: str = "", at: float | None = None
    ) -> str:
        channel = ref.split(":", 1)[0]
        result = await self.store.scripts.record(
            keys=self.keys.delivery_move(self.alert.id, ref),
            args=[self.alert.id, ref, channel, status.value, now_ts() if at is None else at, provider_id, error, ""],
        )
        return str(result)


async def alert_status(store: Store, alert_id: str) -> AlertStatus:
    return (await store.get_progress(alert_id)).status


async def assert_books_balance(store: Store, alert_id: str) -> dict[str, int]:
    """Check the alert's counters against its deliveries; return the counters.

    Every delivery is counted once under its status (``s:<status>``), once under its
    channel and status (``c:<channel>:<status>``) and filed once in its status's set;
    the per-status counts add up to ``planned``; ``final`` counts the finished ones.
    """
    counts = (await store.get_progress(alert_id)).counts
    records = await deliveries(store, alert_id)
    by_status = Counter(r.status.value for r in records)
    by_channel = Counter((r.channel.value, r.status.value) for r in records)
    for status in DeliveryStatus:
        filed = await store.redis.zcard(store.keys.alert_deliveries_in(alert_id, status.value))
        assert (counts.get(f"s:{status.value}", 0), filed) == (by_status[status.value],) * 2, status
        for channel in ChannelName:
            key = f"c:{channel.value}:{status.value}"
            assert counts.get(key, 0) == by_channel[channel.value, status.value], key
    assert sum(v for k, v in counts.items() if k.startswith("s:")) == counts.get("planned", 0) == len(records)
    assert counts.get("settled", 0) == sum(1 for r in records if DELIVERY_RANK[r.status] >= 2)
    return counts
