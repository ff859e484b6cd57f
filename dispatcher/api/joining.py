"""Joining a PLP: its public join page (the resident), its settings and the join requests (its coordinators).

The page (``/v1/join/{plp_id}``) is served only while the PLP's join page is on: otherwise, as for a
PLP that does not exist, a 404. It has no script and nothing from elsewhere, works without
JavaScript, and speaks the resident's language (``?lang=``, else the browser's). Its first form
carries a signed per-form token, the code form the request's signed token. Each client address may
start ``JOINS_PER_ADDRESS_PER_HOUR`` requests an hour (``dispatcher.access.throttle.admit_join``),
each contact point get ``joining.CODES_PER_HOUR`` codes; the rest is ``dispatcher.people.joining``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Annotated, Any, cast

import structlog
from pydantic import BaseModel, Field, ValidationError

from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.access.codes import CodeRefused
from dispatcher.access.throttle import admit_join, client_address
from dispatcher.api import guards
from dispatcher.api.audit import note
from dispatcher.api.pages import HTML
from dispatcher.api.problems import PROBLEM, Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.self_service import HEADERS, LANGUAGE_NAMES, REFUSALS, form_fields
from dispatcher.api.services import Services, api, services
from dispatcher.core.links import InvalidLink, Purpose
from dispatcher.core.models import Address, ChannelName, Language, Plp, Role
from dispatcher.core.wording import Words, emergency_reminder, say
from dispatcher.people import joining, locating
from dispatcher.people.joining import ContactKind, JoinForm, JoinPage, JoinRefused, JoinRequest, JoinState
from dispatcher.pipeline import replies
from dispatcher.pipeline.compose import templates
from dispatcher.pipeline.notifications import Notification, NotificationKind, Notifications, notification_id
from dispatcher.pipeline.receipts import page_language
from dispatcher.storage.limits import ProviderLimits

log = structlog.get_logger(__name__)


class JoinPageView(JoinPage):
    """A PLP's join page: on or off, its privacy notice per language, and its address."""

    url: str = Field(description="The page residents open to ask to join (404 while it is off)")


class JoinRequestView(JoinRequest):
    """A resident's request to join the PLP, waiting for a decision or declined (with the reason)."""


class JoinRequestList(BaseModel):
    """The PLP's join requests, newest first: waiting ones and those declined (kept 30 days)."""

    items: list[JoinRequestView]


class JoinDecline(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=500, description="Told to the resident, in these words")]


class JoinApproved(BaseModel):
    """The member the approved request made (or linked: a person already in another PLP)."""

    member_id: str
    existing: bool = Field(description="True if the person was already a member of another PLP, and was linked")


# -- the coordinators -------------------------------------------------------------------------------------


def _page_view(call: Call, plp: Plp, page: JoinPage) -> JoinPageView:
    url = services(call).runtime.links.public(f"/v1/join/{plp.id}")
    return JoinPageView(**page.model_dump(), url=url)


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/join-page",
    summary="The PLP's public join page: on or off, its privacy notice per language, its address",
    tag="joining",
    authorize=guards.join_page_editor,
    responses={200: JoinPageView},
)
async def get_join_page(call: Call) -> Reply:
    plp: Plp = call.scope
    return Reply(200, _page_view(call, plp, await joining.join_page(services(call).store, plp.id)))


@api.operation(
    "PUT",
    "/v1/plps/{plp_id}/join-page",
    summary="Turn the PLP's join page on or off and set its privacy notice (all four languages to turn it on)",
    tag="joining",
    body=JoinPage,
    authorize=guards.join_page_editor,
    responses={200: JoinPageView},
)
async def put_join_page(call: Call) -> Reply:
    plp: Plp = call.scope
    page: JoinPage = call.body
    await joining.set_join_page(services(call).store, plp.id, page)
    await note(call, Action.JOIN_PAGE_CHANGED, detail="on" if page.enabled else "off", plp=plp.id)
    return Reply(200, _page_view(call, plp, page))


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/join-requests",
    summary="The PLP's join requests waiting for a decision, and those declined, newest first",
    tag="joining",
    authorize=guards.join_decider,
    responses={200: JoinRequestList},
)
async def list_join_requests(call: Call) -> Reply:
    plp: Plp = call.scope
    found = await joining.requests_of(services(call).store, plp.id)
    return Reply(200, JoinRequestList(items=[JoinRequestView.model_validate(r.model_dump()) for r in found]))


