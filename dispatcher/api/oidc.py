"""Signing in to the console through the organisation's identity provider (OpenID Connect), when configured.

The console's "Sign in with <name>" button opens ``GET /v1/sign-in/oidc``: it sends the browser to
the provider (``dispatcher.access.oidc`` keeps the state, nonce and PKCE verifier) and sets a
short cookie holding the state, so that a sign-in begun in another browser cannot be finished in
this one. The provider sends the browser back to ``GET /v1/sign-in/oidc/callback``, which checks the
state against that cookie, lets ``OpenIdConnect.finish`` verify the ID token, and maps the verified
e-mail address to an existing coordinator or officer (no account is ever created). The provider's
discovery document and key set are kept between sign-ins by one ``ProviderCache`` per application
(``PROVIDER_CACHE``, in memory: per web process).

The session is then opened exactly as by an e-mailed link: the callback makes a one-time sign-in
code for the actor and sends the browser to ``/console/#signin=<code>``, which the console spends
with ``POST /v1/sessions`` (a new session id, the cookie, the CSRF token, the audit's
``session.opened``). A refusal is a page in the console's language, and an audit entry
``signin.refused`` saying why.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

import aiohttp
import structlog
from aiohttp import web
from pydantic import Field

from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.access.oidc import PENDING_SECONDS, OpenIdConnect, Refusal, Refused
from dispatcher.access.oidc_cache import ProviderCache
from dispatcher.access.sessions import Sessions
from dispatcher.api.pages import HTML
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.sessions import actor_by_email, lifetimes
from dispatcher.api.views import Query
from dispatcher.core.models import Language
from dispatcher.core.wording import Words, say
from dispatcher.pipeline.compose import templates
from dispatcher.pipeline.receipts import page_language

log = structlog.get_logger(__name__)

STATE_COOKIE = "plp_oidc"
CALLBACK = "/v1/sign-in/oidc/callback"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
PROVIDER_CACHE = web.AppKey("oidc_provider_cache", ProviderCache)


def install(app: web.Application) -> None:
    """Keep the provider's documents for the application's lifetime (a test may set its own before it starts)."""
    app[PROVIDER_CACHE] = ProviderCache()


class BeginQuery(Query):
    language: Language = Field(default=Language.EN, description="The console's language (of a refusal page)")


class CallbackQuery(Query):
    state: str = Field(default="", max_length=200)
    code: str = Field(default="", max_length=2000)
    error: str = Field(default="", max_length=200, description="The provider's error, when it did not sign in")


def _flow(call: Call) -> OpenIdConnect:
    svc = services(call)
    settings = svc.runtime.settings
    if not settings.oidc_enabled:
        raise Problem(404, "Not found", "this service signs in by e-mailed link and token only (no PLP_OIDC_ISSUER)")
    redirect = f"{settings.public_base_url.rstrip('/')}{CALLBACK}"
    cache = call.request.app[PROVIDER_CACHE]
    return OpenIdConnect(settings, svc.store.redis, svc.runtime.keys, redirect_uri=redirect, cache=cache)


def _state_cookie(call: Call, value: str, *, max_age: int) -> str:
    # SameSite=Lax: the provider's redirect back is a top-level navigation from another site.
    morsel = [f"{STATE_COOKIE}={value}", f"Path={CALLBACK}", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age}"]
    if services(call).runtime.settings.cookie_secure:
        morsel.append("Secure")
    return "; ".join(morsel)


@api.operation(
    "GET",
    "/v1/sign-in/oidc",
    summary="Sign in through the organisation's identity provider: redirects to it (404 when none is configured)",
    tag="access",
    query=BeginQuery,
    public=True,
    responses={302: None},  # 404 (none configured) and 502 (the provider unreadable): problems, as every route's
)
async def begin_oidc(call: Call) -> Reply:
    flow = _flow(call)
    try:
        url, state = await flow.begin(call.query.language)
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
        log.warning("signin.oidc_provider_unreadable", error=type(exc).__name__)
        raise Problem(502, "Bad gateway", "the identity provider cannot be reached; sign in by e-mailed link") from None
    cookie = _state_cookie(call, state, max_age=PENDING_SECONDS)
    return Reply(302, None, {"Location": url, "Set-Cookie": cookie, **_NO_STORE})


@api.operation(
    "GET",
    CALLBACK,
    summary="Where the identity provider sends the browser back: opens the console with a one-time sign-in code",
    tag="access",
    query=CallbackQuery,
    public=True,
    responses={303: None, 403: HTML},  # 403: the page saying why the sign-in is refused; 404: a problem
)
async def finish_oidc(call: Call) -> Reply:
    flow = _flow(call)
    state, code = call.query.state, call.query.code
    try:
        if not state or not hmac.compare_digest(state, call.request.cookies.get(STATE_COOKIE, "")):
            raise Refused(Refusal.STATE)
        if call.query.error or not code:  # the person cancelled, or the provider would not sign them in
            await flow.forget(state)
            raise Refused(Refusal.PROVIDER)
        identity = await flow.finish(state=state, code=code)
        actor = await actor_by_email(services(call).store, identity.email)
        if actor is None:
            raise Refused(Refusal.UNKNOWN, identity.language)
    except Refused as refused:
        return await _refused(call, refused)
    sessions = Sessions(services(call).store.redis, services(call).runtime.keys, lifetimes(flow.settings))
    signin = await sessions.new_link_code(actor.id)
    log.info("signin.oidc_verified", actor_id=actor.id)
    headers = {"Location": f"/console/#signin={quote(signin)}", "Set-Cookie": _state_cookie(call, "", max_age=0)}
    return Reply(303, None, {**headers, **_NO_STORE})


async def _refused(call: Call, refused: Refused) -> Reply:
    svc = services(call)
    language = refused.language or page_language(call.request.headers.get("Accept-Language"))
    log.info("signin.oidc_refused", reason=refused.refusal.value)
    await audit.record_anonymous(
        svc.store.redis, svc.runtime.keys, action=Action.SIGNIN_REFUSED, detail=f"oidc: {refused.refusal.value}"
    )
    words = Words.OIDC_UNKNOWN if refused.refusal is Refusal.UNKNOWN else Words.OIDC_REFUSED
    body = (
        templates()
        .get_template("page.html")
        .render(language=language.value, title=say(Words.OIDC_REFUSED_TITLE, language), message=say(words, language))
    )
    headers = {"Set-Cookie": _state_cookie(call, "", max_age=0), "X-Robots-Tag": "noindex", **_NO_STORE}
    return Reply(403, body, headers, media_type=HTML)
