"""Delivery and alert statuses, moved by the Lua scripts: only forward, counted once, never sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.core.models import Alert, AlertStatus, DeliveryStatus, Member, MemberStatus, Plp
from dispatcher.pipeline import sending
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.dispatcher.helpers import (
    EMAIL,
    SMS,
    Scripted,
    add_member,
    add_plp,
    alert_status,
    assert_books_balance,
    charter,
    deliveries,
    fanned_out,
    open_store,
    ref_of,
)
from tests.support import until

QUEUED, SENDING, SENT = DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.SENT
CLAIMED = sending.CLAIMED
DELIVERED, FAILED = DeliveryStatus.DELIVERED, DeliveryStatus.FAILED
EXPIRED, CANCELLED = DeliveryStatus.EXPIRED, DeliveryStatus.CANCELLED


@pytest.fixture
async def store(runtime: Runtime) -> AsyncIterator[Store]:
    async with open_store(runtime) as opened:
        yield opened


@dataclass
class Scene:
    """An urgent alert fanned out to one PLP (SMS and e-mail to everyone): two members, four deliveries."""

    alert: Alert
    plp: Plp
    members: list[Member]
    refs: list[str]
    scripts: Scripted


async def make_scene(runtime: Runtime, store: Store, **alert_fields: object) -> Scene:
    plp = await add_plp(store, charter=charter([SMS, EMAIL]))
    members = [await add_member(store, [plp]), await add_member(store, [plp])]
    alert = await fanned_out(runtime, [plp], **alert_fields)
    refs = [ref_of(d) for d in await deliveries(store, alert.id)]
    assert len(refs) == 4
    return Scene(alert, plp, members, refs, Scripted(store, alert, plp))


@pytest.fixture
async def scene(runtime: Runtime, store: Store) -> Scene:
    return await make_scene(runtime, store)


async def status_of(store: Store, alert_id: str, ref: str) -> DeliveryStatus:
    record = await store.get_delivery(alert_id, ref)
    assert record is not None
    return record.status


async def bring_to(scene: Scene, store: Store, ref: str, status: DeliveryStatus) -> None:
    """Move one delivery to ``status`` the way the service would get it there."""
    if status is CANCELLED:
        assert await store.cancel_alert(scene.alert.id)
    if status is EXPIRED:  # a worker that reaches the delivery after its time-to-live
        too_late = scene.alert.created_at.timestamp() + scene.alert.ttl_seconds + 1
        assert await scene.scripts.claim(ref, at=too_late) == EXPIRED
        return
    claimed = await scene.scripts.claim(ref)
    assert claimed == (CANCELLED if status is CANCELLED else CLAIMED)
    if status in (SENT, DELIVERED, FAILED):
        assert await scene.scripts.record(ref, status) == status


# -- statuses only move forward --------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "report", "allowed"),
    [
        (SENDING, SENT, True),
        (SENDING, DELIVERED, True),
        (SENDING, FAILED, True),
        (SENT, DELIVERED, True),
        (SENT, FAILED, True),
        (SENDING, QUEUED, False),
        (SENT, SENDING, False),
        (SENT, SENT, False),
        (DELIVERED, SENT, False),  # a late "sent" callback after the delivery report
        (DELIVERED, DELIVERED, False),
        (DELIVERED, FAILED, False),
        (FAILED, DELIVERED, False),
        (FAILED, SENT, False),
        (CANCELLED, SENT, False),
        (CANCELLED, DELIVERED, False),
        (EXPIRED, DELIVERED, False),
    ],
)
async def test_statuses_only_move_forward(
    scene: Scene, store: Store, start: DeliveryStatus, report: DeliveryStatus, allowed: bool
) -> None:
    """A report moves a delivery only to a later status; else it changes nothing and answers the current one."""
    ref = scene.refs[0]
    await bring_to(scene, store, ref, start)
    before = await store.get_delivery(scene.alert.id, ref)
    counts_before = await assert_books_balance(store, scene.alert.id)

    answer = await scene.scripts.record(ref, report, provider_id="late-id", error="late error")

    after = await store.get_delivery(scene.alert.id, ref)
    assert after is not None and before is not None
    if allowed:
        assert (answer, after.status) == (report, report)
        assert report.value in after.times
    else:
        assert (answer, after.status) == (start, start)
        assert after == before
        assert await assert_books_balance(store, scene.alert.id) == counts_before
    await assert_books_balance(store, scene.alert.id)


async def test_each_transition_records_its_time(scene: Scene, store: Store) -> None:
    """Every status a delivery passes through is stamped with a t_<status> time, in order."""
    ref = scene.refs[0]
    assert await scene.scripts.claim(ref) == CLAIMED
    assert await scene.scripts.record(ref, SENT, provider_id="SM123") == SENT
    assert await scene.scripts.record(ref, DELIVERED) == DELIVERED

    record = await store.get_delivery(scene.alert.id, ref)
    assert record is not None
    assert list(record.times) == ["queued", "sending", "sent", "delivered"]
    stamps = list(record.times.values())
    assert stamps == sorted(stamps)
    assert (record.provider_id, record.attempts) == ("SM123", 1)


async def test_a_repeated_report_is_idempotent(scene: Scene, store: Store) -> None:
    """The same delivery report received twice is recorded once: same status, time and counters."""
    ref = scene.refs[0]
    await bring_to(scene, store, ref, SENDING)
    assert await scene.scripts.record(ref, DELIVERED, provider_id="p1") == DELIVERED
    first = await store.get_delivery(scene.alert.id, ref)
    counts = await assert_books_balance(store, scene.alert.id)

    assert await scene.scripts.record(ref, DELIVERED, provider_id="p2") == DELIVERED

    assert await store.get_delivery(scene.alert.id, ref) == first
    assert await assert_books_balance(store, scene.alert.id) == counts
    assert (counts["s:delivered"], counts["settled"]) == (1, 1)


async def test_failure_keeps_its_error(scene: Scene, store: Store) -> None:
    """A failed delivery keeps the error the channel gave, for the coordinator to read."""
    ref = scene.refs[0]
    await bring_to(scene, store, ref, SENDING)
    assert await scene.scripts.record(ref, FAILED, error="mailbox full") == FAILED
    record = await store.get_delivery(scene.alert.id, ref)
    assert record is not None
    assert (record.status, record.last_error) == (FAILED, "mailbox full")


async def test_counters_follow_every_move(scene: Scene, store: Store) -> None:
    """Through a mix of outcomes, per-status and per-channel counters always match the deliveries."""
    counts = await assert_books_balance(store, scene.alert.id)
    assert (counts["planned"], counts["s:queued"], counts["c:sms:queued"], counts["c:email:queued"]) == (4, 4, 2, 2)
    outcomes = [DELIVERED, SENT, FAILED, DELIVERED]
    for ref, outcome in zip(scene.refs, outcomes, strict=True):
        assert await scene.scripts.claim(ref) == CLAIMED
        await assert_books_balance(store, scene.alert.id)
        assert await scene.scripts.record(ref, outcome) == outcome
        await assert_books_balance(store, scene.alert.id)
    counts = await assert_books_balance(store, scene.alert.id)
    assert (counts["s:delivered"], counts["s:sent"], counts["s:failed"], counts["settled"]) == (2, 1, 1, 4)


# -- the claim -----------------------------------------------------------------------------


async def test_claim_moves_a_queued_delivery_to_sending(scene: Scene, store: Store) -> None:
    """Claiming a queued delivery of a live alert hands the send to the caller and counts an attempt."""
    ref = scene.refs[0]
    assert await scene.scripts.claim(ref) == CLAIMED
    record = await store.get_delivery(scene.alert.id, ref)
    assert record is not None
    assert (record.status, record.attempts, record.cause) == (SENDING, 1, None)
    await assert_books_balance(store, scene.alert.id)


async def test_claim_refuses_a_delivery_of_a_cancelled_alert(scene: Scene, store: Store) -> None:
    """After a cancel, a claim cancels the delivery instead of starting it, and says why."""
    assert await store.cancel_alert(scene.alert.id)
    for ref in scene.refs:
        assert await scene.scripts.claim(ref) == CANCELLED
        record = await store.get_delivery(scene.alert.id, ref)
        assert record is not None
        assert (record.status, record.cause, record.attempts) == (CANCELLED, "alert cancelled", 0)
    await assert_books_balance(store, scene.alert.id)
    assert await alert_status(store, scene.alert.id) is AlertStatus.CANCELLED


async def test_claim_refuses_a_delivery_of_an_expired_alert(runtime: Runtime, store: Store) -> None:
    """Past the alert's time-to-live, a claim expires the delivery instead of starting it."""
    scene = await make_scene(runtime, store, created_at=datetime.now(UTC) - timedelta(hours=2), ttl_seconds=3600)
    ref = scene.refs[0]
    assert await scene.scripts.claim(ref) == EXPIRED
    record = await store.get_delivery(scene.alert.id, ref)
    assert record is not None
    assert (record.status, record.attempts) == (EXPIRED, 0)
    assert record.cause == "time-to-live passed before it could be sent"
    await assert_books_balance(store, scene.alert.id)


