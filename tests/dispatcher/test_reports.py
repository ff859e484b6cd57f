"""The annual evaluation of a PLP: a year of history, built through the store, intake, fan-out and the
delivery scripts at the times it happened, gives exact figures, which stay the same after the
retention purge and after members' erasure.

The year evaluated is last year (a complete one), in Europe/Brussels. PLP "Flagey" shares some
members with PLP "Parc"; the history (local times) is:

- last year minus one, 1 June: A and C join both PLPs, B joins Flagey; H joins Parc;
- 1 January 00:30: D joins (23:30 UTC the day before: a January join all the same);
  15 January: E and F are imported; 5 March: G joins; 12 May: C leaves Flagey (stays in Parc);
  1 June: B opts out; 20 August: E leaves their last PLP and is erased;
- alerts to Flagey: J0, urgent, 1 January 00:15 (accepted, nothing sent); U1, urgent burglary,
  10 February, to A-F on SMS and e-mail: F's two deliveries fail, A, B and C acknowledge after
  60, 120 and 300 s; U2, urgent, 20 March, to Flagey and Parc: all delivered, D and E acknowledge
  after 30 and 90 s (H, of Parc, after 10 s); N1, the coordinator's advice, 1 July, by e-mail: A
  acknowledges; PF, police feedback about U1, 9 September; N2, police advice declined by the
  coordinator, 15 October; N3, police advice whose relay expired, 20 November; U3, urgent,
  31 December 23:30 (accepted only); and J1, 1 January of this year 00:30, not in the year;
- replies: B on 1 January 00:10 (about nothing), A to U1, E to U2.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config import Settings
from dispatcher import reports
from dispatcher.core import segments
from dispatcher.core.models import (
    Alert,
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
from dispatcher.people import retention
from dispatcher.pipeline import intake
from dispatcher.pipeline.compose import sms_text
from dispatcher.pipeline.receipts import Receipts
from dispatcher.reports import Evaluation, rendering
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, delivery_id, new_id
from tests.dispatcher.helpers import EMAIL, SMS, Scripted, accept, deliveries, open_store, ref_of, run_fan_out

BRUSSELS = ZoneInfo("Europe/Brussels")
DAY = 86400
TEXT = "Cambriolage rue du Bailli, deux suspects"
YEAR = datetime.now(BRUSSELS).year - 1


def local(month: int, day: int, hour: int = 12, minute: int = 0, *, year: int = YEAR) -> datetime:
    """A moment of the evaluated year, Brussels time."""
    return datetime(year, month, day, hour, minute, tzinfo=BRUSSELS)


def flat_charter() -> Charter:
    """Urgent: SMS and e-mail both; non-urgent and police feedback: e-mail first; no quiet hours (the
    history is written whatever the time of day the test runs)."""
    first = DeliveryMode.FIRST_THAT_WORKS
    return Charter(
        urgent=ClassPlan(channels=[SMS, EMAIL], mode=DeliveryMode.ALL, ttl_seconds=3600),
        non_urgent=ClassPlan(channels=[EMAIL, SMS], mode=first, ttl_seconds=86400),
        police_feedback=ClassPlan(channels=[EMAIL, SMS], mode=first, ttl_seconds=86400),
    )


@pytest.fixture
async def store(runtime: Runtime) -> AsyncIterator[Store]:
    async with open_store(runtime) as opened:
        yield opened


async def new_plp(store: Store, name: str, *, timezone: str = "Europe/Brussels") -> Plp:
    plp = Plp(
        id=new_id(),
        name=name,
        commune="Ixelles",
        police_zone="5340",
        kind=PlpKind.RESIDENTIAL,
        timezone=timezone,
        charter=flat_charter(),
        created_at=datetime(YEAR - 2, 1, 1, tzinfo=UTC),
    )
    await store.save_plp(plp)
    return plp


_serial = iter(range(1, 10_000))


def person(plps: list[Plp], at: datetime) -> Member:
    """A new member of these PLPs, created at ``at``."""
    n = next(_serial)
    return Member(
        id=new_id(),
        name=f"Person {n}",
        phone=f"+3247{n:07d}",
        email=f"person{n}@example.org",
        language=Language.FR,
        channels=list(ChannelName),
        consent_at=at,
        plp_ids=[p.id for p in plps],
        created_at=at,
        updated_at=at,
    )


async def join(store: Store, plps: list[Plp], at: datetime) -> Member:
    """A person joins these PLPs at ``at``, the way ``membership.enroll`` stores them."""
    member = person(plps, at)
    await store.save_member(member)
    return member


def alert_of(
    plps: list[Plp],
    at: datetime,
    *,
    urgency: Urgency = Urgency.URGENT,
    category: Category = Category.BURGLARY,
    author_role: Role = Role.POLICE,
    about: Alert | None = None,
) -> Alert:
    return Alert(
        id=new_id(),
        author_id="someone",
        author_role=author_role,
        urgency=urgency,
        category=category,
        plp_ids=[p.id for p in plps],
        texts={Language.FR: TEXT},
        ttl_seconds=3600,
        created_at=at,
        about_alert_id=about.id if about else None,
    )


async def sent(rt: Runtime, store: Store, plp: Plp, alert: Alert, *, failing: Collection[str] = ()) -> Alert:
    """Accept the alert, fan it out, and deliver every delivery a minute later (those of members in
    ``failing`` fail), through the claim and record scripts."""
    await accept(rt, alert)
    await run_fan_out(rt, alert.id, alert.plp_ids)
    script, at = Scripted(store, alert, plp), alert.created_at.timestamp() + 60
    for record in await deliveries(store, alert.id):
        assert await script.claim(ref_of(record), at=at) == "claimed"
        outcome = DeliveryStatus.FAILED if record.member_id in failing else DeliveryStatus.DELIVERED
        await script.record(ref_of(record), outcome, at=at + 1)
    return alert


async def acknowledged(store: Store, alert: Alert, member: Member, channel: ChannelName, after: float) -> None:
    ref = f"{channel.value}:{member.id}"
    assert await store.acknowledge(alert.id, ref, via=channel.value, at=alert.created_at.timestamp() + after)


@dataclass
class History:
    flagey: Plp
    parc: Plp
    members: dict[str, Member] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)


async def a_year(rt: Runtime, store: Store) -> History:
    """The history of the module docstring, in the order it happened."""
    flagey, parc = await new_plp(store, "PLP Flagey"), await new_plp(store, "PLP Parc")
    h = History(flagey, parc)
    m, a = h.members, h.alerts
    before = local(6, 1, year=YEAR - 1)
    m["A"], m["C"] = await join(store, [flagey, parc], before), await join(store, [flagey, parc], before)
    m["B"], m["H"] = await join(store, [flagey], before), await join(store, [parc], before)
    a["J0"] = alert_of([flagey], local(1, 1, 0, 15), category=Category.OTHER)
    await accept(rt, a["J0"])
    m["D"] = await join(store, [flagey], local(1, 1, 0, 30))
    m["E"], m["F"] = person([flagey], local(1, 15)), person([flagey], local(1, 15))
    await store.add_new_members([m["E"], m["F"]])  # the importer's write
    receipts = Receipts(store)
    await receipts.feedback(m["B"], "Rien à signaler", via=SMS, delivery=None, at=local(1, 1, 0, 10))

    a["U1"] = await sent(rt, store, flagey, alert_of([flagey], local(2, 10, 10)), failing={m["F"].id})
    for who, channel, after in (("A", SMS, 60), ("B", EMAIL, 120), ("C", SMS, 300)):
        await acknowledged(store, a["U1"], m[who], channel, after)
    u1_sms = delivery_id(a["U1"].id, f"sms:{m['A'].id}")
    await receipts.feedback(m["A"], "Une voiture grise", via=SMS, delivery=u1_sms, at=local(2, 10, 10, 5))

    m["G"] = await join(store, [flagey], local(3, 5))
    u2 = alert_of([flagey, parc], local(3, 20, 9), category=Category.SUSPECT_VEHICLE)
    a["U2"] = await sent(rt, store, flagey, u2)
    for who, channel, after in (("D", SMS, 30), ("E", EMAIL, 90), ("H", SMS, 10)):
        await acknowledged(store, a["U2"], m[who], channel, after)
    u2_mail = delivery_id(a["U2"].id, f"email:{m['E'].id}")
    await receipts.feedback(m["E"], "Je l'ai vue passer", via=EMAIL, delivery=u2_mail, at=local(3, 20, 9, 10))

    kept = await store.remove_member(m["C"], flagey.id, at=local(5, 12))
    assert kept is not None and kept.plp_ids == [parc.id]
    stopped = local(6, 1, 20)
    opted_out = m["B"].model_copy(update={"status": MemberStatus.OPTED_OUT, "opted_out_at": stopped})
    await store.save_member(opted_out.model_copy(update={"updated_at": stopped}), previous=m["B"])

    advice = alert_of([flagey], local(7, 1, 18), urgency=Urgency.NON_URGENT, category=Category.PREVENTION_ADVICE)
    a["N1"] = await sent(rt, store, flagey, advice.model_copy(update={"author_role": Role.COORDINATOR}))
    await acknowledged(store, a["N1"], m["A"], EMAIL, 3600)
    assert await store.remove_member(m["E"], flagey.id, at=local(8, 20)) is None  # erased
    feedback = alert_of([flagey], local(9, 9, 11), urgency=Urgency.NON_URGENT, about=a["U1"])
    a["PF"] = await sent(rt, store, flagey, feedback)

    for name, at in (("N2", local(10, 15)), ("N3", local(11, 20))):
        a[name] = alert_of([flagey], at, urgency=Urgency.NON_URGENT, category=Category.PREVENTION_ADVICE)
        await asyncio.to_thread(intake.accept_alert, rt, a[name], [Relay(plp_id=flagey.id, state=RelayState.AWAITING)])
    declined = Relay(
        plp_id=flagey.id, state=RelayState.DECLINED, decided_by="coordinator", decided_at=local(10, 16), reason="no"
    )
    await asyncio.to_thread(intake.decide_relay, rt, a["N2"], declined)
    await store.get_progress(a["N3"].id)  # its time-to-live passed: the relay expires
    a["U3"] = alert_of([flagey], local(12, 31, 23, 30), category=Category.INCIVILITY)
    a["J1"] = alert_of([flagey], local(1, 1, 0, 30, year=YEAR + 1))
    for name in ("U3", "J1"):
        await accept(rt, a[name])
    m["X"] = await join(store, [flagey], datetime.now(UTC))  # this year: not in last year's figures
    return h


def sms_segments_each() -> int:
    return segments.measure(sms_text(TEXT, Language.FR)).segments


def months(**values: dict[int, int]) -> dict[str, list[int]]:
    """Per figure, the twelve months' values from ``{month: value}``."""
    return {name: [by_month.get(n, 0) for n in range(1, 13)] for name, by_month in values.items()}


