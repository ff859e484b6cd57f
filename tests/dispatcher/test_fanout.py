"""Fan-out: one delivery per person and channel, chosen by the charter, enqueued once on the alert's lane."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from dispatcher.core.models import AlertStatus, ChannelName, DeliveryMode, Language, MemberIn, MemberStatus, Urgency
from dispatcher.people.membership import enroll
from dispatcher.pipeline import dispatches, jobs
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.dispatcher.helpers import (
    EMAIL,
    SMS,
    TELEGRAM,
    VOICE,
    accept,
    add_member,
    add_plp,
    alert_status,
    assert_books_balance,
    charter,
    deliveries,
    fanned_out,
    new_alert,
    open_store,
    ref_of,
    run_fan_out,
)
from tests.support import queued_jobs


@pytest.fixture
async def store(runtime: Runtime) -> AsyncIterator[Store]:
    async with open_store(runtime) as opened:
        yield opened


def send_jobs(runtime: Runtime, urgency: Urgency = Urgency.URGENT) -> list[tuple[str, str, list[str]]]:
    """The send jobs waiting on a lane, as their arguments ``(alert id, PLP id, refs)``."""
    return [tuple(job.args) for job in queued_jobs(runtime, urgency) if job.func_name == jobs.SEND_BATCH]


def queued_refs(runtime: Runtime, alert_id: str) -> list[str]:
    return [ref for job_alert, _, refs in send_jobs(runtime) if job_alert == alert_id for ref in refs]


async def planned(store: Store, alert_id: str) -> set[tuple[str, str]]:
    """``(channel, member id)`` of every delivery of the alert."""
    return {(d.channel.value, d.member_id) for d in await deliveries(store, alert_id)}


# -- who ---------------------------------------------------------------------------------------


async def two_overlapping_plps(runtime: Runtime, store: Store, jobs: str) -> tuple[str, list[str], list[int]]:
    """An urgent alert (SMS and e-mail) to two PLPs sharing one member, fanned out by one job or one per PLP.

    Returns the alert id, the refs every person should get, and what each fan-out reported.
    """
    plp_a = await add_plp(store, charter=charter([SMS, EMAIL]), name="PLP A")
    plp_b = await add_plp(store, charter=charter([SMS, EMAIL]), name="PLP B")
    both, _ = await enroll(
        store, plp_a, MemberIn(name="Ann", phone="0470 12 34 56", email="ann@example.org"), region="BE"
    )
    again, existed = await enroll(store, plp_b, MemberIn(name="Ann", phone="+32470123456"), region="BE")
    assert (again.id, existed) == (both.id, True)
    people = [both, await add_member(store, [plp_a]), await add_member(store, [plp_b])]
    alert = new_alert([plp_a, plp_b])
    await accept(runtime, alert)
    if jobs == "one job for both PLPs":
        reported = [await run_fan_out(runtime, alert.id, [plp_a.id, plp_b.id])]
    else:
        reported = [await run_fan_out(runtime, alert.id, [plp_a.id]), await run_fan_out(runtime, alert.id, [plp_b.id])]
    return alert.id, sorted(f"{c}:{m.id}" for m in people for c in ("sms", "email")), reported


OVERLAP_JOBS = pytest.mark.parametrize("jobs", ["one job for both PLPs", "one job per PLP"])


@OVERLAP_JOBS
async def test_a_member_of_two_targeted_plps_is_planned_once(runtime: Runtime, store: Store, jobs: str) -> None:
    """A person enrolled in two PLPs that an alert targets gets one set of deliveries, not two."""
    alert_id, expected, reported = await two_overlapping_plps(runtime, store, jobs)

    assert sorted(ref_of(d) for d in await deliveries(store, alert_id)) == expected
    assert sum(reported) == len(expected) == 6
    assert (await assert_books_balance(store, alert_id))["planned"] == 6


@OVERLAP_JOBS
async def test_a_member_of_two_targeted_plps_is_enqueued_once(runtime: Runtime, store: Store, jobs: str) -> None:
    """The send jobs of two overlapping PLPs carry each of the shared member's deliveries once."""
    alert_id, expected, _ = await two_overlapping_plps(runtime, store, jobs)

    assert sorted(queued_refs(runtime, alert_id)) == expected


