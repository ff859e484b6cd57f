"""Signing in to the console by a one-time e-mailed link: session cookie, CSRF, timeouts, sign-out."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from config.settings import SmtpSecurity
from dispatcher.access import audit
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.models import ActorIn, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.runtime import Runtime
from tests.simulators.smtp import SmtpSimulator
from tests.support import until

EMAIL = "coordinatrice@plp-ixelles.example"
LINK = re.compile(r"/console/#signin=([A-Za-z0-9_-]+)")


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSimulator]:
    async with SmtpSimulator() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, smtp: SmtpSimulator) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_security": SmtpSecurity.NONE,
            "smtp_from": "PLP <plp@example.org>",
            "session_cookie_secure": False,  # the test server speaks plain http on loopback
        }
    )


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(runtime))) as test_client:
        yield test_client


@pytest.fixture
async def coordinator(client: TestClient) -> str:
    store = client.server.app[SERVICES].store
    response = await client.post(
        "/v1/plps",
        json={"name": "PLP A", "commune": "Ixelles", "police_zone": "5340"},
        headers={"Authorization": f"Bearer {await _admin_token(client)}"},
    )
    plp_id = (await response.json())["id"]
    actor, _ = await create_actor(
        store, ActorIn(name="Coordinatrice A", role=Role.COORDINATOR, plp_ids=[plp_id], email=EMAIL)
    )
    return actor.id


async def _admin_token(client: TestClient) -> str:
    store = client.server.app[SERVICES].store
    _, token = await create_actor(store, ActorIn(name="Admin", role=Role.ADMIN))
    return token


async def ask_link(client: TestClient, smtp: SmtpSimulator, count: int = 1) -> str:
    response = await client.post("/v1/sign-in", json={"email": EMAIL})
    assert response.status == 202
    mails = await smtp.wait_for(count)
    match = LINK.search(mails[-1].message.get_content())
    assert match is not None
    return match.group(1)


async def sign_in(client: TestClient, code: str, expect: int = 201) -> dict[str, Any]:
    response = await client.post("/v1/sessions", json={"code": code})
    assert response.status == expect, await response.text()
    return dict(await response.json())


def session_key(client: TestClient, session_id: str) -> str:
    return client.server.app[SERVICES].runtime.keys.session(hashlib.sha256(session_id.encode()).hexdigest())


def cookie_of(client: TestClient) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))["plp_session"].value


async def test_a_coordinator_signs_in_with_the_link_sent_to_their_address(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """The link arrives by e-mail; its code opens a session whose cookie identifies the coordinator."""
    code = await ask_link(client, smtp)
    opened = await sign_in(client, code)
    assert opened["actor"]["id"] == coordinator and opened["csrf_token"]
    me = await client.get("/v1/me")
    assert me.status == 200 and (await me.json())["id"] == coordinator


async def test_the_link_comes_in_the_language_the_console_asked_in(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """The console sends its own language: a Dutch-speaking coordinator gets the link in Dutch."""
    response = await client.post("/v1/sign-in", json={"email": EMAIL, "language": "nl"})
    assert response.status == 202
    [mail] = await smtp.wait_for(1)
    assert mail.message["Subject"] == "Uw aanmeldlink voor de BIN-console"
    assert "Beste Coordinatrice A" in mail.message.get_content() and LINK.search(mail.message.get_content())


async def test_without_an_smtp_relay_the_demo_s_link_waits_in_the_outbox(
    settings: Settings, runtime: Runtime, coordinator: str
) -> None:
    """In development without SMTP_* settings, e-mail goes to the outbox (address masked), link included."""
    demo = Runtime.from_settings(settings.model_copy(update={"smtp_host": None, "smtp_from": None}))
    try:
        async with TestClient(TestServer(create_app(demo))) as without_smtp:
            response = await without_smtp.post("/v1/sign-in", json={"email": EMAIL, "language": "fr"})
            assert response.status == 202
            outbox = demo.settings.outbox_file
            await until(outbox.exists, timeout=10, what="the link in the outbox")
    finally:
        demo.close()
    [kept] = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
    assert kept["subject"] == "Votre lien de connexion à la console PLP" and "#signin=" in kept["text"]
    assert EMAIL not in json.dumps(kept)


async def test_the_cookie_is_httponly_samesite_strict_and_secure_unless_turned_off(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """Set-Cookie says HttpOnly and SameSite=Strict; Secure is left out here only because the setting is off."""
    response = await client.post("/v1/sessions", json={"code": await ask_link(client, smtp)})
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" not in header


@pytest.mark.parametrize(
    ("base_url", "setting", "secure"),
    [
        ("https://plp.example.be", None, True),
        ("http://127.0.0.1:8080", None, False),  # the demo on loopback: a Secure cookie would never come back
        ("http://127.0.0.1:8080", True, True),
        ("https://plp.example.be", False, False),
    ],
)
def test_the_cookie_is_secure_when_the_public_address_is_https_unless_set_otherwise(
    settings: Settings, base_url: str, setting: bool | None, secure: bool
) -> None:
    """Unset, PLP_SESSION_COOKIE_SECURE follows PLP_PUBLIC_BASE_URL's scheme; set, it decides."""
    chosen = settings.model_copy(update={"public_base_url": base_url, "session_cookie_secure": setting})
    assert chosen.cookie_secure is secure


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """No enumeration: an unknown address is answered 202 with the same words, and nothing is sent."""
    known = await client.post("/v1/sign-in", json={"email": EMAIL})
    unknown = await client.post("/v1/sign-in", json={"email": "nobody@example.org"})
    assert (known.status, await known.json()) == (unknown.status, await unknown.json())
    await smtp.wait_for(1)
    await client.post("/v1/sign-in", json={"email": EMAIL})
    mails = await smtp.wait_for(2)
    assert [m.rcpt_tos for m in mails] == [(EMAIL,), (EMAIL,)]


