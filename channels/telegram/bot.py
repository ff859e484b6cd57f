"""Sending through Telegram's Bot API (``python-telegram-bot``): one chat message per delivery.

A member links their chat by opening the bot with a deep link (``deep_link``); the
message then carries a "received" button whose callback data the webhook reads
(``channels.telegram.inbound``).
There are no delivery callbacks: a message Telegram accepted is in the member's
chat, so the receipt says ``DELIVERED``.

The Bot API's answers become the channel errors in one place, ``translate``. The bot
token is part of every request URL; it never appears in a repr, and the library
loggers that print URLs get a filter that hides it (see ``hide_tokens_in_library_logs``).

Whether a failed call may still have sent the message follows from how far the HTTP
exchange got, which each call notes (``_Exchange``): the HTTP layer (``AiohttpRequest``, on
aiohttp) reports through its trace when the request's body starts going out, and the HTTP
status comes with the answer. Not written (no connection, no free connection, headers that did
not go out): nothing was sent. Written, and no answer (a reset, a read timeout, a connection
closed, our own bound on the call): Telegram may have sent it. Answered: the status says (a 5xx
after which the API may have acted, see ``server_may_have_acted``; never a 4xx or a 429).

The body's start is the mark: aiohttp reports each chunk of the body just before it hands it to
the socket, with the request's headers in front of the first, in the same step of the event loop;
a cancellation (our bound on the call) that lands before it leaves nothing sent, one that lands
after it cannot take back what the socket has. Every call the channel makes has a body (a form).
The request's turn under ``WriteSpacing`` is taken at the same moment, just before its bytes go.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import aiohttp
from pydantic import SecretStr
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from channels.base import (
    ChannelError,
    Configurable,
    MessageForm,
    NotConfigured,
    OutboundMessage,
    PermanentError,
    Rate,
    RateLimited,
    Receipt,
    ReceiptStatus,
    TransientError,
    WriteSpacing,
    server_may_have_acted,
)
from channels.inbound import Inbound
from channels.telegram.inbound import TelegramInbound
from channels.telegram.transport import AiohttpRequest
from config import Settings
from dispatcher.core.models import Contact

#: HTTP connections to the Bot API per channel instance. Telegram takes about 30 messages a
#: second per bot, and 16 connections carry 160 a second at a 100 ms round trip, 50 at 300 ms.
#: More is slower, not faster: against the simulator at 100 ms latency (600 sends, 100 in
#: flight, this 2-core machine) 8 gave 72 msg/s, 16 gave 128, 32 gave 124, 64 gave 53 and the
#: library's default of 256 gave 63; at 50 ms, 16 gave 267 and 256 gave 84.
POOL_SIZE = 16

#: Longest text of one Telegram message (Bot API ``sendMessage``).
MAX_TEXT_LENGTH = 4096

_START_PARAMETER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN_IN_URL = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
#: Library loggers that print Bot API URLs: the bot its base URL at DEBUG (aiohttp logs no request).
_URL_LOGGERS = ("telegram.Bot",)
#: What Forbidden and BadRequest descriptions mean for a coordinator, by a fragment of their text.
_REASONS = (
    ("blocked by the user", "blocked the bot"),
    ("chat not found", "Telegram chat not found"),
    ("user is deactivated", "Telegram account deleted"),
    ("can't initiate conversation", "has not started the bot"),
)

T = TypeVar("T")


@dataclass
class _Exchange:
    """How far one Bot API call got: its request written (its body going out), the HTTP status answered; and the
    spacing its request keeps from this process's previous one, at the moment it is written."""

    spacing: WriteSpacing | None = None
    written: bool = False
    status: int | None = None


#: The exchange of the call running in this task (set by ``TelegramChannel._call``).
_exchange: ContextVar[_Exchange | None] = ContextVar("telegram_exchange", default=None)


async def _body_going_out(session: Any, context: Any, params: aiohttp.TraceRequestChunkSentParams) -> None:
    """The request's turn to be written (``WriteSpacing``), then a note that it is: aiohttp awaits this just before
    it hands a chunk of the body to the socket, the headers in front of the first, with no wait in between."""
    if (exchange := _exchange.get()) is None or exchange.written:
        return
    if exchange.spacing is not None:
        await exchange.spacing.turn()
    exchange.written = True


def _trace() -> aiohttp.TraceConfig:
    """The trace of the Bot API requests: one hook, on the body's first chunk (``_body_going_out``).

    Of aiohttp's signals, this is the one right before the bytes go out. ``on_request_start`` comes before a
    connection is taken (a new one costs a round trip); ``on_request_headers_sent``, despite its name, before
    the headers are laid out in a buffer, which goes out with the body's first chunk, and before Python 3.12
    that chunk is written by a task of its own, one turn of a busy loop later. The first chunk's signal is
    awaited in that task, and the bytes follow it in the same step.
    """
    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(_body_going_out)
    trace.freeze()
    return trace


