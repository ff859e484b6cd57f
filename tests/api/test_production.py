"""What production mode changes in the API, and what the outbox is in every mode.

In production a charter may not name a channel nothing can send here (no credentials, no outbox allowed by
``PLP_OUTBOX_CHANNELS``): saving one is a 422 naming each place and the variables to set. In any mode, a message
the outbox keeps reached nobody: it ends ``outbox``, never ``delivered`` nor ``sent``, in the counts, the deliveries
and the annual evaluation.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from config import Environment, Settings
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.models import ActorIn, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import get_json, member_rows, post_json, run_queued

EMAIL_ONLY = {
    "urgent": {"channels": ["email"], "ttl_seconds": 3600},
    "non_urgent": {"channels": ["email"], "ttl_seconds": 3600},
    "police_feedback": {"channels": ["email"], "ttl_seconds": 3600},
}
TWILIO = "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"


def production(settings: Settings, **update: Any) -> Settings:
    """The tests' settings in production: a secret key, the outbox allowed for e-mail only."""
    values = {
        "environment": Environment.PRODUCTION,
        "secret_key": SecretStr("api-production-tests-secret-key-0123"),
        "outbox_channels": ("email",),
    }
    return settings.model_copy(update=values | update)


@pytest.fixture
def production_runtime(runtime: Runtime) -> Iterator[Runtime]:
    rt = Runtime(settings=production(runtime.settings), redis_url=runtime.redis_url)
    assert rt.settings.production_faults() == []
    yield rt
    rt.close()


@pytest.fixture
async def admin(production_runtime: Runtime) -> AsyncIterator[tuple[TestClient, dict[str, str]]]:
    """A client of the API in production, and the admin's headers."""
    async with TestClient(TestServer(create_app(production_runtime))) as client:
        _, token = await create_actor(client.server.app[SERVICES].store, ActorIn(name="Admin", role=Role.ADMIN))
        yield client, {"Authorization": f"Bearer {token}"}


def plp_body(charter: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"name": "PLP Flagey", "commune": "Ixelles", "police_zone": "5340"}
    return body if charter is None else body | {"charter": charter}