async def test_a_link_works_once(client: TestClient, smtp: SmtpSimulator, coordinator: str) -> None:
    """A reused link is refused with a 401."""
    code = await ask_link(client, smtp)
    await sign_in(client, code)
    client.session.cookie_jar.clear()
    await sign_in(client, code, expect=401)


async def test_an_expired_link_is_refused(client: TestClient, smtp: SmtpSimulator, coordinator: str) -> None:
    """Once its minutes are over (Redis let its key expire), the link is refused."""
    code = await ask_link(client, smtp)
    redis = client.server.app[SERVICES].store.redis
    await redis.delete(client.server.app[SERVICES].runtime.keys.signin(hashlib.sha256(code.encode()).hexdigest()))
    await sign_in(client, code, expect=401)


async def test_a_tampered_link_is_refused(client: TestClient, smtp: SmtpSimulator, coordinator: str) -> None:
    """A code changed by one character opens nothing."""
    code = await ask_link(client, smtp)
    tampered = code[:-1] + ("A" if code[-1] != "A" else "B")
    await sign_in(client, tampered, expect=401)


async def test_the_link_expires_after_the_configured_minutes(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """The link's key lives PLP_SIGNIN_LINK_MINUTES (15 by default)."""
    code = await ask_link(client, smtp)
    redis = client.server.app[SERVICES].store.redis
    ttl = await redis.ttl(client.server.app[SERVICES].runtime.keys.signin(hashlib.sha256(code.encode()).hexdigest()))
    assert 14 * 60 < ttl <= 15 * 60


async def test_a_change_without_the_csrf_token_is_refused(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """With the cookie, a POST without X-CSRF-Token (or with a wrong one) is a 403; with it, it goes through."""
    opened = await sign_in(client, await ask_link(client, smtp))
    plp_id = opened["actor"]["plp_ids"][0]
    charter = (await (await client.get(f"/v1/plps/{plp_id}")).json())["charter"]
    path = f"/v1/plps/{plp_id}/charter"
    missing = await client.put(path, json=charter)
    wrong = await client.put(path, json=charter, headers={"X-CSRF-Token": "x" * 43})
    assert (missing.status, wrong.status) == (403, 403)
    assert "X-CSRF-Token" in (await missing.json())["detail"]
    right = await client.put(path, json=charter, headers={"X-CSRF-Token": opened["csrf_token"]})
    assert right.status == 200, await right.text()


async def test_the_audit_names_the_signed_in_actor_of_a_change(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """A charter changed in a console session is audited with the coordinator as its actor."""
    opened = await sign_in(client, await ask_link(client, smtp))
    plp_id = opened["actor"]["plp_ids"][0]
    charter = (await (await client.get(f"/v1/plps/{plp_id}")).json())["charter"]
    headers = {"X-CSRF-Token": opened["csrf_token"]}
    assert (await client.put(f"/v1/plps/{plp_id}/charter", json=charter, headers=headers)).status == 200
    svc = client.server.app[SERVICES]
    entries = (await audit.read(svc.store.redis, svc.runtime.keys)).entries
    assert [(e.actor_id, e.action) for e in entries if e.action == "charter.changed"] == [
        (coordinator, "charter.changed")
    ]


async def test_session_fixation_is_impossible(client: TestClient, smtp: SmtpSimulator, coordinator: str) -> None:
    """A session id planted before sign-in is never promoted: sign-in sets a new one, the planted one is refused."""
    planted = {"Cookie": "plp_session=planted-by-someone-else"}
    assert (await client.get("/v1/me", headers=planted)).status == 401
    client.session.cookie_jar.update_cookies({"plp_session": "planted-by-someone-else"})
    await sign_in(client, await ask_link(client, smtp))
    assert cookie_of(client) != "planted-by-someone-else"
    client.session.cookie_jar.clear()
    assert (await client.get("/v1/me", headers=planted)).status == 401


async def test_each_request_renews_the_idle_timeout_and_an_idle_session_is_over(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """The session's key lives PLP_SESSION_IDLE_MINUTES from the last request; once Redis lets it go, a 401."""
    await sign_in(client, await ask_link(client, smtp))
    key = session_key(client, cookie_of(client))
    redis = client.server.app[SERVICES].store.redis
    await redis.expire(key, 5)
    assert (await client.get("/v1/me")).status == 200
    assert 29 * 60 < await redis.ttl(key) <= 30 * 60
    await redis.delete(key)  # what Redis does once the idle minutes are over
    response = await client.get("/v1/me")
    assert response.status == 401
    assert "sign in again" in (await response.json())["detail"]


async def test_a_session_ends_after_its_absolute_lifetime_however_active(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """A session started more than PLP_SESSION_MAX_HOURS ago is refused, and ended."""
    await sign_in(client, await ask_link(client, smtp))
    key = session_key(client, cookie_of(client))
    redis = client.server.app[SERVICES].store.redis
    await redis.hset(key, "started", "0")
    assert (await client.get("/v1/me")).status == 401
    assert not await redis.exists(key)


async def test_signing_out_everywhere_ends_every_session_of_the_actor(
    client: TestClient, smtp: SmtpSimulator, coordinator: str, runtime: Runtime
) -> None:
    """Two browsers signed in: 'sign out everywhere' from one ends both; a bearer token is not a session."""
    first = await sign_in(client, await ask_link(client, smtp, 1))
    async with TestClient(TestServer(create_app(runtime))) as other:
        await other.post("/v1/sign-in", json={"email": EMAIL})
        code = LINK.search((await smtp.wait_for(2))[-1].message.get_content())
        assert code is not None
        assert (await other.post("/v1/sessions", json={"code": code.group(1)})).status == 201
        assert (await other.get("/v1/me")).status == 200
        out = await client.delete("/v1/session/everywhere", headers={"X-CSRF-Token": first["csrf_token"]})
        assert out.status == 204
        assert (await other.get("/v1/me")).status == 401
    assert (await client.get("/v1/me")).status == 401
    svc = client.server.app[SERVICES]
    entries = (await audit.read(svc.store.redis, svc.runtime.keys, actor_id=coordinator)).entries
    assert [(e.action, e.detail) for e in reversed(entries)] == [
        ("session.opened", ""),
        ("session.opened", ""),
        ("session.closed", "everywhere: 2 sessions"),
    ]


async def test_the_session_answers_who_is_signed_in_and_the_csrf_token(
    client: TestClient, smtp: SmtpSimulator, coordinator: str
) -> None:
    """GET /v1/session gives the console what it needs after a reload: the actor and the CSRF token."""
    opened = await sign_in(client, await ask_link(client, smtp))
    response = await client.get("/v1/session")
    assert response.status == 200
    assert await response.json() == opened


async def test_bearer_tokens_keep_working_and_have_no_session(client: TestClient) -> None:
    """Scripts keep their bearer token; /v1/session with one is a 400 saying so."""
    token = await _admin_token(client)
    response = await client.get("/v1/session", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 400
    assert "bearer token" in (await response.json())["detail"]
