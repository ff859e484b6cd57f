"""A PLP's members' health for its coordinators: who has not been reachable for months, who never
acknowledges, who has no working channel (``dispatcher.reports.member_health``), as JSON or CSV."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.audit import note
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Query
from dispatcher.core.models import ChannelName, Plp
from dispatcher.reports import member_health
from dispatcher.reports.member_health import Health, Problem
from dispatcher.storage.store import from_ts


class HealthFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


class HealthQuery(Query):
    problem: Problem | None = Field(default=None, description="Only the members with this problem; default: all")
    format: HealthFormat = Field(default=HealthFormat.JSON, description="json, or csv: the same rows as a file")


class Thresholds(BaseModel):
    """The thresholds behind the problems (see docs/console.md#members-health)."""

    unreachable_days: int = member_health.UNREACHABLE_DAYS
    unreachable_after: int = member_health.UNREACHABLE_AFTER
    never_acknowledges_after: int = member_health.NEVER_ACKNOWLEDGES_AFTER
    history_alerts: int = member_health.HISTORY_ALERTS


class MemberHealthRow(BaseModel):
    """One member: the problems found, and the delivery history they come from. No contact point."""

    member_id: str
    name: str
    problems: list[Problem]
    working_channels: list[ChannelName]
    alerts_planned: int
    alerts_reached: int
    alerts_acknowledged: int
    last_reached_at: datetime | None = Field(description="Creation time of the last alert that reached them")
    last_acknowledged_at: datetime | None = Field(description="Creation time of the last alert they acknowledged")


class MemberHealth(BaseModel):
    """The PLP's members (those with the asked problem, or all), by name."""

    plp_id: str
    thresholds: Thresholds
    items: list[MemberHealthRow]


def _row(health: Health) -> MemberHealthRow:
    history = health.history
    return MemberHealthRow(
        member_id=health.member.id,
        name=health.member.name,
        problems=health.problems,
        working_channels=health.working_channels,
        alerts_planned=history.planned,
        alerts_reached=history.reached,
        alerts_acknowledged=history.acknowledged,
        last_reached_at=from_ts(history.last_reached_at),
        last_acknowledged_at=from_ts(history.last_acknowledged_at),
    )


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/member-health",
    summary="Members not reachable for months, never acknowledging, or without a working channel (JSON or CSV)",
    tag="members",
    query=HealthQuery,
    authorize=guards.member_manager,
    responses={200: MemberHealth},
    alternatives={200: ("text/csv",)},
)
async def plp_member_health(call: Call) -> Reply:
    plp: Plp = call.scope
    query: HealthQuery = call.query
    rows = await member_health.member_health(services(call).store, plp.id)
    if query.problem is not None:
        rows = [h for h in rows if query.problem in h.problems]
    await note(call, Action.MEMBER_LISTED, detail=f"health: {len(rows)} members", plp=plp.id)
    if query.format is HealthFormat.CSV:
        disposition = f'attachment; filename="member-health-{plp.id}-{query.problem or "all"}.csv"'
        headers = {"Content-Disposition": disposition, "Cache-Control": "no-store"}
        return Reply(200, member_health.to_csv(rows), headers, media_type="text/csv")
    return Reply(200, MemberHealth(plp_id=plp.id, thresholds=Thresholds(), items=[_row(h) for h in rows]))
