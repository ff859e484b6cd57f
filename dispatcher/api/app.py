"""The aiohttp application: ``create_app(settings)`` wires middlewares, clients and routes.

Middlewares, outermost first: problems (every error a problem+json), throttle (the
source address's rate, and its lock-out after failed authentications), bearer auth
(the token, then its rate). The policy of the throttle is ``dispatcher.access.throttle``.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from dispatcher.access.throttle import FailedAuth, Refusal, Throttle, client_address
from dispatcher.api import (  # noqa: F401  (they register operations)
    actors,
    alerts,
    audit,
    cap,
    console,
    drills,
    feedback,
    follow_ups,
    health,
    joining,
    member_health,
    members,
    metrics,
    notifications,
    oidc,
    pages,
    plps,
    reports,
    sectors,
    self_service,
    sessions,
    stream,
    webhooks,
)
from dispatcher.api.problems import Problem, problem_middleware
from dispatcher.api.routing import ACTOR, Operation
from dispatcher.api.services import SERVICES, Services, api
from dispatcher.core.models import Actor
from dispatcher.storage.records import TokenRecord
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, TokenRefused

log = structlog.get_logger(__name__)

# Liveness, readiness and metrics answer even when Redis, where the meters are, does not.
_PROBES = frozenset({"/v1/health", "/v1/ready", metrics.PATH})

THROTTLE = web.AppKey("throttle", Throttle)
ADDRESS = web.RequestKey("address", str)
FAILED_AUTH = web.RequestKey("failed_auth", FailedAuth)


@dataclass(frozen=True)
class Routes:
    """What the middlewares know of the app's routes, from the operations it was made with."""

    #: No token needed. The console's files are public too (its page asks for the token and sends it).
    public: frozenset[str]
    #: The providers' callbacks are signed, and their volume follows our own sending rate, from a
    #: few provider addresses: refused, they would be lost (Twilio does not retry a refused status
    #: callback or incoming SMS, so a member's STOP would be). They are not metered per address.
    provider_callbacks: frozenset[str]

    @classmethod
    def of(cls, operations: list[Operation]) -> Routes:
        return cls(
            public=frozenset(op.path for op in operations if op.public) | console.ROUTES,
            provider_callbacks=frozenset(op.path for op in operations if op.tag == "webhooks"),
        )


ROUTES = web.AppKey("routes", Routes)

_REASONS = {
    "unknown": "this token is not valid",
    "expired": "this token has expired",
    "revoked": "this token was revoked",
    "session": "this console session is over: sign in again",
}


def _route(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None and request.match_info.http_exception is None else None


def _needs_token(request: web.Request) -> bool:
    route = _route(request)
    return route is not None and route not in request.app[ROUTES].public


def too_many(refusal: Refusal) -> Problem:
    return Problem(
        429,
        "Too many requests",
        f"{refusal.reason}; retry in {refusal.retry_after} s",
        headers={"Retry-After": str(refusal.retry_after)},
    )


@web.middleware
async def throttle(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (429) a source address over its rate, or locked out after failed authentications."""
    throttle = request.app[THROTTLE]
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"), throttle.trusted_proxies)
    request[ADDRESS] = address
    exempt = _route(request) in request.app[ROUTES].provider_callbacks or (
        _route(request) == metrics.PATH and metrics.authorized_scrape(request, request.app[SERVICES].runtime.settings)
    )
    try:
        refusal = None if exempt else await throttle.admit_address(address)
    except (RedisError, OSError):
        if _route(request) not in _PROBES:
            raise
        refusal = None  # the meters are in Redis: the probes must still answer, and say what is down
    if refusal is not None:
        raise too_many(refusal)
    if _needs_token(request):
        request[FAILED_AUTH] = failed = await throttle.failed_auth(address)
        if failed.refusal is not None:
            raise too_many(failed.refusal)
    return await handler(request)


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the bearer token to an actor; every route but the public ones needs one."""
    if not _needs_token(request):
        return await handler(request)
    if "Authorization" not in request.headers and sessions.COOKIE in request.cookies:
        actor, credential = await _resume_session(request)
    else:
        actor, record = await _authenticate(request)
        credential = record.id
    throttle = request.app[THROTTLE]
    if request[FAILED_AUTH].failures:
        await throttle.forget_failures(request[ADDRESS])
    refusal = await throttle.admit_token(credential)
    if refusal is not None:
        raise too_many(refusal)
    request[ACTOR] = actor
    with structlog.contextvars.bound_contextvars(actor_id=actor.id, role=actor.role.value, token_id=credential):
        return await handler(request)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _resume_session(request: web.Request) -> tuple[Actor, str]:
    """The actor of the request's console session; a 401 if it is over, a 403 if a change lacks its CSRF token."""
    session = await sessions.sessions_of(request).resume(request.cookies[sessions.COOKIE])
    actor = await request.app[SERVICES].store.get_actor(session.actor_id) if session is not None else None
    if session is None or actor is None:
        raise await _refuse(request, "session")
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(sessions.CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise Problem(
                403,
                "Forbidden",
                f"a change made with a console session needs its CSRF token in the {sessions.CSRF_HEADER} header",
                errors=[{"field": f"header.{sessions.CSRF_HEADER}", "reason": "missing or wrong"}],
            )
    request[sessions.SESSION] = session
    return actor, session.public_id


async def _authenticate(request: web.Request) -> tuple[Actor, TokenRecord]:
    """The actor and token record of the request's bearer token; raises a 401 (or 429) problem."""
    if "Authorization" not in request.headers:
        raise Problem(
            401,
            "Unauthorized",
            "send a bearer token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = request.headers["Authorization"].partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRefused("unknown")
        return await request.app[SERVICES].store.actor_for_token(token.strip())
    except TokenRefused as refused:
        raise await _refuse(request, refused.reason) from None


async def _refuse(request: web.Request, reason: str) -> Problem:
    """A failed authentication: counted against the address; 401, or 429 once it must slow down."""
    failed = await request.app[THROTTLE].record_failure(request[ADDRESS])
    log.info("api.authentication_failed", reason=reason, address=request[ADDRESS], failures=failed.failures)
    if failed.slowed is not None:
        return too_many(failed.slowed)
    return Problem(
        401,
        "Unauthorized",
        _REASONS[reason],
        errors=[
            {"field": f"cookie.{sessions.COOKIE}" if reason == "session" else "header.Authorization", "reason": reason}
        ],
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )


def create_app(runtime: Runtime) -> web.Application:
    """The web application for a runtime; Redis clients open on startup and close on cleanup."""
    app = web.Application(
        middlewares=[problem_middleware, throttle, bearer_auth], client_max_size=runtime.settings.max_body_bytes
    )

    async def clients(app: web.Application) -> AsyncIterator[None]:
        redis = runtime.async_redis()
        app[SERVICES] = Services(runtime=runtime, store=Store(redis, runtime.keys))
        app[THROTTLE] = Throttle(redis, runtime.keys, runtime.settings)
        yield
        await redis.aclose()

    app.cleanup_ctx.append(clients)
    operations = api.operations
    app[ROUTES] = Routes.of(operations)
    api.install(app, operations)
    sessions.install(app)
    oidc.install(app)
    stream.install(app)
    settings = runtime.settings
    console.install(
        app,
        tiles=settings.map_tile_url,
        attribution=settings.map_attribution,
        sign_in_with=settings.oidc_button_name if settings.oidc_enabled else None,
    )
    return app
