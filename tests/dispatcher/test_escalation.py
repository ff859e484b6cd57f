"""Urgent alerts members do not acknowledge: each is reached once more on the charter's escalation
channel, and the PLP's coordinators and the author hear of it when too few acknowledged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from dispatcher.core.models import (
    Actor,
    Category,
    ChannelName,
    Charter,
    ClassPlan,
    Language,
    Member,
    MemberStatus,
    Plp,
    Role,
    Urgency,
)
from dispatcher.core.wording import few_acknowledgements
from dispatcher.pipeline import clock, jobs
from dispatcher.pipeline.escalation import check_acknowledgements, escalate
from dispatcher.pipeline.notifications import NotificationKind, Notifications
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.dispatcher.helpers import (
    EMAIL,
    SMS,
    VOICE,
    accept,
    add_member,
    add_plp,
    assert_books_balance,
    deliveries,
    fanned_out,
    new_alert,
    open_store,
    run_fan_out,
)
from tests.follow_ups import make_due, queued, run_jobs, timers

ESCALATE_AFTER, CHECK_AFTER = 300, 600


@pytest.fixture
async def store(runtime: Runtime) -> AsyncIterator[Store]:
    async with open_store(runtime) as opened:
        yield opened


def followed_up(
    channels: list[ChannelName] | None = None,
    *,
    escalate_to: ChannelName = VOICE,
    threshold: float | None = 0.5,
) -> Charter:
    """A charter whose urgent plan (SMS and e-mail by default) escalates and checks acknowledgements
    (and whose non-urgent plan has no quiet hours: these tests run at any hour)."""
    urgent = ClassPlan(
        channels=channels or [SMS, EMAIL],
        ttl_seconds=3600,
        escalate_after_seconds=ESCALATE_AFTER,
        escalate_to=escalate_to,
        ack_check_after_seconds=CHECK_AFTER if threshold is not None else None,
        ack_threshold=threshold,
    )
    return Charter(urgent=urgent, non_urgent=ClassPlan(channels=[EMAIL], ttl_seconds=86400))


async def acknowledge(store: Store, alert_id: str, member: Member, channel: ChannelName = SMS) -> None:
    assert await store.acknowledge(alert_id, f"{channel.value}:{member.id}", via=channel.value)


async def with_reply_to(store: Store, plp: Plp, *addresses: str) -> Plp:
    updated = plp.model_copy(update={"reply_to": list(addresses)})
    await store.save_plp(updated)
    return updated


async def coordinator(store: Store, *plps: Plp) -> Actor:
    actor = Actor(id=f"coord-{plps[0].id}", name="Coordinatrice", role=Role.COORDINATOR, plp_ids=[p.id for p in plps])
    await store.save_actor(actor)
    return actor


def outbox_emails(runtime: Runtime) -> list[dict[str, Any]]:
    """The e-mails written to the outbox that are not deliveries to members (the notices)."""
    if not runtime.settings.outbox_file.exists():
        return []
    lines = [json.loads(line) for line in runtime.settings.outbox_file.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line["channel"] == "email" and not line["member_id"]]


# -- the charter --------------------------------------------------------------------------------


URGENT = {"channels": ["sms"], "ttl_seconds": 3600}


@pytest.mark.parametrize(
    ("charter", "complaint"),
    [
        (
            {"non_urgent": {"channels": ["email"], "ttl_seconds": 3600, "escalate_after_seconds": 300}},
            "non_urgent.escalate_after_seconds: only urgent alerts",
        ),
        (
            {
                "police_feedback": {
                    "channels": ["email"],
                    "ttl_seconds": 3600,
                    "ack_check_after_seconds": 600,
                    "ack_threshold": 0.5,
                }
            },
            "police_feedback.ack_check_after_seconds: only urgent alerts",
        ),
        ({"urgent": {**URGENT, "escalate_after_seconds": 10}}, "greater than or equal to 30"),
        ({"urgent": {**URGENT, "escalate_after_seconds": 3600}}, "shorter than ttl_seconds"),
        ({"urgent": {**URGENT, "escalate_to": "pigeon"}}, "urgent.escalate_to"),
        ({"urgent": {**URGENT, "ack_check_after_seconds": 600}}, "set both or neither"),
        ({"urgent": {**URGENT, "ack_threshold": 0.5}}, "set both or neither"),
        ({"urgent": {**URGENT, "ack_check_after_seconds": 600, "ack_threshold": 0}}, "greater than 0"),
        ({"urgent": {**URGENT, "ack_check_after_seconds": 600, "ack_threshold": 1.5}}, "less than or equal to 1"),
    ],
)
def test_follow_ups_are_refused_outside_urgent_plans_or_out_of_bounds(charter: dict[str, Any], complaint: str) -> None:
    """Escalation and the acknowledgement check belong to urgent plans, with sensible delays and a share in (0, 1]."""
    with pytest.raises(ValidationError) as exc:
        Charter.model_validate(charter)
    assert complaint in str(exc.value)


def test_an_urgent_plan_accepts_escalation_and_a_check() -> None:
    """Escalating to a call after five minutes and checking for a full share after ten is a valid plan."""
    plan = ClassPlan.model_validate(
        {
            **URGENT,
            "escalate_after_seconds": 300,
            "escalate_to": "voice",
            "ack_check_after_seconds": 600,
            "ack_threshold": 1,
        }
    )
    assert (plan.escalate_to, plan.ack_threshold) == (VOICE, 1.0)
    assert Charter(urgent=plan).urgent.follow_ups == [
        "escalate_after_seconds",
        "ack_check_after_seconds",
        "ack_threshold",
    ]


def test_a_stored_charter_reads_back_with_its_follow_ups() -> None:
    """What is stored (every field written out, ``escalate_to`` included on every plan) is accepted again."""
    charter = followed_up()
    assert Charter.model_validate_json(charter.model_dump_json()) == charter
    assert Charter.model_validate_json(Charter().model_dump_json()).urgent.follow_ups == []


@pytest.mark.parametrize("language", list(Language))
def test_the_notice_exists_in_every_language(language: Language) -> None:
    """The coordinators' notice says, in the PLP's language, which alert, how many acknowledged, and the text."""
    subject, text = few_acknowledgements(
        plp_name="PLP Parc",
        category=Category.BURGLARY,
        sent_at="24/11/2026 01:30",
        acknowledged=1,
        planned=8,
        threshold=0.125 * 4,
        text="Le texte",
        language=language,
    )
    assert subject.startswith("[PLP Parc]") and "1" in subject and "8" in subject
    assert "24/11/2026 01:30" in text and "12.5" in text and "50" in text and text.endswith("Le texte")


# -- bookkeeping: who was planned where, who acknowledged -----------------------------------------


async def test_members_are_filed_under_the_plp_that_planned_them(runtime: Runtime, store: Store) -> None:
    """A member of two target PLPs is planned once, through the first; each PLP counts its own members."""
    plp_a, plp_b = await add_plp(store, name="A"), await add_plp(store, name="B")
    both, only_a, only_b = [await add_member(store, plps) for plps in ([plp_a, plp_b], [plp_a], [plp_b])]
    alert = new_alert([plp_a, plp_b])
    await accept(runtime, alert)
    await run_fan_out(runtime, alert.id, [plp_a.id])
    await run_fan_out(runtime, alert.id, [plp_b.id])
    filed_a = await store.redis.smembers(runtime.keys.alert_plp_members(alert.id, plp_a.id))
    filed_b = await store.redis.smembers(runtime.keys.alert_plp_members(alert.id, plp_b.id))
    assert (filed_a, filed_b) == ({both.id, only_a.id}, {only_b.id})


async def test_an_acknowledgement_files_the_member_once(runtime: Runtime, store: Store) -> None:
    """Acknowledging two deliveries leaves the member once in the alert's acknowledgements."""
    plp = await add_plp(store)
    member = await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    await acknowledge(store, alert.id, member, SMS)
    await acknowledge(store, alert.id, member, EMAIL)
    assert await store.redis.smembers(runtime.keys.alert_acks(alert.id)) == {member.id}
    assert (await store.get_progress(alert.id)).counts["acknowledged"] == 2  # deliveries, as before