async def test_claim_refuses_a_delivery_to_a_member_who_opted_out(scene: Scene, store: Store) -> None:
    """A member who opts out after the fan-out is not contacted: their deliveries are cancelled, the others go."""
    leaver, stayer = scene.members
    await store.save_member(leaver.model_copy(update={"status": MemberStatus.OPTED_OUT}), previous=leaver)
    answers = {ref: await scene.scripts.claim(ref) for ref in scene.refs}
    for channel in ("sms", "email"):
        assert (answers[f"{channel}:{leaver.id}"], answers[f"{channel}:{stayer.id}"]) == (CANCELLED, CLAIMED)
        record = await store.get_delivery(scene.alert.id, f"{channel}:{leaver.id}")
        assert record is not None
        assert (record.cause, record.attempts) == ("member opted out", 0)
    await assert_books_balance(store, scene.alert.id)


@pytest.mark.parametrize(
    ("stop", "answer", "cause"),
    [
        ("nothing", sending.READY, None),
        ("alert cancelled", CANCELLED, "alert cancelled"),
        ("member opted out", CANCELLED, "member opted out"),
    ],
)
async def test_a_check_before_the_turn_ends_a_stopped_delivery_and_leaves_the_others_as_they_are(
    scene: Scene, store: Store, stop: str, answer: str, cause: str | None
) -> None:
    """Checked before it waits for its turn, a delivery that may still go stays queued and unclaimed; one that
    was stopped ends at once, with the cause."""
    member, ref = scene.members[0], f"sms:{scene.members[0].id}"
    if stop == "alert cancelled":
        assert await store.cancel_alert(scene.alert.id)
    elif stop == "member opted out":
        await store.save_member(member.model_copy(update={"status": MemberStatus.OPTED_OUT}), previous=member)

    assert await scene.scripts.claim(ref, mode="check") == answer

    record = await store.get_delivery(scene.alert.id, ref)
    assert record is not None
    assert (record.status.value, record.cause, record.attempts) == (
        QUEUED.value if answer == sending.READY else answer,
        cause,
        0,
    )
    assert await store.redis.zrange(store.keys.handed(), 0, -1) == []
    await assert_books_balance(store, scene.alert.id)


