"""The Telegram channel: python-telegram-bot against a Bot API simulator on loopback (tests/simulators/telegram.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from telegram import Bot, Message
from telegram.error import BadRequest, ChatMigrated, Conflict, Forbidden, NetworkError, TimedOut

from channels.base import (
    NotConfigured,
    OutboundMessage,
    PermanentError,
    RateLimited,
    Receipt,
    ReceiptStatus,
    TransientError,
    WriteSpacing,
)
from channels.inbound import Answer, ButtonPress, ChatLink, HookAnswer, TextMessage, WebhookRequest
from channels.telegram import TelegramChannel, TelegramInbound, deep_link, translate
from channels.telegram.inbound import UPDATE
from config import Settings
from dispatcher.core.models import ChannelName, Language, Urgency
from tests.simulators.faults import Fault, FaultPlan
from tests.simulators.telegram import SECRET_HEADER, TelegramSimulator
from tests.support import free_port, unconnectable_port, until

# python-telegram-bot 22 warns, when it builds a RetryAfter (on every 429), that retry_after will
# become a timedelta; the channel reads both forms.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Deprecated since version v22.2. In a future major version attribute .retry_after."
    ":telegram.warnings.PTBDeprecationWarning"
)

TOKEN = "123456:AAH-secret_token"
CHAT = 4242


def message(
    *, address: str = str(CHAT), ack: bool = True, text: str = "Cambriolage rue Haute, soyez attentifs."
) -> OutboundMessage:
    return OutboundMessage(
        delivery_id="a1:telegram:m1",
        alert_id="a1",
        member_id="m1",
        channel=ChannelName.TELEGRAM,
        address=address,
        language=Language.FR,
        urgency=Urgency.URGENT,
        subject="[PLP Marolles] URGENT : cambriolage",
        text=text,
        ack_label="Bien reçu" if ack else None,
        ack_data="ack:a1:m1" if ack else None,
    )


def channel_for(tg: TelegramSimulator, *, token: str = TOKEN, timeout: float = 2.0) -> TelegramChannel:
    settings = Settings(telegram_bot_token=token, telegram_api_base_url=tg.base_url, provider_timeout=timeout)
    return TelegramChannel.from_settings(settings)


@pytest.fixture
async def tg() -> AsyncIterator[TelegramSimulator]:
    async with TelegramSimulator(token=TOKEN) as simulator:
        yield simulator


@pytest.fixture
async def telegram(tg: TelegramSimulator) -> AsyncIterator[TelegramChannel]:
    channel = channel_for(tg)
    yield channel
    await channel.close()


class Webhook:
    """A small receiver standing for our webhook: records each update and checks the secret header."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.updates: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/telegram/webhook", self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        if request.headers.get(SECRET_HEADER) != self.secret:
            return web.Response(status=401, text="wrong secret")
        self.updates.append(await request.json())
        return web.json_response({"ok": True})


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[Webhook, str]]:
    receiver = Webhook("hook-s3cret")
    async with TestServer(receiver.app, host="127.0.0.1") as server:
        yield receiver, str(server.make_url("/telegram/webhook"))


@pytest.mark.parametrize(("token", "expected"), [(TOKEN, True), (None, False)])
def test_configured_needs_a_bot_token(token: str | None, expected: bool) -> None:
    """The channel counts as configured when the settings hold a bot token."""
    assert TelegramChannel.configured(Settings(telegram_bot_token=token)) is expected


async def test_send_delivers_the_message_with_its_button(telegram: TelegramChannel, tg: TelegramSimulator) -> None:
    """The message reaches the member's chat with the "received" button; the receipt is chat:message, DELIVERED."""
    receipt = await telegram.send(message())
    assert receipt == Receipt(provider_id=f"{CHAT}:1", status=ReceiptStatus.DELIVERED)
    [call] = tg.calls("sendMessage")
    assert call.params["chat_id"] == CHAT
    assert call.params["text"] == "Cambriolage rue Haute, soyez attentifs."
    assert call.params["reply_markup"] == {"inline_keyboard": [[{"text": "Bien reçu", "callback_data": "ack:a1:m1"}]]}


async def test_receipts_follow_the_chat_s_message_ids(telegram: TelegramChannel) -> None:
    """Each message in a chat gets the next message id, which the receipt carries."""
    receipts = [await telegram.send(message()) for _ in range(3)]
    assert [r.provider_id for r in receipts] == [f"{CHAT}:1", f"{CHAT}:2", f"{CHAT}:3"]