# -- scheduling -----------------------------------------------------------------------------------


async def test_the_fan_out_of_an_urgent_alert_schedules_its_follow_ups_at_the_charter_times(
    runtime: Runtime, store: Store
) -> None:
    """When a PLP's fan-out ends, its escalation and check are due at creation + their delays, on the urgent lane."""
    plp = await add_plp(store, charter=followed_up())
    await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    created = alert.created_at.timestamp()
    assert sorted((spec["job"], spec["args"], spec["urgent"], due) for spec, due in timers(runtime)) == [
        (jobs.CHECK_ACKNOWLEDGEMENTS, [alert.id, plp.id], True, pytest.approx(created + CHECK_AFTER)),
        (jobs.ESCALATE, [alert.id, plp.id], True, pytest.approx(created + ESCALATE_AFTER)),
    ]


async def test_plans_without_follow_ups_and_non_urgent_alerts_schedule_nothing(runtime: Runtime, store: Store) -> None:
    """The default charter asks for no follow-up; non-urgent alerts never have any."""
    plain = await add_plp(store)
    await fanned_out(runtime, [plain])
    followed = await add_plp(store, charter=followed_up())
    await add_member(store, [followed])
    await fanned_out(runtime, [followed], urgency=Urgency.NON_URGENT)
    assert timers(runtime) == []


# -- escalation -----------------------------------------------------------------------------------


