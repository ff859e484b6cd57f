"""What Telegram posts: the bot's updates (``setWebhook``, see ``TelegramChannel.set_webhook``).

An update counts only with the secret token we registered the webhook with in its
``X-Telegram-Bot-Api-Secret-Token`` header, compared in constant time. Two kinds are for us:

- a text message: ``/start <token>`` opens a member's personal link (``ChatLink``); any other
  text is a reply (``TextMessage``), answered by the bot later, in a message of its own;
- a button pressed (a callback query): the "received" button (``ButtonPress``), answered in
  the webhook's answer with ``answerCallbackQuery`` (the button's toast).

In a private chat the user's id is the chat's; in a group anyone may write or press, and what
they do is not the chat owner's act (``own_chat``).
"""

from __future__ import annotations

import hmac
from typing import Any, ClassVar

from pydantic import RootModel, SecretStr

from channels.inbound import Answer, Body, ButtonPress, ChatLink, Event, Hook, HookAnswer, TextMessage, WebhookRequest
from config import Settings
from dispatcher.core.models import ChannelName

VENDOR = "telegram"
#: The command a deep link sends: ``/start <token>``.
START = "/start"


class TelegramAnswer(RootModel[dict[str, Any]]):
    """A Bot API method answering the update (answerCallbackQuery: the button's toast), or an empty body."""


UPDATE = Hook(
    name="telegram_update",
    path="",
    summary="A Telegram update (with the secret token header): links, /stop, the received button, replies",
    body=Body.JSON,
    answers={200: TelegramAnswer},
    expects="a Telegram update is a JSON object",
)


class TelegramInbound:
    """The bot's updates, checked with ``TELEGRAM_WEBHOOK_SECRET``."""

    vendor: ClassVar[str] = VENDOR
    hooks: ClassVar[tuple[Hook, ...]] = (UPDATE,)

    def __init__(self, secret: SecretStr | None) -> None:
        self._secret = secret

    def __repr__(self) -> str:
        return "TelegramInbound()"

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramInbound:
        """Checks with TELEGRAM_WEBHOOK_SECRET; without one, every update is refused."""
        return cls(settings.telegram_webhook_secret)

    def verify(self, hook: Hook, request: WebhookRequest) -> str | None:
        """None if the secret token header is the one we registered."""
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if self._secret is not None and hmac.compare_digest(given.encode(), self._secret.get_secret_value().encode()):
            return None
        return "the secret token header is missing or wrong"

    def parse(self, hook: Hook, request: WebhookRequest) -> Event | None:
        """A ``ButtonPress``, a ``ChatLink`` or a ``TextMessage``; None for any other update."""
        update = request.json
        if not isinstance(update, dict):
            return None  # not an update
        event_id = str(update.get("update_id", ""))
        if isinstance(update.get("callback_query"), dict):
            return _button(update["callback_query"], event_id)
        message = update.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return None  # other kinds of update are not for us
        chat = str(int(message.get("chat", {}).get("id", 0)))
        language = (message.get("from") or {}).get("language_code")
        text: str = message["text"]
        if text.startswith(START):
            token = text.removeprefix(START).strip()
            return ChatLink(
                channel=ChannelName.TELEGRAM, sender=chat, token=token, event_id=event_id, language=language
            )
        return TextMessage(
            channel=ChannelName.TELEGRAM,
            sender=chat,
            text=text,
            event_id=event_id,
            answer_inline=False,  # an answer in the webhook's answer would leave outside our limits
            language=language,
            own_chat=_own_chat(message),
        )

    def answer(self, hook: Hook, request: WebhookRequest, answer: Answer | None) -> HookAnswer:
        """A button pressed is answered (its toast, when there are words for it); anything else with nothing."""
        query = request.json.get("callback_query") if isinstance(request.json, dict) else None
        if answer is None or not isinstance(query, dict):
            return HookAnswer(200)
        method: dict[str, Any] = {"method": "answerCallbackQuery", "callback_query_id": str(query.get("id", ""))}
        return HookAnswer(200, method | ({"text": answer.text} if answer.text is not None else {}))


def _button(query: dict[str, Any], event_id: str) -> ButtonPress:
    chat = str(int((query.get("message") or {}).get("chat", {}).get("id", 0)))
    return ButtonPress(
        channel=ChannelName.TELEGRAM,
        sender=chat,
        data=str(query.get("data", "")),
        event_id=event_id,
        own_chat=_own_chat(query),
    )


def _own_chat(item: dict[str, Any]) -> bool:
    """Whether a message or a button press comes from the person whose private chat it is in."""
    chat = (item.get("message") or item).get("chat") or {}
    return bool(chat.get("id")) and (item.get("from") or {}).get("id") == chat.get("id")
