"""Redis through Sentinel: every client finds the primary through the sentinels and follows a failover,
and an alert's 202 waits until a replica holds it (``PLP_REDIS_WAIT_REPLICAS``).

Against real servers started by the tests: a primary, a replica and three sentinels
(``redis-server --sentinel``) on loopback. The fault suite (``tests/faults/test_failover.py``)
kills primaries under a running service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from aiohttp.test_utils import TestClient

from config import Environment, Settings
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import SentinelGroup, get_json, post_json, until

URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue X, voiture grise 1-ABC-123"}}


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    servers = SentinelGroup(tmp_path / "sentinels")
    servers.start()
    yield servers
    servers.stop()


@pytest.fixture
def settings(settings: Settings, group: SentinelGroup, request: pytest.FixtureRequest) -> Settings:
    """The tests' settings, Redis found through the sentinels (REDIS_URL gives only the database number), an
    alert waiting for one replica; a test's ``wait`` mark changes the wait's settings."""
    mark = request.node.get_closest_marker("wait")
    return settings.model_copy(
        update={
            "redis_url": "redis://",
            "redis_sentinels": group.addresses,
            "redis_wait_replicas": 1,
            **(mark.kwargs if mark else {}),
        }
    )


def test_the_sentinels_are_read_from_PLP_REDIS_SENTINELS(monkeypatch: pytest.MonkeyPatch) -> None:
    """host:port, comma-separated (IPv6 in brackets); the master's name from PLP_REDIS_SENTINEL_MASTER."""
    monkeypatch.setenv("PLP_REDIS_SENTINELS", "10.0.0.5:26379, 10.0.0.6:26379,[fd00::7]:26380")
    monkeypatch.setenv("PLP_REDIS_SENTINEL_MASTER", "zone-5340")
    settings = Settings()
    assert settings.sentinel_addresses == [("10.0.0.5", 26379), ("10.0.0.6", 26379), ("fd00::7", 26380)]
    assert settings.redis_sentinel_master == "zone-5340"


@pytest.mark.parametrize("value", ["10.0.0.5", "10.0.0.5:", "10.0.0.5:sentinel", ":26379", "10.0.0.5:70000"])
def test_a_sentinel_that_is_not_host_and_port_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PLP_REDIS_SENTINELS", f"10.0.0.6:26379,{value}")
    with pytest.raises(ValueError, match=rf"PLP_REDIS_SENTINELS: '{value}' is not host:port"):
        Settings()


def test_production_needs_redis_url_or_the_sentinels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sentinels alone are enough: they say where the primary is."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    bare = Settings(environment=Environment.PRODUCTION)
    assert any(f.startswith("REDIS_URL is not set") for f in bare.production_faults())
    with_sentinels = Settings(environment=Environment.PRODUCTION, redis_sentinels=("10.0.0.5:26379",))
    assert not any("REDIS_URL" in f for f in with_sentinels.production_faults())


async def test_every_client_reaches_the_primary_through_the_sentinels_and_follows_a_failover(
    runtime: Runtime, group: SentinelGroup
) -> None:
    """RQ's client, the decoding client and an asyncio client all write to the primary; once the sentinels
    promote the replica, the same clients write to it, without being made again."""
    first = group.primary()
    aio = runtime.async_redis()
    runtime.rq_connection.set("plptest:written-by", "rq")
    runtime.sync_redis.set("plptest:written-by-sync", "sync")
    await aio.set("plptest:written-by-async", "async")
    assert runtime.redis_description == f"primary 'plp' of the sentinels {', '.join(group.addresses)}"
    with redis.Redis(port=first.port, decode_responses=True) as direct:
        assert direct.mget("plptest:written-by", "plptest:written-by-sync", "plptest:written-by-async") == [
            "rq",
            "sync",
            "async",
        ]
    assert runtime.sync_redis.wait(1, 5000) == 1  # the replica has them before the primary dies

    dead, _ = await group.fail_over()
    assert dead is first and group.primary() is not first

    def written_again() -> bool:
        try:  # the first command after the failover may meet the dead primary's connection once
            runtime.rq_connection.set("plptest:after", "rq")
            return runtime.sync_redis.get("plptest:written-by-sync") == "sync"
        except redis.ConnectionError:
            return False

    await until(written_again, timeout=10, what="the synchronous clients to reach the new primary")
    assert await aio.get("plptest:written-by-async") == "async"
    await aio.set("plptest:after-async", "async")
    with redis.Redis(port=group.primary().port, decode_responses=True) as direct:
        assert direct.mget("plptest:after", "plptest:after-async") == ["rq", "async"]
    await aio.aclose()


