"""Liveness, readiness, and the OpenAPI document."""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Health, OpenApiDocument, Readiness
from dispatcher.queues import queue_health


@api.operation(
    "GET", "/v1/health", summary="Liveness", tag="operations", public=True, responses={200: Health}, needs_redis=False
)
async def health(call: Call) -> Reply:
    return Reply(200, Health(status="ok"))


#: How long readiness waits for Redis before calling it unreachable.
REDIS_TIMEOUT = 5.0


@api.operation(
    "GET",
    "/v1/ready",
    summary="Readiness: Redis answers and a worker serves the urgent queue",
    tag="operations",
    public=True,
    responses={200: Readiness, 503: Readiness},
)
async def ready(call: Call) -> Reply:
    """200 when Redis answers and at least one worker is alive for the urgent queue; 503 saying which fails."""
    svc = services(call)
    try:
        async with asyncio.timeout(REDIS_TIMEOUT):
            await svc.store.redis.ping()
            health = await svc.blocking(queue_health, svc.runtime)
    except (RedisError, OSError, TimeoutError) as exc:
        reason = f"Redis is unreachable ({type(exc).__name__}): check REDIS_URL and that the server runs"
        body = Readiness(
            status="unavailable", redis=f"unreachable: {type(exc).__name__}", workers={}, channels={}, reasons=[reason]
        )
        return Reply(503, body)
    workers = {lane.lane: lane.workers_alive for lane in health.lanes}
    reasons = [] if workers["urgent"] else [URGENT_WORKER_MISSING]
    return Reply(
        503 if reasons else 200,
        Readiness(
            status="unavailable" if reasons else "ok",
            redis="ok",
            workers=workers,
            channels=health.channels,
            reasons=reasons,
        ),
    )


URGENT_WORKER_MISSING = "no worker is alive for the urgent queue: start one (plp worker urgent, or plp worker general)"


@api.operation(
    "GET", "/v1/openapi.json", summary="This document", tag="operations", public=True, responses={200: OpenApiDocument}
)
async def openapi(call: Call) -> Reply:
    return Reply(200, api.openapi())
