"""A member's personal data end to end: the export (theirs through the link in every e-mail, a
coordinator's through the API) and the erasure when they leave, checked against everything Redis holds.

The world is the neighbourhood of ``tests.world``, with one more member, Zoé, who uses every
channel and gave her address and position: she receives alerts, acknowledges one, replies on three
channels, has a Telegram link pending, and has a provider refuse her number with the number in its
error text.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from dispatcher.core.links import secret_key
from dispatcher.storage.limits import whatsapp_user_limit_name
from tests.redis_scan import everything
from tests.simulators.twilio import Failure
from tests.support import get_json, post_json, run_queued
from tests.world import SMS_FROM, WEBHOOK_SECRET, World, link_in, open_world

HOME = {"street": "Avenue Brugmann", "number": "287", "postcode": "1180", "commune": "Uccle"}
ZOE = {
    "name": "Zoé Vandenbroucke",
    "phone": "0478 12 34 98",
    "email": "zoe.vdb@example.net",
    "language": "fr",
    "whatsapp": True,
    "address": HOME,
    "coordinates": {"lat": 50.8043917, "lon": 4.3489261},
}
PHONE, CHAT = "+32478123498", 770011223
REPLIES = {
    "sms": "Une camionnette blanche tourne dans la rue des Glycines",
    "telegram": "Deux hommes en capuche près du parc Raspail",
    "email": "Le volet du numéro 12 est forcé",
}
#: Zoé, in every form her data could take in Redis.
NEEDLES = (
    "Zoé Vandenbroucke",
    "Vandenbroucke",
    PHONE,
    "32478123498",
    "0478123498",
    "0478 12 34 98",
    "zoe.vdb@example.net",
    "zoe.vdb",
    "Brugmann",
    "50.8043917",
    "4.3489261",
    *REPLIES.values(),
)
CHAT_ID = re.compile(rf"(?<![0-9A-Za-z]){CHAT}(?![0-9A-Za-z])")


@pytest.fixture
async def world(redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(redis_url, tmp_path) as opened:
        await opened.enroll("zoe", ZOE, telegram_chat=CHAT)
        yield opened


async def zoe_receives_acknowledges_and_replies(world: World) -> dict[str, Any]:
    """An alert to everyone; Zoé presses the Telegram button and replies by SMS, Telegram and e-mail."""
    alert = await world.alert()
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    data = world.button_to(CHAT)
    status, _ = await world.telegram.member_presses(world.telegram_webhook, CHAT, data, 1, secret=WEBHOOK_SECRET)
    assert status == 200
    status, _ = await world.twilio.incoming_sms(world.sms_webhook, PHONE, SMS_FROM, REPLIES["sms"])
    assert status == 200
    status, _ = await world.telegram.member_sends(
        world.telegram_webhook, CHAT, REPLIES["telegram"], secret=WEBHOOK_SECRET
    )
    assert status == 200
    mail = zoe_mail(world)
    page = await world.client.post(
        link_in(mail, "/v1/r/").removeprefix(world.base), data={"action": "feedback", "text": REPLIES["email"]}
    )
    assert page.status == 200
    return alert


def zoe_mail(world: World) -> Any:
    return next(m.message for m in world.smtp.messages if m.message["To"] == ZOE["email"])


async def a_provider_refuses_her_number(world: World) -> dict[str, Any]:
    """A second alert, whose SMS and call Twilio refuses with her number in the error text."""
    refusal = f"Permission to send to +{PHONE[1:]} has not been enabled for the region indicated by the 'To' number"
    world.twilio.failures[PHONE] = Failure(400, 21408, refusal)
    alert = await world.alert()
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    deliveries = await world.deliveries(alert["id"])
    assert deliveries["sms", "zoe"]["status"] == "failed" and PHONE in deliveries["sms", "zoe"]["last_error"]
    return alert


def export_path(world: World) -> str:
    return f"/v1/plps/{world.plp}/members/{world.members['zoe']['id']}/export"


# -- export ----------------------------------------------------------------------------------------


async def test_a_coordinator_exports_everything_stored_about_a_member(world: World) -> None:
    """The export holds the record (contact points, language, channels, consents, WhatsApp's too, status), every
    delivery with its status, times and acknowledgement, every reply, and the Telegram link state."""
    alert = await zoe_receives_acknowledges_and_replies(world)
    await world.telegram_link("zoe")  # a second link, not used
    response = await world.client.get(export_path(world), headers=world.auth("coordinator"))
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    data = await response.json()
    member = data["member"]
    assert (member["name"], member["phone"], member["email"], member["telegram_chat_id"]) == (
        ZOE["name"],
        PHONE,
        ZOE["email"],
        CHAT,
    )
    assert (member["language"], member["status"], member["plp_ids"]) == ("fr", "active", [world.plp])
    assert member["whatsapp_consent"]["source"] == "api" and member["whatsapp_consent"]["at"]
    assert member["consent_at"] and member["channels"] == ["sms", "email", "telegram", "voice", "whatsapp"]
    assert data["complete"] is True and data["retention_days"] == 400
    deliveries = {d["channel"]: d for d in data["deliveries"]}
    assert set(deliveries) == {"sms", "email", "telegram", "voice"}
    assert {d["alert_id"] for d in data["deliveries"]} == {alert["id"]}
    assert deliveries["sms"]["status"] == "delivered" and deliveries["sms"]["status_times"]["delivered"]
    assert (deliveries["telegram"]["acknowledged_via"], deliveries["sms"]["acknowledged_at"]) == ("telegram", None)
    assert sorted((f["channel"], f["text"]) for f in data["feedback"]) == sorted(REPLIES.items())
    assert all(f["alert_id"] == alert["id"] for f in data["feedback"])
    assert data["telegram"]["chat_id"] == CHAT and len(data["telegram"]["pending_links_expire_at"]) == 1
    assert (member["address"], member["location"]["lat"]) == (HOME, 50.8043917)


async def test_the_member_reads_the_same_through_the_link_in_every_email(world: World) -> None:
    """The e-mail's text and HTML carry the data link; it answers the export without a token, and
    never to be cached or indexed."""
    await zoe_receives_acknowledges_and_replies(world)
    mail = zoe_mail(world)
    link = link_in(mail, "/v1/x/")
    assert "Voir les données conservées à votre sujet" in mail.get_body(("plain",)).get_content()
    assert link in mail.get_body(("html",)).get_content()
    response = await world.client.get(link.removeprefix(world.base))
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store" and response.headers["X-Robots-Tag"] == "noindex"
    data = await response.json()
    by_coordinator = await get_json(world.client, export_path(world), headers=world.auth("coordinator"))
    for part in ("member", "deliveries", "feedback", "telegram", "complete"):
        assert data[part] == by_coordinator[part], part


def expired_link(world: World, member_id: str) -> str:
    """A data link signed with the service's key, but 31 days ago (links last 30)."""

    class ThirtyOneDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 31 * 86400

    serializer = URLSafeTimedSerializer(
        secret_key(world.runtime.settings), salt="plp-dispatch-links", signer=ThirtyOneDaysAgo
    )
    return f"/v1/x/{serializer.dumps({'p': 'export', 's': member_id})}"


async def test_a_forged_expired_or_foreign_data_link_is_gone(world: World) -> None:
    """A tampered token, a token 31 days old, and a receipt token used as a data link all get a 410 problem."""
    await zoe_receives_acknowledges_and_replies(world)
    link = link_in(zoe_mail(world), "/v1/x/").removeprefix(world.base)
    receipt = link_in(zoe_mail(world), "/v1/r/").removeprefix(world.base)
    for path in (link[:-3] + "xyz", expired_link(world, world.members["zoe"]["id"]), receipt.replace("/r/", "/x/")):
        response = await world.client.get(path)
        assert response.status == 410, path
        assert response.content_type == "application/problem+json"
    still = await world.client.get(link)
    assert still.status == 200


async def test_a_data_link_answers_nothing_once_the_member_is_erased(world: World) -> None:
    """After erasure the member's data link is gone (410), like the data."""
    await zoe_receives_acknowledges_and_replies(world)
    link = link_in(zoe_mail(world), "/v1/x/").removeprefix(world.base)
    path = f"/v1/plps/{world.plp}/members/{world.members['zoe']['id']}"
    assert (await world.client.delete(path, headers=world.auth("coordinator"))).status == 204
    assert (await world.client.get(link)).status == 410


# -- erasure ---------------------------------------------------------------------------------------

#: Where the random id of an erased member may stay: delivery refs and keys, per-alert member sets,
#: the opt-out set, the lease and hold entries of deliveries, the marks of webhooks already handled
#: (they name the delivery, and expire), and the audit log (ids only).
ID_MAY_STAY = re.compile(
    r"^plptest:(delivery:\w+:\w+:\w+|alert:\w+:(d|d:\w+|members|plp:\w+:members|acks|unreachable)"
    r"|optouts|leases|holds|seen:twilio:\w+:[\w-]+:\w+:\w+:\w+|audit)$"
)


async def test_erasure_leaves_nothing_of_the_member_in_redis_but_their_id_in_the_figures(
    world: World, redis_url: str
) -> None:
    """Once Zoé leaves her only PLP, no key or value in Redis (strings, hashes, sets, sorted sets,
    streams, RQ's keys too) holds her name, phone in any form, e-mail, address, position, chat id, replies or
    answers; her id is left in delivery refs, per-alert member sets and the opt-out set; the alerts' counts and
    answer tallies are unchanged."""
    first = await zoe_receives_acknowledges_and_replies(world)
    assert first["answers"], "the alert offers answers"
    status, _ = await world.twilio.incoming_sms(world.sms_webhook, PHONE, SMS_FROM, "1")  # she answers, then changes
    status, _ = await world.twilio.incoming_sms(world.sms_webhook, PHONE, SMS_FROM, "2")
    assert status == 200 and (await alert_tally(world, first["id"]))[first["answers"][1]["id"]] == 1
    second = await a_provider_refuses_her_number(world)
    await world.telegram_link("zoe")  # pending
    meter = whatsapp_user_limit_name(PHONE)  # the WhatsApp pair limit of her number, as a send leaves it
    world.runtime.sync_redis.set(world.runtime.keys.limit(meter), "1")
    world.runtime.sync_redis.zadd(world.runtime.keys.departures(meter), {"1": 1})
    before = {a["id"]: await alert_view(world, a["id"]) for a in (first, second)}
    zoe = world.members["zoe"]["id"]
    assert any(s.contains(PHONE) for s in everything(redis_url)), "the scan does not see her data"

    response = await world.client.delete(f"/v1/plps/{world.plp}/members/{zoe}", headers=world.auth("coordinator"))
    assert response.status == 204

    stored = list(everything(redis_url))
    assert len(stored) > 50  # the whole database was read, not an empty one
    for item in stored:
        for needle in NEEDLES:
            assert not item.contains(needle), f"{needle!r} is still in {item.key} ({item.kind})"
        assert not any(CHAT_ID.search(t) for t in (item.key, *item.texts)), f"her chat id is in {item.key}"
        assert "478123498" not in re.sub(r"[ ./-]", "", " ".join(item.texts)), f"her phone is in {item.key}"
        if item.contains(zoe):
            assert ID_MAY_STAY.match(item.key), f"her id is in {item.key} ({item.kind})"
    assert {a: await alert_view(world, a) for a in before} == before
    listed = await get_json(world.client, f"/v1/alerts/{first['id']}/feedback", headers=world.auth("coordinator"))
    assert [f["member_id"] for f in listed["items"]] == [], "her replies went from the alert's list"
    deliveries = await world.deliveries(first["id"])
    assert deliveries["telegram", "zoe"]["provider_id"].startswith("erased:")
    assert (await alert_tally(world, first["id"]))[first["answers"][1]["id"]] == 1, "her answer stays counted"


async def alert_tally(world: World, alert_id: str) -> dict[str, int]:
    seen = await get_json(world.client, f"/v1/alerts/{alert_id}", headers=world.auth("police"))
    return {row["id"]: row["members"] for row in seen["answer_tally"]}


async def alert_view(world: World, alert_id: str) -> dict[str, Any]:
    """What the police see of an alert: its status and counts (the figures)."""
    seen = await get_json(world.client, f"/v1/alerts/{alert_id}", headers=world.auth("police"))
    return {"status": seen["status"], "counts": seen["counts"], "cost": seen["cost"]}


async def test_replies_are_still_counted_after_the_member_is_erased(world: World) -> None:
    """The replies of an erased member stay in the per-alert and per-PLP monthly counts."""
    alert = await zoe_receives_acknowledges_and_replies(world)
    redis, keys = world.runtime.sync_redis, world.runtime.keys
    month = time.strftime("%Y-%m", time.gmtime())

    def counts() -> tuple[str | None, str | None]:
        return (
            redis.hget(keys.alert_counts(alert["id"]), "feedback"),
            redis.hget(keys.plp_feedback_counts(world.plp), month),
        )

    assert counts() == ("3", "3")
    path = f"/v1/plps/{world.plp}/members/{world.members['zoe']['id']}"
    assert (await world.client.delete(path, headers=world.auth("coordinator"))).status == 204
    assert counts() == ("3", "3")


async def test_a_member_who_left_another_plp_before_is_erased_from_its_alerts_too(world: World) -> None:
    """Deliveries of the alerts of a PLP the member left earlier are scrubbed when they leave the last one."""
    admin = world.auth("admin")
    telegram_only = {"urgent": {"channels": ["telegram"], "ttl_seconds": 3600}}
    plp = {"name": "PLP Bois", "commune": "Uccle", "police_zone": "5340", "charter": telegram_only}
    other = (await post_json(world.client, "/v1/plps", plp, headers=admin, expect=201))["id"]
    zoe = world.members["zoe"]["id"]
    await post_json(world.client, f"/v1/plps/{other}/members", ZOE, headers=admin, expect=200)
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [other], "texts": {"fr": "Vol de vélo"}}
    alert = await world.alert(body)
    await run_queued(world.runtime)
    path = f"/v1/alerts/{alert['id']}/deliveries"
    [sent] = (await get_json(world.client, path, headers=admin))["items"]
    assert sent["provider_id"].startswith(f"{CHAT}:")
    assert (await world.client.delete(f"/v1/plps/{other}/members/{zoe}", headers=admin)).status == 204
    assert (await world.client.delete(f"/v1/plps/{world.plp}/members/{zoe}", headers=admin)).status == 204
    [scrubbed] = (await get_json(world.client, path, headers=admin))["items"]
    assert scrubbed["provider_id"].startswith("erased:")
    assert not any(CHAT_ID.search(t) for s in everything(world.runtime.redis_url) for t in s.texts)
