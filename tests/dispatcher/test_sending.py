"""Sending a batch: each delivery claimed, sent through its channel (the outbox here), and recorded."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from config import Settings
from dispatcher.core.logging import mask_address
from dispatcher.core.models import Alert, AlertStatus, DeliveryStatus, Language, Member, MemberStatus
from dispatcher.pipeline.receipts import Receipts
from dispatcher.pipeline.sending import send_batch
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.dispatcher.helpers import (
    EMAIL,
    SMS,
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
from tests.simulators.twilio import TwilioSimulator
from tests.support import until

TEXTS = {Language.FR: "Cambriolage rue du Bailli", Language.NL: "Inbraak in de Baljuwstraat"}


@pytest.fixture
async def store(runtime: Runtime) -> AsyncIterator[Store]:
    async with open_store(runtime) as opened:
        yield opened


@pytest.fixture
def outbox(settings: Settings, tmp_path: Path) -> Path:
    """The outbox file of the test's settings, which must live in the test's own folder."""
    assert settings.outbox_file.is_relative_to(tmp_path), "the test settings' data_dir was not honoured"
    return settings.outbox_file


def outbox_lines(outbox: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()] if outbox.exists() else []


async def refs_of(store: Store, alert_id: str) -> list[str]:
    return [ref_of(d) for d in await deliveries(store, alert_id)]


async def test_deliveries_through_the_outbox_end_outbox_never_delivered(
    runtime: Runtime, store: Store, outbox: Path
) -> None:
    """Every delivery of the batch the outbox keeps ends in its own final status, "outbox" (it reached nobody, so
    it is neither sent nor delivered), with the outbox's provider id and one attempt; the alert completes."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL]))
    for _ in range(3):
        await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp], texts=TEXTS)
    refs = await refs_of(store, alert.id)

    tally = await send_batch(runtime, alert.id, plp.id, refs)

    assert tally == {"outbox": 6}
    for record in await deliveries(store, alert.id):
        assert record.status is DeliveryStatus.OUTBOX
        assert record.provider_id == f"outbox-{record.id}"
        assert record.attempts == 1
        assert {"queued", "sending", "outbox"} <= set(record.times)
        assert not {"sent", "delivered"} & set(record.times)
    await assert_books_balance(store, alert.id)
    assert await alert_status(store, alert.id) is AlertStatus.COMPLETED


async def test_outbox_holds_one_line_per_delivery_in_the_members_language(
    runtime: Runtime, store: Store, outbox: Path
) -> None:
    """The outbox gets one JSON line per delivery, with the text in the member's language and a masked address."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL]), name="PLP Flagey")
    anne = await add_member(store, [plp], phone="+32470123456", email="anne.dupont@example.org", language=Language.FR)
    joris = await add_member(
        store, [plp], phone="+32496765432", email="joris.peeters@example.org", language=Language.NL
    )
    alert = await fanned_out(runtime, [plp], texts=TEXTS)

    await send_batch(runtime, alert.id, plp.id, await refs_of(store, alert.id))

    lines = outbox_lines(outbox)
    assert sorted((line["channel"], line["member_id"]) for line in lines) == sorted(
        (c, m.id) for m in (anne, joris) for c in ("sms", "email")
    )
    members = {anne.id: anne, joris.id: joris}
    for line in lines:
        member = members[line["member_id"]]
        address = member.phone if line["channel"] == "sms" else member.email
        assert address is not None
        assert line["to"] == mask_address(address)
        assert line["text"].startswith(TEXTS[member.language] + "\n")  # the sender's words first, then our hints
        assert line["language"] == member.language.value
        assert line["delivery_id"] == f"{alert.id}:{line['channel']}:{member.id}"
        assert line["alert_id"] == alert.id
        assert line["urgency"] == "urgent"
        assert line["subject"].startswith("[PLP Flagey] ")
    written = outbox.read_text(encoding="utf-8")
    for clear in ("+32470123456", "+32496765432", "anne.dupont", "joris.peeters", "470123456", "496765432"):
        assert clear not in written


async def test_a_member_removed_after_fan_out_is_not_contacted(runtime: Runtime, store: Store, outbox: Path) -> None:
    """A member removed from their only PLP after the fan-out gets nothing: their deliveries end cancelled."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL]))
    gone = await add_member(store, [plp])
    stays = await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    assert await store.remove_member(gone, plp.id) is None

    tally = await send_batch(runtime, alert.id, plp.id, await refs_of(store, alert.id))

    assert tally == {"cancelled": 2, "outbox": 2}
    for record in await deliveries(store, alert.id):
        if record.member_id == gone.id:
            assert (record.status, record.attempts) == (DeliveryStatus.CANCELLED, 0)
            assert record.cause
    assert {line["member_id"] for line in outbox_lines(outbox)} == {stays.id}
    await assert_books_balance(store, alert.id)
    assert await alert_status(store, alert.id) is AlertStatus.COMPLETED


