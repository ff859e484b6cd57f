"""Alerts through the API: idempotent creation, the coordinator's relay, following and cancelling."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from dispatcher.core.models import AlertStatus
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import get_json, member_rows, post_json, run_queued

URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue X, voiture grise 1-ABC-123"}}
ADVICE = {
    "urgency": "non_urgent",
    "category": "prevention_advice",
    "texts": {"fr": "Fermez vos fenêtres", "nl": "Sluit uw ramen"},
}


async def _import(client: TestClient, cast: Cast, plp_id: str, rows: list[dict[str, Any]]) -> None:
    report = await post_json(
        client, f"/v1/plps/{plp_id}/members/import", {"members": rows}, headers=cast.auth("admin"), expect=200
    )
    assert not report["rejected"], report["rejected"]


async def test_the_same_idempotency_key_and_body_return_the_same_alert(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """A double click sends once: the second POST replays the first alert and enqueues no second fan-out."""
    headers = {**cast.auth("police_a"), "Idempotency-Key": "click-1"}
    body = {**URGENT, "plp_ids": [cast.plp_a]}
    first = await post_json(client, "/v1/alerts", body, headers=headers, expect=202)
    response = await client.post("/v1/alerts", json=body, headers=headers)
    assert response.status == 202
    assert response.headers["Idempotent-Replayed"] == "true"
    assert (await response.json())["id"] == first["id"]
    assert runtime.urgent_queue.count == 1
    listed = await get_json(client, "/v1/alerts", headers=cast.auth("police_a"))
    assert [a["id"] for a in listed["items"]] == [first["id"]]


async def test_the_same_idempotency_key_with_another_body_is_refused(client: TestClient, cast: Cast) -> None:
    """Reusing a key for a different alert is a 422 naming the header, and sends nothing new."""
    headers = {**cast.auth("police_a"), "Idempotency-Key": "click-2"}
    await post_json(client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=headers, expect=202)
    other = {**URGENT, "plp_ids": [cast.plp_a], "texts": {"fr": "Autre chose"}}
    problem = await post_json(client, "/v1/alerts", other, headers=headers, expect=422)
    assert problem["errors"][0]["field"] == "header.Idempotency-Key"


async def test_idempotency_keys_belong_to_their_author(client: TestClient, cast: Cast) -> None:
    """Two officers using the same key get two alerts: a key is scoped to the token's actor."""
    body = {**URGENT, "plp_ids": [cast.plp_a]}
    first = await post_json(
        client, "/v1/alerts", body, headers={**cast.auth("police_a"), "Idempotency-Key": "k"}, expect=202
    )
    second = await post_json(
        client, "/v1/alerts", body, headers={**cast.auth("admin"), "Idempotency-Key": "k"}, expect=202
    )
    assert first["id"] != second["id"]


