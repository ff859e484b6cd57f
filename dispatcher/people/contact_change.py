"""A member changes their own phone or e-mail on their page, confirmed by a one-time code sent to the new one.

``start`` checks the new contact point, keeps the change pending with a six-digit code for
``CODE_TTL`` seconds (only a hash of the code is kept) and returns the code for the caller to
send to the new contact point; at most ``CODES_PER_HOUR`` codes a member an hour. ``confirm``
applies the change if the code is right; ``MAX_WRONG`` wrong codes drop the pending change and
lock contact changes for ``LOCK_SECONDS``. A contact point another member already has is never
said to be taken (that would tell who is a member): the change is kept pending like any other,
no code is sent, and it can only expire. The codes themselves are ``dispatcher.access.codes``'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from dispatcher.access import audit, codes
from dispatcher.access.audit import Action
from dispatcher.access.codes import CODE_TTL, LOCK_SECONDS, MAX_WRONG, CodeKeys, CodeRefused
from dispatcher.core.contacts import normalise_email, normalise_mobile
from dispatcher.core.models import ChannelName, Member
from dispatcher.storage.store import Store

__all__ = [
    "CODES_PER_HOUR",
    "CODE_TTL",
    "LOCK_SECONDS",
    "MAX_WRONG",
    "ChangeRefused",
    "ContactKind",
    "confirm",
    "start",
]

#: Codes sent to a member at most, an hour.
CODES_PER_HOUR = 3

#: The change cannot go on; ``reason`` says why (``dispatcher.access.codes.CodeRefused``).
ChangeRefused = CodeRefused


class ContactKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"


@dataclass(frozen=True)
class Started:
    """A pending change: the code to send, and where (None: not to be sent, the contact point is taken)."""

    kind: ContactKind
    value: str
    code: str | None


def _keys(store: Store, member_id: str) -> CodeKeys:
    keys = store.keys
    return CodeKeys(
        pending=keys.member_contact_change(member_id),
        sent=keys.member_contact_codes(member_id),
        lock=keys.member_contact_lock(member_id),
    )


async def start(store: Store, member: Member, kind: ContactKind, raw: str, *, region: str) -> Started:
    """Keep the change pending with a fresh code; raises ``InvalidContact`` for a value that cannot be used,
    ``ChangeRefused("locked")`` or ``ChangeRefused("rate")``."""
    value = normalise_mobile(raw, region=region) if kind is ContactKind.PHONE else normalise_email(raw)
    fields = {"kind": kind.value, "value": value}
    code = await codes.issue(
        store.redis, _keys(store, member.id), salt=member.id, fields=fields, per_hour=CODES_PER_HOUR
    )
    owner = await store.find_member_by_contact(**{"phone": None, "email": None, kind.value: value})
    return Started(kind, value, code if owner in (None, member.id) else None)


async def confirm(store: Store, member: Member, code: str) -> Member:
    """Apply the pending change if ``code`` is its code; return the member as saved, audited as the member.

    Raises ``ChangeRefused("expired")`` with no change pending, ``("wrong")`` for a wrong code and
    ``("locked")`` at the ``MAX_WRONG``-th.
    """
    pending = await codes.check(store.redis, _keys(store, member.id), salt=member.id, code=code)
    kind = ContactKind(pending["kind"])
    if await store.find_member_by_contact(**{"phone": None, "email": None, kind.value: pending["value"]}) not in (
        None,
        member.id,
    ):
        raise ChangeRefused("expired")  # taken meanwhile: said no more than an expired code
    return await _apply(store, member, kind, pending["value"])


async def _apply(store: Store, member: Member, kind: ContactKind, value: str) -> Member:
    # a new contact point gets a new chance on the channels that failed with the old one
    cleared = {ChannelName.SMS, ChannelName.VOICE} if kind is ContactKind.PHONE else {ChannelName.EMAIL}
    unusable = {c: r for c, r in member.unusable.items() if c not in cleared}
    updated = member.model_copy(update={kind.value: value, "unusable": unusable, "updated_at": datetime.now(UTC)})
    await store.save_member(updated, previous=member)
    await audit.record_member(
        store.redis, store.keys, member_id=member.id, action=Action.MEMBER_CHOSE, detail=kind.value
    )
    return updated