async def test_a_contact_point_dropped_after_fan_out_fails_with_a_reason(
    runtime: Runtime, store: Store, outbox: Path
) -> None:
    """A member who no longer has the contact point a delivery was planned for: that delivery fails, saying why."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL]))
    member = await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    await store.save_member(member.model_copy(update={"email": None}), previous=member)

    tally = await send_batch(runtime, alert.id, plp.id, await refs_of(store, alert.id))

    assert tally == {"outbox": 1, "failed": 1}
    email = await store.get_delivery(alert.id, f"email:{member.id}")
    assert email is not None
    assert email.status is DeliveryStatus.FAILED
    assert email.last_error == "the member has no such contact point any more"
    assert [line["channel"] for line in outbox_lines(outbox)] == ["sms"]
    await assert_books_balance(store, alert.id)


async def test_an_opted_out_member_is_not_contacted(runtime: Runtime, store: Store, outbox: Path) -> None:
    """A member who opts out between fan-out and send gets nothing."""
    plp = await add_plp(store, charter=charter([SMS]))
    member = await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    await store.save_member(member.model_copy(update={"status": MemberStatus.OPTED_OUT}), previous=member)

    assert await send_batch(runtime, alert.id, plp.id, await refs_of(store, alert.id)) == {"cancelled": 1}
    assert not outbox.exists()


async def test_a_cancelled_alert_sends_nothing(runtime: Runtime, store: Store, outbox: Path) -> None:
    """After a cancel, the batch's deliveries end cancelled and nothing reaches the outbox."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL]))
    for _ in range(2):
        await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    assert await store.cancel_alert(alert.id)

    tally = await send_batch(runtime, alert.id, plp.id, await refs_of(store, alert.id))

    assert tally == {"cancelled": 4}
    for record in await deliveries(store, alert.id):
        assert (record.status, record.cause, record.attempts) == (DeliveryStatus.CANCELLED, "alert cancelled", 0)
    assert not outbox.exists()
    assert await alert_status(store, alert.id) is AlertStatus.CANCELLED


async def test_a_batch_run_again_sends_nothing_twice(runtime: Runtime, store: Store, outbox: Path) -> None:
    """Running a finished batch again (an RQ retry) sends nothing and leaves the deliveries as they were."""
    plp = await add_plp(store, charter=charter([SMS]))
    await add_member(store, [plp])
    alert = await fanned_out(runtime, [plp])
    refs = await refs_of(store, alert.id)
    await send_batch(runtime, alert.id, plp.id, refs)
    before = await deliveries(store, alert.id)

    assert await send_batch(runtime, alert.id, plp.id, refs) == {"outbox": 1}
    assert await deliveries(store, alert.id) == before
    assert len(outbox_lines(outbox)) == 1


@pytest.fixture
def slow_outbox(runtime: Runtime) -> Iterator[Runtime]:
    """The test's runtime with an outbox that takes 200 ms to answer, like a vendor API."""
    rt = Runtime(settings=runtime.settings.model_copy(update={"outbox_latency_ms": 200}), redis_url=runtime.redis_url)
    yield rt
    rt.close()


async def test_two_workers_on_the_same_batch_send_each_message_once(
    slow_outbox: Runtime, store: Store, outbox: Path
) -> None:
    """Two workers running the same batch at the same moment write each message to the outbox once."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL]))
    for _ in range(3):
        await add_member(store, [plp])
    alert = await fanned_out(slow_outbox, [plp])
    refs = await refs_of(store, alert.id)

    await asyncio.gather(*(send_batch(slow_outbox, alert.id, plp.id, refs) for _ in range(2)))

    assert Counter(line["delivery_id"] for line in outbox_lines(outbox)) == Counter(f"{alert.id}:{r}" for r in refs)
    for record in await deliveries(store, alert.id):
        assert (record.status, record.attempts) == (DeliveryStatus.OUTBOX, 1)


async def test_a_batch_of_an_unknown_alert_does_nothing(runtime: Runtime, store: Store, outbox: Path) -> None:
    """A send job whose alert or PLP is gone returns an empty tally and writes nothing."""
    plp = await add_plp(store)
    assert await send_batch(runtime, "0000000000000000", plp.id, ["sms:nobody"]) == {}
    assert not outbox.exists()


# -- at a provider's rate: what waits for its turn ----------------------------------------------

PACED_SMS_PER_SECOND = 5
PACED_MEMBERS = 12  # 2.4 s of turns at that rate


@pytest.fixture
async def paced(runtime: Runtime) -> AsyncIterator[tuple[Runtime, TwilioSimulator]]:
    """The test's runtime sending SMS through the Twilio simulator, at 5 SMS per second (one sender)."""
    async with TwilioSimulator(account_sid=PACED_ACCOUNT, auth_token="paced-token", callbacks=False) as twilio:
        update = {
            "twilio_account_sid": PACED_ACCOUNT,
            "twilio_auth_token": SecretStr("paced-token"),
            "twilio_api_base_url": twilio.base_url,
            "twilio_sms_from": ("+3225550001",),
            "limit_sms_per_second": PACED_SMS_PER_SECOND,
        }
        rt = Runtime(settings=runtime.settings.model_copy(update=update), redis_url=runtime.redis_url)
        yield rt, twilio
        rt.close()