async def test_a_plp_whose_charter_names_a_channel_without_credentials_is_refused(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    """The default charter names SMS, Telegram and calls, none configured nor allowed the outbox: a 422 names each
    place in the charter, the channel and the variables that would enable it; nothing is created."""
    client, headers = admin
    problem = await post_json(client, "/v1/plps", plp_body(), headers=headers, expect=422)
    faults = {e["field"]: e["reason"] for e in problem["errors"]}
    assert set(faults) == {
        "body.charter.urgent.channels[0]",  # sms
        "body.charter.urgent.channels[1]",  # telegram
        "body.charter.urgent.channels[3]",  # voice; [2] is e-mail, allowed the outbox
        "body.charter.non_urgent.channels[1]",
        "body.charter.non_urgent.channels[2]",
        "body.charter.police_feedback.channels[1]",
    }
    assert faults["body.charter.urgent.channels[0]"].startswith(f"sms cannot be sent by this service: {TWILIO}")
    assert faults["body.charter.urgent.channels[0]"].endswith("or allow the outbox with PLP_OUTBOX_CHANNELS=sms")
    assert "TELEGRAM_BOT_TOKEN" in faults["body.charter.urgent.channels[1]"]
    assert "TWILIO_VOICE_FROM" in faults["body.charter.urgent.channels[3]"]
    assert "body.charter.urgent.channels[0]: sms cannot be sent" in problem["detail"]
    assert (await get_json(client, "/v1/plps", headers=headers))["items"] == []


async def test_a_charter_change_naming_a_channel_without_credentials_is_refused(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    """A charter of e-mail alone is saved; adding SMS to it, or an escalation by call, is a 422 and changes nothing."""
    client, headers = admin
    plp = await post_json(client, "/v1/plps", plp_body(EMAIL_ONLY), headers=headers, expect=201)
    path = f"/v1/plps/{plp['id']}/charter"
    with_sms = EMAIL_ONLY | {"urgent": {"channels": ["email", "sms"], "ttl_seconds": 3600}}
    response = await client.put(path, json=with_sms, headers=headers)
    assert response.status == 422
    problem = await response.json()
    assert [e["field"] for e in problem["errors"]] == ["body.urgent.channels[1]"]
    escalating = EMAIL_ONLY | {"urgent": {"channels": ["email"], "ttl_seconds": 3600, "escalate_after_seconds": 300}}
    response = await client.put(path, json=escalating, headers=headers)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["body.urgent.escalate_to"]
    kept = await get_json(client, f"/v1/plps/{plp['id']}", headers=headers)
    assert kept["charter"]["urgent"]["channels"] == ["email"]
    assert kept["charter"]["urgent"]["escalate_after_seconds"] is None


async def test_a_charter_preview_naming_a_channel_without_credentials_is_refused_naming_it(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    """The console previews a charter before saving it: the preview gives the same 422, naming the place, the
    channel and what would enable it."""
    client, headers = admin
    plp = await post_json(client, "/v1/plps", plp_body(EMAIL_ONLY), headers=headers, expect=201)
    with_sms = EMAIL_ONLY | {"non_urgent": {"channels": ["email", "sms"], "ttl_seconds": 3600}}
    problem = await post_json(client, f"/v1/plps/{plp['id']}/charter/preview", with_sms, headers=headers, expect=422)
    assert [e["field"] for e in problem["errors"]] == ["body.non_urgent.channels[1]"]
    assert "non_urgent.channels[1]: sms cannot be sent by this service" in problem["detail"]


async def test_a_channel_with_credentials_or_the_outbox_allowed_may_be_named(runtime: Runtime) -> None:
    """With Twilio's account and senders, and the outbox allowed for Telegram, the default charter is accepted."""
    settings = production(
        runtime.settings,
        outbox_channels=("email", "telegram"),
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token=SecretStr("token"),
        twilio_sms_from=("+3225550001",),
        twilio_voice_from="+3225550002",
    )
    rt = Runtime(settings=settings, redis_url=runtime.redis_url)
    async with TestClient(TestServer(create_app(rt))) as client:
        _, token = await create_actor(client.server.app[SERVICES].store, ActorIn(name="Admin", role=Role.ADMIN))
        await post_json(client, "/v1/plps", plp_body(), headers={"Authorization": f"Bearer {token}"}, expect=201)
    rt.close()


async def test_development_accepts_any_channel(client: TestClient, cast: Cast) -> None:
    """In development (plp dev, the tests) the outbox stands in for every channel: the default charter is saved."""
    await post_json(client, "/v1/plps", plp_body(), headers=cast.auth("admin"), expect=201)


# -- the outbox, in every mode ----------------------------------------------------------------------------------


async def test_outbox_messages_are_never_counted_as_delivered(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """An urgent alert to three members on SMS and e-mail, no credentials: each of its six messages ends ``outbox``
    in the alert's counts (all, per channel) and its deliveries, none ``sent`` or ``delivered``; the alert completes,
    having reached nobody."""
    rows = member_rows(3)
    await post_json(
        client, f"/v1/plps/{cast.plp_a}/members/import", {"members": rows}, headers=cast.auth("admin"), expect=200
    )
    charter = EMAIL_ONLY | {"urgent": {"channels": ["sms", "email"], "ttl_seconds": 3600}}
    response = await client.put(f"/v1/plps/{cast.plp_a}/charter", json=charter, headers=cast.auth("admin"))
    assert response.status == 200
    urgent = {"urgency": "urgent", "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": "Cambriolage"}}
    alert = await post_json(client, "/v1/alerts", urgent, headers=cast.auth("police_a"), expect=202)
    await run_queued(runtime)

    seen = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    counts = seen["counts"]
    assert seen["status"] == "completed"
    assert counts["total"] == counts["by_status"]["outbox"] == 6
    assert counts["by_status"]["delivered"] == counts["by_status"]["sent"] == 0
    assert {ch: (c["outbox"], c["delivered"], c["sent"]) for ch, c in counts["by_channel"].items()} == {
        "sms": (3, 0, 0),
        "email": (3, 0, 0),
    }
    base = f"/v1/alerts/{alert['id']}/deliveries"
    for status in ("delivered", "sent"):
        assert (await get_json(client, f"{base}?status={status}", headers=cast.auth("police_a")))["items"] == []
    kept = (await get_json(client, f"{base}?status=outbox", headers=cast.auth("police_a")))["items"]
    assert len(kept) == 6 and all("delivered" not in d["status_times"] for d in kept)
    audience = await get_json(client, f"/v1/alerts/{alert['id']}/audience", headers=cast.auth("coordinator_a"))
    assert (audience["members"], audience["reached"]) == (3, 0)


async def test_the_evaluation_shows_members_only_the_outbox_had_as_not_reached(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """The annual evaluation counts the members whose messages only went to the outbox apart, as not reached, in
    its JSON, CSV and Markdown forms."""
    await post_json(
        client, f"/v1/plps/{cast.plp_a}/members/import", {"members": member_rows(2)}, headers=cast.auth("admin"),
        expect=200,
    )  # fmt: skip
    urgent = {"urgency": "urgent", "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": "Cambriolage"}}
    await post_json(client, "/v1/alerts", urgent, headers=cast.auth("police_a"), expect=202)
    await run_queued(runtime)
    year = datetime.now(ZoneInfo("Europe/Brussels")).year
    path = f"/v1/plps/{cast.plp_a}/evaluation?year={year}"

    reach = (await get_json(client, path, headers=cast.auth("coordinator_a")))["reach"]["urgent"]
    assert (reach["members_targeted"], reach["members_reached"], reach["members_outbox"], reach["reach"]) == (
        2,
        0,
        2,
        0.0,
    )
    response = await client.get(path + "&format=csv", headers=cast.auth("coordinator_a"))
    rows = {row[0]: row[1] for row in csv.reader(io.StringIO(await response.text())) if len(row) > 1}
    assert (rows["reach.urgent.members_reached"], rows["reach.urgent.members_outbox"]) == ("0", "2")
    response = await client.get(path + "&format=md", headers=cast.auth("coordinator_a"))
    assert "| not reached: only in the local outbox | 2 | 0 |" in await response.text()
