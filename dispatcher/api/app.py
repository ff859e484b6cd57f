"""The aiohttp application: ``create_app(settings)`` wires middlewares, clients and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from dispatcher.api import actors, alerts, feedback, health, members, pages, plps, webhooks  # noqa: F401  (they register operations)
from dispatcher.api.problems import Problem, problem_middleware
from dispatcher.api.routing import ACTOR
from dispatcher.api.services import SERVICES, Services, api
from dispatcher.runtime import Runtime
from dispatcher.store import Store

log = structlog.get_logger(__name__)

_PUBLIC = frozenset(op.path for op in api.operations if op.public)


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the bearer token to an actor; every route but the public ones needs one."""
    resource = request.match_info.route.resource
    if request.match_info.http_exception is not None or (resource is not None and resource.canonical in _PUBLIC):
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "Unauthorized",
            "send a bearer token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    actor = await request.app[SERVICES].store.actor_for_token(token.strip())
    if actor is None:
        raise Problem(
            401, "Unauthorized", "this token is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    request[ACTOR] = actor
    with structlog.contextvars.bound_contextvars(actor_id=actor.id, role=actor.role.value):
        return await handler(request)


def create_app(runtime: Runtime) -> web.Application:
    """The web application for a runtime; Redis clients open on startup and close on cleanup."""
    app = web.Application(
        middlewares=[problem_middleware, bearer_auth], client_max_size=runtime.settings.max_body_bytes
    )

    async def clients(app: web.Application) -> AsyncIterator[None]:
        redis = runtime.async_redis()
        app[SERVICES] = Services(runtime=runtime, store=Store(redis, runtime.keys))
        yield
        await redis.aclose()

    app.cleanup_ctx.append(clients)
    api.install(app)
    return app
