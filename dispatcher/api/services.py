"""What every handler reaches through the app: the runtime, the store, and the API registry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from aiohttp import web

from dispatcher.api.problems import Problem
from dispatcher.api.routing import Api, Call
from dispatcher.core.models import Alert, Plp
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store

P = ParamSpec("P")
T = TypeVar("T")

api = Api(
    title="plp-dispatch",
    version="1",
    description="Alert dispatch for Local Prevention Partnerships and their police zones.",
)


@dataclass
class Services:
    runtime: Runtime
    store: Store

    async def blocking(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a synchronous Redis/RQ call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)


SERVICES = web.AppKey("services", Services)


def services(call: Call) -> Services:
    return call.request.app[SERVICES]


async def plp_or_404(call: Call, plp_id: str) -> Plp:
    plp = await services(call).store.get_plp(plp_id)
    if plp is None:
        raise Problem(
            404, "Not found", f"no PLP {plp_id!r}", errors=[{"field": "path.plp_id", "reason": "unknown PLP"}]
        )
    return plp


async def alert_or_404(call: Call, alert_id: str) -> tuple[Alert, list[Plp]]:
    """The alert and its target PLPs (those that still exist)."""
    store = services(call).store
    alert = await store.get_alert(alert_id)
    if alert is None:
        raise Problem(
            404, "Not found", f"no alert {alert_id!r}", errors=[{"field": "path.alert_id", "reason": "unknown alert"}]
        )
    plps = [p for p in (await store.get_plps(alert.plp_ids)).values() if p is not None]
    return alert, plps
