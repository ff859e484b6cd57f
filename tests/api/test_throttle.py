"""Slowing callers down: rates per token and per address (429 + Retry-After), and failed authentications.

Time passes by rewriting Redis: deleting a limit's key is the moment its meter is idle
again; deleting an address's lock-out key is the moment the lock-out ends.
"""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from config import Settings
from dispatcher.access.throttle import Refusal, client_address
from dispatcher.api.services import SERVICES
from dispatcher.core.models import ActorIn, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.store import Store

BAD = {"Authorization": "Bearer plp_not-a-token-of-ours-at-all"}
# 6 a minute: one slot every 10 s, 2 at once.
SLOW = {"per_minute": 6.0, "burst": 2}


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(settings: Settings, overrides: dict[str, Any]) -> Settings:
    return settings.model_copy(update=overrides)


def store_of(client: TestClient) -> Store:
    return client.server.app[SERVICES].store


async def admin_token(client: TestClient, name: str = "Admin") -> str:
    _, token = await create_actor(store_of(client), ActorIn(name=name, role=Role.ADMIN))
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token_id_of(client: TestClient, token: str) -> str:
    _, record = await store_of(client).actor_for_token(token)
    return record.id


async def assert_too_many(response: ClientResponse, retry_after: int) -> None:
    problem = await response.json()
    assert response.status == 429, problem
    assert response.content_type == "application/problem+json"
    assert problem["title"] == "Too many requests"
    assert response.headers["Retry-After"] == str(retry_after)


PER_TOKEN = {"rate_limit_per_token": SLOW["per_minute"], "rate_limit_per_token_burst": SLOW["burst"]}
PER_ADDRESS = {"rate_limit_per_address": SLOW["per_minute"], "rate_limit_per_address_burst": SLOW["burst"]}


@pytest.mark.parametrize("overrides", [PER_TOKEN])
async def test_a_token_over_its_rate_gets_429_with_retry_after(client: TestClient) -> None:
    """With 6 requests a minute and a burst of 2, the 3rd request at once is a 429 to retry in 10 s."""
    token = await admin_token(client)
    for _ in range(2):
        assert (await client.get("/v1/me", headers=bearer(token))).status == 200
    await assert_too_many(await client.get("/v1/me", headers=bearer(token)), retry_after=10)


@pytest.mark.parametrize("overrides", [PER_TOKEN])
async def test_a_token_is_let_through_again_once_its_window_passes(client: TestClient) -> None:
    """When the token's meter is idle again (its key gone), requests pass; a refused one reserved nothing."""
    token = await admin_token(client)
    for _ in range(2):
        await client.get("/v1/me", headers=bearer(token))
    for _ in range(3):
        assert (await client.get("/v1/me", headers=bearer(token))).status == 429
    store = store_of(client)
    await store.redis.delete(store.keys.limit(f"api-token:{await token_id_of(client, token)}"))
    for _ in range(2):
        assert (await client.get("/v1/me", headers=bearer(token))).status == 200


@pytest.mark.parametrize("overrides", [PER_TOKEN])
async def test_each_token_has_its_own_rate(client: TestClient) -> None:
    """One token over its rate leaves another token (same address) untouched."""
    busy, other = await admin_token(client, "Busy"), await admin_token(client, "Other")
    for _ in range(3):
        await client.get("/v1/me", headers=bearer(busy))
    assert (await client.get("/v1/me", headers=bearer(busy))).status == 429
    assert (await client.get("/v1/me", headers=bearer(other))).status == 200


@pytest.mark.parametrize("overrides", [PER_ADDRESS])
async def test_an_address_over_its_rate_gets_429_even_on_public_routes(client: TestClient) -> None:
    """The per-address rate counts public requests too: health, member pages, unknown paths."""
    for _ in range(2):
        assert (await client.get("/v1/health")).status == 200
    await assert_too_many(await client.get("/v1/health"), retry_after=10)
    await assert_too_many(await client.get("/v1/r/not-a-signed-link"), retry_after=10)
    await assert_too_many(await client.get("/v1/no-such-route"), retry_after=10)
    store = store_of(client)
    await store.redis.delete(store.keys.limit("api-address:127.0.0.1"))
    assert (await client.get("/v1/health")).status == 200


@pytest.mark.parametrize("overrides", [PER_ADDRESS])
async def test_provider_callbacks_are_never_refused_for_the_address_rate(client: TestClient) -> None:
    """Webhooks (signed, as many as our own sends) pass an address over its rate: a member's STOP is never lost."""
    for _ in range(3):
        await client.get("/v1/health")
    assert (await client.get("/v1/health")).status == 429
    for path in ("/v1/webhooks/telegram", "/v1/webhooks/twilio/sms", "/v1/webhooks/twilio/status"):
        for _ in range(5):
            response = await client.post(path, data={})
            assert response.status not in (429, 500), path
            assert response.status == 403, path  # unsigned: refused by the signature check, not the meter


@pytest.mark.parametrize("overrides", [PER_ADDRESS])
async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(client: TestClient) -> None:
    """Without PLP_TRUSTED_PROXIES, a client cannot pick its address with X-Forwarded-For."""
    for n in range(2):
        await client.get("/v1/health", headers={"X-Forwarded-For": f"198.51.100.{n}"})
    response = await client.get("/v1/health", headers={"X-Forwarded-For": "198.51.100.99"})
    assert response.status == 429


