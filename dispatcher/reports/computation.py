"""Computing a PLP's annual evaluation: one calendar year, in the PLP's time zone, in figures.

What the yearly meeting of the partnership (coordinators, the mandated police officer, the
commune) looks at: members at the start and at the end of the year, who joined, left or
opted out; the alerts by urgency, category and sender, police feedback and relays; the share
of targeted members each class of alert reached and the share who acknowledged it; how soon
the first acknowledgement of an urgent alert came; members' replies; and what the SMS and
calls cost. Month by month where the figure has months.

Every figure survives the retention purge and members' erasure, and none holds personal data:

- Membership changes and replies are read from the counters written with each event
  (``dispatcher.storage.counters``). Members at the start of a year are the members now, less
  those who joined since, plus those who left since.
- An alert's figures for a PLP are read from its delivery indexes while they exist (they name
  members by their random id only: erasure changes nothing there); the purge keeps them, per
  PLP, in ``plp:<id>:alert-figures`` before the deliveries go (``keep_alert_figures``).
- Costs are the alert's counters of SMS segments and call minutes planned per PLP
  (``counters.cost_field``), kept with the alert; priced at the configured prices, as each alert shows.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import redis

from config import Settings
from dispatcher.core.models import (
    Alert,
    Category,
    ChannelName,
    DeliveryStatus,
    MessageClass,
    Plp,
    Relay,
    RelayState,
    Role,
    Urgency,
)
from dispatcher.core.places import Sector
from dispatcher.reports.models import (
    AlertTotals,
    ChannelCost,
    CostFigures,
    Evaluation,
    FirstAcknowledgement,
    MemberFigures,
    MonthFigures,
    Reach,
    ReachFigures,
    RelayCounts,
    SectorFigures,
)
from dispatcher.storage.counters import MONTHS, Activity, cost_field, local_month, sector_counts
from dispatcher.storage.keys import Keys
from dispatcher.storage.store import Store

#: Statuses of a delivery that count its member as reached (as ``dispatcher.pipeline.audience`` counts them).
REACHED = frozenset({DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value})
#: The status of a message kept in the local outbox (a channel without credentials): it reached nobody.
OUTBOX = DeliveryStatus.OUTBOX.value
#: Alerts read per pipeline.
ALERT_CHUNK = 100
#: Amounts are rounded to the cent.
CENT = Decimal("0.01")


@dataclass
class AlertFigures:
    """One alert's figures for one PLP: anonymous counts, kept once the deliveries are purged."""

    members: int = 0  # members the alert was planned for through the PLP
    reached: int = 0  # of them, with a delivery sent or delivered
    acknowledged: int = 0  # of them, who acknowledged on any channel
    outbox: int = 0  # of them, not reached, with a message kept in the local outbox instead
    first_ack_at: float | None = None  # the first acknowledgement, Unix time
    deliveries: dict[str, int] = field(default_factory=dict)  # per channel

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str, str | None, str | None]]) -> AlertFigures:
        """From the PLP's deliveries of the alert: ``(channel, member id, status, ack_at)``."""
        members, reached, acknowledged, outbox = set(), set(), set(), set()
        per_channel: Counter[str] = Counter()
        first: float | None = None
        for channel, member_id, status, ack_at in rows:
            members.add(member_id)
            per_channel[channel] += 1
            if status in REACHED:
                reached.add(member_id)
            elif status == OUTBOX:
                outbox.add(member_id)
            if ack_at is not None:
                acknowledged.add(member_id)
                first = float(ack_at) if first is None else min(first, float(ack_at))
        return cls(
            members=len(members),
            reached=len(reached),
            acknowledged=len(acknowledged),
            outbox=len(outbox - reached),
            first_ack_at=first,
            deliveries=dict(per_channel),
        )

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> AlertFigures:
        return cls(**json.loads(raw))


def _read_index(pipe: Any, keys: Keys, alert_id: str, plp_ids: Sequence[str]) -> None:
    """Queue on ``pipe`` (sync or asyncio) the reads ``_Index.of`` takes, in its order."""
    for plp_id in plp_ids:
        pipe.smembers(keys.alert_plp_members(alert_id, plp_id))
    pipe.smembers(keys.alert_acks(alert_id))
    for status in DeliveryStatus:
        pipe.zrange(keys.alert_deliveries_in(alert_id, status.value), 0, -1)


def _index_reads(plp_ids: Sequence[str]) -> int:
    return len(plp_ids) + 1 + len(DeliveryStatus)


