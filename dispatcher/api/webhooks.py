"""Webhooks from the providers: Twilio statuses, SMS replies and call keys; Telegram updates.

Nothing from outside changes anything before it is authenticated: Twilio requests must
carry an ``X-Twilio-Signature`` that the ``twilio`` library's validator accepts for the
service's public URL; Telegram updates must carry the configured secret token (compared
in constant time). A refused request gets a 403 and changes nothing.
"""

from __future__ import annotations

import hmac
from typing import Any

import structlog
from aiohttp import web
from pydantic import RootModel
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply, read_form
from dispatcher.api.services import api, services
from dispatcher.compose import ACK_PREFIX
from dispatcher.models import ChannelName, DeliveryStatus, Language
from dispatcher.receipts import Receipts, page_language
from dispatcher.store import split_delivery_id
from dispatcher.wording import VOICES, Words, say

log = structlog.get_logger(__name__)

TWIML = "application/xml"

#: Twilio message and call statuses -> where the delivery moves (None: nothing to record).
_MESSAGE_STATUS: dict[str, DeliveryStatus | None] = {
    "queued": None,
    "accepted": None,
    "scheduled": None,
    "sending": None,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
}
_CALL_STATUS: dict[str, DeliveryStatus | None] = {
    "queued": None,
    "initiated": DeliveryStatus.SENT,
    "ringing": DeliveryStatus.SENT,
    "in-progress": DeliveryStatus.DELIVERED,  # answered, by a person or a voicemail
    "answered": DeliveryStatus.DELIVERED,
    "completed": DeliveryStatus.DELIVERED,
    "busy": DeliveryStatus.FAILED,
    "no-answer": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
_CALL_FAILURE = {"busy": "line busy", "no-answer": "no answer", "failed": "call failed", "canceled": "call cancelled"}


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise Problem(415, "Unsupported media type", "Twilio posts application/x-www-form-urlencoded")
    return await read_form(request)


async def _twilio_params(call: Call) -> dict[str, str]:
    """The request's parameters, once its Twilio signature is verified; 403 otherwise."""
    params = await _form(call.request)
    settings = services(call).runtime.settings
    signature = call.request.headers.get("X-Twilio-Signature", "")
    token = settings.twilio_auth_token
    url = services(call).runtime.links.public(call.request.path_qs)
    valid = token is not None and RequestValidator(token.get_secret_value()).validate(url, params, signature)
    if not signature or not valid:
        log.warning("webhook.twilio_refused", path=call.request.path)
        raise Problem(403, "Forbidden", "the X-Twilio-Signature does not verify for this URL")
    return params


#: How long a webhook event is remembered; providers retry for minutes to hours, not days.
_SEEN_FOR = 7 * 86400


async def _first_time(call: Call, source: str, event_id: str) -> bool:
    """Whether this provider event is new; a replay (a provider retrying, or an attacker) is handled once."""
    svc = services(call)
    first = await svc.store.redis.set(svc.runtime.keys.seen(source, event_id), 1, nx=True, ex=_SEEN_FOR)
    if not first:
        log.info("webhook.replayed", source=source)
    return bool(first)


def _twilio_event(call: Call, *parts: str) -> str:
    # Twilio names each webhook delivery; its retries carry the same token.
    return call.request.headers.get("I-Twilio-Idempotency-Token") or ":".join(parts)


def _delivery(call: Call) -> str:
    delivery = call.request.query.get("d", "")
    try:
        split_delivery_id(delivery)
    except ValueError:
        raise Problem(400, "Bad request", "the d parameter must name a delivery") from None
    return delivery


@api.operation(
    "POST",
    "/v1/webhooks/twilio/status",
    summary="Twilio status callback of a message or a call (signed); moves the delivery forward",
    tag="webhooks",
    public=True,
    responses={204: None},
)
async def twilio_status(call: Call) -> Reply:
    params = await _twilio_params(call)
    delivery = _delivery(call)
    receipts = Receipts(services(call).store)
    if "CallStatus" in params:
        raw = params["CallStatus"]
        status = _CALL_STATUS.get(raw)
        cause = _CALL_FAILURE.get(raw, "")
        if params.get("AnsweredBy", "").startswith("machine"):
            cause = "left on voicemail"
        provider_id = params.get("CallSid", "")
    else:
        raw = params.get("MessageStatus", "")
        status = _MESSAGE_STATUS.get(raw)
        cause = ""
        provider_id = params.get("MessageSid", "")
    event = _twilio_event(call, provider_id, raw, delivery)
    if status is not None and await _first_time(call, "twilio", event):
        error = f"Twilio error {params['ErrorCode']}" if params.get("ErrorCode") else ""
        result = await receipts.provider_status(delivery, status, provider_id=provider_id, error=error, cause=cause)
        log.info("webhook.twilio_status", delivery_id=delivery, reported=raw, status=result)
    return Reply(204)


@api.operation(
    "POST",
    "/v1/webhooks/twilio/sms",
    summary="An SMS from a member (signed): acknowledgement, STOP, or feedback; answered in TwiML",
    tag="webhooks",
    public=True,
    responses={200: TWIML},
)
async def twilio_sms(call: Call) -> Reply:
    params = await _twilio_params(call)
    receipts = Receipts(services(call).store)
    member = await receipts.member_by_phone(params.get("From", ""))
    response = MessagingResponse()
    first = await _first_time(call, "twilio", _twilio_event(call, params.get("MessageSid", ""), "inbound"))
    if member is not None and first:
        response.message(await receipts.reply(member, ChannelName.SMS, params.get("Body", "")))
    else:
        log.info("webhook.sms_from_unknown_number")
    return Reply(200, str(response), media_type=TWIML)


@api.operation(
    "POST",
    "/v1/webhooks/twilio/voice",
    summary="Keys pressed during an alert call (signed): 1 acknowledges; answered in TwiML",
    tag="webhooks",
    public=True,
    responses={200: TWIML},
)
async def twilio_voice(call: Call) -> Reply:
    params = await _twilio_params(call)
    delivery = _delivery(call)
    store = services(call).store
    member = await store.get_member(split_delivery_id(delivery)[2])
    language = member.language if member else Language.FR
    lang, voice = VOICES[language]
    response = VoiceResponse()
    if params.get("Digits", "").startswith("1"):
        if await _first_time(call, "twilio", _twilio_event(call, params.get("CallSid", ""), "digits", delivery)):
            await Receipts(store).acknowledge(delivery, via=ChannelName.VOICE)
        response.say(say(Words.VOICE_THANKS, language), language=lang, voice=voice)
    else:
        response.say(say(Words.VOICE_GOODBYE, language), language=lang, voice=voice)
    return Reply(200, str(response), media_type=TWIML)


class TelegramAnswer(RootModel[dict[str, Any]]):
    """A Bot API method answering the update (sendMessage, answerCallbackQuery), or an empty body."""


def _telegram_answer(chat_id: int, text: str) -> Reply:
    # Answering the webhook with a method call saves a request to the Bot API.
    return Reply(200, {"method": "sendMessage", "chat_id": chat_id, "text": text})


@api.operation(
    "POST",
    "/v1/webhooks/telegram",
    summary="A Telegram update (with the secret token header): links, /stop, the received button, replies",
    tag="webhooks",
    public=True,
    responses={200: TelegramAnswer},
)
async def telegram_update(call: Call) -> Reply:
    secret = services(call).runtime.settings.telegram_webhook_secret
    given = call.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if secret is None or not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        log.warning("webhook.telegram_refused")
        raise Problem(403, "Forbidden", "the secret token header is missing or wrong")
    try:
        update = await call.request.json()
    except ValueError:
        raise Problem(400, "Malformed JSON", "a Telegram update is a JSON object") from None
    receipts = Receipts(services(call).store)
    if not isinstance(update, dict) or not await _first_time(call, "telegram", str(update.get("update_id", ""))):
        return Reply(200)  # not an update, or one already handled (Telegram retries)
    if isinstance(update.get("callback_query"), dict):
        return await _telegram_button(receipts, update["callback_query"])
    message = update.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("text"), str):
        return Reply(200)  # other kinds of update are not for us
    chat_id = int(message.get("chat", {}).get("id", 0))
    language = page_language((message.get("from") or {}).get("language_code"))
    return await _telegram_text(receipts, chat_id, message["text"], language)


