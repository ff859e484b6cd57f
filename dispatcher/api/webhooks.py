"""Webhooks from the providers: Twilio statuses, SMS replies and call keys; Telegram updates.

Nothing from outside changes anything before it is authenticated: Twilio requests must
carry an ``X-Twilio-Signature`` that the ``twilio`` library's validator accepts for the
service's public URL; Telegram updates must carry the configured secret token (compared
in constant time). A refused request gets a 403 and changes nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiohttp import web
from pydantic import RootModel
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply, read_form
from dispatcher.api.services import Services, api, services
from dispatcher.core.models import ChannelName, DeliveryStatus, Language
from dispatcher.core.wording import VOICES, Words, say
from dispatcher.pipeline import replies
from dispatcher.pipeline.compose import ACK_PREFIX
from dispatcher.pipeline.receipts import Receipts, page_language
from dispatcher.storage.store import Store, split_delivery_id

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
#: Causes recorded for a call that no person answered (from answering machine detection's ``AnsweredBy``).
_VOICEMAIL, _FAX = "left on voicemail", "answered by a fax machine"
#: ``AnsweredBy`` values under which a key pressed in a call is the member's own act: a person, or a call
#: the detection could not classify (most often a person who said nothing). Every ``machine_*`` value and
#: ``fax`` mean no person is on the line: tones a voicemail or a fax plays are not an acknowledgement.
_PERSON_ANSWERED = frozenset({"human", "unknown"})


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
    urls = services(call).runtime.links.signed_urls(call.request.path_qs)
    validator = RequestValidator(token.get_secret_value()) if token is not None else None
    valid = validator is not None and any(validator.validate(url, params, signature) for url in urls)
    if not signature or not valid:
        log.warning("webhook.twilio_refused", path=call.request.path)
        raise Problem(403, "Forbidden", "the X-Twilio-Signature does not verify for this URL")
    return params


#: How long a webhook event is remembered; providers retry for minutes to hours, not days.
_SEEN_FOR = 7 * 86400


@asynccontextmanager
async def _once(call: Call, source: str, event_id: str) -> AsyncIterator[bool]:
    """Whether this provider event is new (True: handle it, within the block); a replay (a provider retrying,
    or an attacker) of an event already handled is skipped.

    The event is marked as handled once its block has ended, not before: a request cut short by
    a lost Redis (a 503) leaves no mark, so the provider's retry of the event is handled rather
    than skipped. Statuses only move forward, and an acknowledgement or an opt-out recorded twice
    counts once; only a free-text reply whose handling ended but whose mark was lost with Redis
    is stored twice when the provider retries it.
    """
    svc = services(call)
    key = svc.runtime.keys.seen(source, event_id)
    if await svc.store.redis.exists(key):
        log.info("webhook.replayed", source=source)
        yield False
        return
    yield True
    await svc.store.redis.set(key, 1, ex=_SEEN_FOR)


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
        status, cause = _answered_by_machine(status, cause, params.get("AnsweredBy", ""))
        provider_id = params.get("CallSid", "")
    else:
        raw = params.get("MessageStatus", "")
        status = _MESSAGE_STATUS.get(raw)
        cause = ""
        provider_id = params.get("MessageSid", "")
    if status is None:
        return Reply(204)
    async with _once(call, "twilio", _twilio_event(call, provider_id, raw, delivery)) as first:
        if first:
            error = f"Twilio error {params['ErrorCode']}" if params.get("ErrorCode") else ""
            result = await receipts.provider_status(delivery, status, provider_id=provider_id, error=error, cause=cause)
            log.info("webhook.twilio_status", delivery_id=delivery, reported=raw, status=result)
    return Reply(204)


def _answered_by_machine(
    status: DeliveryStatus | None, cause: str, answered_by: str
) -> tuple[DeliveryStatus | None, str]:
    """A call a voicemail took is delivered, and says so; one a fax took reached nobody: it failed."""
    if answered_by == "fax" and status is DeliveryStatus.DELIVERED:
        return DeliveryStatus.FAILED, _FAX
    if answered_by.startswith("machine"):
        return status, _VOICEMAIL
    return status, cause


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
    async with _once(call, "twilio", _twilio_event(call, params.get("MessageSid", ""), "inbound")) as first:
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
    if params.get("Digits", "").startswith("1") and await _pressed_by_a_person(store, delivery, params):
        async with _once(call, "twilio", _twilio_event(call, params.get("CallSid", ""), "digits", delivery)) as first:
            if first:
                await Receipts(store).acknowledge(delivery, via=ChannelName.VOICE)
        response.say(say(Words.VOICE_THANKS, language), language=lang, voice=voice)
    else:
        response.say(say(Words.VOICE_GOODBYE, language), language=lang, voice=voice)
    return Reply(200, str(response), media_type=TWIML)


async def _pressed_by_a_person(store: Store, delivery: str, params: dict[str, str]) -> bool:
    """Whether the keys were pressed with a person on the line, as answering machine detection reported it.

    The request's own ``AnsweredBy`` decides; without one, what the call's status callbacks
    reported (a voicemail or a fax recorded on the delivery); with neither, detection was off
    and the key counts.
    """
    answered_by = params.get("AnsweredBy") or None
    if answered_by is None:
        alert_id, channel, member_id = split_delivery_id(delivery)
        record = await store.get_delivery(alert_id, f"{channel}:{member_id}")
        answered_by = "machine" if record is not None and record.cause in (_VOICEMAIL, _FAX) else "unknown"
    if answered_by not in _PERSON_ANSWERED:
        log.info("webhook.voice_key_without_a_person", delivery_id=delivery, answered_by=answered_by)
        return False
    return True


class TelegramAnswer(RootModel[dict[str, Any]]):
    """A Bot API method answering the update (answerCallbackQuery: the button's toast), or an empty body."""


async def _answer_later(svc: Services, chat_id: int, text: str, language: Language) -> Reply:
    # Not in the webhook's answer, which Telegram would send outside our limiter (see dispatcher.pipeline.replies).
    await svc.blocking(replies.queue, svc.runtime, ChannelName.TELEGRAM, str(chat_id), text, language)
    return Reply(200)


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
    if not isinstance(update, dict):
        return Reply(200)  # not an update
    async with _once(call, "telegram", str(update.get("update_id", ""))) as first:
        return await _telegram_update(services(call), update) if first else Reply(200)


async def _telegram_update(svc: Services, update: dict[str, Any]) -> Reply:
    if isinstance(update.get("callback_query"), dict):
        return await _telegram_button(Receipts(svc.store), update["callback_query"])
    message = update.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("text"), str):
        return Reply(200)  # other kinds of update are not for us
    chat_id = int(message.get("chat", {}).get("id", 0))
    language = page_language((message.get("from") or {}).get("language_code"))
    return await _telegram_text(svc, chat_id, message["text"], language, by_owner=_by_chat_owner(message))