@dataclass(frozen=True)
class _Index:
    """An alert's delivery indexes: the members planned through each PLP, those who acknowledged, and
    every delivery with its status. Read from the sets the status scripts keep, not delivery by delivery."""

    planned: dict[str, set[str]]
    acknowledged: set[str]
    deliveries: list[tuple[str, str, str]]  # channel, member, status

    @classmethod
    def of(cls, plp_ids: Sequence[str], results: Sequence[Any]) -> _Index:
        planned = {plp_id: set(found) for plp_id, found in zip(plp_ids, results, strict=False)}
        acknowledged, by_status = set(results[len(plp_ids)]), results[len(plp_ids) + 1 :]
        deliveries = [
            (*str(ref).split(":", 1), status.value)
            for status, refs in zip(DeliveryStatus, by_status, strict=True)
            for ref in refs
        ]
        return cls(planned, acknowledged, cast(list[tuple[str, str, str]], deliveries))

    def acknowledged_refs(self) -> list[str]:
        """The deliveries of members who acknowledged, whose times of acknowledgement are wanted."""
        return [f"{channel}:{member}" for channel, member, _ in self.deliveries if member in self.acknowledged]

    def figures(self, plp_id: str, ack_times: dict[str, str | None]) -> AlertFigures:
        members = self.planned.get(plp_id, set())
        return AlertFigures.of(
            (channel, member, status, ack_times.get(f"{channel}:{member}"))
            for channel, member, status in self.deliveries
            if member in members
        )


def keep_alert_figures(client: redis.Redis, keys: Keys, alert_id: str, plp_ids: Sequence[str]) -> None:
    """Keep each PLP's figures of an alert whose deliveries are about to be purged.

    Written once: a purge run again (after a crash, or at its boundary) keeps the first,
    taken while every delivery was there.
    """
    with client.pipeline(transaction=False) as pipe:
        _read_index(pipe, keys, alert_id, plp_ids)
        index = _Index.of(plp_ids, pipe.execute())
    refs = index.acknowledged_refs()
    with client.pipeline(transaction=False) as pipe:
        for ref in refs:
            pipe.hget(keys.delivery(alert_id, ref), "ack_at")
        ack_times = dict(zip(refs, pipe.execute(), strict=True))
    with client.pipeline(transaction=False) as pipe:
        for plp_id in plp_ids:
            pipe.hsetnx(keys.plp_alert_figures(plp_id), alert_id, index.figures(plp_id, ack_times).to_json())
        pipe.execute()


def year_bounds(timezone: str, year: int) -> tuple[datetime, datetime]:
    """1 January 00:00 of ``year`` and of the next, in the time zone."""
    zone = ZoneInfo(timezone)
    return datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)


def check_year(plp: Plp, year: int, now: datetime) -> None:
    """Raise ``ValueError`` if ``year`` has not begun at ``now`` in the PLP's time zone."""
    current = now.astimezone(ZoneInfo(plp.timezone)).year
    if year > current:
        raise ValueError(f"{year} has not begun in {plp.timezone}; the latest year is {current}")


@dataclass
class _Tally:
    """Sums of the year being built: per month (index 0-11) and for the whole year."""

    months: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 12))
    categories: dict[Category, list[int]] = field(default_factory=lambda: {c: [0] * 12 for c in Category})
    senders: Counter[Role] = field(default_factory=Counter)
    relays: Counter[str] = field(default_factory=Counter)
    reach: dict[Urgency, Counter[str]] = field(default_factory=lambda: {u: Counter() for u in Urgency})
    exercise_reach: Counter[str] = field(default_factory=Counter)
    first_acks: list[float] = field(default_factory=list)
    deliveries: Counter[str] = field(default_factory=Counter)
    sms_segments: int = 0
    voice_minutes: int = 0
    sectors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, name: str, month: int, count: int = 1) -> None:
        self.months[name][month] += count

    def year(self, name: str) -> int:
        return sum(self.months[name])


async def evaluate(store: Store, plp: Plp, year: int, *, settings: Settings, now: datetime | None = None) -> Evaluation:
    """The evaluation of ``plp`` for the calendar ``year`` of its time zone, as it stands at ``now``.

    Raises ``ValueError`` for a year that has not begun. A year without data gives zeros.
    """
    now = now or datetime.now(UTC)
    check_year(plp, year, now)
    start, end = year_bounds(plp.timezone, year)
    tally = _Tally()
    members = await _members(store, plp, year, now, tally)
    await _alerts(store, plp, start.timestamp(), end.timestamp(), tally)
    evaluation = _evaluation(plp, year, now, members, tally, settings)
    return evaluation.model_copy(update={"sectors": _sectors(tally, await store.get_sectors(plp.id))})


