"""Errors: every one is an RFC 9457 problem detail (application/problem+json) naming what is wrong."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast

SMALL_BODY_LIMIT = 1024


async def problem(response: ClientResponse, status: int) -> dict[str, Any]:
    """Check that the response is a problem detail with this status; return its body."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/problem+json", text
    body = json.loads(text)
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return dict(body)


def fields_of(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


def alert(cast: Cast, **changes: Any) -> dict[str, Any]:
    """A valid urgent alert from police_a to PLP a, with some fields changed."""
    return {
        "urgency": "urgent",
        "category": "burglary",
        "plp_ids": [cast.plp_a],
        "texts": {"fr": "Cambriolage"},
    } | changes


@pytest.fixture
async def small_body_client(settings: Settings, client: TestClient) -> AsyncIterator[TestClient]:
    """A second app on the same Redis (so the cast's tokens work) that takes bodies of at most 1 KiB."""
    runtime = Runtime.from_settings(settings.model_copy(update={"max_body_bytes": SMALL_BODY_LIMIT}))
    async with TestClient(TestServer(create_app(runtime))) as small:
        yield small
    runtime.close()


# -- the request itself ------------------------------------------------------------------------


async def test_malformed_json_is_a_400_naming_the_body(client: TestClient, cast: Cast) -> None:
    """A body that is not JSON gives 400 with an error on the field ``body``."""
    response = await client.post(
        "/v1/alerts",
        data=b'{"urgency": "urgent",',
        headers={**cast.auth("police_a"), "Content-Type": "application/json"},
    )
    body = await problem(response, 400)
    assert fields_of(body) == ["body"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv"])
async def test_a_body_that_is_not_json_is_a_415(client: TestClient, cast: Cast, content_type: str) -> None:
    """Sending anything but application/json to a JSON operation gives 415, saying what to send."""
    response = await client.post(
        "/v1/alerts",
        data=json.dumps(alert(cast)).encode(),
        headers={**cast.auth("police_a"), "Content-Type": content_type},
    )
    body = await problem(response, 415)
    assert "application/json" in body["detail"]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc"],
)
async def test_a_request_without_a_bearer_token_is_a_401_with_a_challenge(
    client: TestClient, authorization: str | None
) -> None:
    """Without a bearer token the answer is 401 with WWW-Authenticate: Bearer."""
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/v1/alerts", headers=headers)
    await problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_unknown_token_is_a_401(client: TestClient, cast: Cast) -> None:
    """A bearer token the service never issued gives 401 with an invalid_token challenge."""
    response = await client.get("/v1/me", headers={"Authorization": "Bearer plp_not-a-real-token"})
    await problem(response, 401)
    assert "invalid_token" in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("who", [None, "admin"])
async def test_an_unknown_route_is_a_404(client: TestClient, cast: Cast, who: str | None) -> None:
    """A path the API does not have gives 404, with or without a token."""
    response = await client.get("/v1/nowhere", headers=cast.auth(who) if who else {})
    await problem(response, 404)


async def test_a_wrong_method_is_a_405_listing_the_allowed_ones(client: TestClient, cast: Cast) -> None:
    """A method the path does not take gives 405 with an Allow header."""
    response = await client.put("/v1/alerts", json={}, headers=cast.auth("admin"))
    await problem(response, 405)
    assert set(response.headers["Allow"].split(",")) == {"GET", "POST"}


async def test_a_body_over_the_limit_is_a_413(small_body_client: TestClient, cast: Cast) -> None:
    """A body larger than max_body_bytes gives 413, and nothing is sent."""
    body = alert(cast, texts={"fr": "x" * 1500})
    response = await small_body_client.post("/v1/alerts", json=body, headers=cast.auth("police_a"))
    await problem(response, 413)
    listed = await small_body_client.get("/v1/alerts", headers=cast.auth("police_a"))
    assert (await listed.json())["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/plps/nosuchplp", None),
        ("PUT", "/v1/plps/nosuchplp/charter", {}),
        ("GET", "/v1/plps/nosuchplp/members", None),
        ("POST", "/v1/plps/nosuchplp/members", {"name": "Anne", "phone": "0470 12 34 56"}),
        ("GET", "/v1/plps/nosuchplp/members/0123456789abcdef", None),
    ],
)
async def test_an_unknown_plp_is_a_404_naming_the_path_parameter(
    client: TestClient, cast: Cast, method: str, path: str, body: Any
) -> None:
    """Any operation on a PLP that does not exist gives 404 naming path.plp_id."""
    response = await client.request(method, path, json=body, headers=cast.auth("admin"))
    assert fields_of(await problem(response, 404)) == ["path.plp_id"]


# -- validation ----------------------------------------------------------------------------------


async def test_every_bad_field_is_named_with_a_dotted_path(client: TestClient, cast: Cast) -> None:
    """A body with several mistakes lists each of them at once, by dotted path with list positions."""
    body = {
        "urgency": "soon",
        "category": "burglary",
        "plp_ids": ["Not An Id", cast.plp_a],
        "texts": {"xx": "hello", "fr": ""},
        "ttl_seconds": 10,
        "colour": "red",
    }
    response = await client.post("/v1/alerts", json=body, headers=cast.auth("police_a"))
    errors = await problem(response, 422)
    assert sorted(fields_of(errors)) == sorted(
        ["body.urgency", "body.plp_ids[0]", "body.texts.xx", "body.texts.fr", "body.ttl_seconds", "body.colour"]
    )
    assert all(e["reason"] for e in errors["errors"])