async def _request(call: Call, plp: Plp) -> JoinRequest:
    request_id = call.path("request_id")
    request = await joining.get(services(call).store, request_id)
    if request is None or request.plp_id != plp.id or request.state is JoinState.CONFIRMING:
        raise Problem(404, "Not found", f"no join request {request_id!r} for PLP {plp.id}")
    return request


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/join-requests/{request_id}/approve",
    summary="Approve a join request: the resident becomes a member (consent from the join page) and is told so",
    tag="joining",
    authorize=guards.join_decider,
    responses={200: JoinApproved},
)
async def approve_join_request(call: Call) -> Reply:
    plp: Plp = call.scope
    svc = services(call)
    request = await _request(call, plp)
    settings = svc.runtime.settings
    try:
        member, existed = await joining.approve(
            svc.store, plp, request, region=settings.default_region, geocoder=settings.geocoder_url is not None
        )
    except joining.Conflict as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    if not existed:
        await locating.request(svc.runtime, svc.store, [member])
    await note(call, Action.JOIN_APPROVED, plp=plp.id, join=request.id, member=member.id)
    await note(call, Action.MEMBER_LINKED if existed else Action.MEMBER_CREATED, plp=plp.id, member=member.id)
    url = svc.runtime.links.profile_url(member.id)
    await _tell(
        svc,
        request,
        Words.JOIN_APPROVED_SUBJECT,
        say(Words.JOIN_APPROVED_TEXT, request.language, plp=plp.name, url=url),
    )
    return Reply(200, JoinApproved(member_id=member.id, existing=existed))


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/join-requests/{request_id}/decline",
    summary="Decline a join request with a reason, told to the resident in their language (kept 30 days)",
    tag="joining",
    body=JoinDecline,
    authorize=guards.join_decider,
    responses={200: JoinRequestView},
)
async def decline_join_request(call: Call) -> Reply:
    plp: Plp = call.scope
    svc = services(call)
    request = await _request(call, plp)
    reason = call.body.reason.strip()
    try:
        declined = await joining.decline(svc.store, request, actor_id=call.who.id, reason=reason)
    except joining.Conflict as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    await note(call, Action.JOIN_DECLINED, plp=plp.id, join=request.id)
    text = say(Words.JOIN_DECLINED_TEXT, request.language, plp=plp.name, reason=reason)
    await _tell(svc, request, Words.JOIN_DECLINED_SUBJECT, text)
    return Reply(200, JoinRequestView.model_validate(declined.model_dump()))


async def _tell(svc: Services, request: JoinRequest, subject: Words, text: str) -> None:
    """Send the resident the decision by their confirmed contact point (e-mail, else SMS), in their language."""
    channel, address = request.told_by()
    title = say(subject, request.language) if channel is ChannelName.EMAIL else ""
    await svc.blocking(replies.queue, svc.runtime, channel, address, text, request.language, subject=title)


# -- the resident ---------------------------------------------------------------------------------------

ADDRESS_FIELDS = (
    ("street", Words.JOIN_STREET, "address-line1"),
    ("number", Words.JOIN_NUMBER, "off"),
    ("postcode", Words.JOIN_POSTCODE, "postal-code"),
    ("commune", Words.JOIN_COMMUNE, "address-level2"),
)
#: What the resident is told when a code is refused.
CODE_REFUSALS = REFUSALS | {"locked": Words.JOIN_LOCKED}
JOIN_REFUSALS = {
    "name": Words.JOIN_NAME_NEEDED,
    "contact": Words.JOIN_CONTACT_NEEDED,
    "privacy": Words.JOIN_PRIVACY_NEEDED,
    "address": Words.JOIN_ADDRESS_INVALID,
}


