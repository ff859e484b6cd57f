"""Follow-ups of an alert through the API: an update or an all-clear reaches exactly the members the alert
reached, each once, on a channel that reached them, in their language; an all-clear ends the alert's
escalations and pending retries; who may send one, idempotency and bad input.

The end-to-end tests run the neighbourhood of ``tests.world`` (simulators of Twilio, an SMTP server and the
Telegram Bot API on loopback); the others the two-zone cast of ``tests.conftest``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from dispatcher.core.models import ChannelName
from dispatcher.pipeline import clock, jobs
from dispatcher.pipeline.escalation import Escalation, check_acknowledgements, escalate
from dispatcher.storage.runtime import Runtime
from tests.api.test_reports import this_year
from tests.conftest import Cast
from tests.follow_ups import make_due, run_jobs, timers
from tests.simulators.twilio import Failure
from tests.support import get_json, post_json, run_queued
from tests.world import PEOPLE, SMS_FROM, World, link_in, open_world

ALL_CLEAR_TEXTS = {"fr": "Le suspect a été arrêté, merci.", "nl": "De verdachte werd opgepakt, bedankt."}
URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue X, voiture grise 1-ABC-123"}}
URGENT_PLAN = {"channels": ["sms", "email"], "ttl_seconds": 3600}
#: An urgent plan that escalates to a call after 5 minutes and checks acknowledgements after 10.
ESCALATING = {
    "urgent": {
        "channels": ["sms", "email"],
        "ttl_seconds": 3600,
        "escalate_after_seconds": 300,
        "escalate_to": "voice",
        "ack_check_after_seconds": 600,
        "ack_threshold": 0.5,
    }
}


@pytest.fixture
async def world(redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(redis_url, tmp_path) as opened:
        yield opened


async def _follow_up(
    client: TestClient,
    alert_id: str,
    headers: dict[str, str],
    *,
    kind: str = "all_clear",
    texts: dict[str, str] | None = None,
    expect: int = 202,
) -> Any:
    body = {"kind": kind, "texts": texts or ALL_CLEAR_TEXTS}
    return await post_json(client, f"/v1/alerts/{alert_id}/follow-ups", body, headers=headers, expect=expect)


async def _sent(world: World) -> dict[str, Any]:
    """An urgent alert to the neighbourhood, with every send made and every provider report in."""
    alert = await world.alert()
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    return alert


def _ledgers(world: World) -> tuple[int, int, int]:
    return len(world.twilio.ledger), len(world.smtp.messages), len(world.telegram.calls("sendMessage"))


# -- who it reaches -------------------------------------------------------------------------------


async def test_an_all_clear_reaches_exactly_the_members_the_alert_reached(world: World) -> None:
    """Not the member whose every send failed, nor one added since, nor one who opted out since; each of the
    others once, on the first channel of the plan that reached them, in their language, marked as an all-clear."""
    await world.enroll("marc", {"name": "Marc Peeters", "phone": "0470 55 55 55", "language": "fr"})
    world.twilio.failures["+32470555555"] = Failure(400, 21211, "The 'To' number is not a valid phone number.")
    world.twilio.undelivered.add("+32470444444")  # John's SMS fails after it was sent: e-mail reached him first
    alert = await _sent(world)
    reached = await world.deliveries(alert["id"])
    assert {reached[c, "marc"]["status"] for c in ("sms", "voice")} == {"failed"}
    assert reached["sms", "john"]["status"] == "failed"
    await world.enroll("nina", {"name": "Nina Maes", "email": "nina@example.org", "language": "nl"})
    status, _ = await world.twilio.incoming_sms(world.sms_webhook, "+32470111111", SMS_FROM, "STOP")
    assert status == 200  # Anne opts out

    before = _ledgers(world)
    sent = await _follow_up(world.client, alert["id"], world.auth("police"))
    assert (sent["follows"], sent["kind"], sent["urgency"]) == (alert["id"], "all_clear", "urgent")
    assert world.runtime.urgent_queue.count == 1  # its fan-out, on the urgent lane
    await run_queued(world.runtime, limit=1)
    assert world.runtime.alert_queue("5340", sent["id"]).count == 1  # its sends, in its own urgent queue
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()

    deliveries = await world.deliveries(sent["id"])
    assert set(deliveries) == {("sms", "piet"), ("email", "john"), ("email", "lea")}
    assert {d["status"] for d in deliveries.values()} <= {"sent", "delivered"}
    new_at_twilio = world.twilio.ledger[before[0] :]
    assert [(r.kind, r.to) for r in new_at_twilio] == [("sms", "+32470222222")]  # Piet's, in Dutch
    assert (new_at_twilio[0].body or "").startswith("Einde alarm (inbraak): De verdachte werd opgepakt, bedankt.")
    mails = {m.message["To"]: m.message for m in world.smtp.messages[before[1] :]}
    assert set(mails) == {"john@example.org", "lea@example.org"}
    # no text in German or English: the PLP's language, French, marked in French
    lea = mails["lea@example.org"]
    assert lea["Subject"] == "[PLP Parc] Entwarnung: Einbruch"
    assert lea.get_body(("plain",)).get_content().startswith("Fin d'alerte (cambriolage) : Le suspect a été arrêté")
    page = await world.client.get(link_in(lea, "/v1/r/").removeprefix(world.base))  # its receipt page says it too
    assert page.status == 200 and "Fin d&#39;alerte (cambriolage) : Le suspect" in await page.text()
    assert len(world.telegram.calls("sendMessage")) == before[2]  # Telegram reached Piet and John, not first

    counts = await get_json(world.client, f"/v1/alerts/{sent['id']}", headers=world.auth("police"))
    assert counts["counts"]["total"] == 3 and counts["counts"]["members_opted_out"] == 1
    original = await get_json(world.client, f"/v1/alerts/{alert['id']}", headers=world.auth("police"))
    assert original["follow_ups"] == [sent["id"]]


async def test_an_all_clear_sent_while_the_alert_is_sending_reaches_those_it_reaches_later(world: World) -> None:
    """Sent before the alert reached anybody, the all-clear waits: the clock looks again on the urgent lane, and
    once the alert has reached its members, each gets the all-clear; then it completes."""
    alert = await world.alert()
    await run_queued(world.runtime, limit=1)  # the alert's fan-out: its sends wait in the zone's queue
    sent = await _follow_up(world.client, alert["id"], world.auth("police"))
    await run_queued(world.runtime, limit=1)  # the all-clear's fan-out, first (the urgent lane's own queue)
    assert await world.deliveries(sent["id"]) == {}
    assert [spec["urgent"] for spec, _ in timers(world.runtime) if spec["args"][0] == sent["id"]] == [True]
    await run_queued(world.runtime)  # the alert's sends
    await world.twilio.callbacks_done()
    assert make_due(world.runtime, jobs.FAN_OUT) == 1
    assert clock.tick(world.runtime).timers == 1
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    assert {m for _, m in await world.deliveries(sent["id"])} == {"anne", "piet", "lea", "john"}
    seen = await get_json(world.client, f"/v1/alerts/{sent['id']}", headers=world.auth("police"))
    assert seen["status"] == "completed" and timers(world.runtime) == []


async def test_an_update_of_non_urgent_advice_goes_on_the_general_lane(world: World) -> None:
    """A follow-up keeps its alert's urgency, so its lane: an update of advice is non-urgent, queued on the general
    lane, and reaches the members the advice reached."""
    body = {"urgency": "non_urgent", "category": "prevention_advice", "plp_ids": [world.plp], "texts": {"fr": "x"}}
    advice = await world.alert(body, who="coordinator")
    await run_queued(world.runtime)
    update = await _follow_up(world.client, advice["id"], world.auth("police"), kind="update")
    assert update["urgency"] == "non_urgent"
    assert world.runtime.general_queue.count == 1 and all(q.count == 0 for q in world.runtime.urgent_queues())
    await run_queued(world.runtime)
    first = await world.deliveries(advice["id"])
    reached = {m for (_, m), d in first.items() if d["status"] in ("sent", "delivered")}
    assert {m for _, m in await world.deliveries(update["id"])} == reached


async def test_a_member_who_left_every_plp_of_the_alert_is_skipped(world: World) -> None:
    """A member who left the PLP that planned them but is still in another of the alert's PLPs gets the
    follow-up; one who left them all (and so was erased) does not."""
    headers = world.auth("admin")
    body = {"name": "PLP Gare", "commune": "Uccle", "police_zone": "5340", "charter": {"urgent": URGENT_PLAN}}
    other = (await post_json(world.client, "/v1/plps", body, headers=headers, expect=201))["id"]
    await post_json(world.client, f"/v1/plps/{other}/members", PEOPLE["lea"], headers=headers, expect=200)  # linked
    texts = {"fr": "Cambriolage rue du Parc"}
    alert = await world.alert(
        {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp, other], "texts": texts}
    )
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    for name in ("lea", "john"):
        response = await world.client.delete(
            f"/v1/plps/{world.plp}/members/{world.members[name]['id']}", headers=headers
        )
        assert response.status == 204, await response.text()
    update = await _follow_up(world.client, alert["id"], world.auth("police"), kind="update")
    await run_queued(world.runtime)
    assert {m for _, m in await world.deliveries(update["id"])} == {"anne", "piet", "lea"}


# -- what an all-clear ends -----------------------------------------------------------------------


async def _escalating_alert(world: World) -> dict[str, Any]:
    """An urgent alert under a charter that escalates, with Piet's SMS waiting for a retry (Twilio busy)."""
    response = await world.client.put(f"/v1/plps/{world.plp}/charter", json=ESCALATING, headers=world.auth("admin"))
    assert response.status == 200, await response.text()
    world.twilio.failures["+32470222222"] = Failure(503, None, "Service unavailable")
    alert = await _sent(world)
    assert (await world.deliveries(alert["id"]))["sms", "piet"]["status"] == "sending"  # its retry waits
    return alert


