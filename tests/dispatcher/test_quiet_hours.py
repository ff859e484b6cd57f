"""Quiet hours: non-urgent messages that would reach a PLP during them wait until they end, in the
PLP's time zone; urgent alerts never wait."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dispatcher.api.views import AlertView
from dispatcher.core.models import AlertStatus, Charter, ClassPlan, DeliveryMode, Member, Plp, QuietHours, Urgency
from dispatcher.pipeline import clock, jobs
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.dispatcher.helpers import EMAIL, SMS, VOICE, accept, add_member, add_plp, deliveries, new_alert, open_store
from tests.follow_ups import make_due, queued, run_jobs, timers

BRUSSELS = "Europe/Brussels"
NIGHT = datetime(2025, 1, 15, 21, 30, tzinfo=UTC)  # 22:30 in Brussels
MORNING = datetime(2025, 1, 16, 7, 0, tzinfo=UTC)  # 08:00 in Brussels: the quiet hours end
NOON = datetime(2025, 1, 16, 11, 0, tzinfo=UTC)


@pytest.fixture
async def store(runtime: Runtime) -> AsyncIterator[Store]:
    async with open_store(runtime) as opened:
        yield opened


def quiet(start: str = "21:00", end: str = "08:00", *, feedback_too: bool = True) -> Charter:
    """Non-urgent messages (and police feedback, unless told) held from ``start`` to ``end``."""
    hours = QuietHours(start=start, end=end)
    plan = {"mode": DeliveryMode.FIRST_THAT_WORKS, "ttl_seconds": 86400}
    return Charter(
        urgent=ClassPlan(channels=[SMS], ttl_seconds=3600),
        non_urgent=ClassPlan(channels=[EMAIL], quiet_hours=hours, **plan),
        police_feedback=ClassPlan(channels=[EMAIL], quiet_hours=hours if feedback_too else None, **plan),
    )


def local(year: int, month: int, day: int, hour: int, minute: int = 0, zone: str = BRUSSELS) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone))


# -- when the quiet hours end ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "moment", "zone", "release"),
    [
        (("21:00", "08:00"), local(2025, 1, 15, 22, 30), BRUSSELS, local(2025, 1, 16, 8)),  # before midnight
        (("21:00", "08:00"), local(2025, 1, 16, 3, 0), BRUSSELS, local(2025, 1, 16, 8)),  # after midnight
        (("21:00", "08:00"), local(2025, 1, 15, 21, 0), BRUSSELS, local(2025, 1, 16, 8)),  # the start is quiet
        (("21:00", "08:00"), local(2025, 1, 16, 8, 0), BRUSSELS, None),  # the end is not
        (("21:00", "08:00"), local(2025, 1, 16, 12, 0), BRUSSELS, None),
        (("12:00", "14:00"), local(2025, 1, 16, 13, 0), BRUSSELS, local(2025, 1, 16, 14)),  # within a day
        (("12:00", "14:00"), local(2025, 1, 16, 15, 0), BRUSSELS, None),
        (("21:00", "08:00"), local(2025, 3, 29, 22, 0), BRUSSELS, local(2025, 3, 30, 8)),  # clocks go forward
        (("21:00", "08:00"), local(2025, 10, 25, 22, 0), BRUSSELS, local(2025, 10, 26, 8)),  # clocks go back
        (("21:00", "08:00"), datetime(2025, 1, 15, 21, 30, tzinfo=UTC), "UTC", datetime(2025, 1, 16, 8, tzinfo=UTC)),
        (("21:00", "08:00"), local(2025, 7, 1, 2, 0, "America/New_York"), BRUSSELS, None),  # 08:00 in Brussels
    ],
)
def test_a_message_is_released_when_the_local_quiet_hours_end(
    hours: tuple[str, str], moment: datetime, zone: str, release: datetime | None
) -> None:
    """The release is the next end of the quiet hours, as a wall-clock time of the PLP's zone (DST included)."""
    start, end = hours
    assert QuietHours(start=start, end=end).release_at(moment, zone) == release


def test_the_release_across_a_clock_change_is_a_real_instant() -> None:
    """22:00 to 08:00 the night clocks go forward lasts nine hours, not ten."""
    released = QuietHours(start="21:00", end="08:00").release_at(local(2025, 3, 29, 22, 0), BRUSSELS)
    assert released is not None
    assert released.timestamp() - local(2025, 3, 29, 22, 0).timestamp() == 9 * 3600


# -- the fan-out holds -------------------------------------------------------------------------------


async def held_alert(runtime: Runtime, store: Store, plp: Plp, **fields: object) -> str:
    """A non-urgent alert to the PLP, accepted and fanned out at night; returns its id."""
    alert = new_alert([plp], urgency=Urgency.NON_URGENT, **fields)  # type: ignore[arg-type]
    await accept(runtime, alert)
    assert await run_jobs(runtime, now=NIGHT) == ["fan_out"]
    return alert.id


