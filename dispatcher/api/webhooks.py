"""Webhooks from the providers: each handed to its vendor's parser, then applied in the dispatcher's words.

Every vendor that calls back (``channels.inbound_vendors``) has its hooks routed here,
``POST /v1/webhooks/<vendor>[/<hook>]`` (``operations``, read from the registry whenever the
routes or the API's document are built). Each request goes to the vendor as received
(``channels.inbound``): nothing from outside changes anything before the vendor's ``verify``
accepts it (a signature, a secret header), and a refused request gets a 403 and changes nothing.
The vendor parses it into one event, which is applied here through the receipts
(``dispatcher.pipeline.receipts``); the vendor writes the answer, in its format, from ours.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog

from channels import inbound_vendors
from channels.inbound import (
    ACK_PREFIX,
    ANSWER_PREFIX,
    DELIVERY_PARAMETER,
    NOBODY_ANSWERED,
    Answer,
    Body,
    ButtonPress,
    CallKeys,
    ChatLink,
    Event,
    Hook,
    Inbound,
    StatusReport,
    TextMessage,
    WebhookRequest,
    hook_path,
)
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Operation, Reply, read_form
from dispatcher.api.services import Services, api, services
from dispatcher.core.models import ChannelName, Language, Member
from dispatcher.core.wording import Words, answer_for_key, say
from dispatcher.people.selfservice import profile_answer
from dispatcher.pipeline import replies
from dispatcher.pipeline.receipts import Receipts, page_language
from dispatcher.storage.store import Store, split_delivery_id

log = structlog.get_logger(__name__)

#: How long a webhook event is remembered; providers retry for minutes to hours, not days.
_SEEN_FOR = 7 * 86400
#: The key that acknowledges an alert call, as the call's script says.
_ACK_KEY = "1"


def operations() -> list[Operation]:
    """One public operation, tagged ``webhooks``, per hook of every vendor registered now, and the subscription
    handshake (a GET) of a vendor that has one."""
    posts = [_operation(inbound, hook) for inbound in inbound_vendors() for hook in inbound.hooks]
    return posts + [_handshake(inbound) for inbound in inbound_vendors() if hasattr(inbound, "challenge")]


def _handshake(inbound: type[Inbound]) -> Operation:
    async def handler(call: Call) -> Reply:
        vendor = inbound.from_settings(services(call).runtime.settings)
        challenge = vendor.challenge(call.request.query)  # type: ignore[attr-defined]
        if challenge is None:
            log.warning(f"webhook.{inbound.vendor}_handshake_refused")
            raise Problem(403, "Forbidden", "the verify token is missing or wrong")
        return Reply(200, challenge, media_type="text/plain")

    handler.__name__ = f"{inbound.vendor}_handshake"
    return Operation(
        method="GET",
        path=hook_path(inbound.vendor),
        handler=handler,
        summary=f"The {inbound.vendor} subscription's handshake: the challenge, for our verify token",
        tag="webhooks",
        responses={200: "text/plain"},
        public=True,
        needs_redis=False,
    )


def _operation(inbound: type[Inbound], hook: Hook) -> Operation:
    async def handler(call: Call) -> Reply:
        return await receive(call, inbound, hook)

    handler.__name__ = hook.name  # the operation's id in the document
    return Operation(
        method="POST",
        path=hook_path(inbound.vendor, hook.path),
        handler=handler,
        summary=hook.summary,
        tag="webhooks",
        responses=hook.answers,
        public=True,
    )


api.extend(operations)


async def receive(call: Call, inbound: type[Inbound], hook: Hook) -> Reply:
    """Check, parse, apply and answer one webhook request (403 when the vendor refuses it)."""
    svc = services(call)
    vendor = inbound.from_settings(svc.runtime.settings)
    request = await _request(call, hook)
    refusal = vendor.verify(hook, request)
    if refusal is not None:
        log.warning(f"webhook.{inbound.vendor}_refused", path=call.request.path)
        raise Problem(403, "Forbidden", refusal)
    if hook.body is Body.JSON:
        request = dataclasses.replace(request, json=_json(request.body, hook))
    parsed = vendor.parse(hook, request)
    events = parsed if isinstance(parsed, list) else [parsed] if parsed is not None else []
    answer = None
    for event in events:  # a vendor that batches its events (WhatsApp) gives a list
        answer = await _apply(svc, inbound.vendor, event)
        if isinstance(event, ButtonPress) and answer is not None and answer.text and not _answers_buttons(inbound):
            await _answer_later(svc, event.channel, event.sender, answer.text, answer.language or Language.FR)
            answer = None
    answered = vendor.answer(hook, request, answer)
    return Reply(answered.status, answered.body, media_type=answered.media_type)


def _answers_buttons(inbound: type[Inbound]) -> bool:
    """Whether the vendor's answer to a button pressed carries our words (Telegram's toast); if not (WhatsApp,
    ``answers_buttons = False`` on its class), they go as a message of ours."""
    return bool(getattr(inbound, "answers_buttons", True))


async def _request(call: Call, hook: Hook) -> WebhookRequest:
    """The request as the vendor reads it; a form is read now (its signature covers it), a JSON body once verified."""
    form: dict[str, str] = {}
    body = b""
    if hook.body is Body.FORM:
        if call.request.content_type != Body.FORM.value:
            raise Problem(415, "Unsupported media type", hook.expects)
        form = await read_form(call.request)
    else:
        body = await call.request.read()  # as received: a signature covers these bytes
    url = services(call).runtime.links.public(call.request.path_qs)
    return WebhookRequest(url=url, headers=call.request.headers, query=call.request.query, form=form, body=body)


def _json(body: bytes, hook: Hook) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise Problem(400, "Malformed JSON", hook.expects) from None


async def _apply(svc: Services, vendor: str, event: Event) -> Answer | None:
    """Apply one event; what to answer in the webhook's answer (None: nothing)."""
    if isinstance(event, StatusReport):
        await _status(svc, vendor, event)
        return None
    if isinstance(event, TextMessage):
        return await _text(svc, vendor, event)
    if isinstance(event, ChatLink):
        await _link(svc, vendor, event)
        return None
    if isinstance(event, CallKeys):
        return await _keys(svc, vendor, event)
    return await _button(svc, vendor, event)