def monthly(evaluation: Evaluation, *names: str) -> dict[str, list[int]]:
    return {name: [getattr(month, name) for month in evaluation.months] for name in names}


def comparable(evaluation: Evaluation) -> dict[str, Any]:
    return evaluation.model_dump(mode="json", exclude={"generated_at"})


async def test_a_year_of_history_gives_exact_figures(runtime: Runtime, store: Store, settings: Settings) -> None:
    """Members, alerts, reach, acknowledgements, first acknowledgement, replies and cost of last year,
    months in the PLP's time zone (events near midnight on 31 December fall on the right side)."""
    h = await a_year(runtime, store)

    ev = await reports.evaluate(store, h.flagey, YEAR, settings=settings)

    assert (ev.plp_id, ev.year, ev.timezone, ev.complete) == (h.flagey.id, YEAR, "Europe/Brussels", True)
    assert ev.period_start == local(1, 1, 0) and ev.period_end == local(1, 1, 0, year=YEAR + 1)
    assert ev.members.model_dump() == {"start": 3, "end": 5, "joined": 4, "left": 2, "opted_out": 1}
    assert monthly(ev, "members_joined", "members_left", "members_opted_out") == months(
        members_joined={1: 3, 3: 1}, members_left={5: 1, 8: 1}, members_opted_out={6: 1}
    )
    alerts = ev.alerts
    assert (alerts.total, alerts.urgent, alerts.non_urgent, alerts.police_feedback) == (8, 4, 4, 1)
    assert alerts.by_category == {
        Category.BURGLARY: 2,
        Category.SUSPECT_VEHICLE: 1,
        Category.SUSPECT_PERSON: 0,
        Category.INCIVILITY: 1,
        Category.PREVENTION_ADVICE: 3,
        Category.OTHER: 1,
    }
    assert alerts.by_sender == {Role.ADMIN: 0, Role.POLICE: 7, Role.COORDINATOR: 1}
    assert alerts.relays.model_dump() == {"approved": 0, "declined": 1, "expired": 1, "awaiting": 0}
    assert monthly(ev, "alerts", "urgent", "non_urgent", "police_feedback") == months(
        alerts={1: 1, 2: 1, 3: 1, 7: 1, 9: 1, 10: 1, 11: 1, 12: 1},
        urgent={1: 1, 2: 1, 3: 1, 12: 1},
        non_urgent={7: 1, 9: 1, 10: 1, 11: 1},
        police_feedback={9: 1},
    )
    advice = [month.by_category[Category.PREVENTION_ADVICE] for month in ev.months]
    assert advice == [0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0]
    # U1: 6 targeted, F not reached, A B C acknowledged; U2: 7 of Flagey (H is Parc's), D E acknowledged
    assert ev.reach.urgent.model_dump() == {
        "members_targeted": 13,
        "members_reached": 12,
        "members_outbox": 0,
        "reach": 0.9231,
        "members_acknowledged": 5,
        "acknowledgement_rate": 0.3846,
    }
    # N1: A D E F G by e-mail (B opted out, C had left), A acknowledged; PF: A D F G
    assert ev.reach.non_urgent.model_dump() == {
        "members_targeted": 9,
        "members_reached": 9,
        "members_outbox": 0,
        "reach": 1.0,
        "members_acknowledged": 1,
        "acknowledgement_rate": 0.1111,
    }
    assert ev.urgent_first_acknowledgement.model_dump() == {"alerts": 2, "median_seconds": 45.0}  # 60 s and 30 s
    assert ev.feedback_replies == 3
    assert monthly(ev, "feedback_replies") == months(feedback_replies={1: 1, 2: 1, 3: 1})
    segments_each = sms_segments_each()
    price = (settings.price_sms_segment * 13 * segments_each).quantize(Decimal("0.01"))
    assert ev.cost.model_dump() == {
        "currency": "EUR",
        "sms_segments": 13 * segments_each,
        "voice_minutes": 0,
        "estimated": price,
        "by_channel": {
            ChannelName.SMS: {"deliveries": 13, "estimated": price},
            ChannelName.EMAIL: {"deliveries": 22, "estimated": Decimal("0.00")},
            ChannelName.TELEGRAM: {"deliveries": 0, "estimated": Decimal("0.00")},
            ChannelName.VOICE: {"deliveries": 0, "estimated": Decimal("0.00")},
            ChannelName("whatsapp"): {"deliveries": 0, "estimated": Decimal("0.00")},
        },
    }


