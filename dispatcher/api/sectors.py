"""A PLP's sectors: create one, import a GeoJSON file of them, list, delete; and an alert's reach per sector."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from dispatcher.access import policy
from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.audit import note
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.core.models import Alert, Plp
from dispatcher.core.places import Sector, SectorIn
from dispatcher.core.validation import field_errors
from dispatcher.geo.areas import Sectors
from dispatcher.geo.shapes import ShapeError, read_shape
from dispatcher.pipeline import audience
from dispatcher.storage.store import new_id

#: The properties a GeoJSON feature's name is read from, in this order (QGIS and geojson.io write ``name``).
NAME_PROPERTIES = ("name", "nom", "naam", "Name", "NAME", "sector", "secteur", "sector_name")


class SectorView(Sector):
    """A sector of a PLP: its name, its shape and its streets (no member's data)."""


class SectorList(BaseModel):
    items: list[SectorView]


class SectorCollection(BaseModel):
    """A GeoJSON FeatureCollection: each feature a sector, its name in ``properties.name`` and its streets,
    if any, in ``properties.streets`` (a list)."""

    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]] = Field(min_length=1, max_length=200)


def _checked(data: SectorIn, where: str) -> dict[str, Any] | None:
    """The sector's geometry as stored (a geometry, never a Feature); a 422 naming the place that is wrong."""
    if data.geometry is None:
        return None
    try:
        return read_shape(data.geometry, f"{where}.geometry").geojson
    except ShapeError as exc:
        raise Problem(422, "Invalid sector", str(exc), errors=[{"field": exc.field, "reason": exc.reason}]) from None


async def _refuse_taken(call: Call, plp: Plp, names: list[tuple[str, str]]) -> None:
    """A 409 naming each new sector (``(where, name)``) whose name the PLP, or an earlier one of them, has already
    (names compared without case)."""
    taken = {s.name.casefold() for s in await services(call).store.get_sectors(plp.id)}
    errors, seen = [], dict[str, str]()
    for where, name in names:
        if name.casefold() in taken:
            errors.append({"field": where, "reason": f"PLP {plp.id} has a sector named {name!r} already"})
        elif name.casefold() in seen:
            errors.append({"field": where, "reason": f"the same name as {seen[name.casefold()]}"})
        seen.setdefault(name.casefold(), where)
    if errors:
        raise Problem(409, "Conflict", "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors)


def _sector(plp: Plp, data: SectorIn, geometry: dict[str, Any] | None) -> Sector:
    return Sector(
        id=new_id(),
        plp_id=plp.id,
        name=data.name,
        geometry=geometry,
        streets=data.streets,
        created_at=datetime.now(UTC),
    )


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/sectors",
    summary="Add a sector to a PLP: a GeoJSON polygon or multipolygon, and/or a list of streets",
    tag="sectors",
    body=SectorIn,
    authorize=guards.charter_editor,
    responses={201: SectorView},
)
async def create_sector(call: Call) -> Reply:
    plp: Plp = call.scope
    body: SectorIn = call.body
    geometry = _checked(body, "body")
    await _refuse_taken(call, plp, [("body.name", body.name)])
    sector = _sector(plp, body, geometry)
    await services(call).store.save_sector(sector)
    await note(call, Action.SECTOR_CHANGED, detail=f"added {sector.id}", plp=plp.id)
    return Reply(201, SectorView.model_validate(sector.model_dump()), {"Location": f"/v1/plps/{plp.id}/sectors"})


