"""Joining, changing and importing members: contact points checked, one person per phone or e-mail.

A person is identified by their mobile number and e-mail address: enrolling someone
whose phone or e-mail a member already has adds a membership to that member rather
than creating a second person, so an alert to overlapping PLPs reaches them once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from dispatcher.core.channel_names import Contact
from dispatcher.core.contacts import InvalidContact, normalise_mobile
from dispatcher.core.models import ChannelName, Consent, ConsentSource, Member, MemberIn, MemberPatch, MemberStatus, Plp
from dispatcher.core.validation import field_errors
from dispatcher.people.locating import placed
from dispatcher.storage.store import Conflict, Store, new_id


class UnknownSector(ValueError):
    """A sector set by hand that the PLP does not have."""


class RowError(Exception):
    """A row that cannot be imported, with its field errors."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors


async def enroll(
    store: Store,
    plp: Plp,
    data: MemberIn,
    *,
    region: str,
    geocoder: bool = False,
    source: ConsentSource = ConsentSource.API,
) -> tuple[Member, bool]:
    """Add a person to a PLP; return the member and whether they already existed. ``geocoder``: whether
    one is configured, to locate a new member from their address (``dispatcher.people.locating``).

    Raises ``InvalidContact`` for an unusable phone number and ``Conflict`` when the
    person is already a member of this PLP or their contact points belong to two people.
    """
    phone, email = _contacts(data, region)
    existing_id = await store.find_member_by_contact(phone=phone, email=email)
    if existing_id is not None:
        return await _join(store, plp, existing_id), True
    member = _new_member(plp, data, phone, email, geocoder=geocoder, source=source)
    await store.save_member(member)
    return member, False


async def _join(store: Store, plp: Plp, member_id: str, *, dry_run: bool = False) -> Member:
    member = await store.get_member(member_id)
    if member is None:
        raise Conflict("this person's record is being erased; try again")
    if plp.id in member.plp_ids:
        raise Conflict("this person is already a member of this PLP")
    joined = member.model_copy(update={"plp_ids": [*member.plp_ids, plp.id], "updated_at": _now()})
    if not dry_run:
        await store.save_member(joined, previous=member)
    return joined


def _contacts(data: MemberIn, region: str) -> tuple[str | None, str | None]:
    phone = normalise_mobile(data.phone, region=region) if data.phone else None
    return phone, str(data.email) if data.email else None


def _new_member(
    plp: Plp, data: MemberIn, phone: str | None, email: str | None, *, geocoder: bool, source: ConsentSource
) -> Member:
    now = _now()
    member = Member(
        id=new_id(),
        name=data.name,
        phone=phone,
        email=email,
        language=data.language,
        channels=data.channels,
        consent_at=data.consent_at or now,
        consent_source=source,
        whatsapp_consent=Consent(at=now, source=source) if data.whatsapp else None,
        plp_ids=[plp.id],
        created_at=now,
        updated_at=now,
    )
    place = data.model_dump(include={"address", "coordinates"}, exclude_none=True)
    return member.model_copy(update=placed(member, place, geocoder=geocoder))


async def change(
    store: Store,
    member: Member,
    patch: MemberPatch,
    *,
    region: str,
    plp_id: str,
    geocoder: bool = False,
    source: ConsentSource = ConsentSource.API,
) -> Member:
    """Apply a coordinator's changes (a sector set by hand is the PLP ``plp_id``'s); raises ``InvalidContact``
    or ``Conflict`` like ``enroll``, ``UnknownSector`` for a sector the PLP does not have."""
    changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
    if "sector_id" in changes:
        changes["sector_ids"] = await _sectors_set(store, member, plp_id, changes.pop("sector_id"))
    if "address" in changes or "coordinates" in changes:
        changes.update(placed(member, changes, geocoder=geocoder))
        changes.pop("coordinates", None)
    if "whatsapp" in changes:
        given = changes.pop("whatsapp")
        if given is not None and given != (member.whatsapp_consent is not None):  # a consent given again keeps its date
            changes["whatsapp_consent"] = Consent(at=_now(), source=source) if given else None
    if changes.get("phone"):
        changes["phone"] = normalise_mobile(changes["phone"], region=region)
    if "email" in changes and changes["email"] is not None:
        changes["email"] = str(changes["email"])
    # A new contact point gets a new chance on the channels that failed with the old one.
    cleared = (
        {c for c in ChannelName if c.contact in (Contact.PHONE, Contact.WHATSAPP)} if "phone" in changes else set()
    )
    cleared |= {ChannelName.EMAIL} if "email" in changes else set()
    if cleared & member.unusable.keys():
        changes["unusable"] = {c: r for c, r in member.unusable.items() if c not in cleared}
    if changes.get("status") is MemberStatus.OPTED_OUT and member.status is not MemberStatus.OPTED_OUT:
        changes["opted_out_at"] = _now()
    elif changes.get("status") is MemberStatus.ACTIVE:
        changes["opted_out_at"] = None
    updated = member.model_copy(update={**changes, "updated_at": _now()})
    if not updated.phone and not updated.email and updated.telegram_chat_id is None:
        raise Conflict("a member needs at least one contact point")
    await store.save_member(updated, previous=member)
    return updated