async def test_the_figures_are_the_same_after_the_purge_of_half_the_year_then_all_of_it(
    runtime: Runtime, store: Store, settings: Settings
) -> None:
    """The purge of the deliveries and replies of the first half of the year, then of the whole year,
    changes no figure: each alert's figures were kept for each of its PLPs before its deliveries went."""
    h = await a_year(runtime, store)
    before = await reports.evaluate(store, h.flagey, YEAR, settings=settings)
    parc_before = await reports.evaluate(store, h.parc, YEAR, settings=settings)
    retention_seconds = settings.retention_days * DAY

    half = retention.purge(runtime, now=local(7, 1, 0).timestamp() + retention_seconds)
    assert (half.alerts, half.feedback) == (3, 2)  # J0, U1, U2; A's and B's replies (E's went with E)
    assert await store.redis.exists(runtime.keys.alert_deliveries(h.alerts["U1"].id)) == 0
    assert comparable(await reports.evaluate(store, h.flagey, YEAR, settings=settings)) == comparable(before)

    whole = retention.purge(runtime, now=local(1, 1, 0, year=YEAR + 1).timestamp() + retention_seconds)
    assert (whole.alerts, whole.deliveries) == (5, 9)  # N1, PF, N2, N3, U3
    assert comparable(await reports.evaluate(store, h.flagey, YEAR, settings=settings)) == comparable(before)
    parc = await reports.evaluate(store, h.parc, YEAR, settings=settings)
    assert comparable(parc) == comparable(parc_before)
    assert parc.reach.urgent.members_targeted == 1 and parc.urgent_first_acknowledgement.median_seconds == 10.0


