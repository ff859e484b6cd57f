"""Joining a PLP: a resident asks on its public join page, confirms their contact points by code, and a
coordinator approves or declines; nobody learns who is a member, and every step is in the audit log."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.access.throttle import JOINS_PER_ADDRESS_BURST
from dispatcher.api.services import SERVICES
from dispatcher.people.demo import seed_demo
from dispatcher.people.joining import CODES_PER_HOUR, DECLINED_DAYS, PENDING_DAYS
from dispatcher.storage.store import Store
from tests.support import get_json, post_json, run_queued
from tests.world import World, open_world

NOTICES = {
    "fr": "Le PLP garde votre nom et vos coordonnées tant que vous êtes membre.",
    "nl": "Het BIN bewaart uw naam en contactgegevens zolang u lid bent.",
    "de": "Die PLP speichert Ihren Namen und Ihre Kontaktdaten, solange Sie Mitglied sind.",
    "en": "The PLP keeps your name and contact details while you are a member.",
}
NEW_PHONE = "+32470555666"
NEW_EMAIL = "marc@example.org"


@pytest.fixture
async def world(redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(redis_url, tmp_path) as world:
        yield world


def _store(world: World) -> Store:
    return world.client.server.app[SERVICES].store


async def _turn_on(world: World, *, who: str = "coordinator") -> dict[str, Any]:
    body = {"enabled": True, "privacy_notice": NOTICES}
    async with world.client.put(f"/v1/plps/{world.plp}/join-page", json=body, headers=world.auth(who)) as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


async def _open(world: World, query: str = "") -> tuple[int, str]:
    async with world.client.get(f"/v1/join/{world.plp}{query}") as response:
        return response.status, html.unescape(await response.text())


def _hidden(page: str, name: str) -> str:
    return page.split(f'name="{name}" value="', 1)[1].split('"', 1)[0]


async def _post(world: World, fields: dict[str, str], **headers: str) -> tuple[int, str, Any]:
    async with world.client.post(f"/v1/join/{world.plp}", data=fields, headers=headers) as response:
        return response.status, html.unescape(await response.text()), response.headers


async def _ask(
    world: World, *, phone: str = NEW_PHONE, email: str = NEW_EMAIL, language: str = "nl", **extra: str
) -> tuple[int, str]:
    """Fill in the join page as a resident does and send it; the answer's status and page."""
    _, page = await _open(world)
    fields = {"form_token": _hidden(page, "form_token"), "action": "start", "name": "Marc Peeters"}
    fields |= {"phone": phone, "email": email, "language": language, "privacy": "yes"} | extra
    status, answer, _ = await _post(world, {k: v for k, v in fields.items() if v is not None})
    return status, answer


async def _sms_code(world: World, phone: str) -> str:
    await run_queued(world.runtime)
    texts = [m.body or "" for m in world.twilio.messages if m.to == phone]
    assert texts, f"nothing reached {phone}"
    return re.search(r"\b(\d{6})\b", texts[-1]).group(1)  # type: ignore[union-attr]


def _mails_to(world: World, address: str) -> list[str]:
    return [m.message.get_body(("plain",)).get_content() for m in world.smtp.messages if m.message["To"] == address]


async def _mail_code(world: World, address: str) -> str:
    await run_queued(world.runtime)
    mails = _mails_to(world, address)
    assert mails, f"nothing reached {address}"
    return re.search(r"\b(\d{6})\b", mails[-1]).group(1)  # type: ignore[union-attr]


async def _confirm(world: World, page: str, **codes: str) -> tuple[int, str]:
    fields = {"request_token": _hidden(page, "request_token"), "action": "confirm"}
    status, answer, _ = await _post(world, fields | {f"code_{kind}": code for kind, code in codes.items()})
    return status, answer


async def _joined(world: World) -> str:
    """A resident asks, with a phone and an e-mail, and confirms both codes; the id of their waiting request."""
    await _turn_on(world)
    status, page = await _ask(world)
    assert status == 200, page
    status, done = await _confirm(
        world, page, phone=await _sms_code(world, NEW_PHONE), email=await _mail_code(world, NEW_EMAIL)
    )
    assert status == 200 and "wacht op de goedkeuring" in done, done
    waiting = await _requests(world)
    assert len(waiting) == 1
    ttl = await _store(world).redis.ttl(_store(world).keys.join_request(waiting[0]["id"]))
    assert PENDING_DAYS * 86400 - 60 < ttl <= PENDING_DAYS * 86400  # erased if nobody decides
    return str(waiting[0]["id"])


async def _requests(world: World, who: str = "coordinator") -> list[dict[str, Any]]:
    found = await get_json(world.client, f"/v1/plps/{world.plp}/join-requests", headers=world.auth(who))
    return list(found["items"])


