"""Liveness and readiness: ready means Redis answers and a worker is alive for the urgent queue.

Workers are real ``plp worker`` processes; the Redis that goes down is a server of the test's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.runtime import Runtime
from tests.support import RedisServer, Workers, until


async def readiness(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/v1/ready")
    assert response.content_type == "application/json"
    return response.status, dict(await response.json())


async def test_not_ready_without_a_worker_for_the_urgent_queue(client: TestClient) -> None:
    """With Redis up but no worker, readiness is a 503 that says the urgent queue has no worker."""
    status, body = await readiness(client)
    assert status == 503
    assert (body["status"], body["redis"], body["workers"]) == ("unavailable", "ok", {"urgent": 0, "general": 0})
    assert len(body["reasons"]) == 1 and "no worker is alive for the urgent queue" in body["reasons"][0]


@pytest.mark.parametrize(
    ("lane", "expected"), [("urgent", {"urgent": 1, "general": 0}), ("general", {"urgent": 1, "general": 1})]
)
async def test_ready_once_a_worker_serves_the_urgent_queue(
    client: TestClient, workers: Workers, lane: str, expected: dict[str, int]
) -> None:
    """An urgent worker, or a general one (it serves urgent work first), makes the service ready."""
    workers.start(lane)
    status, body = await until(lambda: _ready(client), timeout=20, what=f"the {lane} worker to register", every=0.1)
    assert (status, body["status"], body["workers"], body["reasons"]) == (200, "ok", expected, [])
    assert body["channels"]["sms"] == "OutboxChannel"


async def test_not_ready_again_once_the_last_urgent_worker_stops(client: TestClient, workers: Workers) -> None:
    """Readiness follows the workers: stopping the only one makes it fail again."""
    process = workers.start("urgent")
    await until(lambda: _ready(client), timeout=20, what="the worker to register", every=0.1)
    process.terminate()
    process.wait(timeout=10)
    status, body = await readiness(client)
    assert status == 503 and body["workers"]["urgent"] == 0


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
        runtime.rq_connection.close()


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


async def _ready(client: TestClient) -> tuple[int, dict[str, Any]] | None:
    status, body = await readiness(client)
    return (status, body) if status == 200 else None
