"""Following an alert live: its audience (who was reached, who acknowledged) and a stream of server-sent events.

``GET /v1/alerts/{id}/events`` answers ``text/event-stream``: a ``snapshot`` event at once
(with the time of every member's first acknowledgement, for the chart), then another each
time the alert changes (its status events on the Redis channel ``events``, and its counters,
read every second), as this web process's hub (``dispatcher.api.hub``) tells it: a follower
holds no Redis connection while it waits. It ends once nothing more can change: the alert ended and its
time-to-live passed (members acknowledge a completed alert until then), or it was declined.
The stream is bounded all the same: it ends after ``STREAM_SECONDS``, when the client leaves
and when the service shuts down, and clients reconnect while the alert is not over.
Browsers follow it with ``fetch()``, so that the bearer token goes in the Authorization header
as for every other call and never in a URL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from aiohttp import web
from pydantic import BaseModel, Field

from dispatcher.access import policy
from dispatcher.api import guards
from dispatcher.api.alerts import view as alert_view
from dispatcher.api.hub import AlertHub, Follower
from dispatcher.api.problems import redis_unavailable
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import SERVICES, api, services
from dispatcher.api.views import AlertView, Query
from dispatcher.core.models import FINAL_ALERT, Alert, AlertStatus, ChannelName, DeliveryStatus, Plp
from dispatcher.pipeline import audience

log = structlog.get_logger(__name__)

#: A stream ends after this many seconds even if the alert goes on; the client reconnects.
STREAM_SECONDS = 600.0
#: A comment line keeps idle connections (and proxies) open this often.
KEEPALIVE_SECONDS = 15.0


class AudienceQuery(Query):
    limit: int = Field(default=200, ge=1, le=1000, description="Members listed at most per list")


class AudienceMember(BaseModel):
    member_id: str
    name: str | None = Field(description="None once the member's data was erased")
    deliveries: dict[ChannelName, DeliveryStatus] = Field(description="Their deliveries of this alert, by channel")


class AlertAudience(BaseModel):
    """Who the alert reached and who acknowledged it: names for the PLPs' coordinators, counts for the police."""

    members: int = Field(description="Members the alert planned deliveries for")
    reached: int = Field(description="Members with a delivery handed to its provider or delivered")
    acknowledged: int
    unreachable: int = Field(description="Members no channel of the plan could reach")
    names_shown: bool = Field(description="False for the police: members' names stay with the coordinators")
    not_reached: list[AudienceMember]
    not_acknowledged: list[AudienceMember]
    unreachable_members: list[AudienceMember]
    truncated: bool = Field(description="True if a list was cut at the limit")


class AlertSnapshot(BaseModel):
    """Where a followed alert stands: the data of each ``snapshot`` event."""

    alert: AlertView
    members: int = Field(description="Members the alert planned deliveries for (in the caller's part)")
    members_acknowledged: int
    members_unreachable: int
    at: datetime
    acknowledgements: list[float] | None = Field(
        default=None,
        description="First event only: seconds after the alert was created at which each member first "
        "acknowledged, ascending (later events: follow members_acknowledged)",
    )


HUB = web.AppKey("alert_hub", AlertHub)


def install(app: web.Application) -> None:
    """Give the app its hub (after its Redis clients), and end its event streams on shutdown, not wait for them."""

    async def hub(app: web.Application) -> AsyncIterator[None]:
        svc = app[SERVICES]
        app[HUB] = AlertHub(svc.store.redis, svc.runtime.async_subscriber, svc.runtime.keys)
        yield
        await app[HUB].close()

    async def shut_down(app: web.Application) -> None:
        if HUB in app:
            app[HUB].shut_down()

    app.cleanup_ctx.append(hub)
    app.on_shutdown.append(shut_down)


def _plps_in_scope(call: Call) -> tuple[Alert, list[Plp]]:
    alert, plps = call.scope  # guards.alert_reader
    return alert, [p for p in plps if policy.in_scope(call.who, p)]


@api.operation(
    "GET",
    "/v1/alerts/{alert_id}/audience",
    summary="Who an alert reached and who acknowledged it (members' names for coordinators, counts for police)",
    tag="alerts",
    query=AudienceQuery,
    authorize=guards.alert_reader,
    responses={200: AlertAudience},
)
async def alert_audience(call: Call) -> Reply:
    alert, plps = _plps_in_scope(call)
    store, limit = services(call).store, call.query.limit
    found = await audience.audience(store, alert.id, [p.id for p in plps])
    named = {p.id for p in policy.plps_with_member_names(call.who, plps)}
    lists: dict[str, list[AudienceMember]] = {"not_reached": [], "not_acknowledged": [], "unreachable_members": []}
    truncated = False
    if named:
        unreachable = await audience.members_of(store, found.unreachable, named)
        wanted = {
            "not_reached": sorted(found.not_reached),
            "not_acknowledged": sorted(found.not_acknowledged),
            "unreachable_members": sorted(unreachable),
        }
        truncated = any(len(ids) > limit for ids in wanted.values())
        ids = sorted({i for part in wanted.values() for i in part[:limit]})
        names = {m.id: m.name for m in await store.get_members(ids) if m is not None}
        lists = {
            key: [AudienceMember(member_id=i, name=names.get(i), deliveries=found.deliveries.get(i, {})) for i in part]
            for key, part in ((k, v[:limit]) for k, v in wanted.items())
        }
    return Reply(
        200,
        AlertAudience(
            members=len(found.planned),
            reached=len(found.reached),
            acknowledged=len(found.acknowledged),
            unreachable=len(await audience.members_of(store, found.unreachable, {p.id for p in plps})),
            names_shown=bool(named),
            truncated=truncated,
            **lists,
        ),
        {"Cache-Control": "no-store"},
    )


