"""Liveness, readiness, and the OpenAPI document."""

from __future__ import annotations

from redis.exceptions import RedisError
from rq import Worker

from channels import describe_channels
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Health, OpenApiDocument, Readiness


@api.operation("GET", "/v1/health", summary="Liveness", tag="operations", public=True, responses={200: Health})
async def health(call: Call) -> Reply:
    return Reply(200, Health(status="ok"))


def _workers_per_lane(call: Call) -> dict[str, int]:
    rt = services(call).runtime
    return {
        "urgent": Worker.count(queue=rt.urgent_queue),
        "general": Worker.count(queue=rt.general_queue),
    }


@api.operation(
    "GET",
    "/v1/ready",
    summary="Readiness: Redis answers",
    tag="operations",
    public=True,
    responses={200: Readiness, 503: Readiness},
)
async def ready(call: Call) -> Reply:
    svc = services(call)
    try:
        await svc.store.redis.ping()
        workers = await svc.blocking(_workers_per_lane, call)
    except (RedisError, OSError) as exc:
        body = Readiness(status="unavailable", redis=f"unreachable: {type(exc).__name__}", workers={}, channels={})
        return Reply(503, body)
    return Reply(
        200, Readiness(status="ok", redis="ok", workers=workers, channels=describe_channels(svc.runtime.settings))
    )


@api.operation(
    "GET", "/v1/openapi.json", summary="This document", tag="operations", public=True, responses={200: OpenApiDocument}
)
async def openapi(call: Call) -> Reply:
    return Reply(200, api.openapi())
