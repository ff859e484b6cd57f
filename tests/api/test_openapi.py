"""The OpenAPI document: it describes exactly the app's routes, and real answers match it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from dispatcher.api import console
from tests.conftest import Cast
from tests.support import post_json

DOCUMENT_URI = "urn:plp-dispatch:openapi"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "options", "head", "trace"})


@pytest.fixture
async def document(client: TestClient) -> dict[str, Any]:
    response = await client.get("/v1/openapi.json")
    assert response.status == 200, await response.text()
    return dict(await response.json())


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS
    }


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


class ResponseChecker:
    """Validates real responses against the schema the document gives for their operation and status."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)

    async def check(self, response: ClientResponse, *, method: str, path: str) -> Any:
        responses = self.document["paths"][path][method.lower()]["responses"]
        documented = responses.get(str(response.status)) or responses["default"]
        content = documented["content"]
        media_type = response.content_type
        assert media_type in content, f"{method} {path} {response.status}: {media_type} is not documented"
        if response.status >= 400:
            assert media_type == "application/problem+json"
            assert documented is responses["default"]
        body = await response.json(content_type=None)
        ref = content[media_type]["schema"]["$ref"]
        validator = Draft202012Validator({"$ref": DOCUMENT_URI + ref}, registry=self.registry)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, f"{method} {path} {response.status} does not match {ref}: {errors}"
        return body


async def test_the_document_is_openapi_3_1_and_public(client: TestClient) -> None:
    """GET /v1/openapi.json needs no token and returns an OpenAPI 3.1 document."""
    response = await client.get("/v1/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    document = await response.json()
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] == "plp-dispatch"
    assert document["paths"]


async def test_every_route_of_the_app_is_documented_and_nothing_else(
    client: TestClient, document: dict[str, Any]
) -> None:
    """The app's router and the document list the same operations: same methods, same paths (the web
    console's files, served beside the API, are not operations of it)."""
    routed = {
        (route.method, route.resource.canonical)
        for route in client.server.app.router.routes()
        if route.method != "HEAD" and route.resource is not None and route.resource.canonical not in console.ROUTES
    }
    assert routed == documented_operations(document)


async def test_every_operation_has_a_unique_id_and_a_problem_default(document: dict[str, Any]) -> None:
    """Each operation has its own operationId and documents errors as problem+json under default."""
    operations = [item[m] for item in document["paths"].values() for m in item if m in HTTP_METHODS]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for op in operations:
        assert "application/problem+json" in op["responses"]["default"]["content"], op["operationId"]


#: Operations that answer whether Redis answers or not: liveness, metrics (redis_up 0), readiness (its own 503).
ANSWER_WITHOUT_REDIS = {("GET", "/v1/health"), ("GET", "/metrics"), ("GET", "/v1/webhooks/whatsapp")}  # + a handshake