async def test_a_purge_run_again_keeps_the_figures_it_took_first(
    runtime: Runtime, store: Store, settings: Settings
) -> None:
    """Purging an alert twice (a run after a crash, or at its boundary) does not overwrite its kept figures
    with those of the deliveries already gone."""
    h = await a_year(runtime, store)
    before = await reports.evaluate(store, h.flagey, YEAR, settings=settings)
    now = local(7, 1, 0).timestamp() + settings.retention_days * DAY
    retention.purge(runtime, now=now)
    await store.redis.delete(runtime.keys.purged_until())  # the next run walks the same alerts again
    assert retention.purge(runtime, now=now).alerts == 3
    assert comparable(await reports.evaluate(store, h.flagey, YEAR, settings=settings)) == comparable(before)


async def test_erasing_members_changes_no_figure_of_the_year_but_their_leaving(
    runtime: Runtime, store: Store, settings: Settings
) -> None:
    """D (acknowledged U2, replied) and A (acknowledged three alerts, replied) are erased today: last
    year's figures stay exactly the same; their leaving counts in this year. An erasure run again after
    a crash does not count the leave twice."""
    h = await a_year(runtime, store)
    before = await reports.evaluate(store, h.flagey, YEAR, settings=settings)
    await store.remove_member(h.members["D"], h.flagey.id)
    a_kept = await store.remove_member(h.members["A"], h.parc.id)
    assert a_kept is not None
    assert await store.remove_member(a_kept, h.flagey.id) is None
    assert await store.remove_member(a_kept, h.flagey.id) is None  # again, as after a crash
    assert await store.get_member(h.members["A"].id) is None

    after = await reports.evaluate(store, h.flagey, YEAR, settings=settings)
    assert comparable(after) == comparable(before)
    this_year = await reports.evaluate(store, h.flagey, YEAR + 1, settings=settings)
    assert this_year.members.model_dump() == {"start": 5, "end": 4, "joined": 1, "left": 2, "opted_out": 0}
    assert not this_year.complete