async def _open_plp(call: Call) -> tuple[Plp, JoinPage] | None:
    """The path's PLP and its join page, if on; else None (the same 404 as for a PLP that does not exist)."""
    store, plp_id = services(call).store, call.path("plp_id")
    plp = await store.get_plp(plp_id)
    page = await joining.join_page(store, plp_id) if plp is not None else None
    if plp is None or page is None or not page.enabled:
        return None
    return plp, page


def _closed(call: Call) -> Reply:
    language = _language(call)
    return _render(404, language, step="done", title=say(Words.JOIN_CLOSED, language))


def _language(call: Call, chosen: str | None = None) -> Language:
    wanted = chosen or call.request.query.get("lang")
    if wanted in {language.value for language in Language}:
        return Language(cast(str, wanted))
    return page_language(call.request.headers.get("Accept-Language"))


def _render(status: int, language: Language, **values: Any) -> Reply:
    body = templates().get_template("join.html").render(language=language.value, **values)
    return Reply(status, body, HEADERS, media_type=HTML)


async def _form_page(
    call: Call,
    plp: Plp,
    page: JoinPage,
    language: Language,
    *,
    status: int = 200,
    notice: str | None = None,
    values: dict[str, str] | None = None,
) -> Reply:
    svc = services(call)
    has_areas = bool(await svc.store.get_sectors(plp.id))
    return _render(
        status,
        language,
        step="form",
        title=say(Words.JOIN_TITLE, language, plp=plp.name),
        notice=notice,
        intro=say(Words.JOIN_INTRO, language),
        form_token=svc.runtime.links.token(Purpose.JOIN_FORM, plp.id),
        values={"name": "", "phone": "", "email": "", "street": "", "number": "", "postcode": "", "commune": ""}
        | (values or {}),
        name_label=say(Words.JOIN_NAME, language),
        contact_hint=say(Words.JOIN_CONTACT_HINT, language),
        phone_label=say(Words.JOIN_PHONE, language),
        email_label=say(Words.JOIN_EMAIL, language),
        language_label=say(Words.JOIN_LANGUAGE, language),
        languages=[(lang.value, name) for lang, name in LANGUAGE_NAMES.items()],
        address_label=say(Words.JOIN_ADDRESS, language),
        address_fields=[(f, say(w, language), a) for f, w, a in ADDRESS_FIELDS] if has_areas else [],
        privacy_label=say(Words.JOIN_PRIVACY, language),
        privacy_notice=page.privacy_notice.get(language, ""),
        accept_label=say(Words.JOIN_ACCEPT, language),
        send_label=say(Words.JOIN_SEND, language),
        emergency=emergency_reminder(language),
    )


def _codes_page(call: Call, plp: Plp, request: JoinRequest, *, status: int = 200, notice: str) -> Reply:
    language = request.language
    labels = {ContactKind.PHONE: Words.JOIN_CODE_PHONE, ContactKind.EMAIL: Words.JOIN_CODE_EMAIL}
    return _render(
        status,
        language,
        step="codes",
        title=say(Words.JOIN_TITLE, language, plp=plp.name),
        notice=notice,
        request_token=services(call).runtime.links.token(Purpose.JOIN, request.id),
        code_fields=[(k.value, say(labels[k], language)) for k in request.kinds if k not in request.confirmed],
        confirm_label=say(Words.JOIN_CONFIRM, language),
        emergency=emergency_reminder(language),
    )


def _said(status: int, plp: Plp, language: Language, notice: str) -> Reply:
    return _render(status, language, step="done", title=say(Words.JOIN_TITLE, language, plp=plp.name), notice=notice)


