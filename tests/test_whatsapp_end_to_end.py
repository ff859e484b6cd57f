"""WhatsApp end to end: the service sends through pywa to the Cloud API simulator, which posts its signed
webhooks back.

The neighbourhood: a PLP whose urgent plan is WhatsApp, then SMS, and four members who consented to WhatsApp,
in French, Dutch, German and English.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.models import ActorIn, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.runtime import Runtime
from tests.simulators.whatsapp import Accepted, WhatsAppSimulator
from tests.support import free_port, get_json, post_json, run_queued
from tests.world import TEXTS, world_settings

TOKEN, PHONE_ID, SECRET, VERIFY = "wa-token-e2e", "1001", "wa-app-secret-e2e", "wa-verify-e2e"
CHARTER = {"urgent": {"channels": ["whatsapp", "sms"], "ttl_seconds": 3600}}
PEOPLE = {
    "anne": ("Anne Dubois", "+32470111111", "fr"),
    "piet": ("Piet Janssens", "+32470222222", "nl"),
    "lea": ("Lea Schmitz", "+32470333333", "de"),
    "john": ("John Smith", "+32470444444", "en"),
}


@dataclass
class Neighbourhood:
    client: TestClient
    runtime: Runtime
    wa: WhatsAppSimulator
    tokens: dict[str, str]
    plp: str
    members: dict[str, dict[str, Any]]
    webhook: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def alert(self) -> dict[str, Any]:
        payload = {"urgency": "urgent", "category": "burglary", "plp_ids": [self.plp], "texts": TEXTS}
        alert = dict(await post_json(self.client, "/v1/alerts", payload, headers=self.auth("police"), expect=202))
        await run_queued(self.runtime)
        await self.wa.callbacks_done()
        return alert

    async def deliveries(self, alert_id: str) -> dict[str, dict[str, Any]]:
        page = await get_json(self.client, f"/v1/alerts/{alert_id}/deliveries", headers=self.auth("admin"))
        names = {m["id"]: name for name, m in self.members.items()}
        return {names[d["member_id"]]: d for d in page["items"]}

    def sent_to(self, name: str) -> Accepted:
        digits = PEOPLE[name][1].removeprefix("+")
        return next(m for m in reversed(self.wa.ledger) if m.to == digits and m.name)

    def replies_to(self, name: str) -> list[str]:
        digits = PEOPLE[name][1].removeprefix("+")
        return [m.parameter for m in self.wa.ledger if m.to == digits and not m.name]


@pytest.fixture
async def hood(redis_url: str, tmp_path: Path) -> AsyncIterator[Neighbourhood]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    webhook = f"{base}/v1/webhooks/whatsapp"
    async with WhatsAppSimulator(token=TOKEN, phone_id=PHONE_ID, app_secret=SECRET, webhook_url=webhook) as wa:
        settings = world_settings(
            redis_url,
            tmp_path,
            base,
            whatsapp_token=TOKEN,
            whatsapp_phone_id=PHONE_ID,
            whatsapp_app_secret=SECRET,
            whatsapp_verify_token=VERIFY,
            whatsapp_api_base_url=wa.base_url,
            limit_whatsapp_per_second=1000,  # provider pacing has its own tests; here it would only slow them
        )
        runtime = Runtime.from_settings(settings)
        runtime.rq_connection.flushdb()
        try:
            async with TestServer(create_app(runtime), port=port) as server, TestClient(server) as client:
                yield await _neighbourhood(client, runtime, wa, webhook)
        finally:
            runtime.rq_connection.flushdb()
            runtime.close()


async def _neighbourhood(client: TestClient, runtime: Runtime, wa: WhatsAppSimulator, webhook: str) -> Neighbourhood:
    store = client.server.app[SERVICES].store
    _, admin = await create_actor(store, ActorIn(name="Admin", role=Role.ADMIN))
    _, police = await create_actor(store, ActorIn(name="Inspecteur", role=Role.POLICE, police_zone="5340"))
    body = {"name": "PLP Parc", "commune": "Uccle", "police_zone": "5340", "charter": CHARTER}
    plp = (await post_json(client, "/v1/plps", body, headers={"Authorization": f"Bearer {admin}"}, expect=201))["id"]
    _, coordinator = await create_actor(store, ActorIn(name="Coordinatrice", role=Role.COORDINATOR, plp_ids=[plp]))
    tokens = {"admin": admin, "police": police, "coordinator": coordinator}
    hood = Neighbourhood(client, runtime, wa, tokens, plp, {}, webhook)
    for key, (name, phone, language) in PEOPLE.items():
        member = {"name": name, "phone": phone, "language": language, "channels": ["whatsapp"], "whatsapp": True}
        hood.members[key] = await post_json(
            client, f"/v1/plps/{plp}/members", member, headers=hood.auth("coordinator"), expect=201
        )
    return hood


async def test_an_alert_reaches_every_member_with_the_template_in_their_language_and_is_delivered(
    hood: Neighbourhood,
) -> None:
    alert = await hood.alert()
    for name, (_, _, language) in PEOPLE.items():
        sent = hood.sent_to(name)
        assert sent.language == language and sent.name.startswith("plp_urgent_a")  # a burglary asks questions
        assert TEXTS[language] in sent.parameter and "\n" not in sent.parameter
        assert sent.payloads[0].startswith("ack:") and sent.payloads[1].startswith("ans:1:")
    deliveries = await hood.deliveries(alert["id"])
    assert {name: d["status"] for name, d in deliveries.items()} == dict.fromkeys(PEOPLE, "delivered")
    assert deliveries["anne"]["provider_id"] == hood.sent_to("anne").wamid

    status, _ = await hood.wa.post(hood.webhook, hood.wa.status(hood.sent_to("anne"), "read"))
    assert status == 200
    assert (await hood.deliveries(alert["id"]))["anne"]["status"] == "delivered"  # read: as far as delivered


async def test_the_received_button_acknowledges_and_an_answer_button_answers(hood: Neighbourhood) -> None:
    alert = await hood.alert()
    status, _ = await hood.wa.post(hood.webhook, hood.wa.pressed(hood.sent_to("anne"), 0))
    assert status == 200
    status, _ = await hood.wa.post(hood.webhook, hood.wa.pressed(hood.sent_to("piet"), 1))
    assert status == 200
    deliveries = await hood.deliveries(alert["id"])
    assert deliveries["anne"]["acknowledged_via"] == "whatsapp"
    assert deliveries["piet"]["acknowledged_at"] is not None
    seen = await get_json(hood.client, f"/v1/alerts/{alert['id']}", headers=hood.auth("police"))
    assert seen["counts"]["acknowledged"] == 2
    assert {row["id"]: row["members"] for row in seen["answer_tally"]} == {"saw": 1, "nothing": 0, "camera": 0}
    await run_queued(hood.runtime)  # the thanks go out as plain texts, in the window the press opened
    assert hood.replies_to("anne") and hood.replies_to("piet")


async def test_a_text_is_feedback_answered_with_the_emergency_reminder_and_stop_opts_out(
    hood: Neighbourhood, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    alert = await hood.alert()
    status, _ = await hood.wa.post(hood.webhook, hood.wa.written("32470444444", "Grey car towards the centre"))
    assert status == 200
    status, _ = await hood.wa.post(hood.webhook, hood.wa.written("32470333333", "STOP"))
    assert status == 200
    await run_queued(hood.runtime)
    [reminder] = hood.replies_to("john")
    assert "101" in reminder and "112" in reminder
    listed = await get_json(hood.client, f"/v1/alerts/{alert['id']}/feedback", headers=hood.auth("coordinator"))
    assert [(f["channel"], f["member_name"]) for f in listed["items"]] == [("whatsapp", "John Smith")]
    lea = await get_json(
        hood.client, f"/v1/plps/{hood.plp}/members/{hood.members['lea']['id']}", headers=hood.auth("coordinator")
    )
    assert lea["status"] == "opted_out"

    before = len(hood.wa.ledger)
    await hood.alert()
    assert {m.to for m in hood.wa.ledger[before:] if m.name} == {"32470111111", "32470222222", "32470444444"}
    police = await get_json(hood.client, f"/v1/alerts/{alert['id']}/feedback", headers=hood.auth("police"))
    logged = capsys.readouterr()
    for number in ("32470111111", "32470222222", "32470333333", "32470444444"):  # never in logs nor police views
        assert number not in logged.out + logged.err + caplog.text and number not in str(police)


async def test_forged_signatures_are_refused_and_change_nothing(hood: Neighbourhood) -> None:
    alert = await hood.alert()
    status, _ = await hood.wa.post(hood.webhook, hood.wa.pressed(hood.sent_to("anne"), 0), forge=True)
    assert status == 403
    status, _ = await hood.wa.post(hood.webhook, hood.wa.pressed(hood.sent_to("anne"), 0), signature="sha256=00")
    assert status == 403
    failed = hood.wa.status(hood.sent_to("piet"), "failed", code=131026)
    status, _ = await hood.wa.post(hood.webhook, failed, forge=True)
    assert status == 403
    deliveries = await hood.deliveries(alert["id"])
    assert deliveries["anne"]["acknowledged_at"] is None and deliveries["piet"]["status"] == "delivered"


async def test_duplicated_and_out_of_order_webhooks_move_deliveries_forward_only(hood: Neighbourhood) -> None:
    alert = await hood.alert()
    before = await hood.deliveries(alert["id"])
    for late in ("sent", "delivered", "sent"):  # Meta's retries, and a "sent" arriving after "delivered"
        status, _ = await hood.wa.post(hood.webhook, hood.wa.status(hood.sent_to("john"), late))
        assert status == 200
    press = hood.wa.pressed(hood.sent_to("john"), 0)
    for _ in range(2):
        assert (await hood.wa.post(hood.webhook, press))[0] == 200
    after = await hood.deliveries(alert["id"])
    assert after["john"]["status"] == "delivered" and after["john"]["acknowledged_at"] is not None
    assert {k: v for k, v in after.items() if k != "john"} == {k: v for k, v in before.items() if k != "john"}
    await run_queued(hood.runtime)
    assert len(hood.replies_to("john")) == 1  # the replay is not thanked twice


async def test_a_failed_status_fails_the_delivery_with_its_error(hood: Neighbourhood) -> None:
    hood.wa.progress = ("sent",)
    alert = await hood.alert()
    status, _ = await hood.wa.post(hood.webhook, hood.wa.status(hood.sent_to("lea"), "failed", code=131026))
    assert status == 200
    deliveries = await hood.deliveries(alert["id"])
    assert deliveries["lea"]["status"] == "failed" and "131026" in deliveries["lea"]["last_error"]
    assert deliveries["anne"]["status"] == "sent"


async def test_the_subscription_handshake_answers_the_challenge_for_our_verify_token(hood: Neighbourhood) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    answered = await hood.client.get("/v1/webhooks/whatsapp", params=query)
    assert answered.status == 200 and await answered.text() == "1158201444"
    refused = await hood.client.get("/v1/webhooks/whatsapp", params=query | {"hub.verify_token": "guess"})
    assert refused.status == 403


async def test_whatsapp_reaches_only_members_who_consented_the_others_on_the_charters_next_channel(
    hood: Neighbourhood,
) -> None:
    marc = {"name": "Marc Peeters", "phone": "+32470555555", "language": "nl", "channels": ["whatsapp", "sms"]}
    hood.members["marc"] = await post_json(
        hood.client, f"/v1/plps/{hood.plp}/members", marc, headers=hood.auth("coordinator"), expect=201
    )
    assert hood.members["marc"]["whatsapp_consent"] is None
    assert hood.members["marc"]["working_channels"] == ["sms"]
    alert = await hood.alert()
    deliveries = await hood.deliveries(alert["id"])
    assert deliveries["marc"]["channel"] == "sms" and deliveries["marc"]["status"] != "failed"
    assert deliveries["anne"]["channel"] == "whatsapp"
    assert not [m for m in hood.wa.ledger if m.to == "32470555555"]  # not even tried on WhatsApp

    path = f"/v1/plps/{hood.plp}/members/{hood.members['marc']['id']}"
    response = await hood.client.patch(path, json={"whatsapp": True}, headers=hood.auth("coordinator"))
    assert response.status == 200
    consent = (await response.json())["whatsapp_consent"]
    assert consent["source"] == "api" and consent["at"]
    alert = await hood.alert()
    assert (await hood.deliveries(alert["id"]))["marc"]["channel"] == "whatsapp"
    assert [m for m in hood.wa.ledger if m.to == "32470555555" and m.name]  # the template, in Dutch

    response = await hood.client.patch(path, json={"whatsapp": False}, headers=hood.auth("coordinator"))
    assert (await response.json())["whatsapp_consent"] is None  # withdrawn


async def _on_own_page(hood: Neighbourhood, member_id: str, *, whatsapp: bool) -> None:
    """The member saves their own page (SMS ticked) with the WhatsApp consent ticked or not."""
    path = URL(hood.runtime.links.profile_url(member_id)).path
    async with hood.client.get(path) as response:
        page = await response.text()
    token = page.split('name="form_token" value="', 1)[1].split('"', 1)[0]
    fields = [("form_token", token), ("action", "choose"), ("language", "nl"), ("channels", "sms")]
    fields += [("whatsapp", "yes")] if whatsapp else []
    async with hood.client.post(path, data=fields) as response:
        assert response.status == 200, await response.text()


async def test_a_consent_given_on_the_members_own_page_reaches_them_on_whatsapp_and_its_withdrawal_stops_it(
    hood: Neighbourhood,
) -> None:
    """Marc gives his consent on his own page: the next alert reaches him on WhatsApp (source "self-service");
    he withdraws it there: the next one reaches him by SMS, and nothing more goes to his number on WhatsApp."""
    marc = {"name": "Marc Peeters", "phone": "+32470555555", "language": "nl", "channels": ["sms"]}
    hood.members["marc"] = await post_json(
        hood.client, f"/v1/plps/{hood.plp}/members", marc, headers=hood.auth("coordinator"), expect=201
    )
    marc_id = hood.members["marc"]["id"]

    await _on_own_page(hood, marc_id, whatsapp=True)
    member = await get_json(hood.client, f"/v1/plps/{hood.plp}/members/{marc_id}", headers=hood.auth("coordinator"))
    assert member["whatsapp_consent"]["source"] == "self-service" and "whatsapp" in member["channels"]
    alert = await hood.alert()
    assert (await hood.deliveries(alert["id"]))["marc"]["channel"] == "whatsapp"
    assert [m for m in hood.wa.ledger if m.to == "32470555555" and m.name]

    await _on_own_page(hood, marc_id, whatsapp=False)
    before = len(hood.wa.ledger)
    alert = await hood.alert()
    assert (await hood.deliveries(alert["id"]))["marc"]["channel"] == "sms"
    assert not [m for m in hood.wa.ledger[before:] if m.to == "32470555555"]