def _by_chat_owner(item: dict[str, Any]) -> bool:
    """Whether a message or a button press comes from the person whose private chat it is in.

    In a private chat the user's id is the chat's; in a group anyone may write or press, and
    what they do is not the member's act.
    """
    chat = (item.get("message") or item).get("chat") or {}
    return bool(chat.get("id")) and (item.get("from") or {}).get("id") == chat.get("id")


async def _telegram_text(svc: Services, chat_id: int, text: str, language: Language, *, by_owner: bool) -> Reply:
    receipts = Receipts(svc.store)
    if text.startswith("/start"):
        token = text.removeprefix("/start").strip()
        member = await receipts.link_telegram(token, chat_id) if token else None
        if member is None:
            return await _answer_later(svc, chat_id, say(Words.TELEGRAM_LINK_INVALID, language), language)
        return await _answer_later(svc, chat_id, say(Words.TELEGRAM_LINKED, member.language), member.language)
    member = await receipts.member_by_chat(chat_id) if by_owner else None
    if member is None:
        return await _answer_later(svc, chat_id, say(Words.TELEGRAM_UNKNOWN, language), language)
    answer = await receipts.reply(member, ChannelName.TELEGRAM, text)
    return await _answer_later(svc, chat_id, answer, member.language)


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
    if member_id != member.id or not _by_chat_owner(query):  # someone else's message, or someone else pressing
        log.warning("webhook.telegram_foreign_button")
        return Reply(200, answer)
    await receipts.acknowledge(delivery, via=ChannelName.TELEGRAM)
    return Reply(200, answer | {"text": say(Words.ACK_THANKS, member.language)})