async def test_a_message_without_button_has_no_keyboard(telegram: TelegramChannel, tg: TelegramSimulator) -> None:
    """Without an ack label the message goes without reply markup."""
    await telegram.send(message(ack=False))
    [call] = tg.calls("sendMessage")
    assert "reply_markup" not in call.params


@pytest.mark.parametrize(
    ("injection", "reason"),
    [("blocked", "blocked the bot"), ("missing", "Telegram chat not found")],
)
async def test_a_chat_that_cannot_be_reached_is_permanent(
    telegram: TelegramChannel, tg: TelegramSimulator, injection: str, reason: str
) -> None:
    """A member who blocked the bot, or a chat that does not exist, is a permanent failure with a plain reason."""
    getattr(tg, injection).add(CHAT)
    with pytest.raises(PermanentError) as caught:
        await telegram.send(message())
    assert caught.value.reason == reason
    assert isinstance(caught.value.__cause__, Forbidden | BadRequest)


async def test_flood_control_is_rate_limited_with_its_delay(telegram: TelegramChannel, tg: TelegramSimulator) -> None:
    """A 429 becomes RateLimited carrying Telegram's retry_after; the next attempt goes through."""
    tg.throttle_once[CHAT] = 7
    with pytest.raises(RateLimited) as caught:
        await telegram.send(message())
    assert caught.value.retry_after == 7.0
    assert (await telegram.send(message())).provider_id == f"{CHAT}:1"


async def test_a_wrong_token_is_not_configured(tg: TelegramSimulator) -> None:
    """A token the Bot API refuses (401) means the channel is not configured here."""
    channel = channel_for(tg, token="999:wrong")
    with pytest.raises(NotConfigured, match="refused the bot token"):
        await channel.send(message())
    await channel.close()
    assert tg.ledger == []


async def test_an_address_that_is_not_a_chat_id_is_permanent(telegram: TelegramChannel, tg: TelegramSimulator) -> None:
    """A contact point that is not a numeric chat id fails permanently without calling Telegram."""
    with pytest.raises(PermanentError, match="not a Telegram chat id"):
        await telegram.send(message(address="@ann"))
    assert tg.ledger == []


async def test_set_webhook_registers_the_url_and_its_secret(telegram: TelegramChannel, tg: TelegramSimulator) -> None:
    """Registering the webhook tells Telegram where to post updates and which secret header to send."""
    await telegram.set_webhook("https://plp.example/v1/webhooks/telegram", "s3cret-header")
    [call] = tg.calls("setWebhook")
    assert call.params["url"] == "https://plp.example/v1/webhooks/telegram"
    assert (tg.webhook_url, tg.webhook_secret) == ("https://plp.example/v1/webhooks/telegram", "s3cret-header")