async def test_members_who_did_not_acknowledge_are_called_once(runtime: Runtime, store: Store) -> None:
    """Only the planned, silent, still subscribed members who accept calls and have a usable phone are called."""
    plp = await add_plp(store, charter=followed_up())
    acknowledged = await add_member(store, [plp])
    silent = await add_member(store, [plp], language=Language.NL)
    no_calls = await add_member(store, [plp], channels=[SMS, EMAIL])
    stopped = await add_member(store, [plp])
    dead_line = await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    await acknowledge(store, alert.id, acknowledged)
    opted_out = stopped.model_copy(update={"status": MemberStatus.OPTED_OUT})
    await store.save_member(opted_out, previous=stopped)
    await store.mark_unusable(dead_line.id, VOICE, "number not in service")
    before = (await store.get_progress(alert.id)).counts

    first = escalate(runtime, alert.id, plp.id)
    again = escalate(runtime, alert.id, plp.id)

    assert (first.unacknowledged, first.added) == (4, 1)
    assert (again.unacknowledged, again.added) == (4, 0)
    calls = [d for d in await deliveries(store, alert.id) if d.channel is VOICE]
    assert [d.member_id for d in calls] == [silent.id]
    counts = await assert_books_balance(store, alert.id)
    assert counts["escalated"] == 1
    assert counts["voice_minutes"] > before.get("voice_minutes", 0)
    assert no_calls.id not in {d.member_id for d in calls}


async def test_a_member_who_already_has_a_delivery_on_the_escalation_channel_gets_no_other(
    runtime: Runtime, store: Store
) -> None:
    """When the plan already calls everyone, escalating to a call adds nothing."""
    plp = await add_plp(store, charter=followed_up([SMS, VOICE]))
    await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    assert escalate(runtime, alert.id, plp.id).added == 0
    assert (await store.get_progress(alert.id)).counts.get("escalated", 0) == 0


async def test_escalation_can_use_another_channel_than_a_call(runtime: Runtime, store: Store) -> None:
    """The charter picks the escalation channel: here an e-mail after an SMS plan."""
    plp = await add_plp(store, charter=followed_up([SMS], escalate_to=EMAIL))
    member = await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    assert escalate(runtime, alert.id, plp.id).added == 1
    assert {(d.channel, d.member_id) for d in await deliveries(store, alert.id)} == {
        (SMS, member.id),
        (EMAIL, member.id),
    }


@pytest.mark.parametrize("ending", ["cancelled", "past its time-to-live"])
async def test_alerts_that_are_over_are_not_escalated(runtime: Runtime, store: Store, ending: str) -> None:
    """A cancelled alert, or one past its time-to-live, calls nobody."""
    plp = await add_plp(store, charter=followed_up())
    await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    now = None
    if ending == "cancelled":
        assert await store.cancel_alert(alert.id)
    else:
        now = alert.created_at + timedelta(seconds=alert.ttl_seconds + 1)
    assert escalate(runtime, alert.id, plp.id, now=now).added == 0
    assert all(d.channel is not VOICE for d in await deliveries(store, alert.id))


async def test_the_clock_runs_the_escalation_when_due_and_the_call_goes_out(runtime: Runtime, store: Store) -> None:
    """End to end: sends, a silent member, the timer due, the escalation job, then the call in the outbox."""
    plp = await add_plp(store, charter=followed_up(threshold=None))
    member = await add_member(store, [plp])
    alert = new_alert([plp])
    await accept(runtime, alert)
    assert await run_jobs(runtime) == ["fan_out", "send_batch"]
    assert clock.tick(runtime).timers == 0  # not due yet

    assert make_due(runtime, jobs.ESCALATE) == 1
    assert clock.tick(runtime).timers == 1
    assert queued(runtime.urgent_queue) == [(jobs.ESCALATE, (alert.id, plp.id))]
    assert await run_jobs(runtime) == ["escalate"]
    assert clock.tick(runtime).redispatched == 1  # the call is due at once
    assert await run_jobs(runtime) == ["send_batch"]

    lines = [json.loads(line) for line in runtime.settings.outbox_file.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["channel"] for line in lines if line["member_id"] == member.id) == ["email", "sms", "voice"]
    assert timers(runtime) == []


# -- the acknowledgement check --------------------------------------------------------------------


