"""Authorization comes before validation, on every route of the route table.

An actor the service refuses (403, or 404 for what is not theirs to see) gets the same answer
whatever the body or query they send: a 422 would tell them what a valid request looks like,
and that the resource is there to be changed. Every non-public operation that reads a body or a
query is tried by each actor but the admin, with a valid input and with an invalid one, against
PLP a (an alert to it, a member of it, the officer of its zone).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from dispatcher.api import app as _app  # noqa: F401  (registers every operation)
from dispatcher.api.routing import Api, Call, Operation, Reply
from dispatcher.api.services import SERVICES, api
from tests.conftest import Cast
from tests.support import member_rows, notify, pending_join_request, post_json

ACTORS = ("police_a", "police_b", "coordinator_a", "coordinator_b")
NON_URGENT = {
    "urgency": "non_urgent",
    "category": "prevention_advice",
    "plp_ids": ["{plp_a}"],
    "texts": {"fr": "Fermez vos fenêtres"},
}

#: operation -> a valid body (None: the operation takes none) and a valid query, for PLP a.
TRIANGLE = {"type": "Polygon", "coordinates": [[[4.35, 50.84], [4.36, 50.84], [4.36, 50.85], [4.35, 50.84]]]}
FEATURE = {"type": "Feature", "properties": {"name": "North"}, "geometry": TRIANGLE}
VALID: dict[str, tuple[Any, dict[str, str]]] = {
    "create_actor": ({"name": "New officer", "role": "police", "police_zone": "5340"}, {}),
    "issue_token": ({"ttl_days": 30}, {}),
    "list_tokens": (None, {}),
    "create_alert": (NON_URGENT, {}),
    "preview_alert": (NON_URGENT, {}),
    "list_alerts": (None, {}),
    "list_deliveries": (None, {}),
    "approve_relay": ({"texts": {"nl": "Sluit uw ramen"}}, {}),
    "decline_relay": ({"reason": "already relayed by the commune"}, {}),
    "read_audit": (None, {}),
    "alert_feedback": (None, {}),
    "plp_feedback": (None, {}),
    "create_member": (member_rows(1, start=50)[0], {}),
    "list_members": (None, {}),
    "update_member": ({"language": "nl"}, {}),
    "import_members": ({"members": member_rows(2, start=60)}, {"dry_run": "true"}),
    "list_notifications": (None, {}),
    "mark_notification": ({"read": True}, {}),
    "list_actors": (None, {}),
    "change_actor": ({"name": "Inspecteur Dubois"}, {}),
    "preview_charter": ({"relay": "auto"}, {}),
    "plp_member_health": (None, {"problem": "never_acknowledges"}),
    "create_plp": ({"name": "PLP C", "commune": "Uccle", "police_zone": "5342"}, {}),
    "list_plps": (None, {}),
    "put_charter": ({"relay": "auto"}, {}),
    "plp_evaluation": (None, {"year": str(datetime.now(UTC).year)}),
    "alert_audience": (None, {}),
    "create_sector": ({"name": "North", "geometry": TRIANGLE}, {}),
    "import_sectors": ({"type": "FeatureCollection", "features": [FEATURE]}, {}),
    "put_join_page": ({"enabled": False, "privacy_notice": {"fr": "Vos données restent au PLP."}}, {}),
    "decline_join_request": ({"reason": "outside the area"}, {}),
    "create_follow_up": ({"kind": "update", "texts": {"fr": "Le véhicule a été retrouvé"}}, {}),
    "schedule_drill": (
        {
            "urgency": "non_urgent",
            "texts": {"fr": "Exercice"},
            "rule": {"frequency": "monthly", "weekday": "monday", "week": 1, "at": "18:00"},
        },
        {},
    ),
}

#: operation -> a body that is not valid: each would be refused with a 422 to whoever may call it.
INVALID_BODY: dict[str, Any] = {
    "create_actor": {"name": "", "role": "sheriff"},
    "issue_token": {"ttl_days": -1},
    "create_alert": {**NON_URGENT, "texts": {}, "urgency": "soon"},
    "preview_alert": {**NON_URGENT, "texts": {}, "ttl_seconds": 1},
    "approve_relay": {"texts": {"xx": ""}},
    "decline_relay": {"reason": ""},
    "create_member": {"name": "No contact", "channels": ["pigeon"]},
    "update_member": {"phone": 12, "unknown": True},
    "import_members": {"members": "not a list"},
    "create_plp": {"name": "PLP D", "timezone": "Mars/Olympus"},
    "put_charter": {"urgent": {"channels": []}, "relay": "sometimes"},
    "preview_charter": {"urgent": {"channels": ["pigeon"]}},
    "mark_notification": {"read": "yes"},
    "change_actor": {"role": "sheriff"},
    "create_sector": {"name": "", "geometry": {"type": "Point"}},
    "import_sectors": {"type": "FeatureCollection", "features": []},
    "create_follow_up": {"kind": "maybe", "texts": {}},
    "put_join_page": {"enabled": True, "privacy_notice": {"fr": "Seulement en français"}},
    "decline_join_request": {"reason": ""},
    "schedule_drill": {"urgency": "sometimes", "texts": {}, "rule": {"frequency": "daily"}},
}

#: A query parameter no operation knows: every query model refuses unknown parameters.
INVALID_QUERY = {"no_such_parameter": "1", "limit": "0"}


def checked(op: Operation) -> bool:
    return not op.public and (op.body is not None or op.query is not None)


OPERATIONS = [op for op in api.operations if checked(op)]


async def fill(client: TestClient, cast: Cast, path: str) -> str:
    """The path with its parameters naming things of PLP a."""
    admin = cast.auth("admin")
    values: dict[str, str] = {"plp_id": cast.plp_a, "actor_id": cast.ids["police_a"]}
    if "{alert_id}" in path:
        body = {**NON_URGENT, "plp_ids": [cast.plp_a]}  # awaits the coordinator's relay (charter default)
        values["alert_id"] = (await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202))[
            "id"
        ]
    if "{member_id}" in path:
        created = await post_json(
            client, f"/v1/plps/{cast.plp_a}/members", member_rows(1)[0], headers=admin, expect=201
        )
        values["member_id"] = created["id"]
    if "{request_id}" in path:
        values["request_id"] = await pending_join_request(client.server.app[SERVICES].store, cast.plp_a)
    if "{notification_id}" in path:
        values["notification_id"] = await notify(client, cast, "police_a")
    return re.sub(r"{([a-z_]+)}", lambda m: values[m.group(1)], path)


def with_plp(body: Any, cast: Cast) -> Any:
    if isinstance(body, dict) and body.get("plp_ids") == ["{plp_a}"]:
        return {**body, "plp_ids": [cast.plp_a]}
    return body


async def call(
    client: TestClient, op: Operation, path: str, who: str, cast: Cast, *, body: Any, query: dict[str, str]
) -> ClientResponse:
    kwargs: dict[str, Any] = {"headers": cast.auth(who), "params": query}
    if body is not None:
        kwargs["json"] = with_plp(body, cast)
    return await client.request(op.method, path, **kwargs)


def test_an_operation_with_an_actor_must_say_who_may_call_it() -> None:
    """Registering an operation that is neither public nor guarded is refused, so no route can forget it."""

    async def handler(call: Call) -> Reply:
        return Reply(204)

    with pytest.raises(TypeError, match="authorize"):
        Api(title="t", version="1", description="d").operation("GET", "/v1/x", summary="s", tag="t", responses={})(
            handler
        )


def test_every_operation_with_input_has_a_valid_and_an_invalid_example() -> None:
    """The table covers the whole route table: each operation reading a body or a query is in it."""
    missing = sorted(op.operation_id for op in OPERATIONS if op.operation_id not in VALID)
    assert missing == [], f"add a valid input for {missing} to VALID"
    bodies = sorted(op.operation_id for op in OPERATIONS if op.body is not None and op.operation_id not in INVALID_BODY)
    assert bodies == [], f"add an invalid body for {bodies} to INVALID_BODY"


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.operation_id for op in OPERATIONS])
async def test_a_refused_actor_is_refused_whatever_the_input(client: TestClient, cast: Cast, op: Operation) -> None:
    """An actor refused with a valid input gets the same 403 or 404 with an invalid body or query, never a
    422; an actor allowed gets the 422 (or 400) that names what is wrong."""
    path = await fill(client, cast, op.path)
    valid_body, valid_query = VALID[op.operation_id]
    invalid_body = INVALID_BODY.get(op.operation_id, valid_body)
    invalid_query = {**valid_query, **INVALID_QUERY} if op.query is not None else valid_query
    answers = {}
    for who in ACTORS:
        invalid = await call(client, op, path, who, cast, body=invalid_body, query=invalid_query)
        valid = await call(client, op, path, who, cast, body=valid_body, query=valid_query)
        answers[who] = (valid.status, invalid.status)
        problem = await invalid.json(content_type=None)
        if valid.status in (403, 404):
            assert invalid.status == valid.status, f"{who}: {problem}"
        else:
            assert valid.status < 300 and invalid.status in (400, 422), f"{who}: {answers[who]} {problem}"
