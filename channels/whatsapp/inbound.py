"""What the WhatsApp Cloud API posts: the business number's webhooks (field ``messages``).

A POST counts only with an ``X-Hub-Signature-256`` header that is the HMAC-SHA256 of its body,
as received, under the app's secret (``WHATSAPP_APP_SECRET``), compared in constant time; nothing
of the body is read before. The subscription's handshake (a GET with ``hub.mode=subscribe``,
``hub.verify_token`` and ``hub.challenge``) is answered with the challenge only when the token is
``WHATSAPP_VERIFY_TOKEN`` (``challenge``).

One POST may carry several changes (Meta batches them); ``events`` reads them all, in order:

- a status of one of our messages (sent, delivered, read, failed with its error) is a
  ``StatusReport`` on the delivery named by the message's ``biz_opaque_callback_data`` (set when
  it was sent); "read" moves the delivery as far as "delivered", which it implies. Its event id is
  the message's id and the status, so that Meta's retries of it are replays;
- a quick-reply button pressed (the "received" button, an answer) is a ``ButtonPress`` with the
  payload the message carried;
- a text is a ``TextMessage`` (an acknowledgement, a stop word, feedback), answered by a message
  of ours; WhatsApp has no answer in the webhook's answer.

A member who blocks the business is not told to us by WhatsApp: the next message to them fails
(131026 or 131050), which ``channels.whatsapp.sending`` says in a coordinator's words.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import RootModel, SecretStr
from pywa.utils import HUB_SIG, webhook_updates_validator

from channels.inbound import (
    Answer,
    Body,
    ButtonPress,
    Event,
    Hook,
    HookAnswer,
    StatusReport,
    TextMessage,
    WebhookRequest,
)
from config import Settings
from dispatcher.core.models import ChannelName, DeliveryStatus

VENDOR = "whatsapp"

#: Where a status of the Cloud API moves a delivery (None: a step that moves nothing).
STATUSES: dict[str, DeliveryStatus | None] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
    "deleted": None,
    "warning": None,
}


class WhatsAppAnswer(RootModel[dict[str, Any]]):
    """Nothing: the Cloud API reads only the status of the answer."""


UPDATE = Hook(
    name="whatsapp_update",
    path="",
    summary="WhatsApp Cloud API webhooks (signed with X-Hub-Signature-256): statuses, buttons, replies",
    body=Body.JSON,
    answers={200: WhatsAppAnswer},
    expects="a WhatsApp webhook is a JSON object",
)


def channel() -> ChannelName:
    """The channel's name, defined when the registry registers ``WhatsAppChannel``."""
    return ChannelName(VENDOR)


class WhatsAppInbound:
    """The business number's webhooks, checked with ``WHATSAPP_APP_SECRET``."""

    vendor: ClassVar[str] = VENDOR
    hooks: ClassVar[tuple[Hook, ...]] = (UPDATE,)
    #: the answer to a webhook carries nothing to the member: the thanks for a button go as a message of ours
    answers_buttons: ClassVar[bool] = False

    def __init__(self, app_secret: SecretStr | None, verify_token: SecretStr | None = None) -> None:
        self._app_secret = app_secret
        self._verify_token = verify_token

    def __repr__(self) -> str:
        return "WhatsAppInbound()"

    @classmethod
    def from_settings(cls, settings: Settings) -> WhatsAppInbound:
        """Checks with WHATSAPP_APP_SECRET (without one, every POST is refused) and WHATSAPP_VERIFY_TOKEN."""
        return cls(settings.whatsapp_app_secret, settings.whatsapp_verify_token)

    def challenge(self, query: Mapping[str, str]) -> str | None:
        """The ``hub.challenge`` to answer the subscription's handshake with; None when it is not ours."""
        given = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or self._verify_token is None:
            return None
        if not hmac.compare_digest(given.encode(), self._verify_token.get_secret_value().encode()):
            return None
        return query.get("hub.challenge") or None

    def verify(self, hook: Hook, request: WebhookRequest) -> str | None:
        """None if ``X-Hub-Signature-256`` signs the body with the app's secret (compared in constant time)."""
        given = request.headers.get(HUB_SIG, "")
        if self._app_secret is None or not given.startswith("sha256="):
            return "the X-Hub-Signature-256 header is missing or wrong"
        if webhook_updates_validator(self._app_secret.get_secret_value(), request.body, given):
            return None
        return "the X-Hub-Signature-256 header is missing or wrong"

    def parse(self, hook: Hook, request: WebhookRequest) -> list[Event]:
        """Every event of the request, in order (see ``events``)."""
        return self.events(request)

    def events(self, request: WebhookRequest) -> list[Event]:
        """Every event a verified request carries, in order: statuses, then messages, per change."""
        update = request.json
        if not isinstance(update, dict) or update.get("object") != "whatsapp_business_account":
            return []
        found: list[Event] = []
        for entry in _items(update.get("entry")):
            for change in _items(entry.get("changes")):
                value = change.get("value")
                if change.get("field") != "messages" or not isinstance(value, dict):
                    continue
                found += [report for s in _items(value.get("statuses")) if (report := _status(s)) is not None]
                found += [event for m in _items(value.get("messages")) if (event := _message(m)) is not None]
        return found

    def answer(self, hook: Hook, request: WebhookRequest, answer: Answer | None) -> HookAnswer:
        """Always an empty 200: the Cloud API retries anything else, and reads nothing in the answer."""
        return HookAnswer(200, {})


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _status(item: dict[str, Any]) -> StatusReport | None:
    delivery = item.get("biz_opaque_callback_data")
    reported = str(item.get("status", ""))
    if not isinstance(delivery, str) or not delivery or reported not in STATUSES:
        return None  # not a message of ours (a reply of the service carries none), or a status we do not know
    errors = _items(item.get("errors"))
    error, cause = "", ""
    if errors:
        first = errors[0]
        error = str(first.get("code", ""))
        details = first.get("error_data", {}).get("details") if isinstance(first.get("error_data"), dict) else None
        cause = str(details or first.get("title") or first.get("message") or "")[:200]
    wamid = str(item.get("id", ""))
    return StatusReport(
        delivery_id=delivery,
        reported=reported,
        status=STATUSES[reported],
        provider_id=wamid,
        event_id=f"{wamid}:{reported}",
        error=error,
        cause=cause,
    )


def _message(item: dict[str, Any]) -> Event | None:
    sender = f"+{item.get('from', '')}"
    event_id = str(item.get("id", ""))
    match item.get("type"):
        case "button" if isinstance(item.get("button"), dict):
            data = str(item["button"].get("payload", ""))
            return ButtonPress(channel=channel(), sender=sender, data=data, event_id=event_id, own_chat=True)
        case "interactive" if isinstance(reply := (item.get("interactive") or {}).get("button_reply"), dict):
            return ButtonPress(
                channel=channel(), sender=sender, data=str(reply.get("id", "")), event_id=event_id, own_chat=True
            )
        case "text" if isinstance(item.get("text"), dict) and isinstance(item["text"].get("body"), str):
            return TextMessage(
                channel=channel(), sender=sender, text=item["text"]["body"], event_id=event_id, answer_inline=False
            )
        case _:
            return None  # images, locations, reactions...: nothing for us