async def test_a_claim_hands_the_send_over_until_the_provider_answers(scene: Scene, store: Store) -> None:
    """The claim puts the send among those handed to a provider; recording the provider's answer takes it out."""
    ref = scene.refs[0]
    assert await scene.scripts.claim(ref) == CLAIMED
    assert await store.redis.zrange(store.keys.handed(), 0, -1) == [f"{scene.alert.id}|{ref}"]
    assert await scene.scripts.record(ref, SENT) == SENT
    assert await store.redis.zrange(store.keys.handed(), 0, -1) == []


async def test_waiting_for_the_sends_of_a_cancelled_alert_ends_when_the_provider_answers(
    scene: Scene, store: Store
) -> None:
    """After a cancel, the sends already handed over are waited for until their answer is recorded, and only
    the alert's own: another alert's send in flight does not hold the wait."""
    mine, other = scene.refs[0], scene.refs[1]
    assert await scene.scripts.claim(mine) == CLAIMED
    assert await store.cancel_alert(scene.alert.id)
    waiting = asyncio.create_task(store.sends_landed(alert_id=scene.alert.id))
    await until(lambda: _listening(store), timeout=5, what="the wait to listen")
    assert not waiting.done()

    assert await scene.scripts.record(mine, SENT) == SENT
    async with asyncio.timeout(5):
        assert await waiting == 0
    assert await scene.scripts.claim(other) == CANCELLED  # nothing starts after the cancel