async def test_repeated_writes_of_a_membership_or_an_opt_out_count_once(
    runtime: Runtime, store: Store, settings: Settings
) -> None:
    """Saving a member again (a change, a contact point marked unusable, a second STOP) counts no new join
    or opt-out: only a change of the member list or of the opt-outs counts."""
    plp = await new_plp(store, "PLP Flagey")
    member = await join(store, [plp], local(4, 2))
    changed = member.model_copy(update={"name": "Renamed", "updated_at": local(4, 3)})
    await store.save_member(changed, previous=member)
    await store.mark_unusable(member.id, SMS, "not a mobile number")
    stopped = changed.model_copy(update={"status": MemberStatus.OPTED_OUT, "updated_at": local(4, 4)})
    await store.save_member(stopped, previous=changed)
    await store.save_member(stopped.model_copy(update={"updated_at": local(4, 5)}), previous=stopped)

    ev = await reports.evaluate(store, plp, YEAR, settings=settings)
    assert ev.members.model_dump() == {"start": 0, "end": 1, "joined": 1, "left": 0, "opted_out": 1}


async def test_months_follow_the_plps_own_time_zone(runtime: Runtime, store: Store, settings: Settings) -> None:
    """For a PLP in Auckland, a join at noon UTC on 31 December is in January of the next year there."""
    plp = await new_plp(store, "PLP Ponsonby", timezone="Pacific/Auckland")
    await join(store, [plp], datetime(YEAR - 1, 12, 31, 12, tzinfo=UTC))
    await join(store, [plp], datetime(YEAR, 12, 31, 12, tzinfo=UTC))

    ev = await reports.evaluate(store, plp, YEAR, settings=settings)
    assert (ev.members.start, ev.members.joined, ev.members.end) == (0, 1, 1)
    assert ev.months[0].members_joined == 1
    assert ev.period_start == datetime(YEAR, 1, 1, tzinfo=ZoneInfo("Pacific/Auckland"))


