"""The audit log in the API: ``note`` for the handlers, and reading it.

Admins read all of it. Police officers and coordinators read the entries about their part and what
they did themselves: an entry is about the PLPs it names, the PLPs of the member it names (as they are
now: a member who left is no longer anyone's) and the PLPs of the alert it names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Query
from dispatcher.core.models import Member, Role
from dispatcher.storage.store import Store


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


def _iso_8601(value: object) -> object:
    """A time in the query is ISO 8601, as documented: a bare number (which pydantic would read as Unix time) is
    refused rather than read as 1970."""
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("a time in ISO 8601, e.g. 2026-12-01T08:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_8601)]


class AuditQuery(Query):
    action: Action | None = None
    actor_id: str | None = Field(default=None, max_length=100)
    plp_id: str | None = Field(default=None, max_length=100, description="Only the entries about this PLP")
    since: IsoTime | None = Field(default=None, description="Only entries from this time on (ISO 8601)")
    until: IsoTime | None = Field(default=None, description="Only entries before this time (ISO 8601)")
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    before: str | None = Field(
        default=None, pattern=r"^\d{1,15}-\d{1,19}$", description="next_before of the previous page"
    )


class AuditEntryView(BaseModel):
    id: str = Field(description="The entry's stream id; entries are ordered by it")
    at: datetime
    actor_id: str = Field(description='"cli" for the command line')
    actor_name: str | None = Field(
        default=None, description="The name of the admin, officer or coordinator; null for a member, the command line"
    )
    role: str
    action: Action
    target: dict[str, str] = Field(description="Ids only: alert, plp, member, token, actor")
    detail: str


class AuditPage(BaseModel):
    """Audit entries, newest first; ``next_before`` continues (null: nothing older matches)."""

    items: list[AuditEntryView]
    next_before: str | None


class Concerns:
    """Which PLPs an audit entry is about, looked up once per target for a read."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cache: dict[tuple[str, str], set[str]] = {}

    async def plps_of(self, entry: audit.Entry) -> set[str]:
        found: set[str] = set()
        for kind, target_id in entry.target.items():
            if (kind, target_id) not in self.cache:
                self.cache[kind, target_id] = await self._lookup(kind, target_id)
            found |= self.cache[kind, target_id]
        return found

    async def _lookup(self, kind: str, target_id: str) -> set[str]:
        if kind == "plp":
            return {target_id}
        if kind == "member":
            member = await self.store.get_member(target_id)
            return set(member.plp_ids) if member else set()
        if kind == "alert":
            alert = await self.store.get_alert(target_id)
            return set(alert.plp_ids) if alert else set()
        return set()


async def _part(call: Call) -> set[str] | None:
    """The PLP ids of the caller's part; None for an admin (everything)."""
    who = call.who
    if who.role is Role.ADMIN:
        return None
    if who.role is Role.POLICE:
        return set(await services(call).store.zone_plp_ids(who.police_zone or ""))
    return set(who.plp_ids)


def _keep(call: Call, part: set[str] | None, plp_id: str | None) -> audit.Keep | None:
    """What an entry must be to be read: within the caller's part (or their own doing), about ``plp_id``."""
    if part is None and plp_id is None:
        return None
    concerns = Concerns(services(call).store)

    async def keep(entry: audit.Entry) -> bool:
        plps = await concerns.plps_of(entry)
        if plp_id is not None and plp_id not in plps:
            return False
        return part is None or entry.actor_id == call.who.id or bool(plps & part)

    return keep


#: The roles of entries whose actor is a person of the service (a member acting on their own page is not named).
_ACTOR_ROLES = frozenset(role.value for role in Role)


async def _actor_names(call: Call, actor_ids: set[str]) -> dict[str, str]:
    store = services(call).store
    found = {actor_id: await store.get_actor(actor_id) for actor_id in actor_ids}
    return {actor_id: actor.name for actor_id, actor in found.items() if actor is not None}


@api.operation(
    "GET",
    "/v1/audit",
    summary="Read the audit log, newest first (admin: all; police and coordinators: their part, their own doing)",
    tag="access",
    query=AuditQuery,
    authorize=guards.anyone,
    responses={200: AuditPage},
)
async def read_audit(call: Call) -> Reply:
    q: AuditQuery = call.query
    svc, part = services(call), await _part(call)
    if part is not None and q.plp_id is not None and q.plp_id not in part:
        raise Problem(403, "Forbidden", f"PLP {q.plp_id} is outside your part: you read the audit of your own PLPs")
    page = await audit.read(
        svc.store.redis,
        svc.runtime.keys,
        action=q.action,
        actor_id=q.actor_id,
        limit=q.limit,
        before=q.before,
        since=q.since,
        until=q.until,
        keep=_keep(call, part, q.plp_id),
    )
    names = await _actor_names(call, {e.actor_id for e in page.entries if e.role in _ACTOR_ROLES})
    items = [AuditEntryView.model_validate(e.__dict__ | {"actor_name": names.get(e.actor_id)}) for e in page.entries]
    return Reply(200, AuditPage(items=items, next_before=page.next_before))
