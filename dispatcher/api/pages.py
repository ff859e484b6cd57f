"""The pages behind the links in e-mails: confirm receipt or reply, unsubscribe, see one's data.

Opening a link changes nothing: mail scanners follow links. Only the POST from the page's
button acknowledges, sends feedback or unsubscribes (and the one-click POST of RFC 8058,
which mail clients send to the List-Unsubscribe URL, with ``List-Unsubscribe=One-Click``).
A POST without what those send (a robot posting to every URL) changes nothing either: it
gets the page back, with a 400. Links are signed and expire.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply, read_form
from dispatcher.api.services import api, services
from dispatcher.core.links import InvalidLink, Purpose
from dispatcher.core.models import ChannelName, Language, Member
from dispatcher.core.wording import Words, say
from dispatcher.people.export import MemberExport, export_member
from dispatcher.pipeline.compose import message_text, templates
from dispatcher.pipeline.receipts import MAX_FEEDBACK, AnswerResult, Receipts, page_language
from dispatcher.storage.store import split_delivery_id

log = structlog.get_logger(__name__)

HTML = "text/html"
#: Every page served by a signed link (and the member's own page, the join page): never cached nor indexed, no
#: referrer, and nothing but its own inline style: no script, no framing (a framed "received" button could be
#: clicked for the member), forms posted only here.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def _page(status: int, language: Language, **values: Any) -> Reply:
    body = templates().get_template("page.html").render(language=language.value, **values)
    return Reply(status, body, HEADERS, media_type=HTML)


def _expired(call: Call) -> Reply:
    language = page_language(call.request.headers.get("Accept-Language"))
    return _page(410, language, title=say(Words.PAGE_EXPIRED, language))


async def _receipt_target(call: Call) -> tuple[str, Member] | None:
    svc = services(call)
    try:
        delivery = svc.runtime.links.read(Purpose.RECEIPT, call.path("token"))
    except InvalidLink:
        return None
    member = await svc.store.get_member(split_delivery_id(delivery)[2])
    return (delivery, member) if member is not None else None


async def _form(request: web.Request) -> dict[str, str]:
    return await read_form(request)


@api.operation(
    "GET",
    "/v1/r/{token}",
    summary="The page of an e-mail's receipt link",
    tag="members",
    public=True,
    responses={200: HTML, 410: HTML},
)
async def receipt_page(call: Call) -> Reply:
    target = await _receipt_target(call)
    if target is None:
        return _expired(call)
    return await _receipt_form(call, *target)


async def _receipt_form(call: Call, delivery: str, member: Member, *, status: int = 200) -> Reply:
    store, language = services(call).store, member.language
    alert = await store.get_alert(split_delivery_id(delivery)[0])
    chosen = call.request.query.get("answer")  # the e-mail's answer link: shown chosen, recorded only by the POST
    answers = [(a.id, a.text_for(language), a.id == chosen) for a in (alert.answers if alert else [])]
    return _page(
        status,
        language,
        title=say(Words.PAGE_TITLE, language),
        message=message_text(alert, language, None, language) if alert else None,
        form="receipt",
        confirm_label=say(Words.PAGE_CONFIRM, language),
        feedback_label=say(Words.PAGE_FEEDBACK_LABEL, language),
        send_label=say(Words.PAGE_SEND, language),
        answers=answers,
    )


@api.operation(
    "POST",
    "/v1/r/{token}",
    summary="Confirm receipt (action=ack), answer (action=answer, answer=<id>) or reply (action=feedback, text=...) "
    "from the receipt page",
    tag="members",
    public=True,
    responses={200: HTML, 400: HTML, 410: HTML},
)
async def receipt_submit(call: Call) -> Reply:
    target = await _receipt_target(call)
    if target is None:
        return _expired(call)
    delivery, member = target
    form = await _form(call.request)
    if form.get("action") not in ("ack", "feedback", "answer"):  # not the page's buttons: a person has not confirmed
        return await _receipt_form(call, delivery, member, status=400)
    receipts, language = Receipts(services(call).store), member.language
    if form.get("action") == "answer":
        return await _answer(call, receipts, delivery, member, form.get("answer", ""))
    await receipts.acknowledge(delivery, via=ChannelName.EMAIL)  # either button proves a person read it
    if form.get("action") == "feedback" and form.get("text", "").strip():
        await receipts.feedback(member, form["text"][:MAX_FEEDBACK], via=ChannelName.EMAIL, delivery=delivery)
        return _page(200, language, title=say(Words.FEEDBACK_THANKS, language))
    return _page(200, language, title=say(Words.ACK_THANKS, language))


async def _answer(call: Call, receipts: Receipts, delivery: str, member: Member, answer_id: str) -> Reply:
    """The page's answer button: records the answer (which acknowledges); an answer the alert does not offer gets
    the page back with a 400, an alert that has ended a 410."""
    alert = await receipts.store.get_alert(split_delivery_id(delivery)[0])
    option = alert.answer(answer_id) if alert is not None else None
    if option is None:
        return await _receipt_form(call, delivery, member, status=400)
    language = member.language
    if await receipts.answer(delivery, option, via=ChannelName.EMAIL) is AnswerResult.ENDED:
        return _page(410, language, title=say(Words.PAGE_EXPIRED, language))
    return _page(200, language, title=say(Words.ANSWER_THANKS, language, answer=option.text_for(language)))


async def linked_member(call: Call, purpose: Purpose) -> Member | None:
    """The member the path's signed link (``{token}``) is for; None if the link is forged, expired or for another
    purpose, or the member has left (their data is gone)."""
    svc = services(call)
    try:
        member_id = svc.runtime.links.read(purpose, call.path("token"))
    except InvalidLink:
        return None
    return await svc.store.get_member(member_id)


@api.operation(
    "GET",
    "/v1/u/{token}",
    summary="The page of an e-mail's unsubscribe link",
    tag="members",
    public=True,
    responses={200: HTML, 410: HTML},
)
async def unsubscribe_page(call: Call) -> Reply:
    member = await linked_member(call, Purpose.UNSUBSCRIBE)
    if member is None:
        return _expired(call)
    return _unsubscribe_form(member)


def _unsubscribe_form(member: Member, *, status: int = 200) -> Reply:
    language = member.language
    return _page(
        status,
        language,
        title=say(Words.PAGE_UNSUBSCRIBE_TITLE, language),
        form="unsubscribe",
        confirm_label=say(Words.PAGE_UNSUBSCRIBE_CONFIRM, language),
    )


@api.operation(
    "POST",
    "/v1/u/{token}",
    summary="Unsubscribe: from the page, or one-click (RFC 8058) from the mail client",
    tag="members",
    public=True,
    responses={200: HTML, 400: HTML, 410: HTML},
)
async def unsubscribe_submit(call: Call) -> Reply:
    member = await linked_member(call, Purpose.UNSUBSCRIBE)
    if member is None:
        return _expired(call)
    form = await _form(call.request)
    if form.get("List-Unsubscribe") != "One-Click" and form.get("action") != "unsubscribe":
        return _unsubscribe_form(member, status=400)  # neither the mail client's one-click nor the page's button
    await Receipts(services(call).store).opt_out(member, via="email link")
    return _page(200, member.language, title=say(Words.OPTED_OUT, member.language))


@api.operation(
    "GET",
    "/v1/x/{token}",
    summary="Everything stored about the member, as JSON, from the data link in their e-mails (410 if expired)",
    tag="members",
    public=True,
    responses={200: MemberExport},
)
async def member_data(call: Call) -> Reply:
    svc = services(call)
    member = await linked_member(call, Purpose.EXPORT)
    if member is None:  # a forged or expired link, or a member whose data is already erased
        raise Problem(410, "Gone", "this link is not valid or has expired")
    data = await export_member(svc.store, member, retention_days=svc.runtime.settings.retention_days)
    log.info("member.exported", member_id=member.id, via="link", complete=True)
    return Reply(200, data, HEADERS | {"Content-Disposition": 'inline; filename="plp-data.json"'})
