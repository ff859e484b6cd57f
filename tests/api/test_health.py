"""Liveness and readiness are this web process's own (ready: Redis answers); the whole service's state is
``GET /v1/status``, for admins.

Workers and the clock are real ``plp worker`` / ``plp clock`` processes; the Redis that goes down is a server
of the test's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.models import MemberStatus
from dispatcher.operations.queues import queue_health
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import RedisServer, Workers, free_port, get_json, post_json, until
from tests.world import AUTH_TOKEN, world_settings

PORT = free_port()  # Twilio signs the public URL: the app must be where the settings say
BASE = f"http://127.0.0.1:{PORT}"


async def readiness(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/v1/ready")
    assert response.content_type == "application/json"
    return response.status, dict(await response.json())


async def test_ready_with_redis_and_no_other_process(client: TestClient) -> None:
    """With Redis up and no worker nor clock, the web process is ready: it can take alerts and callbacks."""
    status, body = await readiness(client)
    assert (status, body["status"], body["redis"], body["reasons"]) == (200, "ok", "ok", [])
    assert body["channels"]["sms"] == "OutboxChannel"
    assert "workers" not in body


@pytest.fixture
def twilio_settings(redis_url: str, tmp_path: Path) -> Settings:
    return world_settings(redis_url, tmp_path / "data", BASE)


@pytest.fixture
async def twilio_client(twilio_settings: Settings) -> AsyncIterator[TestClient]:
    runtime = Runtime.from_settings(twilio_settings)
    runtime.rq_connection.flushdb()
    try:
        async with TestClient(TestServer(create_app(runtime), port=PORT)) as client:
            yield client
    finally:
        runtime.rq_connection.flushdb()
        runtime.close()


async def test_a_stop_by_sms_is_taken_while_every_worker_is_down(twilio_client: TestClient) -> None:
    """No worker, no clock: readiness stays 200 and Twilio's signed STOP is answered 200 and recorded at once
    (Twilio does not retry a refused incoming SMS)."""
    client, phone = twilio_client, "+32470555556"
    store = client.server.app[SERVICES].store
    assert (await readiness(client))[0] == 200
    member = await _member(client, phone)
    params = {"From": phone, "Body": "STOP", "MessageSid": "SM0003"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{BASE}/v1/webhooks/twilio/sms", params)
    answer = await client.post("/v1/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
    assert answer.status == 200, await answer.text()
    stored = await store.get_member(member)
    assert stored is not None and stored.status is MemberStatus.OPTED_OUT


async def _member(client: TestClient, phone: str) -> str:
    from dispatcher.core.models import ActorIn, Role
    from dispatcher.people.accounts import create_actor

    store = client.server.app[SERVICES].store
    _, token = await create_actor(store, ActorIn(name="Admin", role=Role.ADMIN))
    admin = {"Authorization": f"Bearer {token}"}
    plp = await post_json(
        client, "/v1/plps", {"name": "PLP S", "commune": "Uccle", "police_zone": "5340"}, headers=admin, expect=201
    )
    body = {"name": "Marie", "phone": phone, "language": "fr"}
    return str((await post_json(client, f"/v1/plps/{plp['id']}/members", body, headers=admin, expect=201))["id"])


@pytest.fixture
async def own_redis(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[RedisServer, TestClient]]:
    """The app on a Redis server of the test's own, which the test may kill."""
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    runtime = Runtime.from_settings(settings.model_copy(update={"redis_url": server.url}))
    try:
        async with TestClient(TestServer(create_app(runtime))) as client:
            yield server, client
    finally:
        server.kill()
        runtime.close()


async def test_not_ready_when_redis_is_unreachable_but_still_alive(
    own_redis: tuple[RedisServer, TestClient], settings: Settings
) -> None:
    """With Redis down, readiness is a 503 naming Redis, and liveness still answers 200."""
    server, client = own_redis
    server.kill()
    status, body = await readiness(client)
    assert status == 503
    assert body["status"] == "unavailable" and body["redis"].startswith("unreachable: ")
    assert "Redis is unreachable" in body["reasons"][0]
    assert (await client.get("/v1/health")).status == 200


async def test_the_service_status_is_for_admins_only(client: TestClient, cast: Cast) -> None:
    """``GET /v1/status`` answers the admin; the police and the coordinators get a 403 that says why."""
    for who in ("police_a", "coordinator_a"):
        refused = await get_json(client, "/v1/status", headers=cast.auth(who), expect=403)
        assert "only an admin may read the service's status" in refused["detail"]
    await get_json(client, "/v1/status", headers=cast.auth("admin"))


async def test_the_service_status_names_each_problem_with_its_fix(client: TestClient, cast: Cast) -> None:
    """Nothing but the web running: the status says attention, with no worker for either lane and the clock
    stopped, each with the command that fixes it; the outbox channels are a note."""
    found = await get_json(client, "/v1/status", headers=cast.auth("admin"))
    assert found["status"] == "attention"
    assert [p["problem"] for p in found["problems"]] == ["no_urgent_worker", "no_general_worker", "clock_stopped"]
    assert all("`plp " in p["detail"] for p in found["problems"])
    assert "served by the outbox" in found["notes"][0]
    assert {lane["lane"]: lane["workers_alive"] for lane in found["lanes"]} == {"urgent": 0, "general": 0}


async def test_the_service_status_is_ok_with_workers_and_the_clock(
    client: TestClient, cast: Cast, workers: Workers, runtime: Runtime
) -> None:
    """An urgent and a general worker and the clock: status ok, no problem, each process with its pid."""
    started = {workers.start("urgent").pid, workers.start("general").pid, workers.start_clock().pid}

    def whole() -> bool:
        health = queue_health(runtime)
        alive = (health.lane("urgent").workers_alive, health.lane("general").workers_alive)
        return alive == (2, 1) and health.clock.alive

    await until(whole, timeout=30, what="the workers and the clock to beat", every=0.1)
    found = await get_json(client, "/v1/status", headers=cast.auth("admin"))
    assert (found["status"], found["problems"]) == ("ok", [])
    pids = {w["pid"] for lane in found["lanes"] for w in lane["workers"]} | {c["pid"] for c in found["clocks"]}
    assert pids == started