async def test_a_non_urgent_alert_at_night_is_held_until_the_morning(runtime: Runtime, store: Store) -> None:
    """Nothing is planned; the PLP's fan-out stays pending and is scheduled for 08:00, on the general lane."""
    plp = await add_plp(store, charter=quiet())
    await add_member(store, [plp])
    alert_id = await held_alert(runtime, store, plp)

    assert await deliveries(store, alert_id) == []
    assert queued(runtime.general_queue) == []
    assert timers(runtime) == [
        ({"job": jobs.FAN_OUT, "args": [alert_id, [plp.id]], "urgent": False}, MORNING.timestamp())
    ]
    state = await store.redis.hgetall(runtime.keys.alert_state(alert_id))
    assert (state["status"], state["fanouts_pending"], float(state["held_until"])) == (
        AlertStatus.ACCEPTED,
        "1",
        MORNING.timestamp(),
    )
    assert await store.redis.smembers(runtime.keys.alert_fanouts(alert_id)) == {plp.id}


async def test_the_alert_shows_until_when_it_is_held(runtime: Runtime, store: Store) -> None:
    """The alert's view gives ``held_until``; an alert that was never held has none."""
    plp = await add_plp(store, charter=quiet())
    held_id = await held_alert(runtime, store, plp)
    urgent = new_alert([plp])
    await accept(runtime, urgent)
    await run_jobs(runtime, now=NIGHT)
    views = {}
    for alert_id in (held_id, urgent.id):
        alert = await store.get_alert(alert_id)
        assert alert is not None
        views[alert_id] = AlertView.build(alert, await store.get_progress(alert_id), runtime.settings)
    assert views[held_id].held_until == MORNING
    assert views[urgent.id].held_until is None


async def test_the_clock_releases_the_held_fan_out_when_the_quiet_hours_end(runtime: Runtime, store: Store) -> None:
    """At 08:00 the timer enqueues the same fan-out; it plans and sends, and the alert completes."""
    plp = await add_plp(store, charter=quiet())
    member = await add_member(store, [plp])
    alert_id = await held_alert(runtime, store, plp)
    assert make_due(runtime, jobs.FAN_OUT) == 1
    assert clock.tick(runtime).timers == 1
    assert queued(runtime.general_queue) == [(jobs.FAN_OUT, (alert_id, [plp.id]))]
    assert await run_jobs(runtime, now=MORNING) == ["fan_out", "send_batch"]

    assert [(d.channel, d.member_id) for d in await deliveries(store, alert_id)] == [(EMAIL, member.id)]
    assert (await store.get_progress(alert_id)).status is AlertStatus.COMPLETED
    assert timers(runtime) == []


async def test_urgent_alerts_are_never_held(runtime: Runtime, store: Store) -> None:
    """At night, under the same charter, an urgent alert goes out at once."""
    plp = await add_plp(store, charter=quiet())
    member = await add_member(store, [plp])
    alert = new_alert([plp])
    await accept(runtime, alert)
    assert await run_jobs(runtime, now=NIGHT) == ["fan_out", "send_batch"]
    assert [(d.channel, d.member_id) for d in await deliveries(store, alert.id)] == [(SMS, member.id)]
    assert timers(runtime) == []


async def test_police_feedback_follows_the_quiet_hours_of_its_own_plan(runtime: Runtime, store: Store) -> None:
    """Feedback is held by the feedback plan's quiet hours, not by the non-urgent plan's."""
    plp = await add_plp(store, charter=quiet(feedback_too=False))
    await add_member(store, [plp])
    feedback = new_alert([plp], urgency=Urgency.NON_URGENT).model_copy(update={"about_alert_id": "earlier"})
    await accept(runtime, feedback)
    assert await run_jobs(runtime, now=NIGHT) == ["fan_out", "send_batch"]
    assert len(await deliveries(store, feedback.id)) == 1


async def test_during_the_day_nothing_is_held(runtime: Runtime, store: Store) -> None:
    """At noon a non-urgent alert goes out at once."""
    plp = await add_plp(store, charter=quiet())
    await add_member(store, [plp])
    alert = new_alert([plp], urgency=Urgency.NON_URGENT)
    await accept(runtime, alert)
    assert await run_jobs(runtime, now=NOON) == ["fan_out", "send_batch"]
    assert (await store.get_progress(alert.id)).held_until is None


async def test_each_plp_keeps_its_own_quiet_hours(runtime: Runtime, store: Store) -> None:
    """Of two PLPs, the one in its quiet hours waits while the other is sent to; the alert completes only
    when both are done, and shows the hold."""
    asleep = await add_plp(store, charter=quiet(), name="Asleep")
    awake = await add_plp(store, charter=quiet("01:00", "05:00"), name="Awake")
    in_asleep, in_awake = await add_member(store, [asleep]), await add_member(store, [awake])
    alert = new_alert([asleep, awake], urgency=Urgency.NON_URGENT)
    await accept(runtime, alert)

    assert await run_jobs(runtime, now=NIGHT) == ["fan_out", "send_batch"]
    assert {d.member_id for d in await deliveries(store, alert.id)} == {in_awake.id}
    progress = await store.get_progress(alert.id)
    assert (progress.status, progress.held_until) == (AlertStatus.SENDING, MORNING)

    assert await run_jobs(runtime) == []  # the held PLP waits for the clock
    assert make_due(runtime, jobs.FAN_OUT) == 1
    assert clock.tick(runtime).timers == 1
    assert await run_jobs(runtime, now=MORNING) == ["fan_out", "send_batch"]
    assert {d.member_id for d in await deliveries(store, alert.id)} == {in_asleep.id, in_awake.id}
    assert (await store.get_progress(alert.id)).status is AlertStatus.COMPLETED


