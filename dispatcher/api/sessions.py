"""Signing in to the console without a token: a one-time link by e-mail, then a session cookie.

``POST /v1/sign-in`` answers the same 202 whatever the address (no account enumeration) and sends,
in the background, a link to the console (``/console/#signin=<code>``) if an actor has that
e-mail address. The console posts the code to ``POST /v1/sessions``, which spends it and sets the
session cookie: HttpOnly, SameSite=Strict, Secure unless ``PLP_SESSION_COOKIE_SECURE=false``
(plain http on loopback, in development only). Every state-changing request made with the cookie
must carry the session's CSRF token in the ``X-CSRF-Token`` header (``app.bearer_auth``).
Bearer tokens keep working for scripts and the CLI.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from pydantic import BaseModel, Field

from channels.base import OutboundMessage
from channels.registry import open_channels
from config import Settings
from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.access.sessions import Lifetimes, Session, Sessions
from dispatcher.api.audit import note
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import SERVICES, api, services
from dispatcher.api.views import ActorView
from dispatcher.core.channel_names import ChannelName
from dispatcher.core.models import Actor, EmailAddress, Language, Strict, Urgency
from dispatcher.core.wording import Words, say
from dispatcher.storage.store import Store

log = structlog.get_logger(__name__)

COOKIE = "plp_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION = web.RequestKey("session", Session)
SENDING = web.AppKey("signin_sending", set[asyncio.Task[None]])


def install(app: web.Application) -> None:
    """Keep the sign-in e-mails being sent (so that they are not collected mid-way)."""
    app[SENDING] = set()


def lifetimes(settings: Settings) -> Lifetimes:
    return Lifetimes(
        link=settings.signin_link_minutes * 60,
        idle=settings.session_idle_minutes * 60,
        absolute=settings.session_max_hours * 3600,
    )


def sessions_of(request: web.Request) -> Sessions:
    svc = request.app[SERVICES]
    return Sessions(svc.store.redis, svc.runtime.keys, lifetimes(svc.runtime.settings))


class SignInRequest(Strict):
    email: EmailAddress
    language: Language = Field(default=Language.EN, description="The e-mail's language (the console sends its own)")


class SignInAccepted(BaseModel):
    detail: str


class SessionRequest(Strict):
    code: str = Field(min_length=20, max_length=100, description="The code of the sign-in link")


class SessionView(BaseModel):
    """The signed-in actor and the token the console sends as ``X-CSRF-Token`` with every change."""

    actor: ActorView
    csrf_token: str


_ACCEPTED = "if this address belongs to a coordinator or an officer, a sign-in link is on its way"


@api.operation(
    "POST",
    "/v1/sign-in",
    summary="Ask for a one-time sign-in link by e-mail (the same answer whether the address is known)",
    tag="access",
    body=SignInRequest,
    public=True,
    responses={202: SignInAccepted},
)
async def request_sign_in(call: Call) -> Reply:
    # Looked up and sent after the answer: its time says nothing about whether the address is known.
    sending = call.request.app[SENDING]
    task = asyncio.get_running_loop().create_task(_send_link(call.request.app, call.body.email, call.body.language))
    sending.add(task)
    task.add_done_callback(sending.discard)
    return Reply(202, SignInAccepted(detail=_ACCEPTED))


async def actor_by_email(store: Store, email: str) -> Actor | None:
    """The coordinator or officer with this e-mail address (letter case aside), if any."""
    wanted = email.casefold()
    async for chunk in store.all_actors():
        for actor in chunk:
            if actor.email is not None and actor.email.casefold() == wanted:
                return actor
    return None


async def _send_link(app: web.Application, email: str, language: Language) -> None:
    svc = app[SERVICES]
    settings = svc.runtime.settings
    try:
        actor = await actor_by_email(svc.store, email)
        if actor is None:
            log.info("signin.unknown_address")
            return
        code = await Sessions(svc.store.redis, svc.runtime.keys, lifetimes(settings)).new_link_code(actor.id)
        await _mail(settings, actor, f"{settings.public_base_url.rstrip('/')}/console/#signin={code}", language)
        log.info("signin.link_sent", actor_id=actor.id)
    except Exception:  # a background task: nobody awaits it, so its failure is logged here
        log.exception("signin.link_not_sent")


async def _mail(settings: Settings, actor: Actor, link: str, language: Language) -> None:
    """Send the link by whatever serves e-mail here: the SMTP relay, or the outbox in development (where the
    demo's links can be read); a deployment that can send no e-mail raises ``NotConfigured``, logged."""
    email = ChannelName("email")
    minutes = str(settings.signin_link_minutes)
    message = OutboundMessage(
        delivery_id=f"signin:{actor.id}",
        alert_id="",
        member_id=actor.id,
        channel=email,
        address=str(actor.email),
        language=language,
        urgency=Urgency.URGENT,
        subject=say(Words.SIGNIN_SUBJECT, language),
        text=say(Words.SIGNIN_TEXT, language, name=actor.name, minutes=minutes, link=link),
    )
    async with open_channels(settings) as channels:
        await channels[email].send(message)


def _cookie(settings: Settings, value: str, *, max_age: int) -> str:
    morsel = [f"{COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
    if settings.cookie_secure:
        morsel.append("Secure")
    return "; ".join(morsel)


@api.operation(
    "POST",
    "/v1/sessions",
    summary="Sign in with a sign-in link's code: opens a console session (cookie) and returns its CSRF token",
    tag="access",
    body=SessionRequest,
    public=True,
    responses={201: SessionView},
)
async def open_session(call: Call) -> Reply:
    sessions = sessions_of(call.request)
    opened = await sessions.open(call.body.code)
    if opened is None:
        raise Problem(401, "Unauthorized", "this sign-in link is not valid: it is unknown, used or expired")
    session_id, session = opened
    actor = await services(call).store.get_actor(session.actor_id)
    if actor is None:
        await sessions.close(session)
        raise Problem(401, "Unauthorized", "this sign-in link is not valid: it is unknown, used or expired")
    settings = services(call).runtime.settings
    log.info("signin.session_opened", actor_id=actor.id, session=session.public_id)
    await audit.record(
        services(call).store.redis, services(call).runtime.keys, actor=actor, action=Action.SESSION_OPENED, target={}
    )
    view = SessionView(actor=ActorView.model_validate(actor.model_dump()), csrf_token=session.csrf_token)
    cookie = _cookie(settings, session_id, max_age=settings.session_max_hours * 3600)
    return Reply(201, view, headers={"Set-Cookie": cookie, "Cache-Control": "no-store"})


async def signed_in(call: Call) -> Session:
    """Requests made with a session cookie (a bearer token has no session to end)."""
    if SESSION not in call.request:
        raise Problem(400, "Bad request", "this request was made with a bearer token, not a console session")
    return call.request[SESSION]


@api.operation(
    "GET",
    "/v1/session",
    summary="The console session: who is signed in, and its CSRF token",
    tag="access",
    authorize=signed_in,
    responses={200: SessionView},
)
async def read_session(call: Call) -> Reply:
    session: Session = call.scope
    view = SessionView(actor=ActorView.model_validate(call.who.model_dump()), csrf_token=session.csrf_token)
    return Reply(200, view, headers={"Cache-Control": "no-store"})


@api.operation(
    "DELETE",
    "/v1/session",
    summary="Sign out: end this console session",
    tag="access",
    authorize=signed_in,
    responses={204: None},
)
async def close_session(call: Call) -> Reply:
    await sessions_of(call.request).close(call.scope)
    await note(call, Action.SESSION_CLOSED)
    settings = services(call).runtime.settings
    return Reply(204, headers={"Set-Cookie": _cookie(settings, "", max_age=0)})


@api.operation(
    "DELETE",
    "/v1/session/everywhere",
    summary="Sign out everywhere: end every console session of the signed-in actor",
    tag="access",
    authorize=signed_in,
    responses={204: None},
)
async def close_all_sessions(call: Call) -> Reply:
    ended = await sessions_of(call.request).close_all(call.who.id)
    await note(call, Action.SESSION_CLOSED, detail=f"everywhere: {ended} sessions")
    settings = services(call).runtime.settings
    return Reply(204, headers={"Set-Cookie": _cookie(settings, "", max_age=0)})