PACED_ACCOUNT = "AC" + "7" * 32


async def _sending_paced(rt: Runtime, store: Store) -> tuple[Alert, list[Member], asyncio.Task[dict[str, int]]]:
    plp = await add_plp(store, charter=charter([SMS]))
    members = [await add_member(store, [plp]) for _ in range(PACED_MEMBERS)]
    alert = await fanned_out(rt, [plp])
    batch = asyncio.create_task(send_batch(rt, alert.id, plp.id, await refs_of(store, alert.id)))
    return alert, members, batch


async def test_sends_waiting_for_their_turn_are_not_claimed_before_it(
    paced: tuple[Runtime, TwilioSimulator], store: Store
) -> None:
    """While a batch waits on the provider's rate, the deliveries it has claimed are only those handed to the
    provider: the others stay queued until their turn comes."""
    rt, twilio = paced
    alert, _, batch = await _sending_paced(rt, store)
    await until(lambda: len(twilio.messages) >= 2, timeout=10, what="the first SMS")

    async with store.redis.pipeline(transaction=True) as pipe:  # one moment: a send may end between two reads
        pipe.zrange(store.keys.alert_deliveries_in(alert.id, "sending"), 0, -1)
        pipe.zrange(store.keys.handed(), 0, -1)
        pipe.zcard(store.keys.alert_deliveries_in(alert.id, "queued"))
        sending, handing, queued = await pipe.execute()
    claimed, handed = set(sending), {entry.partition("|")[2] for entry in handing}
    await batch

    assert claimed <= handed, f"claimed but waiting for a turn: {sorted(claimed - handed)}"
    assert queued >= PACED_MEMBERS - 2 - PACED_SMS_PER_SECOND  # the line is still long
    assert len(twilio.messages) == PACED_MEMBERS


async def test_a_cancel_stops_the_sends_waiting_for_their_turn(
    paced: tuple[Runtime, TwilioSimulator], store: Store
) -> None:
    """Cancelled while most of its SMS wait on the provider's rate, an alert sends nothing more once the cancel
    has returned: the waiting deliveries end cancelled, with the cause."""
    rt, twilio = paced
    alert, _, batch = await _sending_paced(rt, store)
    await until(lambda: len(twilio.messages) >= 2, timeout=10, what="the first SMS")

    assert await store.cancel_alert(alert.id)
    assert await store.sends_landed(alert_id=alert.id) == 0
    cancelled_at = time.time()
    tally = await batch

    late = [round(m.received_at - cancelled_at, 2) for m in twilio.messages if m.received_at > cancelled_at]
    assert not late, f"SMS reached Twilio after the cancel returned, by (s): {late}"
    assert tally["cancelled"] >= PACED_MEMBERS - 2 - PACED_SMS_PER_SECOND, tally
    for record in await deliveries(store, alert.id):
        assert record.status in {DeliveryStatus.SENT, DeliveryStatus.CANCELLED}
        if record.status is DeliveryStatus.CANCELLED:
            assert (record.cause, record.attempts) == ("alert cancelled", 0)
    await assert_books_balance(store, alert.id)


async def test_an_opt_out_stops_the_members_send_waiting_for_its_turn(
    paced: tuple[Runtime, TwilioSimulator], store: Store
) -> None:
    """A member who texts STOP while their SMS waits on the provider's rate gets nothing once the STOP is
    answered; the other members' SMS go."""
    rt, twilio = paced
    alert, members, batch = await _sending_paced(rt, store)
    await until(lambda: len(twilio.messages) >= 2, timeout=10, what="the first SMS")
    # The last in the batch's order: beyond the sends it lets wait for a turn, it is nowhere near its own.
    leaver = max(members, key=lambda m: m.id)
    assert leaver.phone not in {m.to for m in twilio.messages}

    await Receipts(store).opt_out(leaver, via=SMS)
    stopped_at = time.time()
    tally = await batch

    assert [m for m in twilio.messages if m.to == leaver.phone and m.received_at > stopped_at] == []
    record = await store.get_delivery(alert.id, f"sms:{leaver.id}")
    assert record is not None
    assert (record.status, record.cause, record.attempts) == (DeliveryStatus.CANCELLED, "member opted out", 0)
    assert tally == {"sent": PACED_MEMBERS - 1, "cancelled": 1}
