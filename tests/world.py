"""A whole neighbourhood for end-to-end tests: the service, driven by the real vendor libraries,
talking to simulators of Twilio, an SMTP server and the Telegram Bot API on loopback.

``open_world`` builds it: a PLP whose urgent plan uses every channel, its police officer,
coordinator and admin, and four members who between them use all the channels, in French,
Dutch, German and English (two of them linked to Telegram through their personal link).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.models import ActorIn, Language, Role
from dispatcher.core.wording import Words, say
from dispatcher.people.accounts import create_actor
from dispatcher.storage.runtime import Runtime
from tests.simulators.smtp import SmtpSimulator
from tests.simulators.telegram import TelegramSimulator
from tests.simulators.twilio import TwilioSimulator
from tests.support import free_port, get_json, post_json, run_queued

ACCOUNT, AUTH_TOKEN = "AC" + "7" * 32, "twilio-auth-token-e2e"
BOT_TOKEN, WEBHOOK_SECRET = "4242:bot-token-e2e", "telegram-webhook-secret-e2e"
SMS_FROM, VOICE_FROM = "+3225550001", "+3225550009"
TEXTS = {
    "fr": "Cambriolage rue du Parc il y a 10 minutes, voiture grise 1-ABC-123.",
    "nl": "Inbraak in de Parkstraat 10 minuten geleden, grijze wagen 1-ABC-123.",
    "de": "Einbruch in der Parkstraße vor 10 Minuten, grauer Wagen 1-ABC-123.",
    "en": "Burglary in Park Street ten minutes ago, grey car 1-ABC-123.",
}
EVERY_CHANNEL = {
    "urgent": {"channels": ["sms", "email", "telegram", "voice"], "ttl_seconds": 3600},
    # no quiet hours: what the tests send must not depend on the time of day they run
    "police_feedback": {"channels": ["email", "telegram"], "mode": "first_that_works", "ttl_seconds": 86400},
}
PEOPLE = {
    "anne": {"name": "Anne Dubois", "phone": "0470 11 11 11", "email": "anne@example.org", "language": "fr"},
    "piet": {"name": "Piet Janssens", "phone": "0470 22 22 22", "language": "nl"},
    "lea": {"name": "Lea Schmitz", "email": "lea@example.org", "language": "de"},
    "john": {"name": "John Smith", "phone": "+32 470 44 44 44", "email": "john@example.org", "language": "en"},
}
TELEGRAM_CHATS = {"piet": 1001, "john": 1002}


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    twilio: TwilioSimulator
    smtp: SmtpSimulator
    telegram: TelegramSimulator
    tokens: dict[str, str]
    plp: str
    members: dict[str, dict[str, Any]]
    base: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    @property
    def telegram_webhook(self) -> str:
        return f"{self.base}/v1/webhooks/telegram"

    @property
    def sms_webhook(self) -> str:
        return f"{self.base}/v1/webhooks/twilio/sms"

    async def alert(self, body: dict[str, Any] | None = None, *, who: str = "police") -> dict[str, Any]:
        payload = body or {"urgency": "urgent", "category": "burglary", "plp_ids": [self.plp], "texts": TEXTS}
        return dict(await post_json(self.client, "/v1/alerts", payload, headers=self.auth(who), expect=202))

    async def deliveries(self, alert_id: str) -> dict[tuple[str, str], dict[str, Any]]:
        page = await get_json(self.client, f"/v1/alerts/{alert_id}/deliveries", headers=self.auth("admin"))
        names = {m["id"]: name for name, m in self.members.items()}
        return {(d["channel"], names[d["member_id"]]): d for d in page["items"]}

    async def answer_to(self, chat_id: int) -> str:
        """Run the queued jobs (the answers to members among them); the text the bot last sent to the chat."""
        await run_queued(self.runtime)
        sent = [c for c in self.telegram.calls("sendMessage") if int(c.params["chat_id"]) == chat_id]
        assert sent and sent[-1].status == 200, f"no answer reached chat {chat_id}"
        return str(sent[-1].params["text"])

    def button_to(self, chat_id: int) -> str:
        """The callback data of the "received" button on the last alert message sent to the chat."""
        sent = [c for c in self.telegram.calls("sendMessage") if int(c.params["chat_id"]) == chat_id]
        return callback_data(next(c for c in reversed(sent) if "reply_markup" in c.params).params["reply_markup"])

    async def member(self, name: str) -> dict[str, Any]:
        path = f"/v1/plps/{self.plp}/members/{self.members[name]['id']}"
        return dict(await get_json(self.client, path, headers=self.auth("coordinator")))

    async def enroll(self, name: str, body: dict[str, Any], *, telegram_chat: int | None = None) -> dict[str, Any]:
        """Add a member through the API (and link their Telegram chat through their personal link)."""
        self.members[name] = await post_json(
            self.client, f"/v1/plps/{self.plp}/members", body, headers=self.auth("coordinator"), expect=201
        )
        if telegram_chat is not None:
            link = await self.telegram_link(name)
            assert link["url"].startswith("https://t.me/plp_alert_bot?start=")
            status, answer = await self.telegram.member_sends(
                self.telegram_webhook, telegram_chat, link["start_command"], secret=WEBHOOK_SECRET
            )
            assert status == 200 and not answer, answer  # the confirmation goes out in its turn, from a worker
            assert await self.answer_to(telegram_chat) == say(
                Words.TELEGRAM_LINKED, Language(self.members[name]["language"])
            )
            self.members[name] = await self.member(name)
            assert self.members[name]["telegram_chat_id"] == telegram_chat
        return self.members[name]

    async def telegram_link(self, name: str) -> dict[str, Any]:
        """Have the coordinator issue the member's personal Telegram link."""
        path = f"/v1/plps/{self.plp}/members/{self.members[name]['id']}/telegram-link"
        return dict(await post_json(self.client, path, None, headers=self.auth("coordinator"), expect=201))