async def _entries(world: World, action: Action) -> list[audit.Entry]:
    store = _store(world)
    return (await audit.read(store.redis, store.keys, action=action)).entries


async def test_a_plp_without_a_join_page_answers_404_as_for_no_plp(world: World) -> None:
    """Off by default: the page and its form answer the same 404 as a PLP that does not exist."""
    answers = []
    for path in (f"/v1/join/{world.plp}", "/v1/join/no-such-plp"):
        async with world.client.get(path, headers={"Accept-Language": "en"}) as response:
            assert response.status == 404
            answers.append(await response.text())
        async with world.client.post(path, data={"action": "start"}, headers={"Accept-Language": "en"}) as response:
            assert response.status == 404
            answers.append(await response.text())
    assert len(set(answers)) == 1 and "There is no join page here." in answers[0]


async def test_turning_the_page_on_needs_the_notice_in_four_languages_and_is_audited(world: World) -> None:
    """A notice missing a language is a 422 naming it; turned on, the page is served and the change audited
    with its actor; turned off again, it is a 404."""
    body = {"enabled": True, "privacy_notice": {"fr": NOTICES["fr"]}}
    async with world.client.put(
        f"/v1/plps/{world.plp}/join-page", json=body, headers=world.auth("coordinator")
    ) as response:
        assert response.status == 422
        problem = await response.json()
        assert "nl, de, en" in problem["errors"][0]["reason"] and problem["errors"][0]["field"] == "body"
    view = await _turn_on(world)
    assert view["enabled"] is True and view["url"].endswith(f"/v1/join/{world.plp}")
    status, page = await _open(world, "?lang=de")
    assert status == 200 and '<html lang="de">' in page and NOTICES["de"] in page
    assert "<script" not in page and "http" not in page.split("<body>", 1)[1]  # nothing from elsewhere
    body = {"enabled": False, "privacy_notice": NOTICES}
    await _put(world, body)
    assert (await _open(world))[0] == 404
    entries = await _entries(world, Action.JOIN_PAGE_CHANGED)
    coordinator = (await get_json(world.client, "/v1/me", headers=world.auth("coordinator")))["id"]
    assert [(e.actor_id, e.role, e.detail) for e in entries] == [
        (coordinator, "coordinator", "off"),
        (coordinator, "coordinator", "on"),
    ]


async def _put(world: World, body: dict[str, Any]) -> None:
    async with world.client.put(
        f"/v1/plps/{world.plp}/join-page", json=body, headers=world.auth("coordinator")
    ) as response:
        assert response.status == 200


async def test_a_resident_joins_once_a_coordinator_approves_and_gets_the_next_alert(world: World) -> None:
    """Codes to the phone and the e-mail confirm the request; the coordinators are notified; approved, the
    member exists with their consent's time and source, is told in their language, and the next alert reaches
    them; the request itself is gone."""
    request_id = await _joined(world)
    notices = await get_json(world.client, "/v1/notifications", headers=world.auth("coordinator"))
    assert [(n["kind"], n["join_request_id"]) for n in notices["items"]] == [("join_request", request_id)]
    await run_queued(world.runtime)
    assert any("Un habitant demande" in text for text in _mails_to(world, "coordination@plp.example"))
    path = f"/v1/plps/{world.plp}/join-requests/{request_id}/approve"
    approved = await post_json(world.client, path, None, headers=world.auth("coordinator"), expect=200)
    member = await get_json(
        world.client, f"/v1/plps/{world.plp}/members/{approved['member_id']}", headers=world.auth("coordinator")
    )
    assert (member["name"], member["phone"], member["email"], member["language"]) == (
        "Marc Peeters",
        NEW_PHONE,
        NEW_EMAIL,
        "nl",
    )
    assert member["consent_source"] == "join-page" and member["consent_at"]
    await run_queued(world.runtime)
    assert any("Uw aanvraag is goedgekeurd" in text and "/v1/p/" in text for text in _mails_to(world, NEW_EMAIL))
    assert await _requests(world) == []
    assert not await _store(world).redis.exists(_store(world).keys.join_request(request_id))  # erased at once
    alert = await world.alert()
    await run_queued(world.runtime)
    page = await get_json(world.client, f"/v1/alerts/{alert['id']}/deliveries", headers=world.auth("admin"))
    assert {d["channel"] for d in page["items"] if d["member_id"] == approved["member_id"]} >= {"sms", "email"}


