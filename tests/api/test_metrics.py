"""``GET /metrics``: the Prometheus text format, public or behind PLP_METRICS_TOKEN, and never down with Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.storage.runtime import Runtime
from tests.support import RedisServer

TOKEN = "metrics-scrape-token-0123456789"

OpenClient = Callable[..., AbstractAsyncContextManager[TestClient]]


@pytest.fixture
def open_client(settings: Settings, runtime: Runtime) -> OpenClient:
    """An app on the test's Redis with settings changed by ``overrides`` (values as the fields hold them)."""

    @asynccontextmanager
    async def opened(**overrides: Any) -> AsyncIterator[TestClient]:
        changed = Runtime.from_settings(settings.model_copy(update=overrides))
        try:
            async with TestClient(TestServer(create_app(changed))) as client:
                yield client
        finally:
            changed.close()

    return opened


def samples(text: str) -> dict[str, float]:
    """Unlabelled samples by name, and labelled ones as ``name{k="v",...}``."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


async def test_metrics_are_public_in_the_prometheus_text_format_without_a_token(client: TestClient) -> None:
    """Without PLP_METRICS_TOKEN, anyone may scrape; the answer is Prometheus' text format 0.0.4."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = samples(await response.text())
    assert found["plp_redis_up"] == 1
    assert found['plp_queue_depth{queue="urgent"}'] == 0 and found['plp_workers_alive{queue="urgent"}'] == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token-wrong-token"}, 401),
        ({"Authorization": f"Basic {TOKEN}"}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        ({"Authorization": f"bearer {TOKEN}"}, 200),
    ],
)
async def test_with_a_metrics_token_a_scrape_must_carry_it(
    open_client: OpenClient, headers: dict[str, str], expected: int
) -> None:
    """With PLP_METRICS_TOKEN set, only a bearer of that token is answered; others get a 401 problem."""
    async with open_client(metrics_token=SecretStr(TOKEN)) as client:
        response = await client.get("/metrics", headers=headers)
        assert response.status == expected
        if expected == 401:
            assert response.content_type == "application/problem+json"
            assert "PLP_METRICS_TOKEN" in (await response.json())["detail"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_authorized_scrape_is_never_refused_by_the_per_address_rate(open_client: OpenClient) -> None:
    """Scrapes with the metrics token pass an address over its rate; anonymous ones are metered like health."""
    async with open_client(
        metrics_token=SecretStr(TOKEN), rate_limit_per_address=1, rate_limit_per_address_burst=1
    ) as client:
        assert (await client.get("/v1/health")).status == 200
        assert (await client.get("/v1/health")).status == 429
        for _ in range(3):
            assert (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
        assert (await client.get("/metrics")).status == 429


async def test_a_user_token_is_not_a_metrics_token(open_client: OpenClient, runtime: Runtime) -> None:
    """An actor's bearer token (even an admin's) does not open /metrics when a metrics token is set."""
    from dispatcher.core.models import ActorIn, Role
    from dispatcher.people.accounts import create_actor
    from dispatcher.storage.store import Store

    redis = runtime.async_redis()
    try:
        _, admin = await create_actor(Store(redis, runtime.keys), ActorIn(name="Admin", role=Role.ADMIN))
    finally:
        await redis.aclose()
    async with open_client(metrics_token=SecretStr(TOKEN)) as client:
        assert (await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})).status == 401


async def test_metrics_say_redis_is_down_rather_than_fail(settings: Settings, tmp_path: Path) -> None:
    """With Redis unreachable, /metrics still answers, with plp_redis_up 0 and nothing else."""
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    runtime = Runtime.from_settings(settings.model_copy(update={"redis_url": server.url}))
    try:
        async with TestClient(TestServer(create_app(runtime))) as client:
            assert samples(await (await client.get("/metrics")).text())["plp_redis_up"] == 1
            server.kill()
            response = await client.get("/metrics")
            assert response.status == 200
            assert samples(await response.text()) == {"plp_redis_up": 0}
    finally:
        server.kill()
        runtime.close()


async def test_metrics_are_in_the_openapi_document_as_a_public_text_operation(client: TestClient) -> None:
    """The document declares GET /metrics, public, answering text/plain."""
    document = await (await client.get("/v1/openapi.json")).json()
    operation = document["paths"]["/metrics"]["get"]
    assert operation["security"] == []
    assert "text/plain" in operation["responses"]["200"]["content"]