@api.operation(
    "GET",
    "/v1/join/{plp_id}",
    summary="The PLP's public join page (lang=fr|nl|de|en; 404 while the PLP's join page is off)",
    tag="joining",
    public=True,
    responses={200: HTML, 404: HTML},
    alternatives={404: (PROBLEM,)},  # a PLP id that cannot be one: no route, the API's 404
)
async def join_form(call: Call) -> Reply:
    found = await _open_plp(call)
    if found is None:
        return _closed(call)
    return await _form_page(call, *found, _language(call))


@api.operation(
    "POST",
    "/v1/join/{plp_id}",
    summary="Ask to join (action=start, form_token, name, phone and/or email, language, street/number/postcode/"
    "commune where the PLP has sectors, privacy=yes), then confirm (action=confirm, request_token, code_phone, "
    "code_email)",
    tag="joining",
    public=True,
    responses={200: HTML, 400: HTML, 404: HTML, 410: HTML, 429: HTML},
    alternatives={404: (PROBLEM,)},
)
async def join_submit(call: Call) -> Reply:
    found = await _open_plp(call)
    if found is None:
        return _closed(call)
    plp, page = found
    form = await form_fields(call.request)
    action = form.get("action", [""])[0]
    if action == "confirm":
        return await _confirm(call, plp, form)
    language = _language(call, form.get("language", [""])[0])
    if action != "start" or not _from_the_page(call, plp, form):
        return await _form_page(call, plp, page, language, status=400)
    return await _start(call, plp, page, language, form)


def _from_the_page(call: Call, plp: Plp, form: dict[str, list[str]]) -> bool:
    try:
        return services(call).runtime.links.read(Purpose.JOIN_FORM, form.get("form_token", [""])[0]) == plp.id
    except InvalidLink:
        return False


def _one(form: dict[str, list[str]], name: str) -> str:
    return form.get(name, [""])[0].strip()


def _address(form: dict[str, list[str]]) -> Address | None:
    """The address written (None: none); raises ``JoinRefused("address")`` for one that cannot be used."""
    fields = {name: _one(form, name) for name, _, _ in ADDRESS_FIELDS}
    if not any(fields.values()):
        return None
    try:
        return Address.model_validate({k: v for k, v in fields.items() if v})
    except ValidationError:
        raise JoinRefused("address") from None


async def _start(call: Call, plp: Plp, page: JoinPage, language: Language, form: dict[str, list[str]]) -> Reply:
    svc = services(call)
    values = {name: _one(form, name) for name in ("name", "phone", "email", *(f for f, _, _ in ADDRESS_FIELDS))}
    refusal = await admit_join(ProviderLimits(svc.store.redis, svc.store.keys), _client(call))
    if refusal is not None:
        reply = await _form_page(call, plp, page, language, status=429, notice=say(Words.JOIN_RATE, language))
        return Reply(429, reply.content, {**HEADERS, "Retry-After": str(refusal.retry_after)}, media_type=HTML)
    try:
        entered = JoinForm(
            name=values["name"],
            phone=values["phone"],
            email=values["email"],
            language=language,
            address=_address(form),
            privacy_accepted=form.get("privacy") == ["yes"],
        )
        started = await joining.start(svc.store, plp, entered, region=svc.runtime.settings.default_region)
    except JoinRefused as exc:
        notice = (
            say(Words.PROFILE_CONTACT_INVALID, language, reason=exc.detail)
            if exc.reason == "invalid"
            else say(JOIN_REFUSALS[exc.reason], language)
        )
        return await _form_page(call, plp, page, language, status=400, notice=notice, values=values)
    except CodeRefused as exc:
        notice = say(CODE_REFUSALS[exc.reason], language)
        return await _form_page(call, plp, page, language, status=429, notice=notice, values=values)
    await _send_codes(svc, plp, started)
    log.info("join.started", plp_id=plp.id, request_id=started.request.id)
    return _codes_page(call, plp, started.request, notice=say(Words.JOIN_CODES_SENT, language))