async def test_every_step_is_audited_with_its_actor(world: World) -> None:
    """The request is audited as the resident (its id, role resident), the approval as the coordinator."""
    request_id = await _joined(world)
    path = f"/v1/plps/{world.plp}/join-requests/{request_id}/approve"
    approved = await post_json(world.client, path, None, headers=world.auth("coordinator"), expect=200)
    coordinator = (await get_json(world.client, "/v1/me", headers=world.auth("coordinator")))["id"]
    [asked] = await _entries(world, Action.JOIN_REQUESTED)
    assert (asked.actor_id, asked.role, asked.target) == (
        request_id,
        "resident",
        {"join": request_id, "plp": world.plp},
    )
    [decided] = await _entries(world, Action.JOIN_APPROVED)
    assert (decided.actor_id, decided.role) == (coordinator, "coordinator")
    assert decided.target == {"plp": world.plp, "join": request_id, "member": approved["member_id"]}
    created = [e for e in await _entries(world, Action.MEMBER_CREATED) if e.target["member"] == approved["member_id"]]
    assert [e.actor_id for e in created] == [coordinator]


async def test_a_declined_resident_is_told_the_reason_in_their_language(world: World) -> None:
    """Declined with a reason: the resident gets it by their confirmed contact point (SMS without e-mail); the
    request stays listed as declined (kept 30 days), audited as the coordinator, and cannot be approved then."""
    await _turn_on(world)
    status, page = await _ask(world, email="", language="de")
    code = await _sms_code(world, NEW_PHONE)
    status, _done = await _confirm(world, page, phone=code)
    assert status == 200
    [request] = await _requests(world)
    path = f"/v1/plps/{world.plp}/join-requests/{request['id']}"
    body = {"reason": "Ihre Adresse liegt außerhalb des Viertels"}
    declined = await post_json(world.client, f"{path}/decline", body, headers=world.auth("coordinator"), expect=200)
    assert declined["state"] == "declined" and declined["reason"] == body["reason"]
    await run_queued(world.runtime)
    told = [m.body or "" for m in world.twilio.messages if m.to == NEW_PHONE][-1]
    assert "wurde nicht angenommen" in told and body["reason"] in told
    assert [r["state"] for r in await _requests(world)] == ["declined"]
    ttl = await _store(world).redis.ttl(_store(world).keys.join_request(request["id"]))
    assert DECLINED_DAYS * 86400 - 60 < ttl <= DECLINED_DAYS * 86400  # then erased
    async with world.client.post(f"{path}/approve", headers=world.auth("coordinator")) as response:
        assert response.status == 409
    coordinator = (await get_json(world.client, "/v1/me", headers=world.auth("coordinator")))["id"]
    assert [(e.actor_id, e.target) for e in await _entries(world, Action.JOIN_DECLINED)] == [
        (coordinator, {"plp": world.plp, "join": request["id"]})
    ]


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"privacy": ""}, "acceptez l'information"),
        ({"phone": "", "email": ""}, "Donnez un numéro de GSM ou une adresse e-mail"),
        ({"phone": "02 555 12 34", "email": ""}, "ne peut pas être utilisé"),
        ({"name": " "}, "Donnez votre nom"),
    ],
)
async def test_a_form_that_cannot_be_used_is_said_why_and_sends_no_code(
    world: World, fields: dict[str, str], said: str
) -> None:
    await _turn_on(world)
    status, page = await _ask(world, language="fr", **fields)
    assert status == 400 and said in page
    await run_queued(world.runtime)
    assert world.twilio.messages == [] or all(m.to != NEW_PHONE for m in world.twilio.messages)


async def test_a_post_without_the_pages_form_token_changes_nothing(world: World) -> None:
    await _turn_on(world)
    for token in ("", "forged.token"):
        status, _, _ = await _post(world, {"form_token": token, "action": "start", "name": "X", "phone": NEW_PHONE})
        assert status == 400
    await run_queued(world.runtime)
    assert all(m.to != NEW_PHONE for m in world.twilio.messages)


async def test_a_code_works_once_and_a_tampered_request_is_gone(world: World) -> None:
    """A reused code finds nothing pending (410); an altered request token too; the code keeps 10 minutes."""
    await _turn_on(world)
    _status, page = await _ask(world, email="")
    store = _store(world)
    ttl = [await store.redis.ttl(k) async for k in store.redis.scan_iter(match=f"{store.keys.prefix}join:*")]
    assert len(ttl) == 2 and all(0 < t <= 600 for t in ttl)  # the request and its code: 10 minutes unconfirmed
    code = await _sms_code(world, NEW_PHONE)
    tampered = page.replace(_hidden(page, "request_token"), _hidden(page, "request_token")[:-2] + "xx")
    assert (await _confirm(world, tampered, phone=code))[0] == 410
    assert (await _confirm(world, page, phone=code))[0] == 200
    assert (await _confirm(world, page, phone=code))[0] == 410


