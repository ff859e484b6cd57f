"""The API while its Redis is down: 503 with Retry-After on every route, never 500, and nothing twice.

Each test runs the app on a ``redis-server`` of its own that persists every write before it
answers (AOF, ``appendfsync always``), reached through a relay (``tests.redis_cut``) that can
cut a transaction's connection at its EXEC: before it (nothing applied) or after it (applied,
unheard). The test kills the server there and starts it again on the same data, as a
restart or a failover does. Promises under test: a 202 means it will be sent; once, not twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from channels.twilio.inbound import STATUS, callback_url
from config import Settings
from dispatcher.api.app import create_app
from dispatcher.api.problems import UNAVAILABLE_RETRY_AFTER
from dispatcher.api.services import SERVICES
from dispatcher.core.models import MemberStatus
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.redis_cut import Cut, RedisCut
from tests.simulators.twilio import Callback, TwilioSimulator
from tests.support import RedisServer, free_port, get_json, post_json, until
from tests.world import ACCOUNT, AUTH_TOKEN, WEBHOOK_SECRET, world_settings

PERSISTENT = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
PORT = free_port()  # the app's: Twilio signs the public URL, so the app must be where the settings say
BASE = f"http://127.0.0.1:{PORT}"
URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue du Parc, voiture grise"}}
PHONE = "+32470555555"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    found = RedisServer(tmp_path / "redis", args=PERSISTENT)
    found.start()
    yield found
    found.stop()


@pytest.fixture
def relay(server: RedisServer) -> Iterator[RedisCut]:
    with RedisCut(server.port) as opened:
        yield opened


@pytest.fixture
def redis_url(relay: RedisCut) -> str:
    return relay.url


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return world_settings(redis_url, tmp_path / "data", BASE)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(runtime), port=PORT)) as test_client:
        yield test_client


def _alert(cast: Cast) -> dict[str, Any]:
    return {**URGENT, "plp_ids": [cast.plp_a]}


async def _assert_unavailable(response: ClientResponse, what: str) -> None:
    text = await response.text()
    assert response.status == 503, f"{what}: {response.status} {text}"
    assert response.headers.get("Retry-After") == str(UNAVAILABLE_RETRY_AFTER), what
    assert response.content_type == "application/problem+json", what


def _signed(path: str, params: dict[str, str]) -> dict[str, Any]:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{BASE}{path}", params)
    return {"data": params, "headers": {"X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": "evt-1"}}


def _telegram_reply() -> dict[str, Any]:
    """An update carrying a member's reply in their own chat (an update of no other kind needs no Redis)."""
    chat = {"id": 4242, "type": "private"}
    return {"update_id": 1, "message": {"message_id": 1, "chat": chat, "from": {"id": 4242}, "text": "OK"}}