async def test_opted_out_members_are_skipped_and_counted(runtime: Runtime, store: Store) -> None:
    """A member who opted out gets no delivery; the alert counts them under "opted_out"."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL]))
    stays = await add_member(store, [plp])
    left = await add_member(store, [plp], status=MemberStatus.OPTED_OUT)
    alert = await fanned_out(runtime, [plp])

    assert {m for _, m in await planned(store, alert.id)} == {stays.id}
    assert all(left.id not in ref for ref in queued_refs(runtime, alert.id))
    counts = await assert_books_balance(store, alert.id)
    assert (counts["opted_out"], counts["planned"]) == (1, 2)


@pytest.mark.parametrize(
    ("plan", "contact", "accepts"),
    [
        ([SMS, VOICE], {"phone": None}, None),  # no mobile number for a phone-only plan
        ([EMAIL], {"email": None}, None),  # no e-mail address for an e-mail-only plan
        ([SMS, EMAIL], {}, [VOICE]),  # accepts none of the plan's channels
        ([TELEGRAM], {}, None),  # never linked a Telegram chat
    ],
)
async def test_members_with_no_usable_channel_are_counted_unreachable(
    runtime: Runtime,
    store: Store,
    plan: list[ChannelName],
    contact: dict[str, Any],
    accepts: list[ChannelName] | None,
) -> None:
    """A member the plan cannot reach gets no delivery and is counted under "unreachable"."""
    plp = await add_plp(store, charter=charter(plan))
    await add_member(store, [plp], channels=accepts, **contact)
    alert = await fanned_out(runtime, [plp])

    assert await planned(store, alert.id) == set()
    assert send_jobs(runtime) == []
    counts = await assert_books_balance(store, alert.id)
    assert (counts["unreachable"], counts.get("planned", 0)) == (1, 0)


async def test_unreachable_through_one_plp_is_still_reached_through_the_other(runtime: Runtime, store: Store) -> None:
    """A person the first PLP's charter cannot reach is reached through the second PLP's charter."""
    voice_only = await add_plp(store, charter=charter([VOICE]), name="PLP voice")
    by_email = await add_plp(store, charter=charter([EMAIL]), name="PLP e-mail")
    member = await add_member(store, [voice_only, by_email], phone=None)
    alert = await fanned_out(runtime, [voice_only, by_email])

    assert await planned(store, alert.id) == {("email", member.id)}


async def test_an_alert_nobody_can_receive_completes_at_once(runtime: Runtime, store: Store) -> None:
    """With nothing to send, the fan-out leaves the alert "completed"."""
    plp = await add_plp(store)
    await add_member(store, [plp], status=MemberStatus.OPTED_OUT)
    alert = await fanned_out(runtime, [plp])
    assert await alert_status(store, alert.id) is AlertStatus.COMPLETED


async def test_after_fan_out_the_alert_is_sending(runtime: Runtime, store: Store) -> None:
    """Once its deliveries are planned and enqueued, the alert is "sending", fan-out stamped."""
    plp = await add_plp(store)
    await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    progress = await store.get_progress(alert.id)
    assert progress.status is AlertStatus.SENDING
    assert {"accepted", "fanning_out", "sending"} <= set(progress.times)


# -- over which channels ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (DeliveryMode.ALL, ["voice", "sms", "email"]),
        (DeliveryMode.FIRST_THAT_WORKS, ["voice"]),
    ],
)
async def test_charter_mode_chooses_the_channels(
    runtime: Runtime, store: Store, mode: DeliveryMode, expected: list[str]
) -> None:
    """Mode "all" plans every usable channel of the plan, in its order; "first_that_works" only the first."""
    plp = await add_plp(store, charter=charter([VOICE, TELEGRAM, SMS, EMAIL], mode=mode))
    member = await add_member(store, [plp], channels=[EMAIL, SMS, VOICE, TELEGRAM])  # telegram never linked
    alert = await fanned_out(runtime, [plp])

    assert queued_refs(runtime, alert.id) == [f"{c}:{member.id}" for c in expected]
    assert await planned(store, alert.id) == {(c, member.id) for c in expected}


async def test_members_choices_narrow_the_plan(runtime: Runtime, store: Store) -> None:
    """Each member is planned on their own accepted channels within the plan."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL, VOICE]))
    texts = await add_member(store, [plp], channels=[SMS])
    mails = await add_member(store, [plp], channels=[EMAIL, TELEGRAM])
    no_phone = await add_member(store, [plp], phone=None)
    alert = await fanned_out(runtime, [plp])

    assert await planned(store, alert.id) == {("sms", texts.id), ("email", mails.id), ("email", no_phone.id)}


