"""A PLP's members: add, read, change, remove, list, and import in bulk."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.audit import changed, left, note
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply, json_body
from dispatcher.api.services import SERVICES, api, services
from dispatcher.api.views import (
    ImportedRow,
    ImportReport,
    ImportSource,
    MemberPage,
    MemberQuery,
    MemberView,
    Query,
    RejectedRow,
)
from dispatcher.core.contacts import InvalidContact
from dispatcher.core.models import Actor, ConsentSource, Member, MemberIn, MemberPatch, MemberStatus, Plp, Role
from dispatcher.geo.areas import Sectors
from dispatcher.people import export, locating, membership, sheets
from dispatcher.people.export import MemberExport
from dispatcher.pipeline import audience
from dispatcher.storage.records import Page
from dispatcher.storage.store import from_ts


class ImportQuery(Query):
    dry_run: bool = Field(
        default=False, description="Check the rows and answer the same report, writing nothing (a preview)"
    )
    sheet: str | None = Field(
        default=None, max_length=100, description="An Excel workbook's sheet (tab) to read; default: the first one"
    )


class ImportRequest(BaseModel):
    """Members to import; each row is checked on its own. A sheet is accepted too: CSV or an Excel workbook."""

    members: list[dict[str, Any]] = Field(description="Rows with the fields of MemberIn")


_SHEET_COLUMNS = "Columns: " + ", ".join(sheets.COLUMNS) + " (or their names in French, Dutch or German)"
#: The import's other media types, as the document lists them (the bytes decide how a sheet is read).
SHEET_CONTENT = {
    "text/csv": {"schema": {"type": "string", "description": _SHEET_COLUMNS + "; separated by , ; or tab"}},
    "text/tab-separated-values": {"schema": {"type": "string", "description": _SHEET_COLUMNS}},
    sheets.XLSX: {"schema": {"type": "string", "format": "binary", "description": _SHEET_COLUMNS}},
    "application/octet-stream": {
        "schema": {"type": "string", "format": "binary", "description": "A CSV file or an Excel workbook"}
    },
}


def view(
    member: Member,
    actor: Actor,
    last: audience.LastAcknowledgement | None = None,
    sectors: Sectors | None = None,
) -> MemberView:
    """The member as this actor may see them: only the memberships of the actor's PLPs; how they are reached;
    their sector among ``sectors`` (a PLP's)."""
    data = member.model_dump()
    if actor.role is Role.COORDINATOR:
        data["plp_ids"] = [p for p in member.plp_ids if p in actor.plp_ids]
    working = [c for c in member.channels if c not in member.unusable and member.address_for(c)]
    return MemberView.model_validate(
        data
        | {
            "working_channels": working if member.status is MemberStatus.ACTIVE else [],
            "last_acknowledged_at": from_ts(last.at) if last and last.at is not None else None,
            "last_acknowledged_via": last.via if last else None,
            "sector_id": sectors.sector_of(member) if sectors is not None else None,
        }
    )


async def views(call: Call, plp: Plp, members: list[Member]) -> list[MemberView]:
    """Members as the caller may see them, with their last acknowledgement of the PLP's alerts."""
    store = services(call).store
    last = await audience.last_acknowledgements(store, plp.id, [m.id for m in members])
    sectors = Sectors.of(plp.id, await store.get_sectors(plp.id))
    return [view(m, call.who, last.get(m.id), sectors) for m in members]


#: The header the console's member form sends, so that a consent given there is recorded as the console's.
CLIENT_HEADER = "X-PLP-Client"


def _consent_source(call: Call) -> ConsentSource:
    """Where a consent in this request was given: the console's member form, or the API."""
    console = call.request.headers.get(CLIENT_HEADER, "").strip().lower() == "console"
    return ConsentSource.CONSOLE if console else ConsentSource.API


def _invalid_phone(exc: InvalidContact) -> Problem:
    return Problem(422, "Invalid request", f"body.phone: {exc}", errors=[{"field": "body.phone", "reason": str(exc)}])


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/members",
    summary="Add a member (an existing person with the same phone or e-mail is linked, 200)",
    tag="members",
    body=MemberIn,
    authorize=guards.member_manager,
    responses={200: MemberView, 201: MemberView},
)
async def create_member(call: Call) -> Reply:
    plp: Plp = call.scope
    svc = services(call)
    settings = svc.runtime.settings
    try:
        member, existed = await membership.enroll(
            svc.store,
            plp,
            call.body,
            region=settings.default_region,
            geocoder=settings.geocoder_url is not None,
            source=_consent_source(call),
        )
    except InvalidContact as exc:
        raise _invalid_phone(exc) from None
    if not existed:
        await locating.request(svc.runtime, svc.store, [member])
    await note(call, Action.MEMBER_LINKED if existed else Action.MEMBER_CREATED, plp=plp.id, member=member.id)
    location = {"Location": f"/v1/plps/{plp.id}/members/{member.id}"}
    return Reply(200 if existed else 201, (await views(call, plp, [member]))[0], location)


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/members",
    summary="List a PLP's members (sector=: those of a sector, or none; located=false: those not located)",
    tag="members",
    query=MemberQuery,
    authorize=guards.member_manager,
    responses={200: MemberPage},
)
async def list_members(call: Call) -> Reply:
    plp: Plp = call.scope
    query: MemberQuery = call.query
    if query.sector is None and query.located is None:
        page = await services(call).store.list_members(plp.id, cursor=query.cursor, limit=query.limit)
    else:
        page = await _filtered(call, plp, query)
    await note(call, Action.MEMBER_LISTED, detail=f"{len(page.items)} members", plp=plp.id)
    return Reply(200, MemberPage(items=await views(call, plp, page.items), next_cursor=page.next_cursor))