async def test_waiting_for_an_opted_out_members_sends_ends_when_the_provider_answers(
    scene: Scene, store: Store
) -> None:
    """After an opt-out, the member's sends already handed over are waited for until answered (a retry too)."""
    member = scene.members[0]
    sms, email = f"sms:{member.id}", f"email:{member.id}"
    assert await scene.scripts.claim(sms) == CLAIMED
    assert await scene.scripts.claim(f"sms:{scene.members[1].id}") == CLAIMED  # someone else's: not waited for
    await store.save_member(member.model_copy(update={"status": MemberStatus.OPTED_OUT}), previous=member)
    waiting = asyncio.create_task(store.sends_landed(member_id=member.id))
    await until(lambda: _listening(store), timeout=5, what="the wait to listen")
    assert not waiting.done()

    assert await scene.scripts.record(sms, FAILED) == FAILED
    async with asyncio.timeout(5):
        assert await waiting == 0
    assert await scene.scripts.claim(email) == CANCELLED


async def test_a_send_past_the_end_of_its_provider_call_is_not_waited_for(scene: Scene, store: Store) -> None:
    """A send whose provider call should have ended long ago (its worker died) does not hold a cancel: the wait
    returns at once and says how many sends never got their answer."""
    ref = scene.refs[0]
    assert await scene.scripts.claim(ref, answer_by=-1) == CLAIMED
    assert await store.cancel_alert(scene.alert.id)
    async with asyncio.timeout(1):
        assert await store.sends_landed(alert_id=scene.alert.id) == 1


async def _listening(store: Store) -> bool:
    [(_, subscribers)] = await store.redis.pubsub_numsub(store.keys.handed_landed())
    return int(subscribers) > 0


async def test_a_second_claim_does_not_hand_over_the_send(scene: Scene, store: Store) -> None:
    """Once a delivery is claimed, a second claim answers its status, not "claimed": one worker owns a send."""
    ref = scene.refs[0]
    assert await scene.scripts.claim(ref) == CLAIMED
    again = await scene.scripts.claim(ref)
    assert again == SENDING
    record = await store.get_delivery(scene.alert.id, ref)
    assert record is not None
    assert (record.status, record.attempts) == (SENDING, 1)
    await assert_books_balance(store, scene.alert.id)


async def test_concurrent_claims_give_the_send_to_exactly_one(scene: Scene, store: Store) -> None:
    """Of several workers claiming the same delivery at once, exactly one is told to send it."""
    ref = scene.refs[0]
    answers = await asyncio.gather(*(scene.scripts.claim(ref) for _ in range(5)))
    assert answers.count(CLAIMED) == 1, answers


