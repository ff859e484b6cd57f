"""Each vendor in its own room: the dispatcher reaches channels only through their common protocol, a new
vendor is one package and one registry line (shown with pigeon post, a channel of the tests alone), and
what the service says of a provider (its metrics' label, its limits) comes from its class."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from channels import REGISTRY, build_channels, open_channels, register, unregister
from channels.outbox import OutboxChannel
from channels.telegram import TelegramChannel
from channels.whatsapp import WhatsAppChannel
from config import Settings
from dispatcher.api.app import create_app
from dispatcher.core.models import ChannelName, Charter, Contact, Language
from dispatcher.core.wording import Words, say
from dispatcher.operations.metrics import SendAttempt, SendOutcome, render
from dispatcher.operations.queues import ProviderLimit, provider_limits
from dispatcher.storage.limits import chat_limit_name, whatsapp_user_limit_name
from dispatcher.storage.runtime import Runtime
from tests.channels.pigeon import LOFT, RING, PigeonChannel
from tests.conftest import Cast
from tests.support import get_json, post_json, run_queued

ROOT = Path(__file__).resolve().parents[2]
#: The libraries that talk to one vendor each, and the room each belongs in.
VENDOR_LIBRARIES = {"twilio": "channels/twilio", "telegram": "channels/telegram", "aiosmtplib": "channels/email"}
#: What of ``channels`` the dispatcher may import: the protocol, the webhooks' events, the registry.
COMMON = {"channels", "channels.base", "channels.inbound", "channels.registry"}
#: Commands that set a vendor's own account up (``plp telegram-webhook``), and the room they reach into.
SET_UP_COMMANDS = {("dispatcher/cli/service.py", "channels.telegram")}
PHONE = "+32470555555"
TEXT = "Cambriolage rue du Parc, voiture grise"


def imports(path: Path) -> set[str]:
    """The absolute modules a file imports, wherever in it (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# -- the rooms ----------------------------------------------------------------------------------


def test_no_module_of_the_dispatcher_imports_a_vendor_library() -> None:
    """No module under dispatcher/ imports twilio, python-telegram-bot or aiosmtplib, at the top or in a function."""
    offending = [
        f"{relative(path)} imports {name}"
        for path in modules("dispatcher")
        for name in imports(path)
        if name.split(".")[0] in VENDOR_LIBRARIES
    ]
    assert offending == []


def test_each_vendor_library_is_imported_in_its_room_only() -> None:
    """Twilio's library is imported under channels/twilio only, Telegram's under channels/telegram, aiosmtplib
    under channels/email; and each of them is imported there (the list above is not stale)."""
    rooms: dict[str, set[str]] = {library: set() for library in VENDOR_LIBRARIES}
    for path in modules("channels") + modules("dispatcher") + modules("workers") + modules("config"):
        for name in imports(path):
            if (library := name.split(".")[0]) in VENDOR_LIBRARIES:
                rooms[library].add(relative(path.parent))
    assert rooms == {library: {room} for library, room in VENDOR_LIBRARIES.items()}


def test_the_dispatcher_sees_channels_only_through_their_common_modules() -> None:
    """dispatcher/ imports the Channel protocol, the inbound events and the registry, never a vendor's room (but for
    the command that registers the Telegram bot's webhook with Telegram)."""
    reaching = {
        (relative(path), name)
        for path in modules("dispatcher")
        for name in imports(path)
        if name.split(".")[0] == "channels" and name not in COMMON
    }
    assert reaching == SET_UP_COMMANDS


# -- provider names, from the classes ---------------------------------------------------------------

CONFIGURED = {
    "twilio_account_sid": "AC" + "1" * 32,
    "twilio_auth_token": "t",
    "twilio_sms_from": ("+3225550001",),
    "twilio_voice_from": "+3225550002",
    "smtp_host": "127.0.0.1",
    "smtp_from": "alerts@plp.example",
    "telegram_bot_token": "1:abc",
    "whatsapp_token": "wa",
    "whatsapp_phone_id": "1001",
}


async def test_the_metrics_label_each_provider_as_its_class_names_it(tmp_path: Path) -> None:
    """A send's ``provider`` label is its channel class's ``provider``: the labels of every channel stay twilio,
    smtp, telegram, whatsapp and, for the outbox, outbox."""
    configured = build_channels(Settings(**CONFIGURED))  # type: ignore[arg-type]
    outbox = OutboxChannel("sms", path=tmp_path / "outbox.jsonl")
    labels = {name.value: SendAttempt.of(channel, SendOutcome.OK, 0.1).provider for name, channel in configured.items()}
    assert labels == {
        "sms": "twilio",
        "voice": "twilio",
        "email": "smtp",
        "telegram": "telegram",
        "whatsapp": "whatsapp",
    }
    assert {name.value: cls.provider for name, cls in REGISTRY.items()} == labels
    assert SendAttempt.of(outbox, SendOutcome.OK, 0.1).provider == "outbox"
    for channel in configured.values():
        await channel.close()


def test_the_provider_limits_are_the_rates_each_class_declares() -> None:
    """``plp status``'s provider limits list, for each configured channel, the rates its class declares."""
    limits = provider_limits(Settings(**CONFIGURED))  # type: ignore[arg-type]
    assert [(limit.channel, limit.name) for limit in limits] == [
        ("sms", "twilio-sms"),
        ("email", "smtp"),
        ("telegram", "telegram"),
        ("telegram", "telegram-chat"),
        ("voice", "twilio-voice"),
        ("whatsapp", "whatsapp"),
        ("whatsapp", "whatsapp-user"),
    ]
    assert limits[0].detail == "10/s per sender × 1 sender(s)"


def test_erasing_a_member_deletes_the_chat_meter_telegram_sends_under() -> None:
    """The per-chat rate the Telegram class declares is the meter erasure deletes with the member's chat."""
    [_, chat] = TelegramChannel.rates(Settings(**CONFIGURED), "4242")  # type: ignore[arg-type]
    assert chat.name == chat_limit_name("4242")


def test_erasing_a_member_deletes_the_whatsapp_pair_meter_of_their_number() -> None:
    """The per-user rate the WhatsApp class declares is the meter erasure deletes with the member's number."""
    [_, user] = WhatsAppChannel.rates(Settings(**CONFIGURED), "+32470123456")  # type: ignore[arg-type]
    assert user.name == whatsapp_user_limit_name("+32470123456")


# -- a new vendor: one package, one registry line --------------------------------------------------


@pytest.fixture
def pigeon() -> Iterator[ChannelName]:
    """Pigeon post, served for the test by one registry line; unregistered after it."""
    LOFT.carried.clear()
    LOFT.readied = 0
    name = register(PigeonChannel)
    yield name
    unregister(name)
    LOFT.carried.clear()


@pytest.fixture
async def client(pigeon: ChannelName, runtime: Runtime) -> AsyncIterator[TestClient]:
    """The API, made once pigeon post is registered (its webhook is then one of its routes)."""
    async with TestClient(TestServer(create_app(runtime))) as test_client:
        yield test_client


async def _alert_by_pigeon(client: TestClient, cast: Cast, runtime: Runtime) -> tuple[dict[str, Any], str]:
    """A charter whose urgent plan names pigeon post, a member with a phone, an urgent alert, its sends run: the
    alert and the delivery id the loft carried."""
    charter = {"urgent": {"channels": ["pigeon", "sms"], "mode": "first_that_works", "ttl_seconds": 3600}}
    response = await client.put(f"/v1/plps/{cast.plp_a}/charter", json=charter, headers=cast.auth("admin"))
    assert response.status == 200, await response.text()
    member = {"name": "Anne Dubois", "phone": "0470 55 55 55", "language": "fr"}
    path = f"/v1/plps/{cast.plp_a}/members"
    await post_json(client, path, member, headers=cast.auth("coordinator_a"), expect=201)
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": TEXT}}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    await run_queued(runtime)
    [carried] = LOFT.carried
    return alert, carried.delivery_id


async def _delivery(client: TestClient, cast: Cast, alert: dict[str, Any]) -> dict[str, Any]:
    page = await get_json(client, f"/v1/alerts/{alert['id']}/deliveries", headers=cast.auth("admin"))
    [delivery] = page["items"]
    return dict(delivery)


async def test_a_worker_readies_each_vendor_s_client_when_it_opens_its_channels_before_any_send(
    pigeon: ChannelName,
) -> None:
    """Opening the channels prepares each (``Channel.prepare``): a send departs under its limit just before its
    request, so a client built by the first send would make it arrive late, on top of the next one."""
    async with open_channels(Settings()) as opened:
        assert LOFT.readied == 1 and LOFT.carried == []
        assert isinstance(opened[pigeon], PigeonChannel)


def test_a_registered_vendor_brings_its_channel_name(pigeon: ChannelName) -> None:
    """Registered, pigeon post's name is a channel name that reaches the member's phone, which a charter may name;
    the four channels of the service keep their order before it."""
    assert ChannelName("pigeon") is pigeon and pigeon.contact is Contact.PHONE
    assert [name.value for name in ChannelName] == ["sms", "email", "telegram", "voice", "whatsapp", "pigeon"]
    assert Charter.model_validate({"urgent": {"channels": ["pigeon"], "ttl_seconds": 600}}).urgent.channels == [pigeon]


def test_unregistered_it_is_no_channel_any_more(pigeon: ChannelName) -> None:
    """Once unregistered, the name is refused again and the registry holds the service's four channels."""
    unregister(pigeon)
    with pytest.raises(ValueError):
        ChannelName("pigeon")
    assert [name.value for name in REGISTRY] == ["sms", "voice", "email", "telegram", "whatsapp"]
    register(PigeonChannel)  # for the fixture to undo


async def test_a_charter_names_the_new_channel_and_an_alert_reaches_it(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """An urgent alert to a PLP whose charter names pigeon post goes to the member's phone by pigeon, composed as a
    short text (the sender's words, then the hint that adds no segment), under the rate its class declares;
    the delivery is sent, with the loft's id, and counted under its provider's name."""
    alert, delivery_id = await _alert_by_pigeon(client, cast, runtime)
    [carried] = LOFT.carried
    assert (carried.channel.value, carried.address, carried.language) == ("pigeon", PHONE, Language.FR)
    assert carried.text.startswith(TEXT) and "OK" in carried.text
    delivery = await _delivery(client, cast, alert)
    assert (delivery["id"], delivery["channel"], delivery["status"]) == (delivery_id, "pigeon", "sent")
    assert delivery["provider_id"] == "pigeon-1"
    scraped = render(runtime).decode()
    assert 'plp_provider_sends_total{channel="pigeon",outcome="ok",provider="pigeon-post"} 1.0' in scraped
    assert ProviderLimit("pigeon", "pigeon-loft", 100.0, "pigeons leaving the loft") in provider_limits(
        runtime.settings
    )


async def test_its_webhook_reaches_its_parser_and_moves_the_delivery(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """The loft's news, posted to /v1/webhooks/pigeon with its ring, is parsed by pigeon post's inbound class and
    applied by the dispatcher: a landing delivers the delivery, a note "OK" from the member acknowledges it and is
    answered in the loft's format; news without the ring is refused (403) and changes nothing."""
    alert, delivery_id = await _alert_by_pigeon(client, cast, runtime)
    landed = {"kind": "landed", "delivery": delivery_id, "pigeon": "pigeon-1"}
    refused = await client.post("/v1/webhooks/pigeon", json=landed)
    assert refused.status == 403
    assert (await _delivery(client, cast, alert))["status"] == "sent"

    ring = {"X-Pigeon-Ring": RING}
    answered = await client.post("/v1/webhooks/pigeon", json=landed, headers=ring)
    assert (answered.status, await answered.json()) == (200, {})
    assert (await _delivery(client, cast, alert))["status"] == "delivered"

    note = {"kind": "note", "note": "n-1", "from": PHONE, "text": "OK"}
    answered = await client.post("/v1/webhooks/pigeon", json=note, headers=ring)
    assert (answered.status, await answered.json()) == (200, {"reply": say(Words.ACK_THANKS, Language.FR)})
    assert (await _delivery(client, cast, alert))["acknowledged_via"] == "pigeon"


async def test_its_webhook_is_in_the_api_document(client: TestClient) -> None:
    """The API's document lists the new vendor's hook as it declares it, public, among the webhooks."""
    document = await (await client.get("/v1/openapi.json")).json()
    operation = document["paths"]["/v1/webhooks/pigeon"]["post"]
    assert (operation["operationId"], operation["tags"], operation["security"]) == ("pigeon_news", ["webhooks"], [])
    assert "pigeon" in document["components"]["schemas"]["ChannelName"]["enum"]