#: Members read at a time while a filter looks for a page's worth.
_SCAN = 500


async def _filtered(call: Call, plp: Plp, query: MemberQuery) -> Page:
    """A page of the members that pass the query's filters, read a chunk at a time from ``query.cursor`` on;
    ``next_cursor`` is where the reading stopped (None: the end of the list)."""
    store = services(call).store
    sectors = Sectors.of(plp.id, await store.get_sectors(plp.id))
    wanted, cursor, found = None if query.sector == "none" else query.sector, query.cursor, []
    while True:
        chunk = await store.list_members(plp.id, cursor=cursor, limit=_SCAN)
        for member, sector in zip(chunk.items, sectors.sectors_of(chunk.items), strict=True):
            cursor = member.id
            if (query.sector is None or sector == wanted) and _located_as(member, query.located):
                found.append(member)
                if len(found) == query.limit:
                    return Page(items=found, next_cursor=cursor)
        if chunk.next_cursor is None:
            return Page(items=found, next_cursor=None)
        cursor = chunk.next_cursor


def _located_as(member: Member, located: bool | None) -> bool:
    return located is None or (member.location is not None) == located


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/members/{member_id}",
    summary="Read a member",
    tag="members",
    authorize=guards.member_keeper,
    responses={200: MemberView},
)
async def get_member(call: Call) -> Reply:
    plp, member = call.scope
    await note(call, Action.MEMBER_VIEWED, plp=plp.id, member=member.id)
    return Reply(200, (await views(call, plp, [member]))[0])


@api.operation(
    "PATCH",
    "/v1/plps/{plp_id}/members/{member_id}",
    summary="Change a member",
    tag="members",
    body=MemberPatch,
    authorize=guards.member_keeper,
    responses={200: MemberView},
)
async def update_member(call: Call) -> Reply:
    plp, member = call.scope
    svc = services(call)
    settings = svc.runtime.settings
    try:
        updated = await membership.change(
            svc.store,
            member,
            call.body,
            region=settings.default_region,
            plp_id=plp.id,
            geocoder=settings.geocoder_url is not None,
            source=_consent_source(call),
        )
    except InvalidContact as exc:
        raise _invalid_phone(exc) from None
    except membership.UnknownSector as exc:
        error = {"field": "body.sector_id", "reason": str(exc)}
        raise Problem(422, "Invalid request", f"body.sector_id: {exc}", errors=[error]) from None
    await locating.request(svc.runtime, svc.store, [updated])
    await note(call, Action.MEMBER_CHANGED, detail=changed(call.body), plp=plp.id, member=member.id)
    return Reply(200, (await views(call, plp, [updated]))[0])


@api.operation(
    "DELETE",
    "/v1/plps/{plp_id}/members/{member_id}",
    summary="Remove a member from the PLP; their personal data is erased when they are in no PLP any more",
    tag="members",
    authorize=guards.member_keeper,
    responses={204: None},
)
async def delete_member(call: Call) -> Reply:
    plp, member = call.scope
    await services(call).store.remove_member(member, plp.id)
    await note(call, left(member, plp.id), plp=plp.id, member=member.id)
    return Reply(204)


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/members/{member_id}/export",
    summary="Everything stored about a member, as JSON (a coordinator's export: what concerns their PLPs)",
    tag="members",
    authorize=guards.member_keeper,
    responses={200: MemberExport},
)
async def export_member(call: Call) -> Reply:
    plp, member = call.scope
    svc = services(call)
    scope = None if call.who.role is Role.ADMIN else call.who.plp_ids
    data = await export.export_member(
        svc.store, member, retention_days=svc.runtime.settings.retention_days, plp_ids=scope
    )
    await note(call, Action.MEMBER_EXPORTED, member=member.id, plp=plp.id, detail="complete" if data.complete else "")
    return Reply(200, data, {"Cache-Control": "no-store"})


