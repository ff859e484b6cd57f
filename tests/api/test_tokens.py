"""Bearer tokens: a public id and an expiry each; revocation; listings that never show a secret."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from config import Settings
from dispatcher.api.services import SERVICES
from dispatcher.storage.store import Store
from tests.conftest import Cast
from tests.support import get_json, post_json

TOKEN_ID = re.compile(r"^tok_[0-9a-f]{10}$")
ROLES = ["admin", "police_a", "police_b", "coordinator_a", "coordinator_b"]


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(settings: Settings, overrides: dict[str, Any]) -> Settings:
    return settings.model_copy(update=overrides)


def store_of(client: TestClient) -> Store:
    return client.server.app[SERVICES].store


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def days_from_now(moment: str) -> float:
    return (datetime.fromisoformat(moment) - datetime.now(UTC)) / timedelta(days=1)


async def issue(client: TestClient, cast: Cast, who: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    path = f"/v1/actors/{cast.ids[who]}/tokens"
    return await post_json(client, path, body, headers=cast.auth("admin"), expect=201)


async def token_id_of(client: TestClient, token: str) -> str:
    _, record = await store_of(client).actor_for_token(token)
    return record.id


async def test_an_issued_token_has_a_public_id_and_expires_in_the_default_days(client: TestClient, cast: Cast) -> None:
    """Without a body, a new token is valid PLP_TOKEN_TTL_DAYS (90 by default) and has an id ``tok_`` + 10 hex."""
    issued = await issue(client, cast, "police_a")
    assert TOKEN_ID.match(issued["token_id"])
    assert 89.99 < days_from_now(issued["expires_at"]) <= 90
    me = await get_json(client, "/v1/me", headers=bearer(issued["token"]))
    assert me["id"] == cast.ids["police_a"]


async def test_the_issuer_may_give_a_token_its_own_validity(client: TestClient, cast: Cast) -> None:
    """A body ``{"ttl_days": 7}`` makes the token valid 7 days."""
    issued = await issue(client, cast, "coordinator_a", {"ttl_days": 7})
    assert 6.99 < days_from_now(issued["expires_at"]) <= 7


@pytest.mark.parametrize("overrides", [{"token_ttl_days": 3}])
async def test_the_default_validity_is_a_setting(client: TestClient, cast: Cast) -> None:
    """With PLP_TOKEN_TTL_DAYS=3, new actors' tokens and further tokens are valid 3 days."""
    body = {"name": "Inspecteur C", "role": "police", "police_zone": "5340"}
    created = await post_json(client, "/v1/actors", body, headers=cast.auth("admin"), expect=201)
    assert 2.99 < days_from_now(created["expires_at"]) <= 3
    assert 2.99 < days_from_now((await issue(client, cast, "police_b"))["expires_at"]) <= 3


@pytest.mark.parametrize(
    "body",
    [{"ttl_days": 0}, {"ttl_days": 3651}, {"ttl_days": "soon"}, {"ttl_days": 7, "role": "admin"}],
    ids=["zero", "beyond-ten-years", "not-a-number", "unknown-field"],
)
async def test_a_bad_validity_is_refused_naming_the_field(client: TestClient, cast: Cast, body: dict[str, Any]) -> None:
    """A validity out of 1..3650 days, not a number, or next to an unknown field is a 422 naming it; nothing issued."""
    response = await client.post(f"/v1/actors/{cast.ids['police_a']}/tokens", json=body, headers=cast.auth("admin"))
    problem = await response.json()
    assert response.status == 422, problem
    assert problem["errors"][0]["field"].startswith("body.")
    assert len(await store_of(client).list_tokens(actor_id=cast.ids["police_a"], limit=10)) == 1


async def test_an_expired_token_is_refused_at_once(client: TestClient, cast: Cast) -> None:
    """Once its expiry passes, the very next request with the token is a 401 saying "expired"."""
    token = cast.tokens["police_a"]
    await get_json(client, "/v1/me", headers=bearer(token))
    store = store_of(client)
    await store.redis.hset(store.keys.token(hashlib.sha256(token.encode()).hexdigest()), "expires_at", 1.0)
    response = await client.get("/v1/me", headers=bearer(token))
    problem = await response.json()
    assert response.status == 401
    assert problem["errors"] == [{"field": "header.Authorization", "reason": "expired"}]
    assert "expired" in problem["detail"]
    assert 'error_description="expired"' in response.headers["WWW-Authenticate"]


async def test_a_revoked_token_is_refused_at_once(client: TestClient, cast: Cast) -> None:
    """DELETE /v1/tokens/{id} answers 204; the next request with that token is a 401 saying "revoked"."""
    token = cast.tokens["coordinator_a"]
    await get_json(client, "/v1/me", headers=bearer(token))
    response = await client.delete(f"/v1/tokens/{await token_id_of(client, token)}", headers=cast.auth("admin"))
    assert response.status == 204
    response = await client.get(f"/v1/plps/{cast.plp_a}", headers=bearer(token))
    problem = await response.json()
    assert response.status == 401
    assert problem["errors"] == [{"field": "header.Authorization", "reason": "revoked"}]


async def test_revoking_one_token_leaves_the_actors_others(client: TestClient, cast: Cast) -> None:
    """An actor's other tokens keep working when one is revoked."""
    second = await issue(client, cast, "police_a")
    await client.delete(f"/v1/tokens/{second['token_id']}", headers=cast.auth("admin"))
    assert (await client.get("/v1/me", headers=bearer(second["token"]))).status == 401
    assert (await client.get("/v1/me", headers=cast.auth("police_a"))).status == 200


