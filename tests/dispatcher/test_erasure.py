"""Erasure at the store: what goes when a member leaves their last PLP, and what stays (their id, counts)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dispatcher.core.links import telegram_link_token
from dispatcher.core.models import ChannelName, DeliveryStatus, Member
from dispatcher.pipeline.receipts import Receipts
from dispatcher.storage.erasure import contact_forms, scrub
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, delivery_id
from tests.dispatcher.helpers import (
    EMAIL,
    SMS,
    TELEGRAM,
    Scripted,
    add_member,
    add_plp,
    charter,
    fanned_out,
    open_store,
)

PHONE, ADDRESS, CHAT = "+32470998877", "eva.peeters@example.be", 55443322


@pytest.fixture
async def store(runtime: Runtime) -> AsyncIterator[Store]:
    async with open_store(runtime) as opened:
        yield opened


async def eva(store: Store) -> tuple[Member, str]:
    """Eva, on SMS, e-mail and Telegram, in one PLP; returns her and the PLP's id."""
    plp = await add_plp(store, charter=charter([SMS, EMAIL, TELEGRAM]))
    member = await add_member(store, [plp], phone=PHONE, email=ADDRESS, telegram_chat_id=CHAT)
    return member, plp.id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The 'To' number +32470998877 is not a valid phone number.", "The 'To' number erased is not a valid"),
        ("rejected 0470998877 for region", "rejected erased for region"),
        ("<eva.peeters@example.be>: mailbox full", "<erased>: mailbox full"),
        ("chat 55443322 not found", "chat erased not found"),
        ("someone else: +32 470 11 22 33, bob@example.org", "someone else: +324******33, b***@example.org"),
        ("Twilio answered HTTP 503", "Twilio answered HTTP 503"),
    ],
)
def test_a_provider_text_loses_the_members_contact_points_and_masks_any_other(text: str, expected: str) -> None:
    """Her phone (international or national), address and chat id become "erased"; other contact points are masked."""
    member = Member.model_validate(
        {
            "id": "m1",
            "name": "Eva",
            "phone": PHONE,
            "email": ADDRESS,
            "telegram_chat_id": CHAT,
            "language": "nl",
            "channels": ["sms"],
            "consent_at": "2025-01-01T00:00:00Z",
            "plp_ids": ["p1"],
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:00Z",
        }
    )
    assert scrub(text, contact_forms(member)).startswith(expected)


async def test_contact_points_a_provider_wrote_into_deliveries_are_erased(runtime: Runtime, store: Store) -> None:
    """The Telegram chat in the provider's message id and the phone or address in error texts go;
    statuses, times and the acknowledgement stay."""
    member, plp_id = await eva(store)
    plp = await store.get_plp(plp_id)
    assert plp is not None
    alert = await fanned_out(runtime, [plp])
    script = Scripted(store, alert, plp)
    for channel, status, provider_id, error in (
        (SMS, DeliveryStatus.FAILED, "", f"refused by Twilio (error 21408): not enabled for {PHONE}"),
        (EMAIL, DeliveryStatus.FAILED, "", f"address refused by the mail server: 550 <{ADDRESS}>"),
        (TELEGRAM, DeliveryStatus.DELIVERED, f"{CHAT}:42", ""),
    ):
        ref = f"{channel.value}:{member.id}"
        assert await script.claim(ref) == "claimed"
        await script.record(ref, status, provider_id=provider_id, error=error)
    assert await store.acknowledge(alert.id, f"telegram:{member.id}", via="telegram")

    assert await store.remove_member(member, plp_id) is None

    kept = {d.channel: d for d in await store.member_deliveries(member.id, [plp_id])}
    assert kept[ChannelName.TELEGRAM].provider_id == "erased:42"
    assert kept[ChannelName.TELEGRAM].acknowledged_by == "telegram"
    assert kept[SMS].last_error == "refused by Twilio (error 21408): not enabled for erased"
    assert kept[EMAIL].last_error == "address refused by the mail server: 550 <erased>"
    assert {d.status for d in kept.values()} == {DeliveryStatus.FAILED, DeliveryStatus.DELIVERED}


