"""Notifications through the API: each actor reads their own, newest first; and an alert's follow-ups
(escalation, the acknowledgement check) as the alert's author and its PLP's coordinators see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from dispatcher.pipeline import clock, jobs
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.follow_ups import make_due, run_jobs
from tests.support import get_json, member_rows, notify, post_json

URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue X, voiture grise 1-ABC-123"}}
FOLLOWED_UP = {
    "urgent": {
        "channels": ["sms", "email"],
        "ttl_seconds": 3600,
        "escalate_after_seconds": 300,
        "escalate_to": "voice",
        "ack_check_after_seconds": 600,
        "ack_threshold": 0.5,
    },
    # no quiet hours: what these tests send must not depend on the hour they run
    "non_urgent": {"channels": ["email"], "mode": "first_that_works", "ttl_seconds": 86400},
    "police_feedback": {"channels": ["email"], "mode": "first_that_works", "ttl_seconds": 86400},
}


async def followed_up_plp(client: TestClient, cast: Cast, members: int = 3) -> None:
    """PLP A escalates to a call after 5 minutes and wants half its members to acknowledge within 10."""
    response = await client.put(f"/v1/plps/{cast.plp_a}/charter", json=FOLLOWED_UP, headers=cast.auth("coordinator_a"))
    assert response.status == 200, await response.text()
    report = await post_json(
        client,
        f"/v1/plps/{cast.plp_a}/members/import",
        {"members": member_rows(members)},
        headers=cast.auth("admin"),
        expect=200,
    )
    assert not report["rejected"], report["rejected"]


async def unacknowledged_alert(client: TestClient, cast: Cast, runtime: Runtime, *, checked_at: datetime) -> str:
    """An urgent alert to PLP A, sent, acknowledged by nobody, and checked by the clock at ``checked_at``."""
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    await run_jobs(runtime)
    make_due(runtime, jobs.CHECK_ACKNOWLEDGEMENTS)
    clock.tick(runtime)
    assert await run_jobs(runtime, now=checked_at) == ["check_acknowledgements"]
    return str(alert["id"])


async def notifications(client: TestClient, cast: Cast, who: str, query: str = "") -> list[dict[str, Any]]:
    found = await get_json(client, f"/v1/notifications{query}", headers=cast.auth(who))
    return list(found["items"])


async def test_the_author_and_the_plps_coordinators_read_the_notification(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Nobody acknowledged: the author and A's coordinator each read the notice; B's coordinator and the
    admin have nothing."""
    await followed_up_plp(client, cast)
    checked_at = datetime.now(UTC)
    alert_id = await unacknowledged_alert(client, cast, runtime, checked_at=checked_at)

    [seen] = await notifications(client, cast, "police_a")
    assert {k: seen[k] for k in ("kind", "alert_id", "plp_id", "planned", "acknowledged", "threshold", "language")} == {
        "kind": "few_acknowledgements",
        "alert_id": alert_id,
        "plp_id": cast.plp_a,
        "planned": 3,
        "acknowledged": 0,
        "threshold": 0.5,
        "language": "fr",
    }
    assert datetime.fromisoformat(seen["created_at"]) == checked_at
    assert "0 des 3 membres" in seen["text"] and seen["subject"].startswith("[PLP A]")
    assert await notifications(client, cast, "coordinator_a") == [seen]
    assert await notifications(client, cast, "coordinator_b") == []
    assert await notifications(client, cast, "admin") == []


async def test_notifications_come_newest_first_a_page_at_a_time(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """``limit`` caps the page; ``before`` (a Unix time) reads on from the last one seen."""
    await followed_up_plp(client, cast)
    first_at = datetime.now(UTC)
    first = await unacknowledged_alert(client, cast, runtime, checked_at=first_at)
    second = await unacknowledged_alert(client, cast, runtime, checked_at=first_at + timedelta(minutes=1))

    assert [n["alert_id"] for n in await notifications(client, cast, "coordinator_a")] == [second, first]
    [newest] = await notifications(client, cast, "coordinator_a", "?limit=1")
    assert newest["alert_id"] == second
    before = datetime.fromisoformat(newest["created_at"]).timestamp()
    older = await notifications(client, cast, "coordinator_a", f"?limit=1&before={before}")
    assert [n["alert_id"] for n in older] == [first]


async def test_a_bad_limit_or_no_token_is_refused(client: TestClient, cast: Cast) -> None:
    """``limit`` is 1 to 500; the list needs a token, like every operation but the public ones."""
    for query in ("?limit=0", "?limit=501", "?limit=many", "?colour=blue"):
        problem = await get_json(client, f"/v1/notifications{query}", headers=cast.auth("police_a"), expect=422)
        assert problem["errors"][0]["field"].startswith("query.")
    response = await client.get("/v1/notifications")
    assert response.status == 401


async def test_the_alert_counts_the_members_reached_by_escalation(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """After the escalation, the alert shows the calls it added, and their minutes in the cost."""
    await followed_up_plp(client, cast, members=2)
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    await run_jobs(runtime)
    before = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    make_due(runtime, jobs.ESCALATE)
    clock.tick(runtime)
    assert await run_jobs(runtime) == ["escalate"]
    clock.tick(runtime)
    assert await run_jobs(runtime) == ["send_batch"]

    after = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    assert (before["counts"]["escalated"], after["counts"]["escalated"]) == (0, 2)
    assert after["counts"]["by_channel"]["voice"]["outbox"] == 2
    assert after["cost"]["voice_minutes"] > before["cost"]["voice_minutes"] == 0
    assert after["held_until"] is None


async def test_each_actor_marks_their_notifications_read_and_unread(client: TestClient, cast: Cast) -> None:
    """A notification is unread until its reader marks it; marking is theirs alone, and can be undone."""
    notification_id = await notify(client, cast, "police_a")
    await notify(client, cast, "coordinator_a")
    path = f"/v1/notifications/{notification_id}/read"
    assert [n["read"] for n in await notifications(client, cast, "police_a")] == [False]
    assert (await client.put(path, json={"read": True}, headers=cast.auth("police_a"))).status == 204
    assert [n["read"] for n in await notifications(client, cast, "police_a")] == [True]
    assert [n["read"] for n in await notifications(client, cast, "coordinator_a")] == [False]
    assert (await client.put(path, json={"read": False}, headers=cast.auth("police_a"))).status == 204
    assert [n["read"] for n in await notifications(client, cast, "police_a")] == [False]


async def test_a_notification_not_in_ones_feed_is_not_found(client: TestClient, cast: Cast) -> None:
    """Marking another actor's notification (or an unknown one) is a 404: nobody learns of others' notices."""
    notification_id = await notify(client, cast, "police_a")
    for nid in (notification_id, "0123456789abcdef"):
        response = await client.put(f"/v1/notifications/{nid}/read", json={"read": True}, headers=cast.auth("police_b"))
        assert response.status == 404