async def _telegram_text(receipts: Receipts, chat_id: int, text: str, language: Language) -> Reply:
    if text.startswith("/start"):
        token = text.removeprefix("/start").strip()
        member = await receipts.link_telegram(token, chat_id) if token else None
        if member is None:
            return _telegram_answer(chat_id, say(Words.TELEGRAM_LINK_INVALID, language))
        return _telegram_answer(chat_id, say(Words.TELEGRAM_LINKED, member.language))
    member = await receipts.member_by_chat(chat_id)
    if member is None:
        return _telegram_answer(chat_id, say(Words.TELEGRAM_UNKNOWN, language))
    return _telegram_answer(chat_id, await receipts.reply(member, ChannelName.TELEGRAM, text))


async def _telegram_button(receipts: Receipts, query: dict[str, Any]) -> Reply:
    data = str(query.get("data", ""))
    chat_id = int((query.get("message") or {}).get("chat", {}).get("id", 0))
    member = await receipts.member_by_chat(chat_id)
    answer: dict[str, Any] = {"method": "answerCallbackQuery", "callback_query_id": str(query.get("id", ""))}
    if member is None or not data.startswith(ACK_PREFIX):
        return Reply(200, answer)
    delivery = data.removeprefix(ACK_PREFIX)
    try:
        _, _, member_id = split_delivery_id(delivery)
    except ValueError:
        return Reply(200, answer)
    if member_id != member.id:  # a button of someone else's message: ignore it
        log.warning("webhook.telegram_foreign_button")
        return Reply(200, answer)
    await receipts.acknowledge(delivery, via=ChannelName.TELEGRAM)
    return Reply(200, answer | {"text": say(Words.ACK_THANKS, member.language)})
