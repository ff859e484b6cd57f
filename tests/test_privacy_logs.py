"""Logs never show personal data or secrets in clear: everything logged during a full run is read back.

Logging is configured as the service configures it (``configure_logging``), at DEBUG, in JSON
and in console format, into a captured stream; with the vendor libraries' own loggers as the
service sets them, and turned up to DEBUG, as an operator chasing a problem might. Then the
neighbourhood of ``tests.world`` lives through an alert on every channel (its text carrying a
witness line's number and address), with a permanent Twilio refusal that names the member's
number, a Twilio 500, a chat that blocked the bot, acknowledgements, replies, a STOP, a member
reading their data and one member erased. Nothing logged may hold a phone number (in any
format), an e-mail address, a bearer token, the bot token, the Twilio auth token, the SMTP
password, the Telegram webhook secret or a member's signed link.
"""

from __future__ import annotations

import base64
import gc
import io
import logging
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from config import LogFormat, Settings
from dispatcher.core.logging import configure_logging
from tests.simulators.twilio import Failure
from tests.support import run_queued
from tests.world import ACCOUNT, PEOPLE, SMS_FROM, TEXTS, WEBHOOK_SECRET, World, link_in, open_world

AUTH_TOKEN = "f3a9c1e7b2d84f6a9e0c5b7d1a2e3f4c"  # Twilio's are 32 hex digits
BOT_TOKEN = "7123456789:AAH3k9sQ_xY2vW8pLmN4rT6uZ1bC0dEfGhI"  # Telegram's: bot id, colon, 35 characters
SMTP_LOGIN = ("plp-relay", "s3cr3t-SMTP-pa55word!")
PHONES = {"anne": "+32470111111", "piet": "+32470222222", "john": "+32470444444", "witness line": "+3225556677"}
#: Contact points the police put in an alert's text (python-telegram-bot at DEBUG logs the texts it sends).
WITNESSES = "Witnesses: 02 555 66 77, witnesses@police.example"
VENDOR_LOGGERS = ("twilio", "httpx", "httpcore", "telegram", "aiosmtplib", "aiohttp", "asyncio", "rq", "redis")
SIMULATOR_LOGGERS = ("mail.log", "mail.debug")  # aiosmtpd, the SMTP simulator
NAMES = tuple(person["name"] for person in PEOPLE.values())
CHAT_ID = re.compile(r"chat_id\W{1,4}\d|'chat': \{'id': \d")
EMAIL_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
BEARER = re.compile(r"plp_[A-Za-z0-9_-]{20,}")


def uncache_loggers() -> None:
    """Unbind the module loggers that an earlier ``configure_logging`` in this process (which caches
    loggers on first use) bound for good to its stream and level, so that they follow the configuration."""
    proxy = type(structlog.get_logger())
    for found in gc.get_objects():
        if isinstance(found, proxy):
            vars(found).pop("bind", None)  # the cached bind, set on the instance; the class's looks up the config


@dataclass(frozen=True)
class Capture:
    stream: io.StringIO
    vendors_turned_up: bool


@pytest.fixture(
    params=[
        (LogFormat.JSON, False),
        (LogFormat.CONSOLE, False),
        (LogFormat.JSON, True),
        (LogFormat.CONSOLE, True),
    ],
    ids=["json", "console", "json-vendors-debug", "console-vendors-debug"],
)
def captured(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    """Everything logged, structlog events and standard library records alike, as the service renders them;
    with the vendor libraries' loggers as the service sets them, or turned up to DEBUG."""
    log_format, turned_up = request.param
    stream = io.StringIO()
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in (*VENDOR_LOGGERS, *SIMULATOR_LOGGERS)}
    monkeypatch.setattr(sys, "stderr", stream)  # configure_logging writes to the stderr it finds
    uncache_loggers()
    configure_logging(Settings(redis_url=None, log_level="DEBUG", log_format=log_format))
    # The service caches each module's logger on first use; here that would bind them to this
    # stream for the tests that follow.
    structlog.configure(cache_logger_on_first_use=False)
    for name in VENDOR_LOGGERS if turned_up else ():
        logging.getLogger(name).setLevel(logging.DEBUG)
    for name in SIMULATOR_LOGGERS:  # the simulators stand for the vendors' servers: not the service's logs
        logging.getLogger(name).setLevel(logging.WARNING)
    yield Capture(stream, turned_up)
    structlog.configure(**saved)
    uncache_loggers()
    root.handlers[:], root.level = handlers, level
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)


@pytest.fixture
async def world(redis_url: str, tmp_path: Path, captured: Capture) -> AsyncIterator[World]:
    async with open_world(
        redis_url, tmp_path, auth_token=AUTH_TOKEN, bot_token=BOT_TOKEN, smtp_credentials=SMTP_LOGIN
    ) as opened:
        yield opened


