"""Following an alert: its audience (who was reached, who acknowledged) and its server-sent event stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from dispatcher.api.services import SERVICES
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import get_json, post_json, run_queued

URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue X, voiture grise 1-ABC-123"}}
PEOPLE = [
    {"name": "Anne Dubois", "phone": "0470 11 11 11", "email": "anne@example.org", "channels": ["sms", "email"]},
    {"name": "Piet Janssens", "email": "piet@example.org", "channels": ["email"]},
    {"name": "Lea Schmitz", "email": "lea@example.org", "channels": ["voice"]},  # no phone: unreachable
]


async def _neighbourhood(client: TestClient, cast: Cast) -> dict[str, str]:
    ids = {}
    for person in PEOPLE:
        member = await post_json(
            client, f"/v1/plps/{cast.plp_a}/members", person, headers=cast.auth("coordinator_a"), expect=201
        )
        ids[person["name"]] = member["id"]
    return ids


async def _sent(client: TestClient, cast: Cast, runtime: Runtime) -> dict[str, Any]:
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    await run_queued(runtime)
    return dict(alert)


async def _acknowledge(client: TestClient, alert_id: str, ref: str) -> None:
    assert await client.server.app[SERVICES].store.acknowledge(alert_id, ref, via=ref.split(":")[0])


async def test_coordinators_see_by_name_who_was_not_reached_or_has_not_acknowledged(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """The audience lists names and each delivery's status for the PLP's coordinators; messages only kept in the
    outbox (no credentials here) reached nobody."""
    ids = await _neighbourhood(client, cast)
    alert = await _sent(client, cast, runtime)
    await _acknowledge(client, alert["id"], f"email:{ids['Anne Dubois']}")
    found = await get_json(client, f"/v1/alerts/{alert['id']}/audience", headers=cast.auth("coordinator_a"))
    assert (found["members"], found["reached"], found["acknowledged"], found["unreachable"]) == (2, 0, 1, 1)
    assert found["names_shown"] is True
    assert [m["name"] for m in found["not_acknowledged"]] == ["Piet Janssens"]
    assert found["not_acknowledged"][0]["deliveries"] == {"email": "outbox"}
    assert "Piet Janssens" in [m["name"] for m in found["not_reached"]]
    assert [m["name"] for m in found["unreachable_members"]] == ["Lea Schmitz"]


async def test_the_police_see_counts_only(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """Members' names stay with the coordinators: the police get the same counts and empty lists."""
    await _neighbourhood(client, cast)
    alert = await _sent(client, cast, runtime)
    found = await get_json(client, f"/v1/alerts/{alert['id']}/audience", headers=cast.auth("police_a"))
    assert (found["members"], found["reached"], found["acknowledged"], found["unreachable"]) == (2, 0, 0, 1)
    assert found["names_shown"] is False
    assert found["not_acknowledged"] == found["not_reached"] == found["unreachable_members"] == []
    assert "Piet" not in json.dumps(found)


async def test_the_audience_is_refused_outside_ones_part(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """Another zone's officer and another PLP's coordinator get a 403; an unknown alert is a 404."""
    await _neighbourhood(client, cast)
    alert = await _sent(client, cast, runtime)
    for who in ("police_b", "coordinator_b"):
        await get_json(client, f"/v1/alerts/{alert['id']}/audience", headers=cast.auth(who), expect=403)
        await get_json(client, f"/v1/alerts/{alert['id']}/events", headers=cast.auth(who), expect=403)
    await get_json(client, "/v1/alerts/0123456789abcdef/events", headers=cast.auth("admin"), expect=404)
    response = await client.get(f"/v1/alerts/{alert['id']}/events")
    assert response.status == 401


async def _next_event(response: ClientResponse) -> tuple[str, dict[str, Any]]:
    """The next event of a server-sent event stream (comments skipped)."""
    name, data = "message", []
    async with asyncio.timeout(10):
        while True:
            line = (await response.content.readline()).decode()
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if not line:
                if data:
                    return name, json.loads("\n".join(data))
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


async def test_the_event_stream_sends_a_snapshot_then_each_change(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """The first snapshot carries the acknowledgement times; a new acknowledgement sends a new snapshot at once."""
    ids = await _neighbourhood(client, cast)
    alert = await _sent(client, cast, runtime)
    await _acknowledge(client, alert["id"], f"sms:{ids['Anne Dubois']}")
    response = await client.get(f"/v1/alerts/{alert['id']}/events", headers=cast.auth("police_a"))
    try:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-store"
        name, first = await _next_event(response)
        assert name == "snapshot"
        assert first["alert"]["status"] == "completed"
        assert (first["members"], first["members_acknowledged"], first["members_unreachable"]) == (2, 1, 1)
        assert len(first["acknowledgements"]) == 1 and first["acknowledgements"][0] >= 0
        await _acknowledge(client, alert["id"], f"email:{ids['Piet Janssens']}")
        name, second = await _next_event(response)
        assert (name, second["members_acknowledged"], second["acknowledgements"]) == ("snapshot", 2, None)
        assert second["alert"]["counts"]["acknowledged"] == 2
    finally:
        response.close()


async def test_the_stream_follows_an_alert_through_its_statuses(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Opened before the alert is sent, the stream shows it accepted, then sending, then completed."""
    await _neighbourhood(client, cast)
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    response = await client.get(f"/v1/alerts/{alert['id']}/events", headers=cast.auth("coordinator_a"))
    try:
        _, first = await _next_event(response)
        assert first["alert"]["status"] == "accepted"
        await run_queued(runtime)
        seen = [first["alert"]["status"]]
        while seen[-1] != "completed":
            seen.append((await _next_event(response))[1]["alert"]["status"])
        assert seen[0] == "accepted" and seen[-1] == "completed"
    finally:
        response.close()


async def test_the_stream_of_an_alert_that_is_over_ends_after_one_snapshot(client: TestClient, cast: Cast) -> None:
    """A declined alert will not change any more: its stream sends one snapshot and ends (nothing hangs)."""
    advice = {"urgency": "non_urgent", "category": "prevention_advice", "texts": {"fr": "Fermez vos fenêtres"}}
    alert = await post_json(
        client, "/v1/alerts", {**advice, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    await post_json(
        client,
        f"/v1/alerts/{alert['id']}/relays/{cast.plp_a}/decline",
        {"reason": "déjà connu"},
        headers=cast.auth("coordinator_a"),
        expect=200,
    )
    response = await client.get(f"/v1/alerts/{alert['id']}/events", headers=cast.auth("police_a"))
    async with asyncio.timeout(10):
        body = await response.text()
    assert body.count("event: snapshot") == 1
    assert '"status":"declined"' in body