async def _members(store: Store, plp: Plp, year: int, now: datetime, tally: _Tally) -> MemberFigures:
    """Membership of the year, from the members now and the changes counted since the year began."""
    current = now.astimezone(ZoneInfo(plp.timezone)).year
    async with store.redis.pipeline(transaction=True) as pipe:  # the list and its counters at one instant
        pipe.zcard(store.keys.plp_members(plp.id))
        for counted in range(year, current + 1):
            pipe.hgetall(store.keys.plp_activity(plp.id, counted))
        now_members, this_year, *later = await pipe.execute()
    for name, count in cast(dict[str, str], this_year).items():
        event, _, month = name.partition(":")
        if month in MONTHS:
            tally.add(event, MONTHS.index(month), int(count))
    since = sum(_net(cast(dict[str, str], counts)) for counts in later)
    joined, left = tally.year(Activity.JOINED), tally.year(Activity.LEFT)
    end = int(now_members) - since
    return MemberFigures(
        start=end - joined + left, end=end, joined=joined, left=left, opted_out=tally.year(Activity.OPTED_OUT)
    )


def _net(counts: dict[str, str]) -> int:
    """Members joined less members left, in one year's counters."""
    signs = {Activity.JOINED.value: 1, Activity.LEFT.value: -1}
    return sum(signs.get(name.partition(":")[0], 0) * int(count) for name, count in counts.items())


async def _alerts(store: Store, plp: Plp, start: float, end: float, tally: _Tally) -> None:
    """Alerts addressed to the PLP created in ``[start, end)``, and their figures for it."""
    ids = cast(list[str], await store.redis.zrange(store.keys.plp_alerts(plp.id), start, f"({end}", byscore=True))
    for first in range(0, len(ids), ALERT_CHUNK):
        await _alert_chunk(store, plp, ids[first : first + ALERT_CHUNK], tally)


async def _alert_chunk(store: Store, plp: Plp, ids: list[str], tally: _Tally) -> None:
    keys, ours, reads = store.keys, [plp.id], 4 + _index_reads([plp.id])
    # One transaction: the purge keeps an alert's figures before it deletes its indexes, so this
    # sees either the figures kept or the indexes whole.
    async with store.redis.pipeline(transaction=True) as pipe:
        for alert_id in ids:
            pipe.get(keys.alert(alert_id))
            pipe.hgetall(keys.alert_counts(alert_id))
            pipe.hget(keys.alert_relays(alert_id), plp.id)
            pipe.hget(keys.plp_alert_figures(plp.id), alert_id)
            _read_index(pipe, keys, alert_id, ours)
        found = await pipe.execute()
    rows = dict(zip(ids, (found[i : i + reads] for i in range(0, len(found), reads)), strict=True))
    live = {alert_id: _Index.of(ours, row[4:]) for alert_id, row in rows.items() if row[3] is None}
    refs = [(alert_id, ref) for alert_id, index in live.items() for ref in index.acknowledged_refs()]
    async with store.redis.pipeline(transaction=False) as pipe:
        for alert_id, ref in refs:
            pipe.hget(keys.delivery(alert_id, ref), "ack_at")
        times = await pipe.execute()
    ack_times: dict[str, dict[str, str | None]] = defaultdict(dict)
    for (alert_id, ref), at in zip(refs, times, strict=True):
        ack_times[alert_id][ref] = at
    for alert_id, (raw, counts, relay, kept, *_) in rows.items():
        if raw is None:
            continue
        figures = AlertFigures.from_json(kept) if kept else live[alert_id].figures(plp.id, ack_times[alert_id])
        alert = Alert.model_validate_json(raw)
        _count_alert(tally, plp, alert, cast(dict[str, str], counts), relay, figures)


def _count_alert(
    tally: _Tally, plp: Plp, alert: Alert, counts: dict[str, str], relay: str | None, figures: AlertFigures
) -> None:
    tally.deliveries.update(figures.deliveries)
    tally.sms_segments += int(counts.get(cost_field(plp.id, "sms_segments"), 0))
    tally.voice_minutes += int(counts.get(cost_field(plp.id, "voice_minutes"), 0))
    if alert.follows is not None:  # an update or all-clear of an alert counted already: its cost only
        return
    _, month_text = local_month(plp.timezone, alert.created_at)
    month = MONTHS.index(month_text)
    if alert.exercise:  # a drill tells how the PLP is reached, not what happened in it: apart, and only here
        tally.add("exercises", month)
        tally.exercise_reach.update(
            targeted=figures.members, reached=figures.reached, acknowledged=figures.acknowledged, outbox=figures.outbox
        )
        return
    tally.add("alerts", month)
    tally.add(alert.urgency.value, month)
    if alert.message_class is MessageClass.POLICE_FEEDBACK:
        tally.add("police_feedback", month)
    tally.categories[alert.category][month] += 1
    tally.senders[alert.author_role] += 1
    state = Relay.model_validate_json(relay).state if relay else RelayState.AUTO
    if state is not RelayState.AUTO:
        tally.relays[state.value] += 1
    tally.reach[alert.urgency].update(
        targeted=figures.members, reached=figures.reached, acknowledged=figures.acknowledged, outbox=figures.outbox
    )
    if alert.urgency is Urgency.URGENT and figures.first_ack_at is not None:
        tally.first_acks.append(figures.first_ack_at - alert.created_at.timestamp())
    aimed = set(alert.area.sectors or ()) if alert.area is not None else set()
    for (plp_id, sector_id), planned in sector_counts({k: int(v) for k, v in counts.items()}).items():
        if plp_id == plp.id and planned:
            tally.sectors[sector_id].update(alerts=1, aimed=int(sector_id in aimed), targeted=planned)


