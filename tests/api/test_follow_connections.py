"""Live follow holds no pooled Redis connection: a web process with a pool of four connections serves twenty
followers of an alert and still answers every other call; an exhausted pool is a 503, never a hang.

Against the real Redis; the followers are real HTTP streams to the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from config import Settings
from dispatcher.api.services import SERVICES
from dispatcher.api.stream import HUB
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import post_json

FOLLOWERS = 20
URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue X"}}


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix="plptest:",
        queue_prefix="plptest",
        data_dir=tmp_path,
        public_base_url="http://127.0.0.1:8080",
        redis_max_connections=4,
        redis_pool_timeout=1.0,
    )


@pytest.fixture
async def followed(client: TestClient, cast: Cast) -> AsyncIterator[list[ClientResponse]]:
    """Twenty police followers of an urgent alert that stays open (no worker sends it), each past its first event."""
    body = {**URGENT, "plp_ids": [cast.plp_a]}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    async with AsyncExitStack() as streams:
        opened = []
        for _ in range(FOLLOWERS):
            response = await streams.enter_async_context(
                client.get(f"/v1/alerts/{alert['id']}/events", headers=cast.auth("police_a"))
            )
            async with asyncio.timeout(10):
                assert (await response.content.readuntil(b"\n\n")).startswith(b"event: snapshot")
            opened.append(response)
        yield opened


def _subscribed_here(runtime: Runtime) -> int:
    """Redis clients of the test's database subscribed to a channel now."""
    database = runtime.rq_connection.connection_pool.connection_kwargs.get("db", 0)
    clients = runtime.sync_redis.client_list()
    return sum(1 for c in clients if int(c["db"]) == database and int(c["sub"]) > 0)


async def test_twenty_followers_leave_the_api_answering_with_four_connections(
    client: TestClient, cast: Cast, followed: list[ClientResponse], runtime: Runtime
) -> None:
    """With PLP_REDIS_MAX_CONNECTIONS=4 and twenty followers open, ``/v1/me`` and ``/v1/ready`` answer at once,
    and the process holds one subscription for them all."""
    assert client.server.app[HUB].followers == FOLLOWERS
    async with asyncio.timeout(5):
        me = await client.get("/v1/me", headers=cast.auth("police_a"))
        ready = await client.get("/v1/ready")
    assert (me.status, ready.status) == (200, 200)
    assert _subscribed_here(runtime) == 1


async def test_an_exhausted_pool_is_a_503_not_a_hang(client: TestClient, cast: Cast) -> None:
    """With every pooled connection taken, a call waits PLP_REDIS_POOL_TIMEOUT for one, then is a 503 with
    Retry-After; readiness says Redis cannot serve this process."""
    pool = client.server.app[SERVICES].store.redis.connection_pool
    taken = [await pool.get_connection() for _ in range(4)]
    try:
        async with asyncio.timeout(5):
            me = await client.get("/v1/me", headers=cast.auth("police_a"))
            ready = await client.get("/v1/ready")
        assert me.status == 503 and me.headers["Retry-After"]
        assert ready.status == 503 and "ConnectionError" in (await ready.json())["redis"]
    finally:
        for connection in taken:
            await pool.release(connection)