def _feature(feature: dict[str, Any], where: str) -> SectorIn:
    properties = feature.get("properties") or {}
    if feature.get("type") != "Feature" or not isinstance(properties, dict):
        raise Problem(
            422,
            "Invalid sector",
            f"{where}: not a GeoJSON Feature",
            errors=[{"field": where, "reason": "not a Feature"}],
        )
    name = next((properties[k] for k in NAME_PROPERTIES if isinstance(properties.get(k), str)), None)
    if name is None:
        reason = "a sector needs a name: properties.name"
        raise Problem(
            422,
            "Invalid sector",
            f"{where}: {reason}",
            errors=[{"field": f"{where}.properties.name", "reason": reason}],
        )
    try:
        return SectorIn.model_validate(
            {"name": name, "geometry": feature.get("geometry"), "streets": properties.get("streets") or []}
        )
    except ValidationError as exc:
        errors = field_errors(exc, where)
        raise Problem(
            422, "Invalid sector", "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors
        ) from None


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/sectors/import",
    summary="Import sectors from a GeoJSON FeatureCollection (all of them, or none when one is wrong)",
    tag="sectors",
    body=SectorCollection,
    authorize=guards.charter_editor,
    responses={201: SectorList},
)
async def import_sectors(call: Call) -> Reply:
    plp: Plp = call.scope
    body: SectorCollection = call.body
    read = [(f"body.features[{i}]", _feature(f, f"body.features[{i}]")) for i, f in enumerate(body.features)]
    geometries = [_checked(data, where) for where, data in read]
    await _refuse_taken(call, plp, [(f"{where}.properties.name", data.name) for where, data in read])
    sectors = [_sector(plp, data, geometry) for (_, data), geometry in zip(read, geometries, strict=True)]
    for sector in sectors:
        await services(call).store.save_sector(sector)
    await note(call, Action.SECTOR_CHANGED, detail=f"imported {len(sectors)}", plp=plp.id)
    return Reply(201, SectorList(items=[SectorView.model_validate(s.model_dump()) for s in sectors]))


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/sectors",
    summary="List a PLP's sectors, by name (their outlines: no member's data)",
    tag="sectors",
    authorize=guards.plp_reader,
    responses={200: SectorList},
)
async def list_sectors(call: Call) -> Reply:
    plp: Plp = call.scope
    sectors = await services(call).store.get_sectors(plp.id)
    return Reply(200, SectorList(items=[SectorView.model_validate(s.model_dump()) for s in sectors]))


@api.operation(
    "DELETE",
    "/v1/plps/{plp_id}/sectors/{sector_id}",
    summary="Delete a sector (members set in it by hand follow their place again)",
    tag="sectors",
    authorize=guards.charter_editor,
    responses={204: None},
)
async def delete_sector(call: Call) -> Reply:
    plp: Plp = call.scope
    sector_id = call.path("sector_id")
    if not await services(call).store.delete_sector(plp.id, sector_id):
        raise Problem(404, "Not found", f"no sector {sector_id!r} in PLP {plp.id}")
    await note(call, Action.SECTOR_CHANGED, detail=f"deleted {sector_id}", plp=plp.id)
    return Reply(204)


class SectorReach(BaseModel):
    """How far an alert reached one sector: counts, never who nor where."""

    plp_id: str
    sector_id: str
    name: str
    geometry: dict[str, Any] | None
    members: int = Field(description="Members of the sector the alert was planned for")
    reached: int = Field(description="Of them, with a delivery sent or delivered")
    acknowledged: int
    answers: dict[str, int] = Field(
        default_factory=dict,
        description="Per answer option of the alert, the members of the sector whose answer (their latest) it is",
    )


class AlertSectors(BaseModel):
    """An alert's reach per sector of its PLPs (those of the caller's part that have sectors)."""

    items: list[SectorReach]
    elsewhere: int = Field(description="Members planned in no sector (no known place, or outside every sector)")


def _tally(alert: Alert, members: set[str], answered: dict[str, str]) -> dict[str, int]:
    """Per answer option of the alert, in its order, how many of ``members`` gave it last (counts, never who)."""
    chosen = [answered[m] for m in members if m in answered]
    return {a.id: chosen.count(a.id) for a in alert.answers}


@api.operation(
    "GET",
    "/v1/alerts/{alert_id}/sectors",
    summary="An alert's reach, acknowledgements and answers per sector of its PLPs, with the sectors' shapes "
    "(counts only)",
    tag="alerts",
    authorize=guards.alert_reader,
    responses={200: AlertSectors},
)
async def alert_sectors(call: Call) -> Reply:
    alert: Alert
    alert, plps = call.scope
    store, items, elsewhere = services(call).store, [], 0
    answered = {m: a for m, (a, _) in (await store.answers(alert.id)).items()}
    for plp in (p for p in plps if policy.in_scope(call.who, p)):
        sectors = Sectors.of(plp.id, await store.get_sectors(plp.id))
        found = await audience.audience(store, alert.id, [plp.id])
        members = [m for m in await store.get_members(sorted(found.planned)) if m is not None]
        placed = dict(zip((m.id for m in members), sectors.sectors_of(members), strict=True))
        elsewhere += sum(1 for sector in placed.values() if sector is None)
        for sector in sectors.sectors:
            inside = {m for m, s in placed.items() if s == sector.id}
            items.append(
                SectorReach(
                    plp_id=plp.id,
                    sector_id=sector.id,
                    name=sector.name,
                    geometry=sector.geometry,
                    members=len(inside),
                    reached=len(inside & found.reached),
                    acknowledged=len(inside & found.acknowledged),
                    answers=_tally(alert, inside, answered),
                )
            )
    return Reply(200, AlertSectors(items=items, elsewhere=elsewhere), {"Cache-Control": "no-store"})
