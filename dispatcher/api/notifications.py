"""What the service told the caller: e.g. too few members acknowledged an urgent alert."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dispatcher.api import guards
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Query
from dispatcher.pipeline.notifications import Notification, Notifications


class NotificationQuery(Query):
    limit: int = Field(default=50, ge=1, le=500)
    before: float | None = Field(
        default=None, allow_inf_nan=False, description="Notifications created before this Unix time"
    )


class NotificationView(Notification):
    """Something the service told the caller about an alert and one of its PLPs."""


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
    found = await Notifications(store.redis, store.keys).for_actor(
        call.who.id, limit=call.query.limit, before=call.query.before
    )
    return Reply(200, NotificationList(items=[NotificationView.model_validate(n.model_dump()) for n in found]))