async def test_claim_of_a_finished_delivery_leaves_it(scene: Scene, store: Store) -> None:
    """Claiming a delivery that already ended answers its status and changes nothing."""
    ref = scene.refs[0]
    await bring_to(scene, store, ref, DELIVERED)
    counts = await assert_books_balance(store, scene.alert.id)
    assert await scene.scripts.claim(ref) == DELIVERED
    assert await assert_books_balance(store, scene.alert.id) == counts


# -- the alert's completion ------------------------------------------------------------------


async def test_alert_completes_when_every_delivery_is_handed_over_or_ended(scene: Scene, store: Store) -> None:
    """The alert stays "sending" until its last delivery is sent or ended; later provider reports still count."""
    assert await alert_status(store, scene.alert.id) is AlertStatus.SENDING
    *first, last = scene.refs
    for ref, outcome in zip(first, [DELIVERED, FAILED, SENT], strict=True):
        await bring_to(scene, store, ref, outcome)
        assert await alert_status(store, scene.alert.id) is AlertStatus.SENDING
    await bring_to(scene, store, last, SENT)

    progress = await store.get_progress(scene.alert.id)
    assert progress.status is AlertStatus.COMPLETED
    assert "completed" in progress.times
    assert await scene.scripts.record(first[2], DELIVERED) == DELIVERED  # the provider's report, after completion
    counts = await assert_books_balance(store, scene.alert.id)
    assert (counts["s:delivered"], counts["s:sent"]) == (2, 1)


async def test_alert_expires_when_every_delivery_expired(runtime: Runtime, store: Store) -> None:
    """When no delivery could be sent before the time-to-live, the alert ends "expired", not "completed"."""
    scene = await make_scene(runtime, store, created_at=datetime.now(UTC) - timedelta(hours=2), ttl_seconds=3600)
    for ref in scene.refs:
        assert await scene.scripts.claim(ref) == EXPIRED
    progress = await store.get_progress(scene.alert.id)
    assert progress.status is AlertStatus.EXPIRED
    assert "expired" in progress.times
    assert "completed" not in progress.times


async def test_alert_with_some_expired_deliveries_completes(scene: Scene, store: Store) -> None:
    """An alert whose deliveries partly went and partly expired is "completed"."""
    *others, late = scene.refs
    for ref in others:
        await bring_to(scene, store, ref, DELIVERED)
    await bring_to(scene, store, late, EXPIRED)
    assert await alert_status(store, scene.alert.id) is AlertStatus.COMPLETED


async def test_a_cancelled_alert_stays_cancelled(scene: Scene, store: Store) -> None:
    """Finishing the deliveries of a cancelled alert does not turn it "completed"."""
    await bring_to(scene, store, scene.refs[0], DELIVERED)
    assert await store.cancel_alert(scene.alert.id)
    for ref in scene.refs[1:]:
        assert await scene.scripts.claim(ref) == CANCELLED
    assert await alert_status(store, scene.alert.id) is AlertStatus.CANCELLED
    assert not await store.cancel_alert(scene.alert.id)


# -- acknowledgements ------------------------------------------------------------------------


async def test_acknowledgement_counts_once(scene: Scene, store: Store) -> None:
    """A member acknowledging twice (or by two channels) is counted once, with the first channel kept."""
    ref = scene.refs[0]
    await bring_to(scene, store, ref, DELIVERED)
    assert await store.acknowledge(scene.alert.id, ref, via="sms")
    assert not await store.acknowledge(scene.alert.id, ref, via="telegram")

    record = await store.get_delivery(scene.alert.id, ref)
    assert record is not None
    assert record.acknowledged_at is not None
    assert record.acknowledged_by == "sms"
    assert (await store.get_progress(scene.alert.id)).counts["acknowledged"] == 1


async def test_acknowledging_an_unknown_delivery_counts_nothing(scene: Scene, store: Store) -> None:
    """An acknowledgement for a delivery that does not exist is refused and not counted."""
    assert not await store.acknowledge(scene.alert.id, "sms:nobody", via="sms")
    assert "acknowledged" not in (await store.get_progress(scene.alert.id)).counts
