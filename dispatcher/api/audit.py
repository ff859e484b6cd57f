"""The audit log in the API: ``note`` for the handlers, and reading it (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Query
from dispatcher.core.models import Member


async def note(call: Call, action: Action, *, detail: str = "", **target: str) -> None:
    """Record in the audit log that the caller did ``action`` on ``target`` (ids: alert=, plp=, member=...)."""
    svc = services(call)
    await audit.record(svc.store.redis, svc.runtime.keys, actor=call.who, action=action, target=target, detail=detail)


def changed(patch: BaseModel) -> str:
    """The detail of a change: the names of the fields it set, never their values."""
    return "fields: " + ", ".join(sorted(patch.model_fields_set))


def left(member: Member, plp_id: str) -> Action:
    """What taking a member out of a PLP is: an erasure if it was their last PLP, else a removal."""
    return Action.MEMBER_REMOVED if set(member.plp_ids) - {plp_id} else Action.MEMBER_ERASED


class AuditQuery(Query):
    action: Action | None = None
    actor_id: str | None = Field(default=None, max_length=100)
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    before: str | None = Field(
        default=None, pattern=r"^\d{1,15}-\d{1,19}$", description="next_before of the previous page"
    )


class AuditEntryView(BaseModel):
    id: str = Field(description="The entry's stream id; entries are ordered by it")
    at: datetime
    actor_id: str = Field(description='"cli" for the command line')
    role: str
    action: Action
    target: dict[str, str] = Field(description="Ids only: alert, plp, member, token, actor")
    detail: str


class AuditPage(BaseModel):
    """Audit entries, newest first; ``next_before`` continues (null: nothing older matches)."""

    items: list[AuditEntryView]
    next_before: str | None


@api.operation(
    "GET",
    "/v1/audit",
    summary="Read the audit log, newest first (admin)",
    tag="access",
    query=AuditQuery,
    authorize=guards.admin("read the audit log"),
    responses={200: AuditPage},
)
async def read_audit(call: Call) -> Reply:
    q: AuditQuery = call.query
    svc = services(call)
    page = await audit.read(
        svc.store.redis, svc.runtime.keys, action=q.action, actor_id=q.actor_id, limit=q.limit, before=q.before
    )
    items = [AuditEntryView.model_validate(e.__dict__) for e in page.entries]
    return Reply(200, AuditPage(items=items, next_before=page.next_before))
