"""The audit log: who did what, and when, in an append-only Redis stream.

An entry holds the time (its stream id, from the Redis server's clock), the actor's id
and role, the action, its target and a short detail. Targets are ids only (alert, PLP,
member, token, actor), checked to look like ids; details are counts and field names,
masked like log lines (``dispatcher.core.logging.mask_text``) in case a phone number, an
e-mail address or a token ever slipped into one. So the log never holds personal data,
and erasing a member leaves nothing of them in it but their random id.

Entries are only ever appended (``XADD``). The stream is capped near ``MAX_ENTRIES``
(``MAXLEN ~``, trimmed a node at a time): beyond that, the oldest entries go first.
An entry takes about 130 bytes (measured), so the cap is about 130 MB of Redis memory, years of
activity for a zone's PLPs.

Actions done from the command line have no actor: they are recorded as actor ``cli``
with role ``operator``. Actions a member does on their own page (through their signed link)
are recorded with the member's id as actor and role ``member``; a resident's request to join a PLP,
once its contact points are confirmed, with the request's id as actor and role ``resident``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import cast

from redis.asyncio import Redis

from dispatcher.core.logging import mask_text
from dispatcher.core.models import Actor
from dispatcher.storage.keys import Keys

#: Entries kept at most (approximately): the oldest go beyond this.
MAX_ENTRIES = 1_000_000
#: Longest detail kept; longer ones are cut.
MAX_DETAIL = 200
#: Entries a filtered read examines at most before it returns what it found and where to go on.
MAX_SCAN = 10_000

TARGET_KINDS = frozenset({"alert", "plp", "member", "token", "actor", "join"})
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_CHUNK = 1000

Rows = list[tuple[str, dict[str, str]]]


class Action(StrEnum):
    ALERT_CREATED = "alert.created"
    ALERT_CANCELLED = "alert.cancelled"
    RELAY_APPROVED = "relay.approved"
    RELAY_DECLINED = "relay.declined"
    MEMBER_CREATED = "member.created"
    MEMBER_LINKED = "member.linked"  # an existing person (same phone or e-mail) joined another PLP
    MEMBER_VIEWED = "member.viewed"  # one member read
    MEMBER_LISTED = "member.listed"  # a page of a PLP's members read
    MEMBER_IMPORTED = "member.imported"
    MEMBER_CHANGED = "member.changed"
    MEMBER_REMOVED = "member.removed"  # left one PLP, still in others
    MEMBER_ERASED = "member.erased"
    MEMBER_EXPORTED = "member.exported"
    MEMBER_CHOSE = "member.chose"  # the member changed their own language or channels, on their own page
    MEMBER_LINK_SENT = "member.link_sent"  # a coordinator had the member sent the link to their own page
    MEMBER_LEFT = "member.left"  # the member left every PLP from their own page (their data is erased)
    ACTOR_CREATED = "actor.created"
    ACTOR_CHANGED = "actor.changed"  # an admin changed an actor's name, e-mail, role or binding (detail: the fields)
    ACTOR_REMOVED = "actor.removed"  # an admin removed an actor: their tokens revoked, their sessions ended
    TOKEN_ISSUED = "token.issued"
    TOKEN_REVOKED = "token.revoked"
    SESSION_OPENED = "session.opened"  # signed in to the console by an e-mailed link
    SESSION_CLOSED = "session.closed"  # signed out (the detail says "everywhere" and how many)
    SIGNIN_REFUSED = "signin.refused"  # a sign-in through the identity provider refused (the detail says why)
    CHARTER_CHANGED = "charter.changed"
    PLP_CREATED = "plp.created"
    SECTOR_CHANGED = "sector.changed"  # a PLP's sectors added, imported or deleted (the detail says which)
    DRILL_SCHEDULED = "drill.scheduled"  # a recurring drill scheduled for a PLP (its occurrences: alert.created)
    DRILL_DELETED = "drill.deleted"
    JOIN_PAGE_CHANGED = "join.page_changed"  # a PLP's join page turned on or off, or its privacy notice changed
    JOIN_REQUESTED = "join.requested"  # a resident confirmed their contact points: the request waits (actor: it)
    JOIN_APPROVED = "join.approved"  # a coordinator approved a request (the member: member.created or member.linked)
    JOIN_DECLINED = "join.declined"  # a coordinator declined a request, with a reason told to the resident


@dataclass(frozen=True)
class Entry:
    """One audit entry; ``id`` is its stream id, which orders entries and pages through them."""

    id: str
    at: datetime
    actor_id: str
    role: str
    action: str
    target: dict[str, str]
    detail: str


@dataclass(frozen=True)
class Page:
    """Entries newest first; ``next_before`` is where to go on (None: nothing older matches)."""

    entries: list[Entry]
    next_before: str | None


def entry_fields(*, actor: Actor | None, action: Action, target: Mapping[str, str], detail: str = "") -> dict[str, str]:
    """The fields of an entry (to append to ``keys.audit()``, here or in a transaction); ``actor`` None is the
    command line. Raises ``ValueError`` on a target that is not ``{kind: id}`` of a known kind."""
    for kind, value in target.items():
        if kind not in TARGET_KINDS or not _ID.match(value):
            raise ValueError(f"an audit target is an id of an {'/'.join(sorted(TARGET_KINDS))}, not {kind}={value!r}")
    return {
        "actor_id": actor.id if actor else "cli",
        "role": actor.role.value if actor else "operator",
        "action": action.value,
        "target": json.dumps(dict(target), separators=(",", ":")),
        "detail": mask_text(detail)[:MAX_DETAIL],
    }


async def record(
    redis: Redis, keys: Keys, *, actor: Actor | None, action: Action, target: Mapping[str, str], detail: str = ""
) -> str:
    """Append an entry; return its id. Raises ``ValueError`` as ``entry_fields`` does."""
    fields = entry_fields(actor=actor, action=action, target=target, detail=detail)
    return str(await redis.xadd(keys.audit(), fields, maxlen=MAX_ENTRIES, approximate=True))  # type: ignore[arg-type]


async def record_member(redis: Redis, keys: Keys, *, member_id: str, action: Action, detail: str = "") -> str:
    """Append an entry whose actor is a member acting through their own signed link (role ``member``)."""
    fields = entry_fields(actor=None, action=action, target={"member": member_id}, detail=detail)
    fields |= {"actor_id": member_id, "role": "member"}
    return str(await redis.xadd(keys.audit(), fields, maxlen=MAX_ENTRIES, approximate=True))  # type: ignore[arg-type]


async def record_resident(redis: Redis, keys: Keys, *, request_id: str, plp_id: str, action: Action) -> str:
    """Append an entry whose actor is a resident asking to join a PLP (role ``resident``; their request's id)."""
    fields = entry_fields(actor=None, action=action, target={"join": request_id, "plp": plp_id})
    fields |= {"actor_id": request_id, "role": "resident"}
    return str(await redis.xadd(keys.audit(), fields, maxlen=MAX_ENTRIES, approximate=True))  # type: ignore[arg-type]


async def record_anonymous(redis: Redis, keys: Keys, *, action: Action, detail: str) -> str:
    """Append an entry whose actor is not known (role ``anonymous``): a sign-in refused before anyone was."""
    fields = entry_fields(actor=None, action=action, target={}, detail=detail)
    fields |= {"actor_id": "anonymous", "role": "anonymous"}
    return str(await redis.xadd(keys.audit(), fields, maxlen=MAX_ENTRIES, approximate=True))  # type: ignore[arg-type]


#: Decides, entry by entry, whether a read keeps it (e.g. whether it is within the reader's part).
Keep = Callable[[Entry], Awaitable[bool]]


async def read(
    redis: Redis,
    keys: Keys,
    *,
    action: Action | None = None,
    actor_id: str | None = None,
    limit: int = 100,
    before: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    keep: Keep | None = None,
) -> Page:
    """Up to ``limit`` entries older than the entry ``before`` (all if None), newest first, filtered: by
    action, actor, time (``since`` inclusive, ``until`` exclusive) and ``keep``.

    A filtered read examines at most ``MAX_SCAN`` entries; it may then return fewer than
    ``limit`` with a ``next_before`` to go on from.
    """
    if before is not None and not any(int(part or 0) for part in before.split("-")):
        return Page([], next_before=None)  # nothing is older than the first possible id, 0-0
    top = f"({before}" if before else "+"
    if until is not None and (before is None or int(before.partition("-")[0]) >= _millis(until)):
        top = f"({_millis(until)}-0"
    bottom = f"{_millis(since)}-0" if since is not None else "-"
    found: list[Entry] = []
    examined, filtered = 0, action is not None or actor_id is not None or keep is not None
    chunk = _CHUNK if filtered else limit
    while examined < MAX_SCAN:
        rows = cast(Rows, await redis.xrevrange(keys.audit(), max=top, min=bottom, count=chunk))
        for entry_id, fields in rows:
            examined += 1
            if (action is None or fields["action"] == action) and (actor_id is None or fields["actor_id"] == actor_id):
                entry = _entry(entry_id, fields)
                if keep is None or await keep(entry):
                    found.append(entry)
                    if len(found) == limit:
                        return Page(found, next_before=entry_id)
        if len(rows) < chunk:
            return Page(found, next_before=None)
        top = f"({rows[-1][0]}"
    return Page(found, next_before=top[1:])


def _millis(moment: datetime) -> int:
    return max(0, int(moment.timestamp() * 1000))


def _entry(entry_id: str, fields: dict[str, str]) -> Entry:
    millis = int(entry_id.partition("-")[0])
    return Entry(
        id=entry_id,
        at=datetime.fromtimestamp(millis / 1000, UTC),
        actor_id=fields["actor_id"],
        role=fields["role"],
        action=fields["action"],
        target=json.loads(fields["target"]),
        detail=fields.get("detail", ""),
    )