async def test_a_held_fan_out_gives_up_its_lease(runtime: Runtime, store: Store) -> None:
    """A fan-out the clock handed out again (its lease ran out) holds no lease while it waits: the clock
    does not run it before the quiet hours end."""
    plp = await add_plp(store, charter=quiet())
    alert = new_alert([plp], urgency=Urgency.NON_URGENT)
    await accept(runtime, alert)
    lease = jobs.fanout_lease(alert.id, plp.id)
    await store.redis.zadd(runtime.keys.leases(), {lease: 0})
    await run_jobs(runtime, now=NIGHT)
    assert await store.redis.zscore(runtime.keys.leases(), lease) is None


# -- a member's own quiet hours and order of channels ---------------------------------------------------


async def choosing(store: Store, member: Member, **choices: object) -> Member:
    """The member's record after they chose on their own page (``dispatcher.people.selfservice``)."""
    updated = member.model_copy(update=choices)
    await store.save_member(updated, previous=member)
    return updated


async def test_a_members_own_quiet_hours_hold_non_urgent_messages_for_them_only(runtime: Runtime, store: Store) -> None:
    """At night, under a charter without quiet hours, the member whose own quiet hours run 21:00-08:00 (in the
    PLP's zone) waits for 08:00 while the others get the message at once; the PLP's fan-out is held as the
    charter's quiet hours hold it, and the alert completes once the member got it too."""
    plp = await add_plp(store, charter=quiet("01:00", "05:00"))
    sleeper = await choosing(store, await add_member(store, [plp]), quiet_hours=QuietHours(start="21:00", end="08:00"))
    awake = await add_member(store, [plp])
    alert = new_alert([plp], urgency=Urgency.NON_URGENT)
    await accept(runtime, alert)

    assert await run_jobs(runtime, now=NIGHT) == ["fan_out", "send_batch"]
    assert {d.member_id for d in await deliveries(store, alert.id)} == {awake.id}
    assert timers(runtime) == [
        ({"job": jobs.FAN_OUT, "args": [alert.id, [plp.id]], "urgent": False}, MORNING.timestamp())
    ]
    progress = await store.get_progress(alert.id)
    assert (progress.status, progress.held_until) == (AlertStatus.FANNING_OUT, MORNING)  # its fan-out waits

    assert make_due(runtime, jobs.FAN_OUT) == 1
    assert clock.tick(runtime).timers == 1
    assert await run_jobs(runtime, now=MORNING) == ["fan_out", "send_batch"]
    assert sorted(d.member_id for d in await deliveries(store, alert.id)) == sorted([awake.id, sleeper.id])
    assert (await store.get_progress(alert.id)).status is AlertStatus.COMPLETED


async def test_urgent_alerts_ignore_a_members_own_quiet_hours(runtime: Runtime, store: Store) -> None:
    plp = await add_plp(store)
    member = await choosing(store, await add_member(store, [plp]), quiet_hours=QuietHours(start="21:00", end="08:00"))
    alert = new_alert([plp])
    await accept(runtime, alert)
    assert await run_jobs(runtime, now=NIGHT) == ["fan_out", "send_batch"]
    assert member.id in {d.member_id for d in await deliveries(store, alert.id)}
    assert timers(runtime) == []


async def test_the_members_order_decides_which_of_the_charters_channels_is_tried_first(
    runtime: Runtime, store: Store
) -> None:
    """The charter says e-mail then SMS, first that works; the member put SMS first: SMS is tried. A channel the
    charter does not name (voice) stays out, whatever the member's order."""
    charter = Charter(
        urgent=ClassPlan(channels=[SMS], ttl_seconds=3600),
        non_urgent=ClassPlan(channels=[EMAIL, SMS], mode=DeliveryMode.FIRST_THAT_WORKS, ttl_seconds=86400),
    )
    plp = await add_plp(store, charter=charter)
    ordered = await choosing(store, await add_member(store, [plp]), channel_order=[VOICE, SMS, EMAIL])
    plain = await add_member(store, [plp])
    alert = new_alert([plp], urgency=Urgency.NON_URGENT)
    await accept(runtime, alert)
    assert await run_jobs(runtime, now=NOON) == ["fan_out", "send_batch"]
    assert {(d.member_id, d.channel) for d in await deliveries(store, alert.id)} == {
        (ordered.id, SMS),
        (plain.id, EMAIL),
    }