class _BotApiRequest(AiohttpRequest):
    """The channel's HTTP layer: ``AiohttpRequest`` with the channel's trace, noting the HTTP status of each
    answer for ``translate``."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if (exchange := _exchange.get()) is not None:
            exchange.status = code
        return code, payload


class TelegramChannel(Configurable):
    """Sends chat messages from the bot whose token is ``TELEGRAM_BOT_TOKEN``."""

    name: ClassVar[str] = "telegram"
    provider: ClassVar[str] = "telegram"
    contact: ClassVar[Contact] = Contact.TELEGRAM
    form: ClassVar[MessageForm] = MessageForm.CHAT
    takes_replies: ClassVar[bool] = True
    max_text_length: ClassVar[int | None] = MAX_TEXT_LENGTH
    reports_delivery: ClassVar[bool] = False  # a message Telegram took is in the chat: nothing more comes
    requires: ClassVar[tuple[tuple[str, ...], ...]] = (("telegram_bot_token",),)
    inbound: ClassVar[type[Inbound] | None] = TelegramInbound

    def __init__(
        self,
        *,
        token: SecretStr,
        api_base_url: str,
        timeout: float,
        pool_size: int = POOL_SIZE,
        spacing: WriteSpacing | None = None,
    ) -> None:
        self._token = token
        self._spacing = spacing
        self._api_base_url = api_base_url.rstrip("/")
        self._timeout = timeout
        self._pool_size = pool_size
        # Our own bound on calls in flight, so that waiting for a connection is never counted
        # against the provider timeout (the library's pool would time out after 1 s).
        self._slots = asyncio.Semaphore(pool_size)
        self._bot: Bot | None = None
        self._requests: tuple[AiohttpRequest, ...] = ()

    def __repr__(self) -> str:
        return f"TelegramChannel(api_base_url={self._api_base_url!r}, pool_size={self._pool_size})"

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramChannel:
        """A channel for the configured bot; opens no connection. Raises ``NotConfigured``."""
        if not cls.configured(settings) or settings.telegram_bot_token is None:
            raise cls.not_configured(settings)
        return cls(
            token=settings.telegram_bot_token,
            api_base_url=settings.telegram_api_base_url,
            timeout=settings.provider_timeout,
            spacing=WriteSpacing.under(settings.limit_telegram_per_second, margin=settings.limit_margin),
        )

    @classmethod
    def rates(cls, settings: Settings, address: str) -> list[Rate]:
        """The bot's rate, and the chat's (``address`` is the chat id)."""
        return [
            Rate("telegram", settings.limit_telegram_per_second, "messages for the bot"),
            Rate(f"telegram-chat:{address}", settings.limit_telegram_per_chat_per_second, "messages per chat"),
        ]

    async def prepare(self) -> None:
        """Build the bot and its HTTP session now, not on the first send (see ``Channel.prepare``)."""
        self._open()
        self._requests[0].open()

    async def send(self, message: OutboundMessage) -> Receipt:
        """Send the message to the member's chat, with the "received" button when it has one, and one row per
        answer button below it.

        Returns a ``DELIVERED`` receipt whose id is ``<chat id>:<message id>``. Raises
        ``PermanentError`` (blocked, chat not found, refused), ``RateLimited``,
        ``TransientError`` or ``NotConfigured`` (token refused).
        """
        chat_id = _chat_id(message.address)
        rows = [[InlineKeyboardButton(message.ack_label, callback_data=message.ack_data)]] if message.ack_label else []
        rows += [[InlineKeyboardButton(label, callback_data=data)] for label, data in message.buttons]
        markup = InlineKeyboardMarkup(rows) if rows else None
        sent = await self._call(lambda bot: bot.send_message(chat_id=chat_id, text=message.text, reply_markup=markup))
        return Receipt(provider_id=f"{chat_id}:{sent.message_id}", status=ReceiptStatus.DELIVERED)

    async def set_webhook(self, url: str, secret: str) -> None:
        """Have Telegram post the bot's updates to ``url`` with ``secret`` in their header. Raises like ``send``."""
        await self._call(
            lambda bot: bot.set_webhook(url=url, secret_token=secret, allowed_updates=["message", "callback_query"])
        )

    async def set_commands(self, menus: dict[str | None, list[tuple[str, str]]]) -> None:
        """Set the bot's menu of commands: for each language code (None: users of any other language), its commands
        and their descriptions, in order. Raises like ``send``."""
        for language, commands in menus.items():
            await self._call(_menu_setter([BotCommand(c, description) for c, description in commands], language))

    async def close(self) -> None:
        """Close the HTTP connections."""
        requests, self._requests, self._bot = self._requests, (), None
        # Bot.shutdown() only closes what Bot.initialize() opened; we never call getMe, so close them here.
        await asyncio.gather(*(request.shutdown() for request in requests))

    async def _call(self, request: Callable[[Bot], Awaitable[T]]) -> T:
        async with self._slots:
            exchange = _Exchange(spacing=self._spacing)
            _exchange.set(exchange)
            try:
                bot = self._open()
                async with asyncio.timeout(self._timeout):
                    return await request(bot)
            except (TelegramError, TimeoutError) as exc:
                raise translate(exc, written=exchange.written, status=exchange.status) from exc

    def _open(self) -> Bot:
        # Built on first use, inside the running loop. No getMe (Bot.initialize): it would cost a
        # round trip per channel instance, and its InvalidToken message quotes the token.
        if self._bot is None:
            hide_tokens_in_library_logs()
            # The pool holds pool_size connections, as many as _call lets calls in flight: none waits for one.
            request = _BotApiRequest(pool_size=self._pool_size, timeout=self._timeout, trace=_trace())
            updates_request = AiohttpRequest(pool_size=1, timeout=self._timeout)  # getUpdates: unused, opens nothing
            self._requests = (request, updates_request)
            self._bot = Bot(
                self._token.get_secret_value(),
                base_url=f"{self._api_base_url}/bot",
                request=request,
                get_updates_request=updates_request,
            )
        return self._bot