def _requests(cast: Cast, alert_id: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """One request of each route class: (what, method, path, aiohttp keyword arguments)."""
    police = {"headers": cast.auth("police_a")}
    status_path = f"/v1/webhooks/twilio/status?d={alert_id}:sms:0123456789abcdef"
    telegram = {"headers": {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}}
    return [
        ("intake", "POST", "/v1/alerts", {"json": _alert(cast), **police}),
        ("preview", "POST", "/v1/alerts/preview", {"json": _alert(cast), **police}),
        ("read: alerts", "GET", "/v1/alerts", police),
        ("read: an alert", "GET", f"/v1/alerts/{alert_id}", police),
        ("read: its deliveries", "GET", f"/v1/alerts/{alert_id}/deliveries", police),
        ("read: its events", "GET", f"/v1/alerts/{alert_id}/events", police),
        ("read: a PLP", "GET", f"/v1/plps/{cast.plp_a}", police),
        ("read: me", "GET", "/v1/me", police),
        ("webhook: Twilio status", "POST", status_path, _signed(status_path, {"MessageStatus": "delivered"})),
        ("webhook: Twilio SMS", "POST", "/v1/webhooks/twilio/sms", _signed("/v1/webhooks/twilio/sms", {})),
        ("webhook: Telegram", "POST", "/v1/webhooks/telegram", {"json": _telegram_reply(), **telegram}),
        ("the console", "GET", "/console", {}),
        ("the OpenAPI document", "GET", "/v1/openapi.json", {}),
    ]


async def test_every_route_class_answers_503_with_retry_after_while_redis_is_down(
    client: TestClient, cast: Cast, server: RedisServer
) -> None:
    """With Redis killed, intake, reads, webhooks and the console's files answer 503 with Retry-After (never 500),
    while liveness and metrics still answer 200 and readiness its own 503 saying Redis is unreachable."""
    sent = await post_json(client, "/v1/alerts", _alert(cast), headers=cast.auth("police_a"), expect=202)
    server.kill()
    for what, method, path, kwargs in _requests(cast, sent["id"]):
        await _assert_unavailable(await client.request(method, path, **kwargs), what)
    assert (await client.get("/v1/health")).status == 200
    metrics = await client.get("/metrics")
    assert metrics.status == 200 and "plp_redis_up 0" in await metrics.text()
    ready = await client.get("/v1/ready")
    assert ready.status == 503 and "Redis is unreachable" in (await ready.json())["reasons"][0]
    server.start()


async def test_an_alert_whose_exec_reached_redis_is_answered_again_not_sent_twice_on_retry(
    client: TestClient, cast: Cast, server: RedisServer, relay: RedisCut, runtime: Runtime
) -> None:
    """Redis dies after it ran the alert's transaction, before its reply: 503; retried with the same
    Idempotency-Key once Redis is back, the POST answers the stored alert (replayed), enqueued once."""
    headers = {**cast.auth("police_a"), "Idempotency-Key": "send-1"}
    relay.arm(Cut.AFTER_EXEC, server.kill)
    await _assert_unavailable(await client.post("/v1/alerts", json=_alert(cast), headers=headers), "the first try")
    assert relay.done.is_set()
    server.start()
    [stored] = runtime.rq_connection.zrange(runtime.keys.alerts(), 0, -1)

    retried = await client.post("/v1/alerts", json=_alert(cast), headers=headers)
    assert retried.status == 202, await retried.text()
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert (await retried.json())["id"] == stored.decode()
    assert runtime.urgent_queue.count == 1
    audit = await get_json(client, "/v1/audit?action=alert.created", headers=cast.auth("admin"))
    assert [e["target"]["alert"] for e in audit["items"]] == [stored.decode()]


async def test_an_alert_whose_exec_never_reached_redis_is_accepted_on_retry(
    client: TestClient, cast: Cast, server: RedisServer, relay: RedisCut, runtime: Runtime
) -> None:
    """Redis dies before the alert's transaction reaches it: 503, nothing stored (not even the key); retried with
    the same Idempotency-Key once Redis is back, the POST stores and enqueues the alert, once."""
    headers = {**cast.auth("police_a"), "Idempotency-Key": "send-2"}
    relay.arm(Cut.BEFORE_EXEC, server.kill)
    await _assert_unavailable(await client.post("/v1/alerts", json=_alert(cast), headers=headers), "the first try")
    server.start()
    assert runtime.rq_connection.zcard(runtime.keys.alerts()) == 0

    retried = await client.post("/v1/alerts", json=_alert(cast), headers=headers)
    assert retried.status == 202, await retried.text()
    assert "Idempotent-Replayed" not in retried.headers
    assert runtime.rq_connection.zrange(runtime.keys.alerts(), 0, -1) == [(await retried.json())["id"].encode()]
    assert runtime.urgent_queue.count == 1


@pytest.mark.parametrize("key", ["with-a-key", None])
async def test_a_transaction_whose_reply_is_lost_is_not_run_again_by_the_redis_client(
    client: TestClient, cast: Cast, relay: RedisCut, runtime: Runtime, key: str | None
) -> None:
    """The connection drops after Redis ran the alert's transaction (Redis stays up): redis-py reconnects, but
    does not run the transaction a second time; the POST answers 202 and the fan-out is enqueued once."""
    headers = cast.auth("police_a") | ({"Idempotency-Key": key} if key else {})
    relay.arm(Cut.AFTER_EXEC)
    sent = await post_json(client, "/v1/alerts", _alert(cast), headers=headers, expect=202)
    assert relay.done.is_set()
    assert runtime.rq_connection.zrange(runtime.keys.alerts(), 0, -1) == [sent["id"].encode()]
    assert runtime.urgent_queue.count == 1
    assert runtime.rq_connection.llen(runtime.urgent_queue.key) == 1


async def test_a_stop_cut_short_by_redis_is_recorded_when_twilio_retries_it(
    client: TestClient, cast: Cast, server: RedisServer, relay: RedisCut
) -> None:
    """A member's STOP by SMS meets Redis dying as the opt-out is written: 503 (Twilio retries on it, see
    docs/channels.md); the retry of the same message once Redis is back records the opt-out rather than skip it as
    seen."""
    member = await post_json(
        client,
        f"/v1/plps/{cast.plp_a}/members",
        {"name": "Marie", "phone": PHONE, "language": "fr"},
        headers=cast.auth("coordinator_a"),
        expect=201,
    )
    stop = _signed("/v1/webhooks/twilio/sms", {"From": PHONE, "Body": "STOP", "MessageSid": "SM0001"})
    relay.arm(Cut.BEFORE_EXEC, server.kill)
    await _assert_unavailable(await client.post("/v1/webhooks/twilio/sms", **stop), "the STOP")
    server.start()

    retried = await client.post("/v1/webhooks/twilio/sms", **stop)
    assert retried.status == 200, await retried.text()
    store = client.server.app[SERVICES].store
    stored = await store.get_member(member["id"])
    assert stored is not None and stored.status is MemberStatus.OPTED_OUT


async def test_a_twilio_callback_refused_while_redis_is_down_is_retried_by_twilio_and_handled(
    client: TestClient, server: RedisServer, runtime: Runtime
) -> None:
    """The status callback URL given to Twilio carries connection overrides: Twilio retries the 503 it meets while
    Redis is down (with the same idempotency token), and once Redis is back the retry is handled (204, marked)."""
    delivery = "0123456789abcdef:sms:fedcba9876543210"
    params = {"MessageSid": "SM0002", "MessageStatus": "delivered", "AccountSid": ACCOUNT}
    async with TwilioSimulator(account_sid=ACCOUNT, auth_token=AUTH_TOKEN) as twilio:
        callback = Callback(url=callback_url(runtime.settings.public_base_url, STATUS, delivery), params=params)
        server.kill()
        posting = asyncio.create_task(twilio.deliver(callback))
        await until(lambda: callback.tries, timeout=10, what="Twilio's first try")
        assert callback.tries == [503]
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(posting, 10)
    assert callback.tries[0] == 503 and callback.tries[-1] == 204, callback.tries
    assert runtime.rq_connection.keys(runtime.keys.seen("twilio", "*")), "the retry was handled and marked"