def _alert_timers(runtime: Runtime, alert_id: str) -> list[str]:
    return sorted(spec["job"].rsplit(".", 1)[-1] for spec, _ in timers(runtime) if spec["args"][0] == alert_id)


async def test_an_all_clear_ends_the_alerts_escalations_and_pending_retries(world: World) -> None:
    """Its timers go, escalate and the acknowledgement check do nothing for it any more, and the retry that was
    waiting ends cancelled, cause "all-clear"; Piet, whom nothing reached, gets no all-clear either."""
    alert = await _escalating_alert(world)
    assert _alert_timers(world.runtime, alert["id"]) == ["check_acknowledgements", "escalate"]

    sent = await _follow_up(world.client, alert["id"], world.auth("police"))
    assert _alert_timers(world.runtime, alert["id"]) == []
    piet = (await world.deliveries(alert["id"]))["sms", "piet"]
    assert (piet["status"], piet["cause"]) == ("cancelled", "all-clear")
    assert escalate(world.runtime, alert["id"], world.plp) == Escalation(0, 0)
    assert await check_acknowledgements(world.runtime, alert["id"], world.plp) is None
    seen = await get_json(world.client, f"/v1/alerts/{alert['id']}", headers=world.auth("police"))
    assert seen["counts"]["escalated"] == 0 and seen["status"] == "completed"

    await run_queued(world.runtime)
    assert {m for _, m in await world.deliveries(sent["id"])} == {"anne", "lea", "john"}
    assert ("sms", "piet") not in await world.deliveries(sent["id"])