async def test_every_operation_that_needs_redis_declares_its_503_with_retry_after(document: dict[str, Any]) -> None:
    """Every operation but liveness and metrics declares 503 (Redis out of reach), as a problem with Retry-After."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            declared = operation["responses"].get("503")
            if (method.upper(), path) in ANSWER_WITHOUT_REDIS:
                assert declared is None, (method, path)
            elif path == "/v1/ready":
                assert declared["content"]["application/json"], "readiness answers its own 503 body"
            else:
                assert "application/problem+json" in declared["content"], (method, path)
                assert declared["headers"]["Retry-After"]["required"] is True, (method, path)


async def test_every_success_with_a_body_documents_its_content(document: dict[str, Any]) -> None:
    """Each documented 2xx answer but 204 says what it returns, so that clients generated from it can read it."""
    silent = sorted(
        f"{method.upper()} {path} {status}"
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
        for status, response in op["responses"].items()
        if status.startswith("2") and status != "204" and "content" not in response
    )
    assert silent == []


async def test_every_reference_resolves_to_a_component(document: dict[str, Any]) -> None:
    """Each $ref in the document points at a schema in components.schemas."""
    schemas = document["components"]["schemas"]
    prefix = "#/components/schemas/"
    dangling = sorted(
        {ref for ref in refs_in(document) if not (ref.startswith(prefix) and ref[len(prefix) :] in schemas)}
    )
    assert dangling == []


async def test_every_component_schema_is_a_valid_json_schema(document: dict[str, Any]) -> None:
    """Each component schema is itself a valid JSON Schema (draft 2020-12)."""
    for name, schema in document["components"]["schemas"].items():
        assert not list(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema)), name


async def test_real_responses_match_their_documented_schemas(
    client: TestClient, cast: Cast, document: dict[str, Any]
) -> None:
    """A short scenario's answers, successes and problems alike, validate against the documented schemas."""
    checker = ResponseChecker(document)
    admin, coordinator, police = cast.auth("admin"), cast.auth("coordinator_a"), cast.auth("police_a")

    response = await client.post(
        "/v1/plps", json={"name": "PLP C", "commune": "Etterbeek", "police_zone": "5340"}, headers=admin
    )
    plp = await checker.check(response, method="POST", path="/v1/plps")
    assert response.status == 201

    response = await client.post(
        f"/v1/plps/{cast.plp_a}/members",
        json={"name": "Anne", "phone": "0470 12 34 56", "email": "anne@example.org"},
        headers=coordinator,
    )
    await checker.check(response, method="POST", path="/v1/plps/{plp_id}/members")
    assert response.status == 201

    alert_body = {
        "urgency": "urgent",
        "category": "burglary",
        "plp_ids": [cast.plp_a, plp["id"]],
        "texts": {"fr": "Cambriolage rue du Parc", "nl": "Inbraak in de Parkstraat"},
    }
    response = await client.post("/v1/alerts", json=alert_body, headers=police)
    alert = await checker.check(response, method="POST", path="/v1/alerts")
    assert response.status == 202

    response = await client.get(f"/v1/alerts/{alert['id']}", headers=police)
    await checker.check(response, method="GET", path="/v1/alerts/{alert_id}")
    assert response.status == 200

    response = await client.get(f"/v1/alerts/{alert['id']}/deliveries?limit=10", headers=police)
    await checker.check(response, method="GET", path="/v1/alerts/{alert_id}/deliveries")
    assert response.status == 200

    response = await client.post("/v1/alerts", json={**alert_body, "texts": {}}, headers=police)
    await checker.check(response, method="POST", path="/v1/alerts")
    assert response.status == 422

    response = await client.get(f"/v1/plps/{cast.plp_a}/members", headers=police)
    await checker.check(response, method="GET", path="/v1/plps/{plp_id}/members")
    assert response.status == 403


async def test_an_import_report_matches_its_documented_schema(
    client: TestClient, cast: Cast, document: dict[str, Any]
) -> None:
    """The import report, with imported and rejected rows, validates against ImportReport."""
    checker = ResponseChecker(document)
    rows = [{"name": "Anne", "phone": "0470 12 34 56"}, {"name": "Bad", "phone": "12345"}]
    response = await client.post(
        f"/v1/plps/{cast.plp_a}/members/import", json={"members": rows}, headers=cast.auth("coordinator_a")
    )
    report = await checker.check(response, method="POST", path="/v1/plps/{plp_id}/members/import")
    assert (len(report["imported"]), len(report["rejected"])) == (1, 1)


async def test_member_lists_match_their_documented_schema(
    client: TestClient, cast: Cast, document: dict[str, Any]
) -> None:
    """A member page validates against MemberPage."""
    checker = ResponseChecker(document)
    member = {"name": "Anne", "phone": "0470 12 34 56"}
    await post_json(client, f"/v1/plps/{cast.plp_a}/members", member, headers=cast.auth("coordinator_a"), expect=201)
    response = await client.get(f"/v1/plps/{cast.plp_a}/members", headers=cast.auth("coordinator_a"))
    page = await checker.check(response, method="GET", path="/v1/plps/{plp_id}/members")
    assert len(page["items"]) == 1