async def _sectors_set(store: Store, member: Member, plp_id: str, sector_id: str | None) -> dict[str, str]:
    """The member's sectors set by hand, with this PLP's set to ``sector_id`` (None: taken off)."""
    chosen = {p: s for p, s in member.sector_ids.items() if p != plp_id}
    if sector_id is None:
        return chosen
    if sector_id not in {s.id for s in await store.get_sectors(plp_id)}:
        raise UnknownSector(f"PLP {plp_id} has no sector {sector_id!r}")
    return {**chosen, plp_id: sector_id}


async def import_rows(
    store: Store,
    plp: Plp,
    rows: list[tuple[int, Any]],
    *,
    region: str,
    dry_run: bool = False,
    geocoder: bool = False,
) -> tuple[list[tuple[int, Member, bool]], list[tuple[int, list[dict[str, str]]]]]:
    """Enroll every valid row; a bad row is reported and never stops the others.

    Rows are checked first (fields, phone number, duplicates within the import); then the
    people nobody knows yet are written in bulk, and those already known are linked one
    by one. Returns ``(imported, rejected)``: ``(row, member, existed)`` and ``(row, errors)``.
    ``dry_run``: the same report, with nothing written (the new members it returns are not stored).
    """
    rejected: list[tuple[int, list[dict[str, str]]]] = []
    valid: list[tuple[int, MemberIn, str | None, str | None]] = []
    seen: dict[str, int] = {}
    for row, fields in rows:
        try:
            data = _row_member(fields)
            phone, email = _contacts(data, region)
        except RowError as exc:
            rejected.append((row, exc.errors))
            continue
        except InvalidContact as exc:
            rejected.append((row, [{"field": "phone", "reason": str(exc)}]))
            continue
        keys = [f"{kind}:{value.lower()}" for kind, value in (("phone", phone), ("email", email)) if value]
        if twin := next((k for k in keys if k in seen), None):
            rejected.append((row, [{"field": twin.split(":")[0], "reason": f"same as row {seen[twin]}"}]))
            continue
        seen.update(dict.fromkeys(keys, row))
        valid.append((row, data, phone, email))
    owners = await store.find_members_by_contacts([(phone, email) for _, _, phone, email in valid])
    imported: list[tuple[int, Member, bool]] = []
    fresh: list[tuple[int, Member]] = []
    for (row, data, phone, email), owner in zip(valid, owners, strict=True):
        if owner is None:
            fresh.append((row, _new_member(plp, data, phone, email, geocoder=geocoder, source=ConsentSource.IMPORT)))
            continue
        try:
            imported.append((row, await _join(store, plp, owner, dry_run=dry_run), True))
        except Conflict as exc:
            rejected.append((row, [{"field": "row", "reason": str(exc)}]))
    if not dry_run:
        await store.add_new_members([member for _, member in fresh])
    imported += [(row, member, False) for row, member in fresh]
    return sorted(imported, key=lambda i: i[0]), sorted(rejected, key=lambda r: r[0])


def _row_member(fields: Any) -> MemberIn:
    if isinstance(fields, RowError):  # a sheet's row with a cell that could not be read
        raise fields
    if not isinstance(fields, dict):
        raise RowError([{"field": "row", "reason": "each row must be an object with the member's fields"}])
    try:
        return MemberIn.model_validate(fields)
    except ValidationError as exc:
        raise RowError(field_errors(exc, "")) from None


def _now() -> datetime:
    return datetime.now(UTC)