def _sectors(tally: _Tally, sectors: list[Sector]) -> list[SectorFigures]:
    """Each sector of the PLP (by name), then those of the year's alerts deleted since."""
    named = {s.id: s.name for s in sectors}
    ids = [s.id for s in sectors] + sorted(set(tally.sectors) - set(named))
    return [
        SectorFigures(
            sector_id=sector_id,
            name=named.get(sector_id),
            alerts=tally.sectors[sector_id]["alerts"],
            aimed=tally.sectors[sector_id]["aimed"],
            members_targeted=tally.sectors[sector_id]["targeted"],
        )
        for sector_id in ids
    ]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _reach(counts: Counter[str]) -> Reach:
    targeted, reached, acknowledged = counts["targeted"], counts["reached"], counts["acknowledged"]
    return Reach(
        members_targeted=targeted,
        members_reached=reached,
        members_outbox=counts["outbox"],
        reach=_share(reached, targeted),
        members_acknowledged=acknowledged,
        acknowledgement_rate=_share(acknowledged, targeted),
    )


def _cost(tally: _Tally, settings: Settings) -> CostFigures:
    sms = (settings.price_sms_segment * tally.sms_segments).quantize(CENT, ROUND_HALF_UP)
    voice = (settings.price_voice_minute * tally.voice_minutes).quantize(CENT, ROUND_HALF_UP)
    priced = {ChannelName.SMS: sms, ChannelName.VOICE: voice}
    return CostFigures(
        currency=settings.currency,
        sms_segments=tally.sms_segments,
        voice_minutes=tally.voice_minutes,
        estimated=sms + voice,
        by_channel={
            channel: ChannelCost(deliveries=tally.deliveries[channel.value], estimated=priced.get(channel, CENT * 0))
            for channel in ChannelName
        },
    )


def _evaluation(
    plp: Plp, year: int, now: datetime, members: MemberFigures, tally: _Tally, settings: Settings
) -> Evaluation:
    start, end = year_bounds(plp.timezone, year)
    delays = tally.first_acks
    months = [
        MonthFigures(
            month=f"{year}-{MONTHS[m]}",
            members_joined=tally.months[Activity.JOINED][m],
            members_left=tally.months[Activity.LEFT][m],
            members_opted_out=tally.months[Activity.OPTED_OUT][m],
            alerts=tally.months["alerts"][m],
            urgent=tally.months[Urgency.URGENT][m],
            non_urgent=tally.months[Urgency.NON_URGENT][m],
            police_feedback=tally.months["police_feedback"][m],
            by_category={c: tally.categories[c][m] for c in Category},
            feedback_replies=tally.months[Activity.REPLIES][m],
            exercises=tally.months["exercises"][m],
        )
        for m in range(12)
    ]
    return Evaluation(
        plp_id=plp.id,
        plp_name=plp.name,
        commune=plp.commune,
        police_zone=plp.police_zone,
        year=year,
        timezone=plp.timezone,
        period_start=start,
        period_end=end,
        complete=now >= end,
        generated_at=now,
        members=members,
        alerts=AlertTotals(
            total=tally.year("alerts"),
            urgent=tally.year(Urgency.URGENT),
            non_urgent=tally.year(Urgency.NON_URGENT),
            police_feedback=tally.year("police_feedback"),
            by_category={c: sum(tally.categories[c]) for c in Category},
            by_sender={role: tally.senders[role] for role in Role},
            relays=RelayCounts(**tally.relays),
            exercises=tally.year("exercises"),
        ),
        reach=ReachFigures(
            urgent=_reach(tally.reach[Urgency.URGENT]),
            non_urgent=_reach(tally.reach[Urgency.NON_URGENT]),
            exercises=_reach(tally.exercise_reach),
        ),
        urgent_first_acknowledgement=FirstAcknowledgement(
            alerts=len(delays), median_seconds=round(statistics.median(delays), 1) if delays else None
        ),
        feedback_replies=tally.year(Activity.REPLIES),
        cost=_cost(tally, settings),
        months=months,
    )