@pytest.mark.parametrize(("urgency", "channel"), [(Urgency.URGENT, "sms"), (Urgency.NON_URGENT, "email")])
async def test_the_plan_of_the_alerts_urgency_is_used(
    runtime: Runtime, store: Store, urgency: Urgency, channel: str
) -> None:
    """Urgent alerts follow the charter's urgent plan, non-urgent ones its non-urgent plan."""
    plp = await add_plp(store, charter=charter([SMS], non_urgent=[EMAIL]))
    member = await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp], urgency=urgency)
    assert await planned(store, alert.id) == {(channel, member.id)}


# -- enqueueing ------------------------------------------------------------------------------


async def fanned_out_twice(runtime: Runtime, store: Store) -> tuple[str, list[int], list, dict[str, int]]:
    """Fan an alert out to a PLP (three reachable members, one opted out, one unreachable), then again.

    Returns the alert id, what each run reported, and the send jobs and counters after the first run.
    """
    plp = await add_plp(store, charter=charter([SMS, EMAIL]))
    for _ in range(3):
        await add_member(store, [plp])
    await add_member(store, [plp], status=MemberStatus.OPTED_OUT)
    await add_member(store, [plp], phone=None, channels=[SMS])
    alert = new_alert([plp])
    await accept(runtime, alert)
    first = await run_fan_out(runtime, alert.id, [plp.id])
    jobs, counts = send_jobs(runtime), await assert_books_balance(store, alert.id)
    second = await run_fan_out(runtime, alert.id, [plp.id])
    return alert.id, [first, second], jobs, counts


async def test_running_fan_out_again_plans_nothing_new(runtime: Runtime, store: Store) -> None:
    """A fan-out job run twice (a retry after a crash) creates no second delivery and counts nobody twice."""
    alert_id, reported, _, counts = await fanned_out_twice(runtime, store)

    assert reported == [6, 0]
    assert await assert_books_balance(store, alert_id) == counts
    assert (counts["planned"], counts["opted_out"], counts["unreachable"]) == (6, 1, 1)


async def test_running_fan_out_again_enqueues_no_duplicate_send(runtime: Runtime, store: Store) -> None:
    """A fan-out job run twice enqueues no second send job for deliveries already enqueued."""
    _, _, jobs, _ = await fanned_out_twice(runtime, store)

    assert send_jobs(runtime) == jobs


