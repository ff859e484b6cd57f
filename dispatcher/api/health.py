"""Liveness, readiness, the service's status (admins), and the OpenAPI document.

Liveness and readiness are about this web process only: a load balancer keeps sending it traffic,
the providers' callbacks included (Twilio does not retry a refused status callback or incoming
SMS), as long as it can serve, whatever the workers and the clock do. The whole service's state
(workers, clock, late urgent work, failing providers) is ``GET /v1/status``, ``plp status`` and
``/metrics``, all three from ``dispatcher.operations.health``.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

from channels import describe_channels
from dispatcher.api import guards
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Health, OpenApiDocument, Readiness, ServiceStatus
from dispatcher.operations import health as service_health
from dispatcher.operations.queues import queue_health


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
    summary="Readiness: this web process can serve (Redis answers); other processes play no part",
    tag="operations",
    public=True,
    responses={200: Readiness, 503: Readiness},
)
async def ready(call: Call) -> Reply:
    """200 when Redis answers this process within ``REDIS_TIMEOUT``; 503 saying why not."""
    svc = services(call)
    channels = describe_channels(svc.runtime.settings)
    try:
        async with asyncio.timeout(REDIS_TIMEOUT):
            await svc.store.redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        reason = f"Redis is unreachable ({type(exc).__name__}): check REDIS_URL and that the server runs"
        body = Readiness(
            status="unavailable", redis=f"unreachable: {type(exc).__name__}", channels=channels, reasons=[reason]
        )
        return Reply(503, body)
    return Reply(200, Readiness(status="ok", redis="ok", channels=channels, reasons=[]))


@api.operation(
    "GET",
    "/v1/status",
    summary="The whole service's health: problems with their fix, queues, workers, clock, providers (admins)",
    tag="operations",
    authorize=guards.admin("read the service's status"),
    responses={200: ServiceStatus},
)
async def service_status(call: Call) -> Reply:
    """Always 200 while Redis answers: ``status`` says ``ok`` or ``attention`` (then ``problems`` say what)."""
    svc = services(call)
    found = await svc.blocking(queue_health, svc.runtime)
    report = service_health.report(found, svc.runtime.settings)
    return Reply(200, ServiceStatus.model_validate(report), {"Cache-Control": "no-store"})


@api.operation(
    "GET", "/v1/openapi.json", summary="This document", tag="operations", public=True, responses={200: OpenApiDocument}
)
async def openapi(call: Call) -> Reply:
    return Reply(200, api.openapi())