def _client(call: Call) -> str:
    request, settings = call.request, services(call).runtime.settings
    trusted = tuple(ip_network(n) for n in settings.trusted_proxies)
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)


async def _send_codes(svc: Services, plp: Plp, started: joining.Started) -> None:
    """Each code to its contact point; a member of the PLP already is told so instead, in their own language."""
    request = started.request
    for kind, code in started.codes.items():
        value = request.contact(kind) or ""
        channel = ChannelName.SMS if kind is ContactKind.PHONE else ChannelName.EMAIL
        if code is not None:
            text, language, subject = (
                say(Words.PROFILE_CODE_TEXT, request.language, code=code),
                request.language,
                Words.PROFILE_CODE_SUBJECT,
            )
        else:
            member = next(m for k, _, m in started.already if k is kind)
            language, subject = member.language, Words.JOIN_ALREADY_SUBJECT
            text = say(Words.JOIN_ALREADY_TEXT, language, plp=plp.name, url=svc.runtime.links.profile_url(member.id))
        title = say(subject, language) if channel is ChannelName.EMAIL else ""
        await svc.blocking(replies.queue, svc.runtime, channel, value, text, language, subject=title)


async def _confirm(call: Call, plp: Plp, form: dict[str, list[str]]) -> Reply:
    svc = services(call)
    language = _language(call)
    try:
        request_id = svc.runtime.links.read(Purpose.JOIN, form.get("request_token", [""])[0])
    except InvalidLink:
        request_id = ""
    request = await joining.get(svc.store, request_id) if request_id else None
    if request is None or request.plp_id != plp.id or request.state is not JoinState.CONFIRMING:
        return _said(410, plp, language, say(Words.PROFILE_CODE_EXPIRED, language))
    language = request.language
    entered = {kind: _one(form, f"code_{kind.value}") for kind in ContactKind}
    try:
        waiting = await joining.confirm(svc.store, request, entered)
    except CodeRefused as exc:
        notice = say(CODE_REFUSALS[exc.reason], language)
        if exc.reason == "wrong":
            current = await joining.get(svc.store, request.id) or request
            return _codes_page(call, plp, current, status=400, notice=notice)
        return _said(410 if exc.reason == "expired" else 429, plp, language, notice)
    await audit.record_resident(
        svc.store.redis, svc.store.keys, request_id=waiting.id, plp_id=plp.id, action=Action.JOIN_REQUESTED
    )
    await _notify(svc, plp, waiting)
    log.info("join.requested", plp_id=plp.id, request_id=waiting.id)
    return _said(200, plp, language, say(Words.JOIN_WAITING, language))


async def _notify(svc: Services, plp: Plp, request: JoinRequest) -> None:
    """Tell the PLP's coordinators a request waits for them: among their notifications, and by e-mail to the PLP's
    reply-to addresses."""
    store, language = svc.store, plp.default_language
    kind = NotificationKind.JOIN_REQUEST
    notice = Notification(
        id=notification_id(kind, request.id, plp.id),
        kind=kind,
        join_request_id=request.id,
        plp_id=plp.id,
        created_at=datetime.now(UTC),
        language=language,
        subject=say(Words.JOIN_NOTICE_SUBJECT, language, plp=plp.name),
        text=say(Words.JOIN_NOTICE_TEXT, language, plp=plp.name),
    )
    coordinators: list[str] = []
    async for actors in store.all_actors():
        coordinators += [a.id for a in actors if a.role is Role.COORDINATOR and plp.id in a.plp_ids]
    await Notifications(store.redis, store.keys).publish(notice, coordinators)
    for address in plp.reply_to:  # the coordinators' own addresses, as for too few acknowledgements
        await svc.blocking(
            replies.queue, svc.runtime, ChannelName.EMAIL, address, notice.text, language, subject=notice.subject
        )