@asynccontextmanager
async def _once(svc: Services, source: str, event_id: str) -> AsyncIterator[bool]:
    """Whether this provider event is new (True: handle it, within the block); a replay (a provider retrying,
    or an attacker) of an event already handled is skipped.

    The event is marked as handled once its block has ended, not before: a request cut short by
    a lost Redis (a 503) leaves no mark, so the provider's retry of the event is handled rather
    than skipped. Statuses only move forward, and an acknowledgement or an opt-out recorded twice
    counts once; only a free-text reply whose handling ended but whose mark was lost with Redis
    is stored twice when the provider retries it.
    """
    key = svc.runtime.keys.seen(source, event_id)
    if await svc.store.redis.exists(key):
        log.info("webhook.replayed", source=source)
        yield False
        return
    yield True
    await svc.store.redis.set(key, 1, ex=_SEEN_FOR)


def _delivery(value: str) -> str:
    """A delivery id named by a callback URL; a 400 when it names none."""
    try:
        split_delivery_id(value)
    except ValueError:
        raise Problem(400, "Bad request", f"the {DELIVERY_PARAMETER} parameter must name a delivery") from None
    return value


async def _status(svc: Services, vendor: str, report: StatusReport) -> None:
    delivery = _delivery(report.delivery_id)
    if report.status is None:
        return
    async with _once(svc, vendor, report.event_id) as first:
        if first:
            result = await Receipts(svc.store).provider_status(
                delivery, report.status, provider_id=report.provider_id, error=report.error, cause=report.cause
            )
            log.info(f"webhook.{vendor}_status", delivery_id=delivery, reported=report.reported, status=result)


async def _text(svc: Services, vendor: str, message: TextMessage) -> Answer | None:
    """A reply from a member, answered in the webhook's answer or by a message of ours.

    A stranger is told who we are only by a message of ours, sent under the provider's limits:
    an answer in the webhook's answer leaves outside them, so anyone could have us send it at will.
    """
    receipts = Receipts(svc.store)
    member = await receipts.member_by_address(message.channel, message.sender) if message.own_chat else None
    async with _once(svc, vendor, message.event_id) as first:
        if not first:
            return None
        if message.answer_inline:
            if member is None:
                log.info(f"webhook.{message.channel.value}_from_unknown_number")
                return None
            return Answer(await _member_reply(svc, receipts, member, message), member.language)
        if member is None:
            language = page_language(message.language)
            await _answer_later(svc, message.channel, message.sender, say(Words.TELEGRAM_UNKNOWN, language), language)
        else:
            answer = await _member_reply(svc, receipts, member, message)
            await _answer_later(svc, message.channel, message.sender, answer, member.language)
    return None