@dataclass(frozen=True)
class _Upload:
    """An import's body as received: read (and checked) by the handler, once the caller may import."""

    media_type: str
    charset: str | None
    data: bytes


async def _import_body(request: web.Request) -> _Upload:
    """The bytes of a JSON or sheet import; 415 for another media type, 413 past the body limit."""
    media_type = request.content_type.lower()
    if media_type != "application/json" and media_type not in sheets.SHEET_TYPES:
        raise Problem(
            415,
            "Unsupported media type",
            f"send JSON (application/json), CSV (text/csv) or an Excel workbook ({sheets.XLSX}), "
            f"not {request.content_type!r}",
        )
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SERVICES].runtime.settings.max_body_bytes
        raise Problem(
            413,
            "File too large",
            f"the file is larger than the {_size(limit)} the service takes at once: split the sheet, "
            "or remove what is not members' columns (pictures, other sheets)",
        ) from None
    return _Upload(media_type, request.charset, data)


def _size(count: int) -> str:
    return f"{count / 1_048_576:.1f} MiB" if count >= 1_048_576 else f"{count / 1024:.0f} KiB"


async def _import_rows(call: Call, plp: Plp, upload: _Upload) -> tuple[list[tuple[int, Any]], ImportSource | None]:
    """Rows of a JSON import (numbered from 0) or of a sheet (numbered as the sheet numbers them)."""
    settings = services(call).runtime.settings
    if upload.media_type == "application/json":
        return _json_rows(json_body(upload.data, upload.charset), settings.max_import_rows), None
    try:
        sheet = await asyncio.to_thread(  # parsing a large workbook must not hold up the event loop (urgent alerts)
            sheets.read_sheet,
            upload.data,
            charset=upload.charset,
            sheet=call.query.sheet,
            region=settings.default_region,
            zone=plp.timezone,
            max_rows=settings.max_import_rows,
        )
    except sheets.SheetError as exc:
        raise Problem(exc.status, exc.title, exc.detail, errors=exc.errors) from None
    return list(sheet.rows), ImportSource.model_validate(dataclasses.asdict(sheet.source))


def _json_rows(data: Any, limit: int) -> list[tuple[int, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("members"), list) or set(data) - {"members"}:
        raise Problem(
            422,
            "Invalid request",
            'expected {"members": [...]}',
            errors=[{"field": "body.members", "reason": "a list of rows is required"}],
        )
    if len(data["members"]) > limit:
        raise Problem(413, "Too many rows", f"{len(data['members'])} rows; import at most {limit} at once")
    return list(enumerate(data["members"]))


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/members/import",
    summary="Import many members; the report says which rows were imported and which were rejected, and why "
    "(dry_run=true: the same report, nothing written)",
    tag="members",
    body=ImportRequest,
    query=ImportQuery,
    body_reader=_import_body,
    authorize=guards.member_manager,
    extra_content=SHEET_CONTENT,
    responses={200: ImportReport},
)
async def import_members(call: Call) -> Reply:
    plp: Plp = call.scope
    svc = services(call)
    rows, source = await _import_rows(call, plp, call.body)
    dry_run = call.query.dry_run
    settings = svc.runtime.settings
    imported, rejected = await membership.import_rows(
        svc.store,
        plp,
        rows,
        region=settings.default_region,
        dry_run=dry_run,
        geocoder=settings.geocoder_url is not None,
    )
    if not dry_run:  # a dry run changes nothing and reads no one's data
        await locating.request(svc.runtime, svc.store, [m for _, m, existed in imported if not existed])
        detail = f"{len(imported)} imported, {len(rejected)} rejected"
        await note(call, Action.MEMBER_IMPORTED, detail=detail, plp=plp.id)
    return Reply(
        200,
        ImportReport(
            imported=[
                ImportedRow(row=row, member_id=None if dry_run and not existed else m.id, existing=existed)
                for row, m, existed in imported
            ],
            rejected=[RejectedRow(row=row, errors=errors) for row, errors in rejected],
            dry_run=dry_run,
            source=source,
        ),
    )
