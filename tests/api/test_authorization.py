"""Who may do what: the role × action table of the dispatch service.

The cast has two police zones (5340 with PLP a, 5341 with PLP b), an admin, a police
officer per zone and a coordinator per PLP. Every action below is tried by every role
against PLP a; each denial is a 403 that says why.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from dispatcher.api.services import SERVICES
from tests.conftest import Cast
from tests.support import member_rows, notify, pending_join_request, post_json

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


async def send_profile_link(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    member_id = await _member_of_a(client, cast)
    return await client.post(f"/v1/plps/{cast.plp_a}/members/{member_id}/profile-link", headers=cast.auth(who))


async def read_join_page(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/plps/{cast.plp_a}/join-page", headers=cast.auth(who))


async def set_join_page(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {"enabled": False, "privacy_notice": {"fr": "Vos données restent au PLP."}}
    return await client.put(f"/v1/plps/{cast.plp_a}/join-page", json=body, headers=cast.auth(who))


async def list_join_requests(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/plps/{cast.plp_a}/join-requests", headers=cast.auth(who))


async def approve_join_request(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    request_id = await pending_join_request(client.server.app[SERVICES].store, cast.plp_a)
    return await client.post(f"/v1/plps/{cast.plp_a}/join-requests/{request_id}/approve", headers=cast.auth(who))


async def decline_join_request(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    request_id = await pending_join_request(client.server.app[SERVICES].store, cast.plp_a)
    path = f"/v1/plps/{cast.plp_a}/join-requests/{request_id}/decline"
    return await client.post(path, json={"reason": "outside the area"}, headers=cast.auth(who))


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


async def read_alert_as_cap(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/alerts/{await _alert_to_a(client, cast)}/cap", headers=cast.auth(who))


def _cap(plp: str, urgency: str) -> bytes:
    info = (
        f"<info><category>Security</category><event>Cambriolage</event><urgency>{urgency}</urgency>"
        "<severity>Moderate</severity><certainty>Observed</certainty><description>Cambriolage</description>"
        f"<area><areaDesc>A</areaDesc><geocode><valueName>PLP</valueName><value>{plp}</value></geocode></area></info>"
    )
    return (
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>1</identifier><sender>zp@example.be</sender>'
        "<sent>2026-12-04T10:00:00+01:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>"
        f"{info}</alert>"
    ).encode()


async def send_urgent_cap(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    headers = {**cast.auth(who), "Content-Type": "application/cap+xml"}
    return await client.post("/v1/alerts/cap", data=_cap(cast.plp_a, "Immediate"), headers=headers)


async def send_non_urgent_cap(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    headers = {**cast.auth(who), "Content-Type": "application/cap+xml"}
    return await client.post("/v1/alerts/cap", data=_cap(cast.plp_a, "Future"), headers=headers)


async def cancel_alert_by_cap(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    alert_id = await _alert_to_a(client, cast)
    reference = f"plp-dispatch@127.0.0.1,{alert_id},2026-12-04T10:00:00-00:00"
    data = _cap(cast.plp_a, "Immediate").replace(b"<msgType>Alert</msgType>", b"<msgType>Cancel</msgType>")
    data = data.replace(b"<info>", f"<references>{reference}</references><info>".encode())
    headers = {**cast.auth(who), "Content-Type": "application/cap+xml"}
    return await client.post("/v1/alerts/cap", data=data, headers=headers)


async def list_deliveries(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/alerts/{await _alert_to_a(client, cast)}/deliveries", headers=cast.auth(who))


async def read_audience(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/alerts/{await _alert_to_a(client, cast)}/audience", headers=cast.auth(who))


async def read_reach(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/alerts/{await _alert_to_a(client, cast)}/reach", headers=cast.auth(who))


async def read_drill_reach(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": "Exercice"}}
    drill = await post_json(client, "/v1/alerts", {**body, "exercise": True}, headers=cast.auth("police_a"), expect=202)
    return await client.get(f"/v1/alerts/{drill['id']}/reach", headers=cast.auth(who))


async def cancel_alert(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.post(f"/v1/alerts/{await _alert_to_a(client, cast)}/cancel", headers=cast.auth(who))


async def follow_up_alert(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {"kind": "all_clear", "texts": {"fr": "Le suspect a été arrêté, merci."}}
    return await client.post(
        f"/v1/alerts/{await _alert_to_a(client, cast)}/follow-ups", json=body, headers=cast.auth(who)
    )


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


async def issue_own_token(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.post(f"/v1/actors/{cast.ids[who]}/tokens", headers=cast.auth(who))


async def revoke_police_a_token(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    issued = await post_json(
        client, f"/v1/actors/{cast.ids['police_a']}/tokens", None, headers=cast.auth("admin"), expect=201
    )
    return await client.delete(f"/v1/tokens/{issued['token_id']}", headers=cast.auth(who))


async def list_actors(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get("/v1/actors", headers=cast.auth(who))


async def change_actor_role(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    body = {"role": "coordinator", "plp_ids": [cast.plp_a]}
    return await client.patch(f"/v1/actors/{cast.ids['police_b']}", json=body, headers=cast.auth(who))


async def remove_actor(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    made = await post_json(
        client, "/v1/actors", {"name": "Temp", "role": "admin"}, headers=cast.auth("admin"), expect=201
    )
    return await client.delete(f"/v1/actors/{made['actor']['id']}", headers=cast.auth(who))


async def read_audit_log(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get("/v1/audit", headers=cast.auth(who))


async def read_audit_of_plp_a(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/audit?plp_id={cast.plp_a}", headers=cast.auth(who))


async def mark_own_notification_read(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    notification_id = await notify(client, cast, who)
    return await client.put(f"/v1/notifications/{notification_id}/read", json={"read": True}, headers=cast.auth(who))


async def mark_police_a_notification_read(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    notification_id = await notify(client, cast, "police_a")
    return await client.put(f"/v1/notifications/{notification_id}/read", json={"read": True}, headers=cast.auth(who))


async def preview_charter(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.post(f"/v1/plps/{cast.plp_a}/charter/preview", json={"relay": "auto"}, headers=cast.auth(who))


async def read_member_health(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/plps/{cast.plp_a}/member-health", headers=cast.auth(who))


async def export_member_health(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/plps/{cast.plp_a}/member-health?format=csv", headers=cast.auth(who))


async def read_service_status(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get("/v1/status", headers=cast.auth(who))


DRILL = {
    "urgency": "non_urgent",
    "texts": {"fr": "Exercice"},
    "rule": {"frequency": "monthly", "weekday": "monday", "week": 1, "at": "18:00"},
}


async def schedule_drill(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.post(f"/v1/plps/{cast.plp_a}/drills", json=DRILL, headers=cast.auth(who))


async def list_drills(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.get(f"/v1/plps/{cast.plp_a}/drills", headers=cast.auth(who))


async def delete_drill(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    made = await post_json(client, f"/v1/plps/{cast.plp_a}/drills", DRILL, headers=cast.auth("admin"), expect=201)
    return await client.delete(f"/v1/plps/{cast.plp_a}/drills/{made['id']}", headers=cast.auth(who))


async def ask_sign_in_link(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    return await client.post("/v1/sign-in", json={"email": f"{who}@example.org"}, headers=cast.auth(who))


async def sign_out_everywhere_with_a_token(client: TestClient, cast: Cast, who: str) -> ClientResponse:
    """Sessions are the console's: a bearer token has none to end (tests/api/test_sessions.py signs in)."""
    return await client.delete("/v1/session/everywhere", headers=cast.auth(who))