@pytest.mark.parametrize("overrides", [{**PER_ADDRESS, "trusted_proxies": ("127.0.0.1/32",)}])
async def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_rate(client: TestClient) -> None:
    """From a trusted proxy, the first X-Forwarded-For entry is the client: one client's excess spares another."""
    first = {"X-Forwarded-For": "198.51.100.7, 10.0.0.1"}
    for _ in range(2):
        assert (await client.get("/v1/health", headers=first)).status == 200
    assert (await client.get("/v1/health", headers=first)).status == 429
    assert (await client.get("/v1/health", headers={"X-Forwarded-For": "198.51.100.8"})).status == 200


async def test_five_failed_authentications_then_the_wait_doubles(client: TestClient) -> None:
    """Five bad tokens get 401s; then each attempt waits 2, 4, 8... s, every request of the address included."""
    store, good = store_of(client), await admin_token(client)
    for _ in range(5):
        assert (await client.get("/v1/me", headers=BAD)).status == 401
    await assert_too_many(await client.get("/v1/me", headers=bearer(good)), retry_after=2)
    for wait in (4, 8, 16):
        await store.redis.delete(store.keys.auth_lock("127.0.0.1"))  # the lock-out ends
        await assert_too_many(await client.get("/v1/me", headers=BAD), retry_after=wait)
        await assert_too_many(await client.get("/v1/me", headers=bearer(good)), retry_after=wait)


async def test_the_wait_after_failed_authentications_is_at_most_five_minutes(client: TestClient) -> None:
    """However many failures, the lock-out is at most 300 s."""
    store = store_of(client)
    await store.redis.set(store.keys.auth_failures("127.0.0.1"), 40)
    await assert_too_many(await client.get("/v1/me", headers=BAD), retry_after=300)


async def test_a_successful_authentication_resets_the_count(client: TestClient) -> None:
    """Once the lock-out ends, a good token passes and the address starts afresh: five more 401s before a wait."""
    store, good = store_of(client), await admin_token(client)
    for _ in range(6):
        await client.get("/v1/me", headers=BAD)
    await store.redis.delete(store.keys.auth_lock("127.0.0.1"))
    assert (await client.get("/v1/me", headers=bearer(good))).status == 200
    for _ in range(5):
        assert (await client.get("/v1/me", headers=BAD)).status == 401
    await assert_too_many(await client.get("/v1/me", headers=BAD), retry_after=2)


async def test_expired_and_revoked_tokens_count_as_failures(client: TestClient) -> None:
    """A revoked token is a failed authentication like an unknown one."""
    store, good = store_of(client), await admin_token(client)
    revoked = await admin_token(client, "Gone")
    await store.revoke_token(await token_id_of(client, revoked))
    for _ in range(5):
        assert (await client.get("/v1/me", headers=bearer(revoked))).status == 401
    assert (await client.get("/v1/me", headers=bearer(good))).status == 429


async def test_requests_without_credentials_are_not_failed_authentications(client: TestClient) -> None:
    """No Authorization header at all is a 401 every time, never a lock-out."""
    for _ in range(10):
        assert (await client.get("/v1/me")).status == 401


async def test_a_locked_out_address_still_reaches_public_routes(client: TestClient) -> None:
    """The lock-out concerns authentication: health and webhooks still answer (under the address's rate)."""
    for _ in range(6):
        await client.get("/v1/me", headers=BAD)
    assert (await client.get("/v1/me", headers=BAD)).status == 429
    assert (await client.get("/v1/health")).status == 200


@pytest.mark.parametrize("overrides", [{"trusted_proxies": ("127.0.0.1/32",)}])
async def test_a_lock_out_concerns_one_address(client: TestClient) -> None:
    """Behind a trusted proxy, one client's failures do not lock another client out."""
    good, attacker = await admin_token(client), {"X-Forwarded-For": "203.0.113.5"}
    for _ in range(6):
        await client.get("/v1/me", headers={**BAD, **attacker})
    assert (await client.get("/v1/me", headers={**bearer(good), **attacker})).status == 429
    response = await client.get("/v1/me", headers={**bearer(good), "X-Forwarded-For": "203.0.113.6"})
    assert response.status == 200


LOOPBACK = [ip_network("127.0.0.1")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "address"),
    [
        ("192.0.2.1", None, [], "192.0.2.1"),
        ("192.0.2.1", "198.51.100.1", [], "192.0.2.1"),
        ("127.0.0.1", "198.51.100.1, 127.0.0.1", LOOPBACK, "198.51.100.1"),
        ("127.0.0.1", " 198.51.100.1:4711 ", LOOPBACK, "198.51.100.1"),
        ("127.0.0.1", "[2001:db8::1]:443", LOOPBACK, "2001:db8::/64"),
        ("127.0.0.1", "not-an-address", LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", None, LOOPBACK, "127.0.0.1"),
        ("10.1.2.3", "198.51.100.1", [ip_network("10.0.0.0/8")], "198.51.100.1"),
        ("2001:db8:1:2:3:4:5:6", None, [], "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.9", None, [], "192.0.2.9"),
        (None, None, [], "unknown"),
    ],
)
def test_the_source_address(peer: str | None, forwarded: str | None, trusted: list[Any], address: str) -> None:
    """The peer, or the first X-Forwarded-For entry from a trusted proxy; IPv6 by /64."""
    assert client_address(peer, forwarded, trusted) == address


@pytest.mark.parametrize(("wait", "header"), [(0.001, 1), (0.999, 1), (1.0, 1), (1.2, 2), (10.0, 10), (299.5, 300)])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: int) -> None:
    """A wait becomes a Retry-After rounded up to whole seconds, never 0."""
    assert Refusal(wait, "why").retry_after == header