async def test_a_retry_due_after_the_all_clear_is_cancelled_when_claimed(world: World) -> None:
    """A retry the all-clear did not see waiting (it failed as the all-clear was accepted) is cancelled by the
    claim when it comes due, not sent."""
    alert = await _escalating_alert(world)
    runtime, ref = world.runtime, f"sms:{world.members['piet']['id']}"
    runtime.sync_redis.hset(runtime.keys.delivery(alert["id"], ref), "phase", "in_flight")  # as if being sent
    await _follow_up(world.client, alert["id"], world.auth("police"))
    assert (await world.deliveries(alert["id"]))["sms", "piet"]["status"] == "sending"  # left to its sender
    await run_queued(runtime)  # the all-clear's own sends
    runtime.sync_redis.zadd(runtime.keys.leases(), {f"{alert['id']}|{ref}": 0})  # its retry is due
    sms_before = len(world.twilio.received)
    assert clock.tick(runtime).redispatched == 1  # the clock hands the due retry to a worker
    assert "send_batch" in await run_jobs(runtime)
    piet = (await world.deliveries(alert["id"]))["sms", "piet"]
    assert (piet["status"], piet["cause"]) == ("cancelled", "all-clear")
    assert len(world.twilio.received) == sms_before


async def test_an_update_does_not_stop_the_escalations(world: World) -> None:
    """After an update the alert's timers stay, and escalation still calls the members who did not acknowledge."""
    alert = await _escalating_alert(world)
    await _follow_up(world.client, alert["id"], world.auth("police"), kind="update")
    assert _alert_timers(world.runtime, alert["id"]) == ["check_acknowledgements", "escalate"]
    await run_queued(world.runtime)
    assert make_due(world.runtime, jobs.ESCALATE) == 1
    assert clock.tick(world.runtime).timers >= 1  # (the update's next look too, if it came due meanwhile)
    assert "escalate" in await run_jobs(world.runtime)
    seen = await get_json(world.client, f"/v1/alerts/{alert['id']}", headers=world.auth("police"))
    assert seen["counts"]["escalated"] > 0
    assert {c for c, _ in await world.deliveries(alert["id"])} >= {ChannelName.VOICE.value}