async def test_an_unknown_target_plp_is_named_by_its_position(client: TestClient, cast: Cast) -> None:
    """Targeting a PLP that does not exist gives 422 naming body.plp_ids[i]."""
    response = await client.post(
        "/v1/alerts", json=alert(cast, plp_ids=[cast.plp_a, "nosuchplp"]), headers=cast.auth("police_a")
    )
    errors = await problem(response, 422)
    assert fields_of(errors) == ["body.plp_ids[1]"]
    assert "nosuchplp" in errors["errors"][0]["reason"]


MALFORMED_ALERT_BODIES: list[Any] = [
    pytest.param(lambda c: json.dumps(alert(c, urgency=1)), id="urgency-number"),
    pytest.param(lambda c: json.dumps(alert(c, urgency=None)), id="urgency-null"),
    pytest.param(lambda c: json.dumps(alert(c, category="arson")), id="category-unknown"),
    pytest.param(lambda c: json.dumps(alert(c, texts={})), id="texts-empty"),
    pytest.param(lambda c: json.dumps(alert(c, texts={"fr": ""})), id="text-empty"),
    pytest.param(lambda c: json.dumps(alert(c, texts={"fr": None})), id="text-null"),
    pytest.param(lambda c: json.dumps(alert(c, texts={"fr": "x" * 1601})), id="text-too-long"),
    pytest.param(lambda c: json.dumps(alert(c, texts=["fr", "x"])), id="texts-list"),
    pytest.param(lambda c: json.dumps(alert(c, texts=None)), id="texts-null"),
    pytest.param(lambda c: json.dumps(alert(c, texts={"fr": {"text": "x"}})), id="text-object"),
    pytest.param(lambda c: json.dumps(alert(c, ttl_seconds=10**12)), id="ttl-huge"),
    pytest.param(lambda c: json.dumps(alert(c, ttl_seconds=-1)), id="ttl-negative"),
    pytest.param(lambda c: json.dumps(alert(c, ttl_seconds=1.5e3 + 0.5)), id="ttl-fraction"),
    pytest.param(lambda c: json.dumps(alert(c, ttl_seconds="soon")), id="ttl-text"),
    pytest.param(lambda c: json.dumps(alert(c))[:-1] + ', "ttl_seconds": NaN}', id="ttl-nan"),
    pytest.param(lambda c: json.dumps(alert(c))[:-1] + ', "ttl_seconds": ' + "9" * 5000 + "}", id="ttl-5000-digits"),
    pytest.param(lambda c: json.dumps(alert(c, plp_ids=c.plp_a)), id="plp_ids-string"),
    pytest.param(lambda c: json.dumps(alert(c, plp_ids={"id": c.plp_a})), id="plp_ids-object"),
    pytest.param(lambda c: json.dumps(alert(c, plp_ids=None)), id="plp_ids-null"),
    pytest.param(lambda c: json.dumps(alert(c, plp_ids=[])), id="plp_ids-empty"),
    pytest.param(lambda c: json.dumps(alert(c, plp_ids=[None])), id="plp_id-null"),
    pytest.param(lambda c: json.dumps(alert(c, plp_ids=[c.plp_a, c.plp_a])), id="plp_ids-repeated"),
    pytest.param(lambda c: json.dumps(alert(c, plp_ids=[["nested"]])), id="plp_id-list"),
    pytest.param(lambda c: "null", id="body-null"),
    pytest.param(lambda c: "[]", id="body-list"),
    pytest.param(lambda c: '"alert"', id="body-string"),
    pytest.param(lambda c: "42", id="body-number"),
    pytest.param(lambda c: "", id="body-empty"),
    pytest.param(lambda c: "[" * 100_000, id="deeply-nested"),
    pytest.param(lambda c: b'{"texts": {"fr": "caf\xe9"}}', id="not-utf-8"),
]


@pytest.mark.parametrize("make_body", MALFORMED_ALERT_BODIES)
async def test_a_malformed_alert_is_refused_never_a_500(client: TestClient, cast: Cast, make_body: Any) -> None:
    """Whatever is wrong with an alert's body, the answer is a 4xx problem, never a 500, and nothing is sent."""
    data = make_body(cast)
    response = await client.post(
        "/v1/alerts",
        data=data if isinstance(data, bytes) else data.encode(),
        headers={**cast.auth("police_a"), "Content-Type": "application/json"},
    )
    assert response.status in (400, 422), await response.text()
    await problem(response, response.status)
    listed = await client.get("/v1/alerts", headers=cast.auth("police_a"))
    assert (await listed.json())["items"] == []


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "limit=100000", "before=soon", "before=nan", "colour=red"])
async def test_a_malformed_alert_list_query_is_a_422(client: TestClient, cast: Cast, query: str) -> None:
    """A bad query parameter of the alert list is a 422 naming query.<name>, never a 500."""
    response = await client.get(f"/v1/alerts?{query}", headers=cast.auth("police_a"))
    body = await problem(response, 422)
    assert fields_of(body) == [f"query.{query.split('=')[0]}"]
