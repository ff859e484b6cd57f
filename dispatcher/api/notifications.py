"""What the service told the caller: e.g. too few members acknowledged an urgent alert, a resident asks to join,
a member changed their details on their own page (named when read, so that a member who left is named nowhere)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dispatcher.api import guards
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Query
from dispatcher.core.models import Strict
from dispatcher.pipeline.notifications import Notification, Notifications


class NotificationQuery(Query):
    limit: int = Field(default=50, ge=1, le=500)
    before: float | None = Field(
        default=None, allow_inf_nan=False, description="Notifications created before this Unix time"
    )


class NotificationView(Notification):
    """Something the service told the caller about an alert and one of its PLPs, and whether they marked it read."""

    read: bool = Field(default=False, description="The caller marked it read (each actor marks their own)")
    member_name: str | None = Field(
        default=None,
        description="The name of the member it is about (member_changed), as it is now; none once they left",
    )


class ReadFlag(Strict):
    """Mark a notification read (true) or unread again (false)."""

    read: bool = Field(strict=True)


class NotificationList(BaseModel):
    """The caller's notifications, newest first."""

    items: list[NotificationView]


@api.operation(
    "GET",
    "/v1/notifications",
    summary="The caller's notifications, newest first",
    tag="notifications",
    query=NotificationQuery,
    authorize=guards.anyone,
    responses={200: NotificationList},
)
async def list_notifications(call: Call) -> Reply:
    store = services(call).store
    feed = Notifications(store.redis, store.keys)
    found = await feed.for_actor(call.who.id, limit=call.query.limit, before=call.query.before)
    read = await feed.read_among(call.who.id, [n.id for n in found])
    about = sorted({n.member_id for n in found if n.member_id})
    names = {m.id: m.name for m in await store.get_members(about) if m is not None} if about else {}
    items = [
        NotificationView.model_validate(
            n.model_dump() | {"read": n.id in read, "member_name": names.get(n.member_id or "")}
        )
        for n in found
    ]
    return Reply(200, NotificationList(items=items))


async def _in_feed(call: Call) -> str:
    """The path's notification, when it is in the caller's feed (else 404: nobody learns of others')."""
    store, notification_id = services(call).store, call.path("notification_id")
    if not await Notifications(store.redis, store.keys).files(call.who.id, notification_id):
        raise Problem(404, "Not found", f"no notification {notification_id!r} of yours")
    return notification_id


@api.operation(
    "PUT",
    "/v1/notifications/{notification_id}/read",
    summary="Mark one of the caller's notifications read, or unread again",
    tag="notifications",
    body=ReadFlag,
    authorize=_in_feed,
    responses={204: None},
)
async def mark_notification(call: Call) -> Reply:
    store = services(call).store
    await Notifications(store.redis, store.keys).mark(call.who.id, call.scope, read=call.body.read)
    return Reply(204)