# -- who may, and what is refused -----------------------------------------------------------------


async def _alert_to_a(client: TestClient, cast: Cast) -> str:
    body = {**URGENT, "plp_ids": [cast.plp_a]}
    return str((await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202))["id"])


@pytest.mark.parametrize(
    ("who", "expected"),
    [("admin", 202), ("police_a", 202), ("police_b", 403), ("coordinator_a", 403), ("coordinator_b", 403)],
)
async def test_the_police_of_the_alert_and_admins_may_follow_it_up(
    client: TestClient, cast: Cast, who: str, expected: int
) -> None:
    """As for cancelling, without the coordinators: its zone's police and admins may; the others get a 403 problem."""
    alert_id = await _alert_to_a(client, cast)
    answer = await _follow_up(client, alert_id, cast.auth(who), expect=expected)
    if expected == 403:
        assert answer["title"] == "Forbidden" and answer["detail"]


async def test_a_coordinators_own_message_is_followed_up_by_police_not_by_its_author(
    client: TestClient, cast: Cast
) -> None:
    """A coordinator may cancel their own message but not follow it up: follow-ups speak for the police."""
    body = {"urgency": "non_urgent", "category": "incivility", "plp_ids": [cast.plp_a], "texts": {"fr": "Dépôt"}}
    own = await post_json(client, "/v1/alerts", body, headers=cast.auth("coordinator_a"), expect=202)
    await _follow_up(client, own["id"], cast.auth("coordinator_a"), kind="update", expect=403)
    await _follow_up(client, own["id"], cast.auth("police_a"), kind="update")


async def test_without_a_token_nobody_follows_an_alert_up(client: TestClient, cast: Cast) -> None:
    """Members have no token: a request without one is a 401."""
    alert_id = await _alert_to_a(client, cast)
    await _follow_up(client, alert_id, {}, expect=401)