async def _member_reply(svc: Services, receipts: Receipts, member: Member, message: TextMessage) -> str:
    """The answer to a member's reply: the link to their own page if they asked for it, else as ``Receipts.reply``."""
    link = profile_answer(svc.runtime.links, member, message.text)
    return link if link is not None else await receipts.reply(member, message.channel, message.text)


async def _link(svc: Services, vendor: str, link: ChatLink) -> None:
    async with _once(svc, vendor, link.event_id) as first:
        if not first:
            return
        member = await Receipts(svc.store).link_telegram(link.token, int(link.sender)) if link.token else None
        if member is None:
            language = page_language(link.language)
            await _answer_later(svc, link.channel, link.sender, say(Words.TELEGRAM_LINK_INVALID, language), language)
        else:
            linked = say(Words.TELEGRAM_LINKED, member.language)
            await _answer_later(svc, link.channel, link.sender, linked, member.language)


async def _answer_later(svc: Services, channel: ChannelName, address: str, text: str, language: Language) -> None:
    # Not in the webhook's answer, which the provider would send outside our limiter (see dispatcher.pipeline.replies).
    await svc.blocking(replies.queue, svc.runtime, channel, address, text, language)


async def _keys(svc: Services, vendor: str, keys: CallKeys) -> Answer:
    """Keys pressed in an alert call, by a person: the acknowledgement key acknowledges, the keys after it give the
    alert's answers (and acknowledge); thanks or goodbye."""
    delivery = _delivery(keys.delivery_id)
    store = svc.store
    alert_id, _, member_id = split_delivery_id(delivery)
    member = await store.get_member(member_id)
    language = member.language if member else Language.FR
    alert = await store.get_alert(alert_id) if not keys.keys.startswith(_ACK_KEY) else None
    option = answer_for_key(keys.keys[:1], alert.answers) if alert is not None else None
    if (keys.keys.startswith(_ACK_KEY) or option) and await _pressed_by_a_person(store, delivery, keys):
        async with _once(svc, vendor, keys.event_id) as first:
            if first and option is not None:
                await Receipts(store).answer(delivery, option, via=keys.channel)
            elif first:
                await Receipts(store).acknowledge(delivery, via=keys.channel)
        return Answer(say(Words.VOICE_THANKS, language), language)
    return Answer(say(Words.VOICE_GOODBYE, language), language)


async def _pressed_by_a_person(store: Store, delivery: str, keys: CallKeys) -> bool:
    """Whether the keys were pressed with a person on the line, as answering machine detection reported it.

    The request's own word decides; without one, what the call's status callbacks reported (a
    voicemail or a fax recorded on the delivery); with neither, detection was off and the key counts.
    """
    by_person, answered_by = keys.by_person, keys.answered_by
    if by_person is None:
        alert_id, channel, member_id = split_delivery_id(delivery)
        record = await store.get_delivery(alert_id, f"{channel}:{member_id}")
        by_person = record is None or record.cause not in NOBODY_ANSWERED
        answered_by = "unknown" if by_person else "machine"
    if not by_person:
        log.info("webhook.voice_key_without_a_person", delivery_id=delivery, answered_by=answered_by)
    return by_person


async def _button(svc: Services, vendor: str, press: ButtonPress) -> Answer | None:
    """The "received" button acknowledges its delivery, an answer button answers its alert, when the member
    whose chat it is presses it."""
    async with _once(svc, vendor, press.event_id) as first:
        if not first:
            return None
        receipts = Receipts(svc.store)
        member = await receipts.member_by_address(press.channel, press.sender)
        pressed = _pressed(press.data)
        if member is None or pressed is None:
            return Answer()
        delivery, number = pressed
        if split_delivery_id(delivery)[2] != member.id or not press.own_chat:  # someone else's message, or pressing
            log.warning(f"webhook.{vendor}_foreign_button")
            return Answer()
        if number is None:
            await receipts.acknowledge(delivery, via=press.channel)
            return Answer(say(Words.ACK_THANKS, member.language), member.language)
        thanks = await receipts.answer_from_reply(member, delivery, number, via=press.channel)
        return Answer(thanks, member.language) if thanks else Answer()


def _pressed(data: str) -> tuple[str, str | None] | None:
    """The delivery a button's data names, and the answer's number for an answer button; None if it names none."""
    number: str | None = None
    if data.startswith(ANSWER_PREFIX):
        number, _, delivery = data.removeprefix(ANSWER_PREFIX).partition(":")
        if not number.isdigit():
            return None
    elif data.startswith(ACK_PREFIX):
        delivery = data.removeprefix(ACK_PREFIX)
    else:
        return None
    try:
        split_delivery_id(delivery)
    except ValueError:
        return None
    return delivery, number