def world_settings(redis_url: str, data_dir: Path, base: str, **overrides: Any) -> Settings:
    """The settings of a world whose vendors are the simulators at ``overrides``' URLs."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "key_prefix": "plptest:",
        "queue_prefix": "plptest",
        "data_dir": data_dir,
        "public_base_url": base,
        "twilio_account_sid": ACCOUNT,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_sms_from": (SMS_FROM,),
        "twilio_voice_from": VOICE_FROM,
        "smtp_security": "none",
        "smtp_from": "PLP alerts <alerts@plp.example>",
        "telegram_bot_token": BOT_TOKEN,
        "telegram_bot_username": "plp_alert_bot",
        "telegram_webhook_secret": WEBHOOK_SECRET,
        "limit_voice_per_second": 100,  # provider pacing has its own tests; here it would only slow them
    }
    return Settings(**(values | overrides))


@asynccontextmanager
async def open_world(
    redis_url: str,
    data_dir: Path,
    *,
    auth_token: str = AUTH_TOKEN,
    bot_token: str = BOT_TOKEN,
    smtp_credentials: tuple[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[World]:
    """The neighbourhood on a flushed Redis database, flushed again afterwards.

    ``auth_token`` and ``bot_token``: Twilio's and Telegram's credentials; ``smtp_credentials``:
    the SMTP server asks for this login, and the service uses it; ``overrides`` change other settings.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    login = {"smtp_username": smtp_credentials[0], "smtp_password": smtp_credentials[1]} if smtp_credentials else {}
    async with (
        TwilioSimulator(account_sid=ACCOUNT, auth_token=auth_token) as twilio,
        SmtpSimulator(credentials=smtp_credentials) as smtp,
        TelegramSimulator(token=bot_token) as telegram,
    ):
        settings = world_settings(
            redis_url,
            data_dir,
            base,
            twilio_auth_token=auth_token,
            twilio_api_base_url=twilio.base_url,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            telegram_bot_token=bot_token,
            telegram_api_base_url=telegram.base_url,
            **login,
            **overrides,
        )
        runtime = Runtime.from_settings(settings)
        runtime.rq_connection.flushdb()
        try:
            async with TestServer(create_app(runtime), port=port) as server, TestClient(server) as client:
                yield await _neighbourhood(client, runtime, twilio, smtp, telegram, base)
        finally:
            runtime.rq_connection.flushdb()
            runtime.close()


async def _neighbourhood(
    client: TestClient,
    runtime: Runtime,
    twilio: TwilioSimulator,
    smtp: SmtpSimulator,
    telegram: TelegramSimulator,
    base: str,
) -> World:
    store = client.server.app[SERVICES].store
    _, admin = await create_actor(store, ActorIn(name="Admin", role=Role.ADMIN))
    _, police = await create_actor(store, ActorIn(name="Inspecteur", role=Role.POLICE, police_zone="5340"))
    headers = {"Authorization": f"Bearer {admin}"}
    plp_body = {"name": "PLP Parc", "commune": "Uccle", "police_zone": "5340", "charter": EVERY_CHANNEL}
    plp = (
        await post_json(
            client, "/v1/plps", {**plp_body, "reply_to": ["coordination@plp.example"]}, headers=headers, expect=201
        )
    )["id"]
    _, coordinator = await create_actor(store, ActorIn(name="Coordinatrice", role=Role.COORDINATOR, plp_ids=[plp]))
    world = World(
        client,
        runtime,
        twilio,
        smtp,
        telegram,
        {"admin": admin, "police": police, "coordinator": coordinator},
        plp,
        {},
        base,
    )
    for name, body in PEOPLE.items():
        await world.enroll(name, body, telegram_chat=TELEGRAM_CHATS.get(name))
    return world


def callback_data(markup: Any) -> str:
    """The data of the first button of a Telegram message's inline keyboard."""
    data = json.loads(markup) if isinstance(markup, str) else markup
    return str(data["inline_keyboard"][0][0]["callback_data"])


def link_in(mail: Any, route: str) -> str:
    """The first link to ``route`` (``/v1/r/``: receipt, ``/v1/x/``: the member's data) in a mail's text part."""
    found = re.search(rf"https?://\S+{re.escape(route)}\S+", mail.get_body(("plain",)).get_content())
    assert found is not None, f"no {route} link in the mail"
    return found.group(0)