async def test_a_year_without_data_gives_zeros(runtime: Runtime, store: Store, settings: Settings) -> None:
    """A PLP with nothing in a year: zero everywhere, no rate (null), twelve empty months."""
    plp = await new_plp(store, "PLP Vide")
    ev = await reports.evaluate(store, plp, 2001, settings=settings)
    assert ev.members.model_dump() == {"start": 0, "end": 0, "joined": 0, "left": 0, "opted_out": 0}
    assert ev.alerts.total == 0 and set(ev.alerts.by_category.values()) == {0}
    assert ev.reach.urgent.reach is None and ev.reach.non_urgent.acknowledgement_rate is None
    assert ev.urgent_first_acknowledgement.median_seconds is None
    assert ev.cost.estimated == 0 and ev.feedback_replies == 0
    assert [month.month for month in ev.months] == [f"2001-{n:02d}" for n in range(1, 13)]
    assert all(month.alerts == month.members_joined == 0 for month in ev.months)


async def test_a_year_that_has_not_begun_is_refused(runtime: Runtime, store: Store, settings: Settings) -> None:
    """Next year has no evaluation yet: ValueError, saying which is the latest year."""
    plp = await new_plp(store, "PLP Flagey")
    with pytest.raises(ValueError, match=f"{YEAR + 2} has not begun in Europe/Brussels; the latest year is"):
        await reports.evaluate(store, plp, YEAR + 2, settings=settings)


def _path(data: Any, name: str) -> Any:
    for part in name.split("."):
        data = data[part]
    return data


async def test_the_csv_holds_every_figure_of_the_json(runtime: Runtime, store: Store, settings: Settings) -> None:
    """Read back, each CSV row gives the JSON figure its name is the path of, and the months' columns
    the months' figures."""
    h = await a_year(runtime, store)
    ev = await reports.evaluate(store, h.flagey, YEAR, settings=settings)
    data = ev.model_dump(mode="json")
    rows = list(csv.reader(io.StringIO(reports.to_csv(ev))))
    assert rows[0] == ["figure", "value", *(f"{YEAR}-{n:02d}" for n in range(1, 13))]
    figures = {row[0]: row[1:] for row in rows[1:]}
    assert len(figures) == len(rows) - 1
    assert figures["plp.name"] == ["PLP Flagey"] and figures["year"] == [str(YEAR)]
    month_names = {
        "members.joined": "members_joined",
        "alerts.urgent": "urgent",
        "alerts.by_category.burglary": "by_category.burglary",
        "feedback_replies": "feedback_replies",
    }
    for name, (value, *per_month) in figures.items():
        if name.startswith(("plp.", "year", "timezone", "complete")):
            continue
        expected = _path(data, name)
        assert value == ("" if expected is None else str(expected)), name
        if name in month_names:
            assert per_month == [str(_path(month, month_names[name])) for month in data["months"]], name
    assert figures["members.joined"] == ["4", "3", "0", "1", *["0"] * 9]
    assert figures["reach.urgent.reach"] == ["0.9231"]
    assert figures["urgent_first_acknowledgement.median_seconds"] == ["45.0"]


async def test_the_markdown_has_a_table_per_subject(runtime: Runtime, store: Store, settings: Settings) -> None:
    """The Markdown document's tables give the figures (rates in percent, the median as a duration)."""
    h = await a_year(runtime, store)
    ev = await reports.evaluate(store, h.flagey, YEAR, settings=settings)
    text = reports.to_markdown(ev)
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")) for line in text.splitlines() if line[:1] == "|"}
    assert text.startswith(f"# Annual evaluation {YEAR}: PLP Flagey\n")
    assert ("on 1 January", "3") in rows and ("at the end of the year", "5") in rows
    assert ("members targeted", "13", "9") in rows
    assert ("reach", "92.3 %", "100.0 %") in rows
    assert ("acknowledgement rate", "38.5 %", "11.1 %") in rows
    assert ("police advice declined by the coordinator", "1") in rows
    assert ("March", "1", "0", "0", "1", "1", "0", "0", "1") in rows
    assert "first acknowledgement: 45 s (2 urgent alerts acknowledged)" in text


def test_names_cannot_inject_markup_or_formulas() -> None:
    """A PLP name is escaped in Markdown and cannot start a spreadsheet formula in CSV."""
    assert rendering._md("A | *B* <script>") == "A \\| \\*B\\* \\<script\\>"
    assert rendering._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and rendering._cell("Flagey") == "Flagey"


def test_durations_read_as_hours_minutes_seconds() -> None:
    assert [rendering._duration(s) for s in (None, 0, 45, 95.4, 3725)] == [
        "–",
        "0 s",
        "45 s",
        "1 min 35 s",
        "1 h 2 min 5 s",
    ]
