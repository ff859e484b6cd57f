"""The whole flow with real worker processes: API -> Redis -> RQ workers -> outbox channel."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient

from dispatcher.core.models import AlertStatus
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import Workers, get_json, member_rows, post_json, wait_for_alert

URGENT = {
    "urgency": "urgent",
    "category": "burglary",
    "texts": {"fr": "Cambriolage rue X", "nl": "Inbraak in straat X"},
}


async def _import(client: TestClient, cast: Cast, plp_id: str, count: int, **fields: object) -> None:
    rows = member_rows(count, start=100_000 if plp_id == cast.plp_b else 0, **fields)
    report = await post_json(
        client, f"/v1/plps/{plp_id}/members/import", {"members": rows}, headers=cast.auth("admin"), expect=200
    )
    assert len(report["imported"]) == count, report["rejected"][:3]


async def test_an_urgent_alert_reaches_every_member_in_their_language(
    client: TestClient, cast: Cast, runtime: Runtime, workers: Workers
) -> None:
    """Each member gets the alert on each charter channel they have, in their language, and the alert completes."""
    await _import(client, cast, cast.plp_a, 3, language="nl")
    workers.start("urgent")
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    assert await wait_for_alert(runtime, alert["id"]) is AlertStatus.COMPLETED
    seen = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    assert seen["counts"]["by_status"]["outbox"] == seen["counts"]["total"] == 9  # no credentials: the outbox
    assert list(seen["status_times"]) == ["accepted", "fanning_out", "sending", "completed"]
    lines = [json.loads(line) for line in runtime.settings.outbox_file.read_text(encoding="utf-8").splitlines()]
    assert all(line["text"].startswith("Inbraak in straat X") for line in lines)
    assert {line["channel"] for line in lines} == {"sms", "email", "voice"}


async def test_an_urgent_alert_completes_while_a_large_non_urgent_alert_is_still_sending(
    client: TestClient, cast: Cast, runtime: Runtime, workers: Workers
) -> None:
    """Urgent work has its own lane: it finishes while thousands of non-urgent sends are still queued."""
    await _import(client, cast, cast.plp_a, 10)
    await _import(client, cast, cast.plp_b, 1000)
    slow = {"PLP_OUTBOX_LATENCY_MS": "20", "PLP_SEND_CONCURRENCY": "4", "PLP_SEND_BATCH_SIZE": "100"}
    workers.start("urgent", **slow)
    workers.start("general", **slow)
    advice = {
        "urgency": "non_urgent",
        "category": "prevention_advice",
        "plp_ids": [cast.plp_b],
        "texts": {"fr": "Conseil"},
    }
    backlog = await post_json(client, "/v1/alerts", advice, headers=cast.auth("coordinator_b"), expect=202)
    assert await wait_for_alert(runtime, backlog["id"], {AlertStatus.SENDING}) is AlertStatus.SENDING

    urgent = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    assert await wait_for_alert(runtime, urgent["id"], timeout=30) is AlertStatus.COMPLETED

    behind = await get_json(client, f"/v1/alerts/{backlog['id']}", headers=cast.auth("coordinator_b"))
    assert behind["status"] == "sending"
    assert behind["counts"]["by_status"]["outbox"] < behind["counts"]["total"] == 1000
    await post_json(client, f"/v1/alerts/{backlog['id']}/cancel", None, headers=cast.auth("coordinator_b"), expect=200)


@pytest.mark.slow
async def test_an_alert_to_a_plp_of_5000_members_is_fanned_out_and_sent(
    client: TestClient, cast: Cast, runtime: Runtime, workers: Workers
) -> None:
    """5,000 members with a phone and an e-mail: 15,000 deliveries planned, sent and counted (figures printed)."""
    started = time.perf_counter()
    await _import(client, cast, cast.plp_a, 5000)
    imported = time.perf_counter() - started
    workers.start("urgent")
    workers.start("general")
    posted = time.perf_counter()
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    assert await wait_for_alert(runtime, alert["id"], timeout=240) is AlertStatus.COMPLETED
    done = time.perf_counter() - posted
    seen = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    assert seen["counts"]["total"] == seen["counts"]["by_status"]["outbox"] == 15_000
    assert {c: s["outbox"] for c, s in seen["counts"]["by_channel"].items()} == {
        "sms": 5000,
        "email": 5000,
        "voice": 5000,
    }
    times = {k: datetime.fromisoformat(v) for k, v in seen["status_times"].items()}
    fanned = (times["sending"] - times["accepted"]).total_seconds()
    print(
        f"\n5,000 members: import {imported:.2f} s; fan-out of 15,000 deliveries {fanned:.2f} s; "
        f"POST to completed {done:.2f} s ({15_000 / done:.0f} deliveries/s through the outbox, 2 workers)"
    )