async def test_an_accepted_alert_survives_the_primary_dying_right_after_its_202(
    client: TestClient, cast: Cast, runtime: Runtime, group: SentinelGroup
) -> None:
    """With PLP_REDIS_WAIT_REPLICAS=1 the 202 comes once the replica holds the alert: the primary killed at
    once, the promoted replica has it, with its state, and the wait was counted as confirmed."""
    headers = cast.auth("police_a") | {"Idempotency-Key": "burglary-rue-x-1"}
    accepted = await post_json(client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=headers, expect=202)
    assert runtime.sync_redis.hget(runtime.keys.metrics(), "rw|confirmed") == "1"

    await group.fail_over()
    survivor = group.primary()
    with redis.Redis(port=survivor.port, decode_responses=True) as direct:
        assert direct.exists(runtime.keys.alert(accepted["id"]))
        assert direct.hget(runtime.keys.alert_state(accepted["id"]), "status") == "accepted"

    async def answered() -> bool:
        response = await client.get(f"/v1/alerts/{accepted['id']}", headers=cast.auth("police_a"))
        return response.status == 200

    await until(answered, timeout=10, what="the API to reach the new primary")  # 503s meanwhile
    again = await post_json(client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=headers, expect=202)
    assert again["id"] == accepted["id"]  # the Idempotency-Key survived with it


@pytest.mark.wait(redis_wait_timeout=0.2)
async def test_a_missed_confirmation_is_accepted_by_default_logged_and_counted(
    client: TestClient, cast: Cast, runtime: Runtime, group: SentinelGroup
) -> None:
    """The replica down: the alert is answered 202 after PLP_REDIS_WAIT_TIMEOUT (it goes out from the primary),
    and the miss is counted (plp_replication_waits_total{outcome="missed"})."""
    replica = next(s for s in group.servers if s is not group.primary())
    await asyncio.to_thread(replica.kill)
    body = {**URGENT, "plp_ids": [cast.plp_a]}
    accepted = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    assert runtime.sync_redis.hget(runtime.keys.metrics(), "rw|missed") == "1"
    assert (await get_json(client, f"/v1/alerts/{accepted['id']}", headers=cast.auth("police_a")))["id"]
    metrics = await (await client.get("/metrics")).text()
    assert 'plp_replication_waits_total{outcome="missed"} 1.0' in metrics


@pytest.mark.wait(redis_wait_timeout=0.2, redis_wait_missed="refuse")
async def test_a_missed_confirmation_refused_is_a_503_and_the_same_key_later_gets_the_same_alert(
    client: TestClient, cast: Cast, runtime: Runtime, group: SentinelGroup
) -> None:
    """PLP_REDIS_WAIT_MISSED=refuse: 503 with Retry-After while the replica is down; the client sends again with
    its Idempotency-Key once the replica is back, and is answered the alert stored the first time (not a second)."""
    replica = next(s for s in group.servers if s is not group.primary())
    await asyncio.to_thread(replica.kill)
    headers = cast.auth("police_a") | {"Idempotency-Key": "burglary-rue-x-2"}
    body = {**URGENT, "plp_ids": [cast.plp_a]}
    response = await client.post("/v1/alerts", json=body, headers=headers)
    assert response.status == 503, await response.text()
    assert int(response.headers["Retry-After"]) > 0
    stored = runtime.sync_redis.zrange(runtime.keys.alerts(), 0, -1)
    assert len(stored) == 1  # on the primary, not yet confirmed

    await asyncio.to_thread(replica.start)

    async def sent_again() -> dict[str, str] | None:
        """The client's retry, as the CLI and the console make it: the same key, until it is answered."""
        response = await client.post("/v1/alerts", json=body, headers=headers)
        return await response.json() if response.status == 202 else None

    again = await until(sent_again, timeout=30, what="the replica back and the alert confirmed", every=0.25)
    assert [again["id"]] == stored
    assert runtime.sync_redis.hget(runtime.keys.metrics(), "rw|confirmed") == "1"


@pytest.mark.parametrize(("wait_timeout", "reads_for_at_least"), [(1.0, 5.0), (12.0, 13.0)])
def test_the_web_client_waits_for_an_answer_longer_than_the_wait_for_replicas_lasts(
    wait_timeout: float, reads_for_at_least: float
) -> None:
    """Redis answers a WAIT only once its PLP_REDIS_WAIT_TIMEOUT has passed (up to 30 s): the asyncio client that
    runs it must not take that silence for a dead connection, as redis-py does after 5 s by default."""
    settings = Settings(redis_url="redis://127.0.0.1:6379/13", redis_wait_replicas=1, redis_wait_timeout=wait_timeout)
    runtime = Runtime.from_settings(settings)
    try:
        connection = runtime.async_redis().connection_pool.make_connection()
        assert connection.socket_timeout >= reads_for_at_least
    finally:
        runtime.close()