async def test_the_same_idempotency_key_sends_one_follow_up(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """A double click sends once; the same key with another body is a 422 naming the header."""
    alert_id = await _alert_to_a(client, cast)
    headers = {**cast.auth("police_a"), "Idempotency-Key": "all-clear-1"}
    first = await _follow_up(client, alert_id, headers)
    response = await client.post(
        f"/v1/alerts/{alert_id}/follow-ups", json={"kind": "all_clear", "texts": ALL_CLEAR_TEXTS}, headers=headers
    )
    assert response.status == 202 and response.headers["Idempotent-Replayed"] == "true"
    assert (await response.json())["id"] == first["id"]
    other = await _follow_up(client, alert_id, headers, kind="update", expect=422)
    assert other["errors"][0]["field"] == "header.Idempotency-Key"
    original = await get_json(client, f"/v1/alerts/{alert_id}", headers=cast.auth("police_a"))
    assert original["follow_ups"] == [first["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "over", "texts": {"fr": "x"}}, "body.kind"),
        ({"texts": {"fr": "x"}}, "body.kind"),
        ({"kind": "update", "texts": {}}, "body.texts"),
        ({"kind": "update"}, "body.texts"),
        ({"kind": "update", "texts": {"es": "x"}}, "body.texts.es"),
        ({"kind": "update", "texts": {"fr": ""}}, "body.texts.fr"),
        ({"kind": "update", "texts": {"fr": "x" * 1601}}, "body.texts.fr"),
        ({"kind": "update", "texts": {"fr": "x"}, "plp_ids": ["a"]}, "body.plp_ids"),
        (["update"], "body"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(client: TestClient, cast: Cast, body: Any, field: str) -> None:
    """Every fault of the body is a 422 problem whose errors name the field."""
    alert_id = await _alert_to_a(client, cast)
    response = await client.post(f"/v1/alerts/{alert_id}/follow-ups", json=body, headers=cast.auth("police_a"))
    problem = await response.json()
    assert response.status == 422, problem
    assert field in [e["field"] for e in problem["errors"]], problem


async def test_an_unknown_alert_is_a_404(client: TestClient, cast: Cast) -> None:
    await _follow_up(client, "nosuchalert", cast.auth("police_a"), expect=404)


async def test_a_follow_up_is_not_followed_up(client: TestClient, cast: Cast) -> None:
    """A follow-up of a follow-up is a 422 naming the path's alert and saying which alert to follow up instead."""
    alert_id = await _alert_to_a(client, cast)
    update = await _follow_up(client, alert_id, cast.auth("police_a"), kind="update")
    problem = await _follow_up(client, update["id"], cast.auth("police_a"), expect=422)
    reason = f"this alert is itself a follow-up of alert {alert_id}: follow that one up"
    assert problem["errors"] == [{"field": "path.alert_id", "reason": reason}]


async def test_an_alert_has_one_all_clear(client: TestClient, cast: Cast) -> None:
    """A second all-clear is a 409 naming the first; updates may still follow."""
    alert_id = await _alert_to_a(client, cast)
    first = await _follow_up(client, alert_id, cast.auth("police_a"))
    problem = await _follow_up(client, alert_id, cast.auth("admin"), expect=409)
    assert first["id"] in problem["detail"]
    await _follow_up(client, alert_id, cast.auth("admin"), kind="update")


async def test_a_follow_up_counts_in_the_evaluation_for_its_cost_only(world: World) -> None:
    """The PLP's annual evaluation counts the alert once: its all-clear adds its deliveries and SMS segments,
    not an alert nor members reached."""
    alert = await _sent(world)
    path = f"/v1/plps/{world.plp}/evaluation?year={this_year()}"
    before = await get_json(world.client, path, headers=world.auth("coordinator"))
    await _follow_up(world.client, alert["id"], world.auth("police"))
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    after = await get_json(world.client, path, headers=world.auth("coordinator"))
    assert after["alerts"] == before["alerts"] and after["reach"] == before["reach"]
    assert after["cost"]["sms_segments"] > before["cost"]["sms_segments"]
