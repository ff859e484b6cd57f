"""``GET /metrics``: the Prometheus text exposition of the whole service (``dispatcher.operations.metrics``).

The figures are service-wide counts (no names, addresses or ids), read from Redis, so any
web process answers for all. With ``PLP_METRICS_TOKEN`` set, a scrape must carry it as a
bearer token (Prometheus' ``authorization`` scrape setting); such a scrape is never refused
by the per-address rate. Without it, ``/metrics`` is public and metered like ``/v1/health``.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from config import Settings
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call
from dispatcher.api.services import api, services
from dispatcher.operations import metrics

PATH = "/metrics"
MEDIA_TYPE = "text/plain"


def authorized_scrape(request: web.Request, settings: Settings) -> bool:
    """Whether the request carries the configured metrics token (False when none is configured)."""
    if settings.metrics_token is None:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@api.operation(
    "GET",
    PATH,
    summary="Prometheus metrics (a bearer token when PLP_METRICS_TOKEN is set)",
    tag="operations",
    public=True,
    responses={200: MEDIA_TYPE},
    needs_redis=False,  # it answers redis_up 0 instead
)
async def prometheus_metrics(call: Call) -> web.Response:
    svc = services(call)
    if svc.runtime.settings.metrics_token is not None and not authorized_scrape(call.request, svc.runtime.settings):
        raise Problem(
            401,
            "Unauthorized",
            "send the metrics token (PLP_METRICS_TOKEN): Authorization: Bearer <token>",
            errors=[{"field": "header.Authorization", "reason": "missing or wrong metrics token"}],
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    text = await svc.blocking(metrics.render, svc.runtime)
    # The text format every Prometheus reads (0.0.4): the metrics' names and labels are plain ASCII.
    return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