async def a_full_run(world: World) -> list[str]:
    """An alert to everyone with failures of every kind, then what members send back; returns the
    signed links members were sent."""
    refusal = (
        f"Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {PHONES['anne']}"
    )
    world.twilio.failures[PHONES["anne"]] = Failure(400, 21408, refusal)  # permanent, her number in the text
    world.twilio.failures[PHONES["piet"]] = Failure(500, 20500, "Internal Server Error")  # transient
    world.telegram.blocked.add(1001)  # Piet blocked the bot
    texts = {language: f"{text} {WITNESSES}" for language, text in TEXTS.items()}
    alert = await world.alert({"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp], "texts": texts})
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()

    assert (await world.twilio.incoming_sms(world.sms_webhook, PHONES["john"], SMS_FROM, "OK"))[0] == 200
    assert (await world.twilio.incoming_sms(world.sms_webhook, PHONES["anne"], SMS_FROM, "STOP"))[0] == 200
    assert (await world.twilio.incoming_sms(world.sms_webhook, "+32499887766", SMS_FROM, "hello?"))[0] == 200
    data = world.button_to(1002)
    assert (await world.telegram.member_presses(world.telegram_webhook, 1002, data, 1, secret=WEBHOOK_SECRET))[0] == 200
    seen = "Grey car, plate 1-ABC-123, call me on 0470 44 44 44 or john@example.org"
    assert (await world.telegram.member_sends(world.telegram_webhook, 1002, seen, secret=WEBHOOK_SECRET))[0] == 200
    await run_queued(world.runtime)  # the answers to the members, sent by a worker

    mail = next(m.message for m in world.smtp.messages if m.message["To"] == PEOPLE["lea"]["email"])
    links = [link_in(mail, "/v1/r/"), link_in(mail, "/v1/x/"), mail["List-Unsubscribe"].strip("<>")]
    receipt = links[0].removeprefix(world.base)
    assert (await world.client.post(receipt, data={"action": "feedback", "text": "Zwei Männer"})).status == 200
    assert (await world.client.get(links[1].removeprefix(world.base))).status == 200
    wrong = {"Authorization": "Bearer plp_" + "x" * 43}
    assert (await world.client.get(f"/v1/alerts/{alert['id']}", headers=wrong)).status == 401
    lea = f"/v1/plps/{world.plp}/members/{world.members['lea']['id']}"
    assert (await world.client.delete(lea, headers=world.auth("coordinator"))).status == 204
    return links


def assert_nothing_in_clear(output: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in output, f"{secret[:12]}... is in the logs"
    digits_only = re.sub(r"[ ./%-]|2B", "", output)  # phone numbers however written, URL-encoded too
    for phone in PHONES.values():
        assert phone.removeprefix("+32") not in digits_only, f"{phone} is in the logs"
    assert EMAIL_ADDRESS.findall(output) == []
    assert BEARER.findall(output) == []


async def test_a_full_run_logs_no_contact_point_token_or_credential(world: World, captured: Capture) -> None:
    """Alert, receipts, replies, errors and an erasure: every line logged is free of contact points, tokens
    and credentials, and of Telegram chat ids even with the vendors' loggers turned up; as the service sets
    the vendors' loggers, of names too."""
    links = await a_full_run(world)

    output = captured.stream.getvalue()
    for event in (
        "fanout.plp_done",
        "send.permanent_failure",
        "send.transient_failure",
        "webhook.twilio_status",
        "receipt.acknowledged",
        "receipt.feedback",
        "receipt.opted_out",
        "member.erased",
        "HTTP/1.1",  # aiohttp's access log: a standard library record
    ):
        assert event in output, f"{event} was not captured"
    smtp_plain = base64.b64encode(f"\0{SMTP_LOGIN[0]}\0{SMTP_LOGIN[1]}".encode()).decode()
    twilio_basic = base64.b64encode(f"{ACCOUNT}:{AUTH_TOKEN}".encode()).decode()
    tokens = [link.rsplit("/", 1)[1] for link in links]
    secrets = [
        AUTH_TOKEN,
        twilio_basic,
        BOT_TOKEN,
        BOT_TOKEN.partition(":")[2],
        WEBHOOK_SECRET,
        SMTP_LOGIN[1],
        smtp_plain,
        base64.b64encode(SMTP_LOGIN[1].encode()).decode(),
        *world.tokens.values(),
        *tokens,
    ]
    assert_nothing_in_clear(output, secrets)
    assert CHAT_ID.search(output) is None
    if not captured.vendors_turned_up:  # python-telegram-bot at DEBUG prints the names of the chats it writes to
        assert not any(name in output for name in NAMES)
