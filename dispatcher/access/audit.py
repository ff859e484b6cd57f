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
with role ``operator``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
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

TARGET_KINDS = frozenset({"alert", "plp", "member", "token", "actor"})
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
    ACTOR_CREATED = "actor.created"
    TOKEN_ISSUED = "token.issued"
    TOKEN_REVOKED = "token.revoked"
    CHARTER_CHANGED = "charter.changed"
    PLP_CREATED = "plp.created"


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


async def read(
    redis: Redis,
    keys: Keys,
    *,
    action: Action | None = None,
    actor_id: str | None = None,
    limit: int = 100,
    before: str | None = None,
) -> Page:
    """Up to ``limit`` entries older than the entry ``before`` (all if None), newest first, filtered.

    A filtered read examines at most ``MAX_SCAN`` entries; it may then return fewer than
    ``limit`` with a ``next_before`` to go on from.
    """
    if before is not None and not any(int(part or 0) for part in before.split("-")):
        return Page([], next_before=None)  # nothing is older than the first possible id, 0-0
    top, found, examined = f"({before}" if before else "+", [], 0
    chunk = limit if action is None and actor_id is None else _CHUNK
    while examined < MAX_SCAN:
        rows = cast(Rows, await redis.xrevrange(keys.audit(), max=top, min="-", count=chunk))
        for entry_id, fields in rows:
            examined += 1
            if (action is None or fields["action"] == action) and (actor_id is None or fields["actor_id"] == actor_id):
                found.append(_entry(entry_id, fields))
                if len(found) == limit:
                    return Page(found, next_before=entry_id)
        if len(rows) < chunk:
            return Page(found, next_before=None)
        top = f"({rows[-1][0]}"
    return Page(found, next_before=top[1:])


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