async def test_five_wrong_codes_lock_the_contact_point(world: World) -> None:
    """Four wrong codes say so; the fifth drops the request and locks that phone: the right code is then
    refused, and so is a new request with it, for an hour."""
    await _turn_on(world)
    status, page = await _ask(world, email="", language="en")
    code = await _sms_code(world, NEW_PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(4):
        status, page = await _confirm(world, page, phone=wrong)
        assert status == 400 and "not the right one" in page
    status, answer = await _confirm(world, page, phone=wrong)
    assert status == 429 and "locked for an hour" in answer
    assert (await _confirm(world, page, phone=code))[0] == 410
    status, answer = await _ask(world, email="", language="en")
    assert status == 429 and "locked for an hour" in answer
    assert await _requests(world) == []


async def test_a_member_gets_the_same_answer_and_is_told_by_their_own_contact_point(world: World) -> None:
    """Asking with a member's phone answers exactly as with a free one (no membership enumeration); no code goes
    to it: the member is told, on that phone, that they are a member already, with their own page's link."""
    await _turn_on(world)
    anne = world.members["anne"]["phone"]
    _, as_member = await _ask(world, phone=anne, email="")
    _, as_stranger = await _ask(world, phone=NEW_PHONE, email="")
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", as_member) == strip.sub("", as_stranger)
    await run_queued(world.runtime)
    told = [m.body or "" for m in world.twilio.messages if m.to == anne]
    assert len(told) == 1 and "déjà membre" in told[0] and "/v1/p/" in told[0]
    assert not re.search(r"\b\d{6}\b", told[0].split("/v1/p/")[0])


async def test_join_requests_are_rate_limited_per_address(world: World) -> None:
    """A client address starts a few requests at once, then gets a 429 with Retry-After."""
    await _turn_on(world)
    for n in range(JOINS_PER_ADDRESS_BURST):
        assert (await _ask(world, phone=f"+3247055500{n}", email=""))[0] == 200
    _, page = await _open(world)
    fields = {"form_token": _hidden(page, "form_token"), "action": "start", "name": "X", "phone": "+32470555009"}
    status, answer, headers = await _post(world, fields | {"privacy": "yes"})
    assert status == 429 and int(headers["Retry-After"]) >= 1 and "Trop de demandes" in answer


async def test_join_codes_are_rate_limited_per_contact_point(world: World) -> None:
    """Past three codes an hour to one phone, a new request with it is refused (whoever asks)."""
    await _turn_on(world)
    for _ in range(CODES_PER_HOUR):
        assert (await _ask(world, email="", language="en"))[0] == 200
    status, page = await _ask(world, email="", language="en")
    assert status == 429 and "Too many codes" in page


async def test_the_police_and_other_coordinators_never_see_join_requests(world: World) -> None:
    """The police get a 403; a request id of this PLP under another PLP's path is a 404."""
    request_id = await _joined(world)
    async with world.client.get(f"/v1/plps/{world.plp}/join-requests", headers=world.auth("police")) as response:
        assert response.status == 403
    admin = world.auth("admin")
    other = await post_json(
        world.client,
        "/v1/plps",
        {"name": "Autre", "commune": "Uccle", "police_zone": "5340"},
        headers=admin,
        expect=201,
    )
    path = f"/v1/plps/{other['id']}/join-requests/{request_id}/approve"
    async with world.client.post(path, headers=admin) as response:
        assert response.status == 404


async def test_the_address_is_asked_where_the_plp_has_sectors(world: World) -> None:
    """Without sectors the page asks no address; with them it does, and a request carries it."""
    await _turn_on(world)
    assert 'name="street"' not in (await _open(world))[1]
    triangle = {"type": "Polygon", "coordinates": [[[4.35, 50.84], [4.36, 50.84], [4.36, 50.85], [4.35, 50.84]]]}
    await post_json(
        world.client,
        f"/v1/plps/{world.plp}/sectors",
        {"name": "Nord", "geometry": triangle},
        headers=world.auth("coordinator"),
        expect=201,
    )
    assert 'name="street"' in (await _open(world))[1]
    status, page = await _ask(world, street="Rue du Parc", postcode="1180", email="")
    assert status == 200
    await _confirm(world, page, phone=await _sms_code(world, NEW_PHONE))
    [request] = await _requests(world)
    assert request["address"]["street"] == "Rue du Parc"


async def test_the_demo_plps_join_page_is_open(world: World) -> None:
    """``plp dev``'s demo PLP has its join page open, with its notice in four languages, as the README says."""
    await seed_demo(_store(world), region="BE")
    async with world.client.get("/v1/join/demo?lang=en") as response:
        assert response.status == 200
        assert "Demo: the PLP keeps your name" in html.unescape(await response.text())