@api.operation(
    "GET",
    "/v1/alerts/{alert_id}/events",
    summary="Follow an alert live: server-sent snapshot events until it ends (bounded; reconnect to go on)",
    tag="alerts",
    authorize=guards.alert_reader,
    responses={200: "text/event-stream"},
)
async def alert_events(call: Call) -> web.StreamResponse:
    alert, plps = _plps_in_scope(call)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a reverse proxy must not hold the events back
        }
    )
    await response.prepare(call.request)
    try:
        async with call.request.app[HUB].follow(alert.id) as follower:
            await _follow(call, alert, plps, response, follower)
    except ConnectionResetError:
        log.debug("stream.client_left", alert_id=alert.id)
    except Exception as exc:
        if not redis_unavailable(exc):
            raise
        # The answer has begun: no 503 can be sent now. The stream ends; the client reconnects.
        log.warning("stream.redis_unavailable", alert_id=alert.id, error=type(exc).__name__)
    return response


async def _follow(call: Call, alert: Alert, plps: list[Plp], response: web.StreamResponse, follower: Follower) -> None:
    closing = call.request.app[HUB].closing
    started = written = time.monotonic()
    last, first = "", True
    # Followers who see the same part of the alert the same way share each event, read and written once.
    audience_key = (tuple(sorted(p.id for p in plps)), policy.sees_personal_data(call.who))
    while True:
        if first:  # with the acknowledgements' times: this follower's own
            event = _Event.of(await _snapshot(call, alert, plps, follower, with_acknowledgements=True))
        else:
            event = await follower.shared(
                ("event", audience_key),
                lambda: _event(call, alert, plps, follower),
            )
        if event.fingerprint != last:
            await response.write(event.data)
            last, first, written = event.fingerprint, False, time.monotonic()
        snapshot = event.snapshot
        if _over(snapshot.alert) or closing.is_set() or time.monotonic() - started > STREAM_SECONDS:
            return
        transport = call.request.transport
        if transport is None or transport.is_closing():  # the client left
            return
        if time.monotonic() - written > KEEPALIVE_SECONDS:
            await response.write(b": keep-alive\n\n")
            written = time.monotonic()
        await follower.wait(_until_next_look(snapshot.alert, written))


@dataclass(frozen=True)
class _Event:
    """A snapshot event, written: its text, and what it shows (its time aside) to compare with the last one."""

    snapshot: AlertSnapshot
    fingerprint: str
    data: bytes

    @classmethod
    def of(cls, snapshot: AlertSnapshot) -> _Event:
        fingerprint = snapshot.model_dump_json(exclude={"at", "acknowledgements"})
        return cls(snapshot, fingerprint, f"event: snapshot\ndata: {snapshot.model_dump_json()}\n\n".encode())


async def _event(call: Call, alert: Alert, plps: list[Plp], follower: Follower) -> _Event:
    return _Event.of(await _snapshot(call, alert, plps, follower, with_acknowledgements=False))


def _until_next_look(alert: AlertView, written: float) -> float:
    """Seconds to wait at most for a change: until the next keep-alive, or the alert's time-to-live."""
    keepalive = KEEPALIVE_SECONDS - (time.monotonic() - written)
    expiry = (alert.expires_at - datetime.now(UTC)).total_seconds()
    return max(0.05, min(keepalive, expiry + 0.05) if expiry > -1 else keepalive)


def _over(alert: AlertView) -> bool:
    """Nothing more will change: the alert ended and either nothing was sent (declined) or its time-to-live
    passed. A completed alert is still followed until then: members go on acknowledging it."""
    if alert.status not in FINAL_ALERT:
        return False
    return alert.status is AlertStatus.DECLINED or datetime.now(UTC) >= alert.expires_at


async def _snapshot(
    call: Call, alert: Alert, plps: list[Plp], follower: Follower, *, with_acknowledgements: bool
) -> AlertSnapshot:
    """Where the alert stands for the caller: read once for every follower of the same part of it (the hub)."""
    store = services(call).store
    view, count = await follower.shared(tuple(sorted(p.id for p in plps)), lambda: _standing(call, alert, plps))
    times = None
    if with_acknowledgements:
        members = (await audience.audience(store, alert.id, [p.id for p in plps])).acknowledged
        created = alert.created_at.timestamp()
        times = sorted(
            max(0.0, t - created) for t in (await audience.first_acknowledgements(store, alert.id, members)).values()
        )
    snapshot = AlertSnapshot(
        alert=view,
        members=count.members,
        members_acknowledged=count.acknowledged,
        members_unreachable=count.unreachable,
        at=datetime.now(UTC),
        acknowledgements=times,
    )
    return policy.visible_to(call.who, snapshot)


async def _standing(call: Call, alert: Alert, plps: list[Plp]) -> tuple[AlertView, audience.Headcount]:
    """The alert's view (before the caller's field policy) and its headcount in these PLPs."""
    svc = services(call)
    view = await alert_view(call, alert)  # with its consenting members, as GET /v1/alerts/{id} shows them
    count = await audience.headcount(svc.store, alert.id, [p.id for p in plps], whole=len(plps) == len(alert.plp_ids))
    return view, count
