"""Signing in through the organisation's identity provider (OpenID Connect), against a provider on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from config import Settings
from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.access.oidc_cache import DEFAULT_SECONDS, MAX_SECONDS, RENEW_SECONDS, ProviderCache
from dispatcher.api.app import create_app
from dispatcher.api.oidc import PROVIDER_CACHE, STATE_COOKIE
from dispatcher.api.services import SERVICES
from dispatcher.api.sessions import COOKIE
from dispatcher.core.models import ActorIn, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.runtime import Runtime
from tests.simulators.oidc import OidcProvider, Person
from tests.support import free_port

EMAIL = "agente@police-ixelles.example"
DISCOVERY, JWKS = "/.well-known/openid-configuration", "/jwks"


class Clock:
    """The provider cache's clock, which a test moves on instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def idp() -> AsyncIterator[OidcProvider]:
    async with OidcProvider(person=Person(EMAIL)) as provider:
        yield provider


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, idp: OidcProvider, port: int) -> Settings:
    return settings.model_copy(
        update={
            "public_base_url": f"http://127.0.0.1:{port}",
            "session_cookie_secure": False,  # the test server speaks plain http on loopback
            "oidc_issuer": idp.issuer,
            "oidc_client_id": idp.client_id,
            "oidc_client_secret": SecretStr(idp.client_secret),
            "oidc_name": "Ville d'Ixelles",
        }
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(runtime: Runtime, port: int, clock: Clock) -> AsyncIterator[TestClient]:
    app = create_app(runtime)
    app[PROVIDER_CACHE] = ProviderCache(clock=clock)
    async with TestClient(TestServer(app, port=port)) as test_client:
        yield test_client


@pytest.fixture
async def officer(client: TestClient) -> str:
    store = client.server.app[SERVICES].store
    data = ActorIn(name="Agente A", role=Role.POLICE, police_zone="5340", email=EMAIL.upper())
    actor, _ = await create_actor(store, data)
    return actor.id


async def sign_in_through_provider(client: TestClient, language: str = "fr") -> ClientResponse:
    """The console's button: to the provider and back, following every redirect."""
    return await client.get("/v1/sign-in/oidc", params={"language": language})


def console_code(response: ClientResponse) -> str:
    """The one-time sign-in code the callback sent the console (the last redirect's fragment)."""
    location = response.history[-1].headers["Location"]
    assert location.startswith("/console/#signin=")
    return location.removeprefix("/console/#signin=")


async def callback_url(client: TestClient) -> str:
    """Where the provider sends the browser back (its code and the state), without going there."""
    begun = await client.get("/v1/sign-in/oidc", params={"language": "nl"}, allow_redirects=False)
    assert begun.status == 302
    authorized = await client.session.get(begun.headers["Location"], allow_redirects=False)
    assert authorized.status == 302
    return authorized.headers["Location"]


async def refusals(client: TestClient) -> list[audit.Entry]:
    svc = client.server.app[SERVICES]
    return (await audit.read(svc.store.redis, svc.runtime.keys, action=Action.SIGNIN_REFUSED)).entries


async def test_an_officer_signs_in_with_the_organisation_s_provider(
    client: TestClient, idp: OidcProvider, officer: str
) -> None:
    """The provider's verified e-mail address opens a console session for the actor with that address."""
    response = await sign_in_through_provider(client)
    assert [r.status for r in response.history] == [302, 302, 303]
    assert response.status == 200  # the console's page
    opened = await client.post("/v1/sessions", json={"code": console_code(response)})
    assert opened.status == 201
    assert (await opened.json())["actor"]["id"] == officer
    me = await client.get("/v1/session")
    assert (await me.json())["actor"]["name"] == "Agente A"  # an officer too resumes their session
    assert [r.path for r in idp.ledger] == [DISCOVERY, "/authorize", "/token", JWKS]  # discovery read once


async def test_the_session_is_the_one_an_e_mailed_link_opens_with_a_new_id(client: TestClient, officer: str) -> None:
    """A session id planted before is never promoted; the code works once; the audit says session.opened."""
    client.session.cookie_jar.update_cookies({COOKIE: "planted-by-an-attacker"})
    code = console_code(await sign_in_through_provider(client))
    opened = await client.post("/v1/sessions", json={"code": code})
    assert opened.cookies[COOKIE].value not in ("", "planted-by-an-attacker")
    assert opened.cookies[COOKIE]["httponly"] and opened.cookies[COOKIE]["samesite"] == "Strict"
    assert (await client.post("/v1/sessions", json={"code": code})).status == 401
    svc = client.server.app[SERVICES]
    page = await audit.read(svc.store.redis, svc.runtime.keys, action=Action.SESSION_OPENED)
    assert [e.actor_id for e in page.entries] == [officer]


async def test_the_authorization_request_uses_pkce_a_nonce_and_the_state_cookie(client: TestClient) -> None:
    """The browser goes to the provider with an S256 challenge and a nonce; the state is also in a Lax cookie."""
    begun = await client.get("/v1/sign-in/oidc", allow_redirects=False)
    query = parse_qs(urlsplit(begun.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"] and query["nonce"]
    assert query["redirect_uri"] == [f"{client.make_url('')}/v1/sign-in/oidc/callback".replace("//v1", "/v1")]
    cookie = begun.cookies[STATE_COOKIE]
    assert cookie.value == query["state"][0]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/v1/sign-in/oidc/callback"


async def refused(client: TestClient, url: str, *, reason: str, language: str = "nl") -> None:
    response = await client.session.get(url, allow_redirects=False)
    assert response.status == 403
    assert response.content_type == "text/html"
    page = await response.text()
    assert f'lang="{language}"' in page
    assert "Location" not in response.headers
    assert [e.detail for e in await refusals(client)][:1] == [f"oidc: {reason}"]


async def test_a_tampered_state_is_refused_and_audited(client: TestClient, officer: str) -> None:
    """A state that is not the one this browser was given opens nothing."""
    url = urlsplit(await callback_url(client))
    query = parse_qs(url.query)
    tampered = f"code={query['code'][0]}&state={query['state'][0][:-2]}xy"
    await refused(client, urlunsplit(url._replace(query=tampered)), reason="state", language="fr")


async def test_a_callback_in_another_browser_is_refused(client: TestClient, officer: str) -> None:
    """Without the state cookie of the browser that began (a sign-in pushed on someone else), nothing opens."""
    url = await callback_url(client)
    client.session.cookie_jar.clear()
    await refused(client, url, reason="state", language="fr")


async def test_a_callback_replayed_is_refused(client: TestClient, officer: str) -> None:
    """The state works once: the same callback a second time opens nothing."""
    url = await callback_url(client)
    assert (await client.session.get(url, allow_redirects=False)).status == 303
    await refused(client, url, reason="state", language="fr")


async def test_a_code_replayed_is_refused_by_the_provider(client: TestClient, officer: str) -> None:
    """A spent code, brought back with a fresh state, is refused at the token endpoint."""
    spent = parse_qs(urlsplit(await callback_url(client)).query)["code"][0]
    assert (await client.session.get(await callback_url(client), allow_redirects=False)).status == 303
    fresh = urlsplit(await callback_url(client))
    state = parse_qs(fresh.query)["state"][0]
    await refused(client, urlunsplit(fresh._replace(query=f"code={spent}&state={state}")), reason="provider")


@pytest.mark.parametrize(
    ("claims", "stranger"),
    [
        ({"nonce": "not-the-one-sent"}, False),
        ({"aud": "another-client"}, False),
        ({"iss": "http://impostor.example"}, False),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, False),
        ({}, True),  # signed with a key the provider's JWKS does not hold
    ],
    ids=["wrong nonce", "wrong audience", "wrong issuer", "expired", "bad signature"],
)
async def test_an_id_token_that_does_not_verify_is_refused(
    client: TestClient, idp: OidcProvider, officer: str, claims: dict[str, object], stranger: bool
) -> None:
    """The ID token's signature, issuer, audience, expiry and nonce are checked: any wrong, nothing opens."""
    idp.claims, idp.sign_with_stranger = claims, stranger
    await refused(client, await callback_url(client), reason="token")


async def test_an_address_the_provider_has_not_verified_is_refused(
    client: TestClient, idp: OidcProvider, officer: str
) -> None:
    """email_verified must be true: an address anyone could have typed at the provider opens nothing."""
    idp.person = Person(EMAIL, email_verified=False)
    await refused(client, await callback_url(client), reason="email_unverified")


async def test_an_unknown_address_is_refused_in_the_console_s_language_and_no_account_is_made(
    client: TestClient, idp: OidcProvider, officer: str
) -> None:
    """A verified address no coordinator or officer has gets a clear page in the console's language."""
    idp.person = Person("voisin@example.org")
    response = await sign_in_through_provider(client, language="de")
    assert response.status == 403
    assert "Ihre E-Mail-Adresse gehört zu keiner Koordination" in await response.text()
    assert [e.detail for e in await refusals(client)] == ["oidc: unknown_email"]
    assert [e.role for e in await refusals(client)] == ["anonymous"]
    store = client.server.app[SERVICES].store
    assert [str(a.email).casefold() async for chunk in store.all_actors() for a in chunk] == [EMAIL]


async def test_a_person_who_cancels_at_the_provider_is_refused_and_the_state_is_spent(
    client: TestClient, idp: OidcProvider, officer: str
) -> None:
    """The provider's error answer opens nothing, and the state it carried cannot be used afterwards."""
    idp.deny = True
    url = await callback_url(client)
    assert "error=access_denied" in url
    await refused(client, url, reason="provider", language="fr")
    state = parse_qs(urlsplit(url).query)["state"][0]
    idp.deny = False
    code = parse_qs(urlsplit(await callback_url(client)).query)["code"][0]
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({STATE_COOKIE: state})  # as if that browser came back with a code
    forged = str(client.make_url(f"/v1/sign-in/oidc/callback?code={code}&state={state}"))
    await refused(client, forged, reason="state", language="fr")


async def test_a_provider_out_of_reach_is_a_502_and_no_state_is_kept(runtime: Runtime, settings: Settings) -> None:
    """When the provider's discovery cannot be read, the button's route says so and keeps nothing."""
    away = Runtime.from_settings(settings.model_copy(update={"oidc_issuer": f"http://127.0.0.1:{free_port()}"}))
    try:
        async with TestClient(TestServer(create_app(away))) as client:
            response = await client.get("/v1/sign-in/oidc", allow_redirects=False)
            assert response.status == 502
            assert "identity provider cannot be reached" in (await response.json())["detail"]
            assert STATE_COOKIE not in response.cookies
            assert not [key async for key in away_keys(client)]
    finally:
        away.close()


async def away_keys(client: TestClient) -> AsyncIterator[str]:
    svc = client.server.app[SERVICES]
    async for key in svc.store.redis.scan_iter(match=svc.runtime.keys.oidc_state("*")):
        yield key


async def test_the_console_is_told_the_provider_s_name(client: TestClient) -> None:
    """config.json names the provider for the "Sign in with" button."""
    config = await (await client.get("/console/config.json")).json()
    assert config["sign_in_with"] == "Ville d'Ixelles"


async def test_without_a_provider_there_is_no_button_and_no_route(runtime: Runtime, settings: Settings) -> None:
    """Unset, OpenID Connect is off: config.json names no provider and the routes answer 404."""
    plain = Runtime.from_settings(settings.model_copy(update={"oidc_issuer": None}))
    try:
        async with TestClient(TestServer(create_app(plain))) as client:
            assert (await (await client.get("/console/config.json")).json())["sign_in_with"] is None
            assert (await client.get("/v1/sign-in/oidc", allow_redirects=False)).status == 404
            assert (await client.get("/v1/sign-in/oidc/callback?state=a&code=b")).status == 404
    finally:
        plain.close()


async def signed_in(client: TestClient) -> bool:
    """One sign-in through the provider, all the way to a console session."""
    response = await sign_in_through_provider(client)
    return response.status == 200 and (await client.post("/v1/sessions", json={"code": console_code(response)})).ok


async def test_ten_sign_ins_read_the_provider_s_discovery_and_keys_once(
    client: TestClient, idp: OidcProvider, officer: str
) -> None:
    """The discovery document and the JWKS are kept by the web process: ten sign-ins read each once."""
    assert [await signed_in(client) for _ in range(10)] == [True] * 10
    assert (idp.requests(DISCOVERY), idp.requests(JWKS), idp.requests("/token")) == (1, 1, 10)


async def test_after_the_provider_rotates_its_key_the_next_sign_in_reads_the_keys_again_and_succeeds(
    client: TestClient, idp: OidcProvider, officer: str
) -> None:
    """An ID token signed with a key the kept JWKS lacks has the JWKS read again, once, and verifies."""
    assert await signed_in(client)
    idp.rotate()
    assert await signed_in(client)
    assert await signed_in(client)
    assert (idp.requests(DISCOVERY), idp.requests(JWKS)) == (1, 2)


async def test_tokens_with_unknown_keys_read_the_keys_at_most_once_a_minute_and_are_refused(
    client: TestClient, idp: OidcProvider, officer: str, clock: Clock
) -> None:
    """Forged tokens naming made-up kids are refused; within RENEW_SECONDS they cost the provider one JWKS read."""
    assert await signed_in(client)
    idp.sign_with_unknown_kid = True
    for _ in range(3):
        await refused(client, await callback_url(client), reason="token")
    assert idp.requests(JWKS) == 2
    clock.now += RENEW_SECONDS
    await refused(client, await callback_url(client), reason="token")
    assert idp.requests(JWKS) == 3
    assert [e.detail for e in await refusals(client)] == ["oidc: token"] * 4


async def test_a_token_signed_by_a_stranger_under_a_known_kid_does_not_read_the_keys_again(
    client: TestClient, idp: OidcProvider, officer: str
) -> None:
    """A bad signature under a kid the JWKS holds is refused without asking the provider for its keys again."""
    assert await signed_in(client)
    idp.sign_with_stranger = True
    await refused(client, await callback_url(client), reason="token")
    assert idp.requests(JWKS) == 1


@pytest.mark.parametrize(
    ("cache_control", "later", "discovery_reads"),
    [
        (None, DEFAULT_SECONDS - 1, 1),
        (None, DEFAULT_SECONDS, 2),
        ("public, max-age=120", 119, 1),
        ("public, max-age=120", 120, 2),
        (f"max-age={10 * MAX_SECONDS}", MAX_SECONDS, 2),
        ("no-store", 0, 4),  # both the button's route and the callback read it, each sign-in
    ],
    ids=["default, fresh", "default, stale", "max-age, fresh", "max-age, stale", "max-age capped", "no-store"],
)
async def test_the_provider_s_documents_are_kept_as_long_as_its_cache_control_says(
    client: TestClient,
    idp: OidcProvider,
    officer: str,
    clock: Clock,
    cache_control: str | None,
    later: int,
    discovery_reads: int,
) -> None:
    """Kept for max-age seconds (at most MAX_SECONDS), DEFAULT_SECONDS when unsaid, not at all with no-store."""
    idp.cache_control = cache_control
    assert await signed_in(client)
    clock.now += later
    assert await signed_in(client)
    assert idp.requests(DISCOVERY) == discovery_reads
    assert idp.requests(JWKS) == (1 if discovery_reads == 1 else 2)


async def test_while_the_kept_documents_are_fresh_a_provider_whose_discovery_is_down_still_signs_in(
    client: TestClient, idp: OidcProvider, officer: str, clock: Clock
) -> None:
    """Discovery and JWKS answering 503 stop nothing while kept; once stale, the sign-in is refused and audited."""
    assert await signed_in(client)
    idp.broken = {DISCOVERY, JWKS}
    assert await signed_in(client)
    url = await callback_url(client)
    clock.now += DEFAULT_SECONDS
    await refused(client, url, reason="provider")
    assert (await client.get("/v1/sign-in/oidc", allow_redirects=False)).status == 502
