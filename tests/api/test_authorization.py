"""Who may do what: the role × action table of the dispatch service.

The cast has two police zones (5340 with PLP a, 5341 with PLP b), an admin, a police
officer per zone and a coordinator per PLP. Every action below is tried by every role
against PLP a; each denial is a 403 that says why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.conftest import Cast
from tests.support import member_rows, post_json

ROLES = ["admin", "police_a", "police_b", "coordinator_a", "coordinator_b"]

Action = Callable[[TestClient, Cast, str], Awaitable[ClientResponse]]


async def _alert_to_a(client: TestClient, cast: Cast, urgency: str = "urgent") -> str:
    body = {"urgency": urgency, "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": "Cambriolage rue X"}}
    return (await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202))["id"]


async def _member_of_a(client: TestClient, cast: Cast) -> str:
    created = await post_json(
        client, f"/v1/plps/{cast.plp_a}/members", member_rows(1)[0], headers=cast.auth("coordinator_a"), expect=201
    )
    return str(created["id"])


async def create_plp(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {"name": "PLP C", "commune": "Uccle", "police_zone": "5342"}
    return await client.post("/v1/plps", json=body, headers=cast.auth(who))


async def read_plp(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/plps/{cast.plp_a}", headers=cast.auth(who))


async def change_charter(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    charter = {"relay": "auto"}
    return await client.put(f"/v1/plps/{cast.plp_a}/charter", json=charter, headers=cast.auth(who))


async def add_member(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.post(f"/v1/plps/{cast.plp_a}/members", json=member_rows(1, start=7)[0], headers=cast.auth(who))


async def list_members(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/plps/{cast.plp_a}/members", headers=cast.auth(who))


async def read_member(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    member_id = await _member_of_a(client, cast)
    return await client.get(f"/v1/plps/{cast.plp_a}/members/{member_id}", headers=cast.auth(who))


async def delete_member(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    member_id = await _member_of_a(client, cast)
    return await client.delete(f"/v1/plps/{cast.plp_a}/members/{member_id}", headers=cast.auth(who))


async def import_members(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {"members": member_rows(2, start=20)}
    return await client.post(f"/v1/plps/{cast.plp_a}/members/import", json=body, headers=cast.auth(who))


async def preview_import(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {"members": member_rows(2, start=30)}
    path = f"/v1/plps/{cast.plp_a}/members/import?dry_run=true"
    return await client.post(path, json=body, headers=cast.auth(who))


async def send_urgent(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": "Cambriolage"}}
    return await client.post("/v1/alerts", json=body, headers=cast.auth(who))


async def send_non_urgent(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {
        "urgency": "non_urgent",
        "category": "prevention_advice",
        "plp_ids": [cast.plp_a],
        "texts": {"fr": "Conseil"},
    }
    return await client.post("/v1/alerts", json=body, headers=cast.auth(who))


async def read_alert(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/alerts/{await _alert_to_a(client, cast)}", headers=cast.auth(who))


async def list_deliveries(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/alerts/{await _alert_to_a(client, cast)}/deliveries", headers=cast.auth(who))


async def read_audience(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/alerts/{await _alert_to_a(client, cast)}/audience", headers=cast.auth(who))


async def cancel_alert(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.post(f"/v1/alerts/{await _alert_to_a(client, cast)}/cancel", headers=cast.auth(who))


async def approve_relay(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    alert_id = await _alert_to_a(client, cast, urgency="non_urgent")
    return await client.post(f"/v1/alerts/{alert_id}/relays/{cast.plp_a}/approve", json={}, headers=cast.auth(who))


async def decline_relay(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    alert_id = await _alert_to_a(client, cast, urgency="non_urgent")
    body = {"reason": "already relayed by the commune"}
    return await client.post(f"/v1/alerts/{alert_id}/relays/{cast.plp_a}/decline", json=body, headers=cast.auth(who))


async def create_actor(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {"name": "New officer", "role": "police", "police_zone": "5340"}
    return await client.post("/v1/actors", json=body, headers=cast.auth(who))


async def issue_token(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.post(f"/v1/actors/{cast.ids['police_a']}/tokens", headers=cast.auth(who))


async def read_service_status(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get("/v1/status", headers=cast.auth(who))


#: action -> expected status for admin, police_a, police_b, coordinator_a, coordinator_b
TABLE: dict[Action, tuple[int, int, int, int, int]] = {
    create_plp: (201, 403, 403, 403, 403),
    read_plp: (200, 200, 403, 200, 403),
    change_charter: (200, 403, 403, 200, 403),
    add_member: (201, 403, 403, 201, 403),
    list_members: (200, 403, 403, 200, 403),
    read_member: (200, 403, 403, 200, 403),
    delete_member: (204, 403, 403, 204, 403),
    import_members: (200, 403, 403, 200, 403),
    preview_import: (200, 403, 403, 200, 403),
    send_urgent: (202, 202, 403, 403, 403),
    send_non_urgent: (202, 202, 403, 202, 403),
    read_alert: (200, 200, 403, 200, 403),
    list_deliveries: (200, 200, 403, 200, 403),
    read_audience: (200, 200, 403, 200, 403),  # the police get counts only (tests/api/test_follow.py)
    cancel_alert: (200, 200, 403, 403, 403),
    approve_relay: (200, 403, 403, 200, 403),
    decline_relay: (200, 403, 403, 200, 403),
    create_actor: (201, 403, 403, 403, 403),
    issue_token: (201, 403, 403, 403, 403),
    read_service_status: (200, 403, 403, 403, 403),
}

CASES: list[Any] = [
    pytest.param(action, who, expected[i], id=f"{action.__name__}-{who}")
    for action, expected in TABLE.items()
    for i, who in enumerate(ROLES)
]


@pytest.mark.parametrize(("action", "who", "expected"), CASES)
async def test_role_may_or_may_not(client: TestClient, cast: Cast, action: Action, who: str, expected: int) -> None:
    """Each role gets exactly the status of the table; every denial is a 403 problem with a reason."""
    response = await action(client, cast, who)
    body = await response.json(content_type=None)
    assert response.status == expected, body
    if expected == 403:
        assert response.content_type == "application/problem+json"
        assert body["title"] == "Forbidden" and len(body["detail"]) > 10


async def test_police_see_only_the_plps_and_alerts_of_their_zone(client: TestClient, cast: Cast) -> None:
    """Listing PLPs and alerts is filtered to the caller's zone or PLPs, not refused."""
    await _alert_to_a(client, cast)
    for who, plps, alerts in (("police_a", [cast.plp_a], 1), ("police_b", [cast.plp_b], 0), ("admin", None, 1)):
        listed = await (await client.get("/v1/plps", headers=cast.auth(who))).json()
        if plps is not None:
            assert [p["id"] for p in listed["items"]] == plps
        listed_alerts = await (await client.get("/v1/alerts", headers=cast.auth(who))).json()
        assert len(listed_alerts["items"]) == alerts


async def test_a_request_without_a_valid_token_is_refused(client: TestClient, cast: Cast) -> None:
    """No token or an unknown token gives 401 with a WWW-Authenticate challenge."""
    for headers in ({}, {"Authorization": "Bearer plp_not-a-token"}, {"Authorization": "Basic abc"}):
        response = await client.get("/v1/plps", headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_police_cannot_send_to_a_mix_of_their_zone_and_another(client: TestClient, cast: Cast) -> None:
    """A target outside the officer's zone refuses the whole alert, naming the PLP."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [cast.plp_a, cast.plp_b], "texts": {"fr": "x"}}
    response = await client.post("/v1/alerts", json=body, headers=cast.auth("police_a"))
    assert response.status == 403
    assert cast.plp_b in (await response.json())["detail"]