@pytest.mark.parametrize(
    ("urgency", "other"), [(Urgency.URGENT, Urgency.NON_URGENT), (Urgency.NON_URGENT, Urgency.URGENT)]
)
async def test_send_jobs_go_on_the_lane_of_the_urgency(
    runtime: Runtime, store: Store, urgency: Urgency, other: Urgency
) -> None:
    """Send jobs of urgent alerts go on the urgent lane, those of non-urgent alerts on the general queue."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL], non_urgent=[EMAIL, SMS], non_urgent_mode=DeliveryMode.ALL))
    members = [await add_member(store, [plp]) for _ in range(2)]
    alert = await fanned_out(runtime, [plp], urgency=urgency)

    jobs = send_jobs(runtime, urgency)
    assert [(a, p) for a, p, _ in jobs] == [(alert.id, plp.id)]
    assert sorted(jobs[0][2]) == sorted(f"{c}:{m.id}" for m in members for c in ("sms", "email"))
    assert send_jobs(runtime, other) == []


async def test_an_urgent_alerts_send_jobs_wait_in_a_queue_of_their_own_named_after_its_police_zone(
    runtime: Runtime, store: Store
) -> None:
    """An urgent alert's send jobs wait in a queue of their own (which the workers take in turn with the other
    alerts'), named after each PLP's police zone, not in the urgent lane's own queue, which keeps the fan-outs."""
    north = await add_plp(store, charter=charter([SMS]), police_zone="5340")
    south = await add_plp(store, charter=charter([SMS]), police_zone="5341")
    members = {plp.id: await add_member(store, [plp]) for plp in (north, south)}
    alert = await fanned_out(runtime, [north, south])
    other = await fanned_out(runtime, [north])

    assert [q.name for q in runtime.alert_queues()] == sorted(
        [f"plptest-urgent@5340@{alert.id}", f"plptest-urgent@5341@{alert.id}", f"plptest-urgent@5340@{other.id}"]
    )
    assert [runtime.zone_of(q.name) for q in runtime.alert_queues("5341")] == ["5341"]
    for plp in (north, south):
        queue = runtime.alert_queue(plp.police_zone, alert.id)
        assert [tuple(job.args) for job in queue.jobs] == [(alert.id, plp.id, [f"sms:{members[plp.id].id}"])]
    assert jobs.SEND_BATCH not in {job.func_name for job in runtime.urgent_queue.jobs}


async def test_the_clock_forgets_an_alerts_queue_once_it_is_empty_and_a_new_job_brings_it_back(
    runtime: Runtime, store: Store
) -> None:
    """The workers read the register of queues before each look: an emptied alert queue leaves it at the next
    sweep, atomically with its emptiness (a job enqueued meanwhile keeps it, or registers it again)."""
    plp = await add_plp(store, charter=charter([SMS]), police_zone="5340")
    await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    queue = runtime.alert_queue("5340", alert.id)
    assert dispatches.forget_empty_queues(runtime) == 0  # it holds a job: kept
    queue.empty()
    assert dispatches.forget_empty_queues(runtime) == 1
    assert runtime.alert_queues() == []
    queue.enqueue_call(jobs.SEND_BATCH, args=(alert.id, plp.id, []))
    assert [q.name for q in runtime.alert_queues()] == [queue.name]


@pytest.fixture
def small_batches(runtime: Runtime) -> Iterator[Runtime]:
    """The test's runtime with the smallest fan-out chunk and send batches of four."""
    settings = runtime.settings.model_copy(update={"fanout_chunk": 10, "send_batch_size": 4})
    rt = Runtime(settings=settings, redis_url=runtime.redis_url)
    yield rt
    rt.close()


async def test_large_plps_are_planned_chunk_by_chunk_in_bounded_batches(small_batches: Runtime, store: Store) -> None:
    """Members beyond one chunk are all planned once, and each send job carries at most a batch of deliveries."""
    plp = await add_plp(store, charter=charter([SMS]))
    members = [await add_member(store, [plp], language=Language.NL) for _ in range(23)]
    alert = await fanned_out(small_batches, [plp])

    jobs = send_jobs(small_batches)
    assert all(len(refs) <= 4 for _, _, refs in jobs)
    refs = Counter(ref for _, _, refs in jobs for ref in refs)
    assert refs == Counter(f"sms:{m.id}" for m in members)
    assert (await assert_books_balance(store, alert.id))["planned"] == 23