async def test_replies_and_pointers_go_and_the_counts_stay(runtime: Runtime, store: Store) -> None:
    """Her replies leave the alert's, PLP's and her own index; the reply counters and the alert stay."""
    member, plp_id = await eva(store)
    plp = await store.get_plp(plp_id)
    assert plp is not None
    alert = await fanned_out(runtime, [plp])
    receipts = Receipts(store)
    did = delivery_id(alert.id, f"sms:{member.id}")
    await store.remember_last_delivery(member.id, SMS, did, ttl=3600)
    reply = await receipts.feedback(member, "Een wit busje", via=SMS, delivery=did)
    keys = runtime.keys

    await store.remove_member(member, plp_id)

    redis = store.redis
    assert await redis.exists(keys.feedback(reply.id), keys.member_feedback(member.id)) == 0
    assert await redis.zcard(keys.alert_feedback(alert.id)) == await redis.zcard(keys.plp_feedback(plp_id)) == 0
    assert await redis.exists(keys.member_last(member.id, "sms")) == 0
    assert await redis.hget(keys.alert_counts(alert.id), "feedback") == "1"
    assert sum((await receipts.feedback_counts(plp_id)).values()) == 1


async def test_a_reply_that_comes_in_while_the_member_is_erased_does_not_stay(store: Store) -> None:
    """A reply stored after the member record went (the handler had read it just before) is taken out at once."""
    member, plp_id = await eva(store)
    await store.remove_member(member, plp_id)
    reply = await Receipts(store).feedback(member, "Een wit busje", via=SMS, delivery=None)
    assert await store.redis.exists(store.keys.feedback(reply.id)) == 0
    assert await store.redis.zcard(store.keys.plp_feedback(plp_id)) == 0
    assert sum((await Receipts(store).feedback_counts(plp_id)).values()) == 1


async def test_a_pending_telegram_link_is_revoked(store: Store) -> None:
    """A Telegram link issued and not used no longer links anyone once the member is erased."""
    member, plp_id = await eva(store)
    token = telegram_link_token()
    await Receipts(store).issue_telegram_link(member, token, ttl=3600)
    await store.remove_member(member, plp_id)
    assert await store.redis.exists(store.keys.telegram_link(token), store.keys.member_telegram_links(member.id)) == 0
    assert await Receipts(store).link_telegram(token, 99) is None


async def test_a_used_telegram_link_leaves_the_members_index(store: Store) -> None:
    """Linking a chat takes its token out of the member's pending links."""
    member, _ = await eva(store)
    token = telegram_link_token()
    receipts = Receipts(store)
    await receipts.issue_telegram_link(member, token, ttl=3600)
    linked = await receipts.link_telegram(token, 77)
    assert linked is not None and linked.telegram_chat_id == 77
    assert await store.redis.smembers(store.keys.member_telegram_links(member.id)) == set()


async def test_leaving_one_plp_of_two_keeps_the_data_and_remembers_the_plp(store: Store) -> None:
    """A member who leaves one of two PLPs keeps their record; the PLP left is noted, to find its deliveries later."""
    member, plp_id = await eva(store)
    other = await add_plp(store, name="PLP Bailli")
    both = member.model_copy(update={"plp_ids": [plp_id, other.id]})
    await store.save_member(both, previous=member)
    kept = await store.remove_member(both, other.id)
    assert kept is not None and kept.phone == PHONE and kept.plp_ids == [plp_id]
    assert await store.redis.smembers(store.keys.member_left(member.id)) == {other.id}
    await store.remove_member(kept, plp_id)
    assert await store.redis.exists(store.keys.member_left(member.id), store.keys.member(member.id)) == 0