async def test_revoking_twice_keeps_the_first_time_and_an_unknown_id_is_404(client: TestClient, cast: Cast) -> None:
    """A second revocation is a 204 that changes nothing; an id no token has is a 404 problem."""
    token_id = await token_id_of(client, cast.tokens["police_b"])
    await client.delete(f"/v1/tokens/{token_id}", headers=cast.auth("admin"))
    [first] = await store_of(client).get_tokens([token_id])
    assert (await client.delete(f"/v1/tokens/{token_id}", headers=cast.auth("admin"))).status == 204
    assert (await store_of(client).get_tokens([token_id]))[0].revoked_at == first.revoked_at
    response = await client.delete("/v1/tokens/tok_0000000000", headers=cast.auth("admin"))
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_an_admin_may_revoke_their_own_token(client: TestClient, cast: Cast) -> None:
    """An admin's token revoked by that admin is refused from the next request on."""
    token_id = await token_id_of(client, cast.tokens["admin"])
    assert (await client.delete(f"/v1/tokens/{token_id}", headers=cast.auth("admin"))).status == 204
    assert (await client.get("/v1/me", headers=cast.auth("admin"))).status == 401


async def test_a_token_from_before_expiries_is_refused_as_expired(client: TestClient, cast: Cast) -> None:
    """A record with no expiry (issued by an older version) is refused as expired: it is to be reissued."""
    store, secret = store_of(client), "plp_" + "x" * 43
    await store.redis.hset(
        store.keys.token(hashlib.sha256(secret.encode()).hexdigest()),
        mapping={"actor_id": cast.ids["admin"], "issued_at": 1.0},
    )
    problem = await (await client.get("/v1/me", headers=bearer(secret))).json()
    assert problem["errors"][0]["reason"] == "expired"


async def test_the_listing_never_shows_a_secret_or_its_hash(client: TestClient, cast: Cast) -> None:
    """GET /v1/tokens lists id, actor id and name, role, times and status; no token nor sha256 of one appears."""
    await issue(client, cast, "police_a", {"ttl_days": 1})
    response = await client.get("/v1/tokens", headers=cast.auth("admin"))
    text = await response.text()
    assert response.status == 200
    for secret in cast.tokens.values():
        assert secret not in text
        assert hashlib.sha256(secret.encode()).hexdigest() not in text
    items = (await response.json())["items"]
    assert len(items) == 6
    assert {tuple(sorted(item)) for item in items} == {
        ("actor_id", "actor_name", "expires_at", "id", "issued_at", "revoked_at", "role", "status")
    }
    newest = items[0]
    assert (newest["actor_id"], newest["actor_name"], newest["role"]) == (
        cast.ids["police_a"],
        "Inspecteur A",
        "police",
    )
    assert [item["issued_at"] for item in items] == sorted((item["issued_at"] for item in items), reverse=True)


async def test_the_listing_filters_by_actor_and_shows_each_status(client: TestClient, cast: Cast) -> None:
    """``?actor_id=`` lists that actor's tokens only, each active, expired or revoked."""
    store = store_of(client)
    revoked, expired = await issue(client, cast, "police_a"), await issue(client, cast, "police_a")
    await client.delete(f"/v1/tokens/{revoked['token_id']}", headers=cast.auth("admin"))
    digest = hashlib.sha256(expired["token"].encode()).hexdigest()
    await store.redis.hset(store.keys.token(digest), "expires_at", 1.0)
    listed = await get_json(client, f"/v1/tokens?actor_id={cast.ids['police_a']}", headers=cast.auth("admin"))
    statuses = {item["id"]: item["status"] for item in listed["items"]}
    first = await token_id_of(client, cast.tokens["police_a"])
    assert statuses == {first: "active", revoked["token_id"]: "revoked", expired["token_id"]: "expired"}
    assert next(i for i in listed["items"] if i["id"] == revoked["token_id"])["revoked_at"] is not None


async def list_tokens(client: TestClient, cast: Cast, who: str) -> int:
    return (await client.get("/v1/tokens", headers=cast.auth(who))).status


async def list_another_actors_tokens(client: TestClient, cast: Cast, who: str) -> int:
    return (await client.get(f"/v1/tokens?actor_id={cast.ids['police_b']}", headers=cast.auth(who))).status


async def revoke_token(client: TestClient, cast: Cast, who: str) -> int:
    token_id = await token_id_of(client, cast.tokens["police_b"])
    return (await client.delete(f"/v1/tokens/{token_id}", headers=cast.auth(who))).status


async def issue_with_validity(client: TestClient, cast: Cast, who: str) -> int:
    path = f"/v1/actors/{cast.ids['police_a']}/tokens"
    return (await client.post(path, json={"ttl_days": 7}, headers=cast.auth(who))).status


#: action -> expected status for admin, police_a, police_b, coordinator_a, coordinator_b
TABLE = {
    list_tokens: (200, 200, 200, 200, 200),  # an admin every token; the others their own
    list_another_actors_tokens: (200, 403, 200, 403, 403),
    revoke_token: (204, 403, 204, 403, 403),  # police_b's token
    issue_with_validity: (201, 201, 403, 403, 403),  # to police_a
}


@pytest.mark.parametrize(
    ("action", "who", "expected"),
    [
        pytest.param(action, who, expected[i], id=f"{action.__name__}-{who}")
        for action, expected in TABLE.items()
        for i, who in enumerate(ROLES)
    ],
)
async def test_admins_manage_every_token_and_each_actor_their_own(
    client: TestClient, cast: Cast, action: Any, who: str, expected: int
) -> None:
    """Listing, revoking and issuing tokens is for admins; everyone else gets a 403 (and revokes nothing)."""
    assert await action(client, cast, who) == expected
    police_b_still_in = (await client.get("/v1/me", headers=cast.auth("police_b"))).status == 200
    assert police_b_still_in is not (action is revoke_token and expected == 204)