#: action -> expected status for admin, police_a, police_b, coordinator_a, coordinator_b
TABLE: dict[Action, tuple[int, int, int, int, int]] = {
    create_plp: (201, 403, 403, 403, 403),
    read_plp: (200, 200, 403, 200, 403),
    change_charter: (200, 403, 403, 200, 403),
    add_member: (201, 403, 403, 201, 403),
    list_members: (200, 403, 403, 200, 403),
    read_member: (200, 403, 403, 200, 403),
    delete_member: (204, 403, 403, 204, 403),
    send_profile_link: (202, 403, 403, 202, 403),
    read_join_page: (200, 403, 403, 200, 403),
    set_join_page: (200, 403, 403, 200, 403),
    list_join_requests: (200, 403, 403, 200, 403),
    approve_join_request: (200, 403, 403, 200, 403),
    decline_join_request: (200, 403, 403, 200, 403),
    import_members: (200, 403, 403, 200, 403),
    preview_import: (200, 403, 403, 200, 403),
    send_urgent: (202, 202, 403, 403, 403),
    send_non_urgent: (202, 202, 403, 202, 403),
    read_alert: (200, 200, 403, 200, 403),
    read_alert_as_cap: (200, 200, 403, 200, 403),
    send_urgent_cap: (202, 202, 403, 403, 403),
    send_non_urgent_cap: (202, 202, 403, 202, 403),
    list_deliveries: (200, 200, 403, 200, 403),
    read_audience: (200, 200, 403, 200, 403),  # the police get counts only (tests/api/test_follow.py)
    read_reach: (200, 200, 403, 200, 403),  # the police get counts only (tests/api/test_drills.py)
    read_drill_reach: (200, 200, 403, 200, 403),
    cancel_alert: (200, 200, 403, 403, 403),
    cancel_alert_by_cap: (200, 200, 403, 403, 403),
    follow_up_alert: (202, 202, 403, 403, 403),
    approve_relay: (200, 403, 403, 200, 403),
    decline_relay: (200, 403, 403, 200, 403),
    create_actor: (201, 403, 403, 403, 403),
    issue_token: (201, 201, 403, 403, 403),  # to police_a: an admin, or police_a themselves
    issue_own_token: (201, 201, 201, 201, 201),
    revoke_police_a_token: (204, 204, 403, 403, 403),
    list_actors: (200, 403, 403, 403, 403),
    change_actor_role: (200, 403, 403, 403, 403),
    remove_actor: (204, 403, 403, 403, 403),
    read_audit_log: (200, 200, 200, 200, 200),  # each their part (tests/api/test_audit.py)
    read_audit_of_plp_a: (200, 200, 403, 200, 403),
    mark_own_notification_read: (204, 204, 204, 204, 204),
    mark_police_a_notification_read: (404, 204, 404, 404, 404),  # another's notification: not found
    preview_charter: (200, 403, 403, 200, 403),
    read_member_health: (200, 403, 403, 200, 403),
    export_member_health: (200, 403, 403, 200, 403),
    read_service_status: (200, 403, 403, 403, 403),
    schedule_drill: (201, 201, 403, 201, 403),  # urgent drills: not coordinators (tests/api/test_drill_schedules.py)
    list_drills: (200, 200, 403, 200, 403),
    delete_drill: (204, 204, 403, 204, 403),
    ask_sign_in_link: (202, 202, 202, 202, 202),
    sign_out_everywhere_with_a_token: (400, 400, 400, 400, 400),
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
    text = await response.text()
    body = json.loads(text) if response.content_type.endswith("json") else text  # a CAP document is XML
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