def translate(exc: BaseException, *, written: bool = False, status: int | None = None) -> ChannelError:
    """The channel error for what the Bot API (or the network) answered; the only such mapping.

    ``written``: the request had gone out (its body had started); ``status``: the HTTP status Telegram
    answered, if it did. They decide whether the message may have gone out (see the module docstring).
    """
    match exc:
        case RetryAfter():
            return RateLimited("Telegram flood control", retry_after=_retry_seconds(exc))
        case InvalidToken():  # 401 and 404: the token is wrong or revoked
            return NotConfigured("Telegram refused the bot token")
        case Forbidden() | BadRequest():
            return PermanentError(_reason(exc.message))
        case ChatMigrated():
            return PermanentError("the chat moved to a supergroup")
        case NetworkError() if status is not None:  # another HTTP error status (PTB says NetworkError)
            acted = server_may_have_acted(status)
            gone = "; the message may have gone out" if acted else ""
            return TransientError(f"Telegram answered HTTP {status}{gone}", may_have_sent=acted)
        case NetworkError() | TimeoutError() if written:  # TimedOut is a NetworkError
            return TransientError(
                f"no answer from Telegram ({type(exc).__name__}); the message may have gone out", may_have_sent=True
            )
        case TimedOut() | TimeoutError():
            return TransientError("Telegram did not answer in time; nothing was sent")
        case NetworkError():
            return TransientError(f"Telegram unreachable: {type(exc).__name__}")
        case _:
            return TransientError(f"Telegram error: {type(exc).__name__}")


def deep_link(bot_username: str, token: str) -> str:
    """The ``t.me`` link that opens the bot and sends it ``/start <token>``.

    Raises ``ValueError`` if ``token`` is not a valid start parameter (1 to 64 of ``A-Z a-z 0-9 _ -``).
    """
    if not _START_PARAMETER.match(token):
        raise ValueError("a Telegram start parameter is 1 to 64 letters, digits, '_' or '-'")
    return f"https://t.me/{bot_username.removeprefix('@')}?start={token}"


class HideBotToken(logging.Filter):
    """Replaces the token in Bot API URLs of a log record with ``<token>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        hidden = _TOKEN_IN_URL.sub("/bot<token>", text)
        if hidden != text:
            record.msg, record.args = hidden, None
        return True


def hide_tokens_in_library_logs() -> None:
    """Put the ``HideBotToken`` filter on the library loggers that print request URLs (once)."""
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideBotToken) for f in logger.filters):
            logger.addFilter(HideBotToken())


def _chat_id(address: str) -> int:
    try:
        return int(address)
    except ValueError:
        raise PermanentError("the address is not a Telegram chat id") from None


def _reason(description: str) -> str:
    lowered = description.lower()
    for fragment, reason in _REASONS:
        if fragment in lowered:
            return reason
    return f"Telegram refused the message: {description[:100]}"


def _retry_seconds(exc: RetryAfter) -> float:
    # RetryAfter.retry_after is an int or a timedelta depending on PTB_TIMEDELTA, and warns about
    # that migration on every read (v22.2+); both forms are accepted here, so the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _menu_setter(menu: list[BotCommand], language: str | None) -> Callable[[Bot], Awaitable[bool]]:
    """The call setting one language's menu (a function of its own: each call binds its own menu)."""

    async def set_menu(bot: Bot) -> bool:
        return await bot.set_my_commands(menu, language_code=language)

    return set_menu