async def test_a_slow_api_is_transient_after_the_provider_timeout() -> None:
    """A Bot API slower than the provider timeout fails the send as transient, in about that time."""
    async with TelegramSimulator(token=TOKEN, latency=5.0) as tg:
        channel = channel_for(tg, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(TransientError):
            await channel.send(message())
        await channel.close()
    assert time.monotonic() - started < 2


async def test_an_api_that_is_down_is_transient() -> None:
    """Nothing listening at the Bot API's address is a transient failure, after which nothing was sent."""
    settings = Settings(
        telegram_bot_token=TOKEN, telegram_api_base_url=f"http://127.0.0.1:{free_port()}", provider_timeout=2
    )
    channel = TelegramChannel.from_settings(settings)
    with pytest.raises(TransientError, match="unreachable") as raised:
        await channel.send(message())
    await channel.close()
    assert raised.value.may_have_sent is False


async def test_a_connection_not_made_within_the_provider_timeout_sent_nothing() -> None:
    """A Bot API whose address does not answer the connection fails the send as transient, once the provider
    timeout is over, saying nothing was sent."""
    with unconnectable_port() as port:
        url = f"http://127.0.0.1:{port}"
        channel = TelegramChannel.from_settings(
            Settings(telegram_bot_token=TOKEN, telegram_api_base_url=url, provider_timeout=0.3)
        )
        with pytest.raises(TransientError, match="nothing was sent") as raised:
            await channel.send(message())
        await channel.close()
    assert raised.value.may_have_sent is False


#: What the Bot API does with the message -> the error the channel raises, whether it says the message may
#: have gone, whether the chat has it. Nothing is in doubt before the request is written whole, nor when
#: Telegram answers 4xx, 429 or 503; everything is after that without an answer, or with a 500, 502 or 504.
PHASES = [
    pytest.param(Fault.THROTTLE, RateLimited, False, False, id="429"),
    pytest.param(Fault.SERVER_ERROR, TransientError, False, False, id="503"),
    pytest.param(Fault.RESET, TransientError, True, False, id="read-then-closed"),  # it cannot tell this one
    pytest.param(Fault.TAKEN_THEN_RESET, TransientError, True, True, id="sent-then-closed"),
    pytest.param(Fault.TAKEN_THEN_ERROR, TransientError, True, True, id="sent-then-502"),
    pytest.param(Fault.TIMEOUT, TransientError, True, True, id="sent-then-no-answer-in-time"),
]


@pytest.mark.parametrize(("fault", "error", "may_have_sent", "in_the_chat"), PHASES)
async def test_a_failed_send_may_have_gone_only_once_the_request_went_out_unanswered(
    tg: TelegramSimulator, fault: Fault, error: type[Exception], may_have_sent: bool, in_the_chat: bool
) -> None:
    """The channel says a failed message may have gone exactly when Telegram may have it: the request written
    whole and then no answer, or a server error after which it may have acted."""
    tg.faults = FaultPlan(seed=1, rates={fault: 1.0}, hold=1.0, retry_after=1)
    channel = channel_for(tg, timeout=0.3)
    with pytest.raises(error) as raised:
        await channel.send(message())
    await channel.close()
    assert isinstance(raised.value, TransientError) and raised.value.may_have_sent is may_have_sent
    assert len([c for c in tg.calls("sendMessage") if c.status == 200]) == int(in_the_chat)


class _StallingTurn(WriteSpacing):
    """A request's turn that blocks the whole process for ``seconds`` the first time (a worker starved of CPU
    just as it comes to write a request: the turn is taken right before the bytes go out)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(0)
        self.stall, self.stalled = seconds, False

    async def turn(self) -> None:
        if not self.stalled:
            self.stalled = True
            time.sleep(self.stall)  # the whole process stops, as a worker starved of CPU does
        await super().turn()


async def test_a_request_written_as_the_provider_timeout_runs_out_may_have_gone(tg: TelegramSimulator) -> None:
    """A worker that stalls past the provider timeout just as it writes a request still writes it whole (its bytes
    follow its turn in the same step of the loop, before the bound can cancel the call): Telegram has the message,
    and the channel says it may have gone."""
    stall = _StallingTurn(0.5)
    channel = TelegramChannel(token=SecretStr(TOKEN), api_base_url=tg.base_url, timeout=0.3, spacing=stall)
    try:
        with pytest.raises(TransientError) as raised:
            await channel.send(message())
    finally:
        await channel.close()
    assert stall.stalled and raised.value.may_have_sent is True
    calls = await until(lambda: tg.calls("sendMessage"), timeout=5, what="Telegram to take the message")
    assert [call.params["chat_id"] for call in calls] == [CHAT]


async def test_a_refused_message_never_may_have_gone(telegram: TelegramChannel, tg: TelegramSimulator) -> None:
    """A message Telegram answers with a 4xx (chat not found) is permanent, and nothing is in doubt."""
    tg.missing.add(CHAT)
    with pytest.raises(PermanentError):
        await telegram.send(message())
    assert tg.calls("sendMessage")[0].status == 400


async def test_the_token_never_shows(tg: TelegramSimulator, caplog: pytest.LogCaptureFixture) -> None:
    """The token is in every request URL, yet neither the repr, nor the library logs, nor the errors show it."""
    channel = channel_for(tg)
    tg.blocked.add(CHAT)
    # the library's own logger at DEBUG, whatever a service's logging set up before (it quiets "telegram")
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="telegram"):
        await channel.set_webhook("https://plp.example/v1/webhooks/telegram", "s3cret")
        with pytest.raises(PermanentError) as caught:
            await channel.send(message())
    await channel.close()
    assert "Set Bot API URL: " in caplog.text and "/bot<token>" in caplog.text  # the bot logs its URL at DEBUG
    assert TOKEN not in caplog.text
    assert TOKEN.partition(":")[2] not in caplog.text
    assert TOKEN not in repr(channel) + str(caught.value)


async def test_prepare_builds_the_client_without_calling_telegram(tg: TelegramSimulator) -> None:
    """Preparing the channel makes no request (no getMe: the token is not checked there); the send that follows
    goes out as any other."""
    channel = channel_for(tg)
    await channel.prepare()
    assert tg.ledger == []
    await channel.send(message())
    assert [call.method for call in tg.ledger] == ["sendMessage"]
    await channel.close()


async def test_close_before_any_send_is_harmless(tg: TelegramSimulator) -> None:
    """A channel that never sent closes without calling Telegram."""
    await channel_for(tg).close()
    assert tg.ledger == []


@pytest.mark.parametrize(
    ("error", "expected", "reason"),
    [
        (Forbidden("Forbidden: user is deactivated"), PermanentError, "Telegram account deleted"),
        (Forbidden("Forbidden: bot can't initiate conversation with a user"), PermanentError, "not started the bot"),
        (BadRequest("Bad Request: message is too long"), PermanentError, "refused the message: Message is too long"),
        (ChatMigrated(-100123), PermanentError, "supergroup"),
        (TimedOut(), TransientError, "did not answer in time"),
        (NetworkError("httpx.ConnectError: All connection attempts failed"), TransientError, "unreachable"),
        (Conflict("terminated by other getUpdates request"), TransientError, "Telegram error: Conflict"),
    ],
)
def test_translate_says_whose_fault(error: Exception, expected: type[Exception], reason: str) -> None:
    """Each kind of Bot API failure maps to the channel error that says whose fault it is."""
    translated = translate(error)
    assert type(translated) is expected
    assert reason in str(translated)


@pytest.mark.parametrize(
    ("error", "written", "status", "may_have_sent"),
    [
        (TimedOut(), False, None, False),  # no connection, or the request not written in time
        (TimeoutError(), False, None, False),  # the channel's own bound on the call, before the request went out
        (NetworkError("httpx.ConnectError: refused"), False, None, False),
        (TimedOut(), True, None, True),  # written, then no answer in time
        (TimeoutError(), True, None, True),
        (NetworkError("httpx.RemoteProtocolError: Server disconnected"), True, None, True),
        (NetworkError("httpx.ReadError: reset"), True, None, True),
        (NetworkError("Bad Gateway"), True, 502, True),
        (NetworkError("Internal Server Error (500)"), True, 500, True),
        (NetworkError("Gateway Timeout (504)"), True, 504, True),
        (NetworkError("Service Unavailable (503)"), True, 503, False),
        (NetworkError("Request Entity Too Large (413)"), True, 413, False),
    ],
)
def test_translate_says_a_message_may_have_gone_once_written_and_not_refused(
    error: Exception, written: bool, status: int | None, may_have_sent: bool
) -> None:
    """Nothing is in doubt before the request is written whole; after, a missing answer or a server error
    after which Telegram may have acted is."""
    translated = translate(error, written=written, status=status)
    assert isinstance(translated, TransientError) and translated.may_have_sent is may_have_sent


@pytest.mark.parametrize(
    ("username", "token", "link"),
    [
        ("plp_alert_bot", "Zm9vYmFy_-12", "https://t.me/plp_alert_bot?start=Zm9vYmFy_-12"),
        ("@plp_alert_bot", "abc", "https://t.me/plp_alert_bot?start=abc"),
    ],
)
def test_deep_link_opens_the_bot_with_a_start_token(username: str, token: str, link: str) -> None:
    """The deep link is t.me/<bot>?start=<token>, whether or not the username is written with '@'."""
    assert deep_link(username, token) == link


@pytest.mark.parametrize("token", ["", "a" * 65, "with space", "dots.are.not.allowed", "é"])
def test_deep_link_refuses_what_telegram_would_not_pass(token: str) -> None:
    """A start parameter must be 1 to 64 letters, digits, '_' or '-'; anything else is refused."""
    with pytest.raises(ValueError, match="start parameter"):
        deep_link("plp_alert_bot", token)


# -- the simulator's members and webhook side ------------------------------------------------------


async def test_member_sends_posts_a_message_update_with_the_secret(
    tg: TelegramSimulator, webhook: tuple[Webhook, str]
) -> None:
    """A member writing /start <token> posts a private-chat message update, bot_command entity and secret header."""
    receiver, url = webhook
    status, body = await tg.member_sends(url, CHAT, "/start Zm9vYmFy", secret="hook-s3cret")
    assert (status, body) == (200, {"ok": True})
    [update] = receiver.updates
    sent = update["message"]
    assert sent["chat"] == {"id": CHAT, "type": "private", "first_name": "Ann"}
    assert sent["from"]["id"] == CHAT and sent["from"]["is_bot"] is False
    assert sent["text"] == "/start Zm9vYmFy"
    assert sent["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]


async def test_member_text_without_command_has_no_entities(tg: TelegramSimulator, webhook: tuple[Webhook, str]) -> None:
    """Plain text from a member carries no bot_command entity."""
    receiver, url = webhook
    await tg.member_sends(url, CHAT, "merci", secret="hook-s3cret")
    assert "entities" not in receiver.updates[0]["message"]


@pytest.mark.parametrize("secret", [None, "wrong"])
async def test_a_missing_or_wrong_secret_reaches_the_webhook_as_such(
    tg: TelegramSimulator, webhook: tuple[Webhook, str], secret: str | None
) -> None:
    """With secret=None no header is sent, with "wrong" a wrong one; the webhook's answer comes back as text."""
    receiver, url = webhook
    assert await tg.member_sends(url, CHAT, "/stop", secret=secret) == (401, "wrong secret")
    assert receiver.updates == []


async def test_member_presses_posts_a_callback_query_on_the_sent_message(
    telegram: TelegramChannel, tg: TelegramSimulator, webhook: tuple[Webhook, str]
) -> None:
    """Pressing the button of a message we sent posts a callback query carrying its data and that message."""
    receiver, url = webhook
    receipt = await telegram.send(message())
    message_id = int(receipt.provider_id.split(":")[1])
    status, _ = await tg.member_presses(url, CHAT, "ack:a1:m1", message_id, secret="hook-s3cret")
    assert status == 200
    query = receiver.updates[0]["callback_query"]
    assert query["data"] == "ack:a1:m1"
    assert query["from"]["id"] == CHAT
    assert query["message"]["message_id"] == message_id
    assert query["message"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Bien reçu"


async def test_the_simulator_speaks_the_webhook_and_edit_methods(
    tg: TelegramSimulator, webhook: tuple[Webhook, str]
) -> None:
    """Through the real Bot: getMe, setWebhook (whose secret updates then carry), editMessageText, deleteWebhook."""
    receiver, url = webhook
    async with Bot(TOKEN, base_url=f"{tg.base_url}/bot") as bot:  # getMe first
        assert bot.username == tg.username
        assert await bot.set_webhook(url, secret_token="hook-s3cret")
        assert (await tg.member_sends(url, CHAT, "/stop"))[0] == 200  # the registered secret by default
        channel = channel_for(tg)
        sent = await channel.send(message())
        await channel.close()
        message_id = int(sent.provider_id.split(":")[1])
        edited = await bot.edit_message_text("Alerte terminée", chat_id=CHAT, message_id=message_id)
        assert isinstance(edited, Message)
        assert edited.text == "Alerte terminée" and edited.reply_markup is None  # the keyboard is gone
        assert await bot.delete_webhook()
    assert tg.webhook_url is None
    assert [c.method for c in tg.ledger] == ["getMe", "setWebhook", "sendMessage", "editMessageText", "deleteWebhook"]
    assert len(receiver.updates) == 1


# -- what the bot's updates say, in the dispatcher's words -------------------------------------------

PRIVATE = {"id": 1001, "type": "private"}
OWNER = {"id": 1001, "language_code": "nl-BE"}


def _update(body: Any, *, secret: str = "s3cret") -> WebhookRequest:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
    return WebhookRequest(url="https://plp.example/v1/webhooks/telegram", headers=headers, query={}, json=body)


@pytest.mark.parametrize(
    ("update", "event"),
    [
        (
            {"update_id": 7, "message": {"chat": PRIVATE, "from": OWNER, "text": "/start tok-1"}},
            ChatLink(channel=ChannelName.TELEGRAM, sender="1001", token="tok-1", event_id="7", language="nl-BE"),
        ),
        (
            {"update_id": 8, "message": {"chat": PRIVATE, "from": OWNER, "text": "ok"}},
            TextMessage(
                channel=ChannelName.TELEGRAM,
                sender="1001",
                text="ok",
                event_id="8",
                answer_inline=False,
                language="nl-BE",
                own_chat=True,
            ),
        ),
        (
            {"update_id": 9, "callback_query": {"id": "q1", "data": "ack:a1:telegram:m1", "from": {"id": 5},
                                                "message": {"chat": PRIVATE}}},
            ButtonPress(channel=ChannelName.TELEGRAM, sender="1001", data="ack:a1:telegram:m1", event_id="9",
                        own_chat=False),
        ),
        ({"update_id": 10, "edited_message": {"chat": PRIVATE, "text": "ok"}}, None),
        ({"update_id": 11, "message": {"chat": PRIVATE, "sticker": {}}}, None),
        ([1, 2], None),
    ],
)  # fmt: skip
def test_updates_become_the_dispatchers_events(update: Any, event: Any) -> None:
    """A /start with its token opens a link, other text is a reply (answered later, by a message of ours), a button
    pressed is named with its data and whether the chat's owner pressed it; anything else is nothing for us."""
    assert TelegramInbound(SecretStr("s3cret")).parse(UPDATE, _update(update)) == event


def test_only_the_registered_secret_lets_an_update_in() -> None:
    """The secret token header must be the one registered; without a secret configured here, nothing comes in."""
    assert TelegramInbound(SecretStr("s3cret")).verify(UPDATE, _update({})) is None
    assert TelegramInbound(SecretStr("s3cret")).verify(UPDATE, _update({}, secret="guess")) is not None
    assert TelegramInbound(None).verify(UPDATE, _update({})) is not None


def test_a_button_is_answered_with_its_toast_and_anything_else_with_nothing() -> None:
    """The "received" button is answered with answerCallbackQuery naming the press (and the thanks, when there are
    words); a message, or a replay (no answer at all), with an empty 200."""
    inbound = TelegramInbound(SecretStr("s3cret"))
    press = _update({"update_id": 9, "callback_query": {"id": "q1", "message": {"chat": PRIVATE}}})
    method = {"method": "answerCallbackQuery", "callback_query_id": "q1"}
    assert inbound.answer(UPDATE, press, Answer("Merci", Language.FR)) == HookAnswer(200, method | {"text": "Merci"})
    assert inbound.answer(UPDATE, press, Answer()) == HookAnswer(200, method)
    assert inbound.answer(UPDATE, press, None) == HookAnswer(200)
    message = _update({"update_id": 8, "message": {"chat": PRIVATE, "text": "ok"}})
    assert inbound.answer(UPDATE, message, Answer("Merci", Language.FR)) == HookAnswer(200)


async def test_messages_held_up_together_leave_the_process_at_the_bots_rate(tg: TelegramSimulator) -> None:
    """Four messages reaching the channel at the same instant (a busy loop held them up together) are written
    one paced interval apart (``WriteSpacing``, taken as each request's bytes go out): the fourth not before
    three intervals have passed."""
    settings = Settings(
        telegram_bot_token=TOKEN, telegram_api_base_url=tg.base_url, limit_telegram_per_second=20, limit_margin=0.01
    )
    channel = TelegramChannel.from_settings(settings)
    try:
        started = time.monotonic()
        await asyncio.gather(*(channel.send(message(address=str(CHAT + n))) for n in range(4)))
        assert time.monotonic() - started >= 3 / (20 * 0.99)
        assert len([call for call in tg.ledger if call.method == "sendMessage"]) == 4
    finally:
        await channel.close()


async def test_a_message_still_waiting_its_turn_when_the_bound_runs_out_never_goes(tg: TelegramSimulator) -> None:
    """A request whose turn to be written (``WriteSpacing``) comes after the provider timeout fails as transient
    with nothing sent, and is not written later: Telegram has only the message that went first."""
    channel = TelegramChannel(
        token=SecretStr(TOKEN), api_base_url=tg.base_url, timeout=0.5, spacing=WriteSpacing(seconds=0.8)
    )
    try:
        await channel.send(message(address=str(CHAT)))
        with pytest.raises(TransientError, match="nothing was sent") as raised:
            await channel.send(message(address=str(CHAT + 1)))  # its turn 0.8 s after the first: past its bound
        # Its turn: had the second request still been waiting for it, it would have taken it, and this one's
        # would have come an interval later, past this call's bound.
        first = await channel.send(message(address=str(CHAT + 2)))
    finally:
        await channel.close()
    assert raised.value.may_have_sent is False and first.provider_id == f"{CHAT + 2}:1"
    assert [call.params["chat_id"] for call in tg.calls("sendMessage")] == [CHAT, CHAT + 2]