async def test_concurrent_posts_with_one_key_create_one_alert(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """Ten simultaneous POSTs with the same key create a single alert."""
    headers = {**cast.auth("police_a"), "Idempotency-Key": "storm"}
    body = {**URGENT, "plp_ids": [cast.plp_a]}
    responses = await asyncio.gather(*(client.post("/v1/alerts", json=body, headers=headers) for _ in range(10)))
    ids = {(await r.json())["id"] for r in responses if r.status == 202}
    assert len(ids) == 1
    assert {r.status for r in responses} <= {202, 409}
    assert runtime.urgent_queue.count == 1


async def test_police_advice_waits_for_the_coordinator_and_is_relayed_as_edited(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Under a coordinator-relay charter, police advice waits; the approval sends the edited text."""
    await _import(client, cast, cast.plp_a, member_rows(3, language="nl"))
    alert = await post_json(
        client, "/v1/alerts", {**ADVICE, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    assert alert["status"] == "awaiting_relay"
    assert alert["relays"][0]["state"] == "awaiting"
    assert runtime.general_queue.count == 0
    edited = {"texts": {"nl": "Sluit uw ramen en deuren", "de": "Schließen Sie Fenster und Türen"}}
    approved = await post_json(
        client,
        f"/v1/alerts/{alert['id']}/relays/{cast.plp_a}/approve",
        edited,
        headers=cast.auth("coordinator_a"),
        expect=200,
    )
    relay = approved["relays"][0]
    assert (relay["state"], relay["decided_by"]) == ("approved", cast.ids["coordinator_a"])
    assert approved["status"] == "accepted"
    await run_queued(runtime)
    seen = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    assert seen["status"] == "completed"
    assert seen["counts"]["by_status"]["outbox"] == 3  # e-mail first, first that works (no credentials here)
    outbox = runtime.settings.outbox_file.read_text(encoding="utf-8")
    assert outbox.count("Sluit uw ramen en deuren") == 3


async def test_a_declined_relay_is_shown_to_the_police_with_its_reason(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Declining records who, when and why; with every PLP declined the alert is declined and nothing is sent."""
    alert = await post_json(
        client, "/v1/alerts", {**ADVICE, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    await post_json(
        client,
        f"/v1/alerts/{alert['id']}/relays/{cast.plp_a}/decline",
        {"reason": "Déjà communiqué à la réunion de lundi"},
        headers=cast.auth("coordinator_a"),
        expect=200,
    )
    seen = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    relay = seen["relays"][0]
    assert seen["status"] == "declined"
    assert relay["state"] == "declined" and relay["reason"] == "Déjà communiqué à la réunion de lundi"
    assert relay["decided_at"] is not None
    assert runtime.general_queue.count == 0


async def test_a_relay_is_decided_once(client: TestClient, cast: Cast) -> None:
    """Approving after a decision (or twice) is a 409 conflict."""
    alert = await post_json(
        client, "/v1/alerts", {**ADVICE, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    path = f"/v1/alerts/{alert['id']}/relays/{cast.plp_a}"
    await post_json(client, f"{path}/approve", {}, headers=cast.auth("coordinator_a"), expect=200)
    await post_json(client, f"{path}/approve", {}, headers=cast.auth("coordinator_a"), expect=409)
    await post_json(client, f"{path}/decline", {"reason": "x"}, headers=cast.auth("coordinator_a"), expect=409)


async def test_urgent_alerts_and_auto_relay_charters_never_wait(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Urgent alerts, and advice to a PLP whose charter relays automatically, are accepted at once."""
    urgent = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    assert urgent["status"] == "accepted"
    response = await client.put(
        f"/v1/plps/{cast.plp_a}/charter", json={"relay": "auto"}, headers=cast.auth("coordinator_a")
    )
    assert response.status == 200
    advice = await post_json(
        client, "/v1/alerts", {**ADVICE, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    assert advice["status"] == "accepted" and advice["relays"][0]["state"] == "auto"


async def test_coordinators_relay_their_own_advice_at_once(client: TestClient, cast: Cast) -> None:
    """A coordinator's own non-urgent message needs no approval."""
    advice = await post_json(
        client, "/v1/alerts", {**ADVICE, "plp_ids": [cast.plp_a]}, headers=cast.auth("coordinator_a"), expect=202
    )
    assert advice["status"] == "accepted"


async def test_deliveries_are_listed_by_page_and_filtered(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """Pages follow next_cursor without repeats; filters by status and channel select exactly."""
    await _import(client, cast, cast.plp_a, member_rows(5))
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    await run_queued(runtime)
    base = f"/v1/alerts/{alert['id']}/deliveries"
    seen, cursor = [], None
    while True:
        page = await get_json(
            client, base + f"?limit=4{f'&cursor={cursor}' if cursor else ''}", headers=cast.auth("police_a")
        )
        seen += [d["id"] for d in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 15  # sms, e-mail, voice for five members
    sms = await get_json(client, base + "?channel=sms", headers=cast.auth("police_a"))
    assert len(sms["items"]) == 5 and {d["channel"] for d in sms["items"]} == {"sms"}
    kept = await get_json(client, base + "?status=outbox&channel=voice", headers=cast.auth("police_a"))
    assert len(kept["items"]) == 5
    assert all(d["status_times"].keys() >= {"queued", "sending", "outbox"} for d in kept["items"])
    failed = await get_json(client, base + "?status=failed", headers=cast.auth("police_a"))
    assert failed["items"] == []


async def test_cancelling_stops_every_send_that_has_not_started(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """After a cancel, the queued deliveries end cancelled and nothing reaches the outbox; a second cancel is 409."""
    await _import(client, cast, cast.plp_a, member_rows(4))
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    cancelled = await post_json(
        client, f"/v1/alerts/{alert['id']}/cancel", None, headers=cast.auth("police_a"), expect=200
    )
    assert cancelled["status"] == AlertStatus.CANCELLED
    await run_queued(runtime)
    seen = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    assert seen["counts"]["by_status"]["cancelled"] == seen["counts"]["total"] == 12
    assert not runtime.settings.outbox_file.exists()
    await post_json(client, f"/v1/alerts/{alert['id']}/cancel", None, headers=cast.auth("police_a"), expect=409)


async def test_an_alert_names_unknown_target_plps(client: TestClient, cast: Cast) -> None:
    """A target PLP that does not exist is a 422 naming its position in plp_ids."""
    problem = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a, "nope"]}, headers=cast.auth("admin"), expect=422
    )
    assert problem["errors"] == [{"field": "body.plp_ids[1]", "reason": "unknown PLP 'nope'"}]


async def test_the_time_to_live_defaults_to_the_shortest_charter(client: TestClient, cast: Cast) -> None:
    """Without ttl_seconds, an alert lives as long as the strictest target charter allows."""
    charter = {"urgent": {"channels": ["sms"], "ttl_seconds": 900}}
    await client.put(f"/v1/plps/{cast.plp_a}/charter", json=charter, headers=cast.auth("admin"))
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a, cast.plp_b]}, headers=cast.auth("admin"), expect=202
    )
    assert alert["ttl_seconds"] == 900


async def test_a_relay_left_undecided_past_the_time_to_live_expires(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Police advice nobody relayed within its TTL ends expired, and can no longer be approved."""
    body = {**ADVICE, "plp_ids": [cast.plp_a], "ttl_seconds": 60}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    runtime.sync_redis.hset(runtime.keys.alert_state(alert["id"]), "expires_at", 0)  # as if an hour had passed
    seen = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    assert (seen["status"], seen["relays"][0]["state"]) == ("expired", "expired")
    path = f"/v1/alerts/{alert['id']}/relays/{cast.plp_a}/approve"
    await post_json(client, path, {}, headers=cast.auth("coordinator_a"), expect=409)