async def test_too_few_acknowledgements_notify_the_author_and_the_plps_coordinators_once(
    runtime: Runtime, store: Store
) -> None:
    """1 of 4 acknowledged, the charter wants half: the author and this PLP's coordinators are told, and its
    reply-to addresses get an e-mail in the PLP's language; a second run tells nobody again."""
    plp = await add_plp(store, charter=followed_up(threshold=0.5), default_language=Language.NL)
    plp = await with_reply_to(store, plp, "coordinatie@bin.example", "tweede@bin.example")
    other = await add_plp(store, name="Elders")
    ours, theirs = await coordinator(store, plp), await coordinator(store, other)
    members = [await add_member(store, [plp]) for _ in range(4)]
    alert = await fanned_out(runtime, [plp])
    await acknowledge(store, alert.id, members[0])
    now = alert.created_at + timedelta(seconds=CHECK_AFTER)

    check = await check_acknowledgements(runtime, alert.id, plp.id, now=now)
    again = await check_acknowledgements(runtime, alert.id, plp.id, now=now)

    assert check is not None and check.notification is not None
    assert (check.planned, check.acknowledged, check.threshold) == (4, 1, 0.5)
    assert again is not None and again.notification is None
    notice = check.notification
    assert (notice.kind, notice.alert_id, notice.plp_id, notice.language) == (
        NotificationKind.FEW_ACKNOWLEDGEMENTS,
        alert.id,
        plp.id,
        Language.NL,
    )
    assert "1 van de 4" in notice.text and "25 %" in notice.text and "50 %" in notice.text
    feeds = Notifications(store.redis, store.keys)
    for actor_id, expected in ((alert.author_id, [notice]), (ours.id, [notice]), (theirs.id, [])):
        assert await feeds.for_actor(actor_id, limit=10) == expected
    mails = outbox_emails(runtime)
    assert [m["subject"] for m in mails] == [notice.subject] * 2
    assert all(m["language"] == "nl" and "Inbraak" in m["text"] for m in mails)


@pytest.mark.parametrize("acknowledging", [2, 4])
async def test_enough_acknowledgements_notify_nobody(runtime: Runtime, store: Store, acknowledging: int) -> None:
    """At or above the charter's share, the check finds enough and tells nobody."""
    plp = await with_reply_to(store, await add_plp(store, charter=followed_up(threshold=0.5)), "c@plp.example")
    members = [await add_member(store, [plp]) for _ in range(4)]
    alert = await fanned_out(runtime, [plp])
    for member in members[:acknowledging]:
        await acknowledge(store, alert.id, member)
    check = await check_acknowledgements(runtime, alert.id, plp.id)
    assert check is not None and (check.acknowledged, check.notification) == (acknowledging, None)
    assert await Notifications(store.redis, store.keys).for_actor(alert.author_id, limit=10) == []
    assert outbox_emails(runtime) == []


async def test_only_the_members_planned_through_the_plp_count(runtime: Runtime, store: Store) -> None:
    """Each PLP is judged on its own members: B's silence does not count against A."""
    plp_a = await add_plp(store, charter=followed_up(threshold=1.0), name="A")
    plp_b = await add_plp(store, charter=followed_up(threshold=1.0), name="B")
    in_a = await add_member(store, [plp_a])
    await add_member(store, [plp_b])
    alert = await fanned_out(runtime, [plp_a, plp_b])
    await acknowledge(store, alert.id, in_a)
    check_a = await check_acknowledgements(runtime, alert.id, plp_a.id)
    check_b = await check_acknowledgements(runtime, alert.id, plp_b.id)
    assert check_a is not None and (check_a.planned, check_a.acknowledged, check_a.notification) == (1, 1, None)
    assert check_b is not None and (check_b.planned, check_b.acknowledged) == (1, 0)
    assert check_b.notification is not None


async def test_a_cancelled_alert_or_a_plan_without_a_check_is_not_checked(runtime: Runtime, store: Store) -> None:
    """Cancelled alerts and PLPs whose charter sets no check are left alone."""
    checked = await add_plp(store, charter=followed_up())
    unchecked = await add_plp(store, charter=followed_up(threshold=None))
    await add_member(store, [checked])
    await add_member(store, [unchecked])
    alert = await fanned_out(runtime, [checked, unchecked])
    assert await check_acknowledgements(runtime, alert.id, unchecked.id) is None
    assert await store.cancel_alert(alert.id)
    assert await check_acknowledgements(runtime, alert.id, checked.id) is None


async def test_the_clock_runs_the_check_when_due(runtime: Runtime, store: Store) -> None:
    """The check's timer, once due, is enqueued on the urgent lane and tells the author."""
    plp = await add_plp(store, charter=followed_up())
    await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    assert make_due(runtime, jobs.CHECK_ACKNOWLEDGEMENTS) == 1
    assert clock.tick(runtime).timers == 1
    assert queued(runtime.urgent_queue)[-1] == (jobs.CHECK_ACKNOWLEDGEMENTS, (alert.id, plp.id))
    now = datetime.now(UTC)
    assert "check_acknowledgements" in await run_jobs(runtime, now=now)
    [notice] = await Notifications(store.redis, store.keys).for_actor(alert.author_id, limit=10)
    assert (notice.planned, notice.acknowledged, notice.created_at) == (1, 0, now)
