"""Alerts as OASIS CAP 1.2 documents: each alert read as one, and an alert sent (or cancelled) from one a
police system posts.

The formats are ``dispatcher.exchange``'s; here the alert, its PLPs and its state are loaded, and a
posted document goes through the same checks, intake and Idempotency-Key as ``POST /v1/alerts`` (a
``Cancel``, as ``POST /v1/alerts/{id}/cancel``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime

from pydantic import ValidationError

from dispatcher import exchange
from dispatcher.access import policy
from dispatcher.api import guards
from dispatcher.api.alerts import IDEMPOTENCY_HEADER, Fields, cancel, send_alert
from dispatcher.api.problems import Problem, cap_problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import AlertView
from dispatcher.core.models import Actor, Alert, AlertIn, AlertStatus, Plp
from dispatcher.core.places import AreaIn, Sector

#: The document of a POST: what the OpenAPI document says of it.
CAP_CONTENT = {
    exchange.CAP_MEDIA_TYPE: {
        "schema": {
            "type": "string",
            "description": "An OASIS CAP 1.2 alert (also accepted as application/xml or text/xml): each target "
            f"PLP named by an area's geocode {exchange.GEOCODE_PLP}; part of them by {exchange.GEOCODE_SECTOR} or "
            f"{exchange.GEOCODE_STREET} geocodes or a circle; see docs/api.md, CAP 1.2",
        }
    }
}


def areas_of(alert: Alert, plps: list[Plp], actor: Actor, sectors: dict[str, list[Sector]]) -> list[exchange.CapArea]:
    """The alert's target as CAP areas, PLP by PLP in its order: a whole PLP as one area; for an area of sectors,
    one per sector named (its polygons, its ``PLP-sector`` geocode), a PLP none of whose sectors are named whole;
    for a circle or streets, each PLP's area with the circle, or with the streets. PLPs in the reader's part
    are named (name and commune, sectors by name); the others, and a PLP since removed, by id alone and without
    their sectors' shapes (as the alert's view shows them). A sector since removed is named by its id alone.
    ``sectors``: the target PLPs' sectors, by PLP id."""
    shown = {plp.id: f"{plp.name} ({plp.commune})" for plp in plps if policy.in_scope(actor, plp)}
    areas: list[exchange.CapArea] = []
    for plp_id in alert.plp_ids:
        areas += _plp_areas(alert.area, plp_id, shown.get(plp_id), sectors.get(plp_id, []))
    if alert.area is not None and alert.area.sectors is not None:
        known = {s.id for found in sectors.values() for s in found}
        areas += [
            exchange.CapArea(None, f"Sector {sid} (removed)", sector_id=sid)
            for sid in alert.area.sectors
            if sid not in known
        ]
    return areas


def _plp_areas(area: AreaIn | None, plp_id: str, name: str | None, sectors: list[Sector]) -> list[exchange.CapArea]:
    """One PLP's part of the alert's target as CAP areas (``name``: None outside the reader's part)."""
    described = name or f"PLP {plp_id}"
    if area is not None and area.circle is not None:
        circle = exchange.circle_text(area.circle)
        place = area.circle.address.one_line() if area.circle.address else circle.split()[0]
        description = f"{described}: {area.circle.radius_m:g} m around {place}"
        return [exchange.CapArea(plp_id, description, circles=(circle,))]
    if area is not None and area.streets is not None:
        return [exchange.CapArea(plp_id, f"{described}: {', '.join(area.streets)}", streets=tuple(area.streets))]
    by_id = {s.id: s for s in sectors}
    named = [by_id[sid] for sid in (area.sectors or []) if sid in by_id] if area is not None else []
    if not named:
        return [exchange.CapArea(plp_id, described)]
    return [
        exchange.CapArea(
            plp_id,
            f"{sector.name}, {name}" if name else f"Sector {sector.id}, {described}",
            polygons=exchange.polygons_of(sector.geometry) if name else (),
            sector_id=sector.id,
        )
        for sector in named
    ]


@api.operation(
    "GET",
    "/v1/alerts/{alert_id}/cap",
    summary="The alert as an OASIS CAP 1.2 document (application/cap+xml): an info per language, an area per PLP "
    "(per sector: its polygons; a circle; streets); "
    "a cancelled alert as its Cancel",
    tag="alerts",
    authorize=guards.alert_reader,
    responses={200: exchange.CAP_MEDIA_TYPE},
)
async def alert_cap(call: Call) -> Reply:
    alert, plps = call.scope
    store = services(call).store
    progress = await store.get_progress(alert.id)
    cancelled_at = None
    if progress.status is AlertStatus.CANCELLED:
        cancelled_at = progress.times.get(AlertStatus.CANCELLED.value) or datetime.now(UTC)
    about = None
    earlier_id = alert.about_alert_id or alert.follows  # police feedback, or a follow-up: an Update of that alert
    if earlier_id is not None and (earlier := await store.get_alert(earlier_id)) is not None:
        about = exchange.Earlier(earlier.id, earlier.created_at)
    zones = {plp.police_zone for plp in plps}
    to_sectors = alert.area is not None and alert.area.sectors is not None
    sectors = {plp.id: await store.get_sectors(plp.id) for plp in plps} if to_sectors else {}
    document = exchange.alert_document(
        alert,
        sender=exchange.sender_for(services(call).runtime.settings.public_base_url),
        areas=areas_of(alert, plps, call.who, sectors),
        police_zone=zones.pop() if len(zones) == 1 else None,
        cancelled_at=cancelled_at,
        about=about,
    )
    return Reply(200, document.decode(), media_type=exchange.CAP_MEDIA_TYPE)


@api.operation(
    "POST",
    "/v1/alerts/cap",
    summary="Send an alert from an OASIS CAP 1.2 document, as POST /v1/alerts does (Idempotency-Key header; "
    "without one, the document's sender and identifier): 202; or cancel the alert a Cancel refers to: 200",
    tag="alerts",
    authorize=guards.cap_sender,
    extra_content=CAP_CONTENT,
    responses={202: AlertView, 200: AlertView},
)
async def create_alert_from_cap(call: Call) -> Reply:
    posted: exchange.Posted = call.scope
    sender = exchange.sender_for(services(call).runtime.settings.public_base_url)
    try:
        if posted.cancels is not None:
            exchange.read_cancel(posted.root, sender=sender)
            return await cancel(call, await _alert(call, posted.cancels))
        cap = exchange.read_alert(posted.root, sender=sender, now=datetime.now(UTC))
    except exchange.CapRefused as exc:
        raise cap_problem(exc) from None
    body = _alert_in(cap)
    fields = Fields(
        plp=lambda i: cap.plps[i].location, about=cap.about_location, sector=lambda i: cap.sector_locations[i]
    )
    if IDEMPOTENCY_HEADER not in call.request.headers:
        reused = "this sender already sent another document with this identifier; give a new alert a new identifier"
        fields = dataclasses.replace(fields, key="/alert/identifier", reused=reused)
    return await send_alert(
        call,
        body,
        digest=hashlib.sha256(posted.data).hexdigest(),
        default_key="cap:" + hashlib.sha256(f"{cap.sender},{cap.identifier}".encode()).hexdigest()[:40],
        fields=fields,
        origin=f" from CAP {cap.identifier[:80]}",
    )


async def _alert(call: Call, alert_id: str) -> Alert:
    alert = await services(call).store.get_alert(alert_id)
    assert alert is not None, "the guard found it, and alerts are never removed"
    return alert


def _alert_in(cap: exchange.CapAlert) -> AlertIn:
    try:
        return AlertIn(
            urgency=cap.urgency,
            category=cap.category,
            plp_ids=[ref.plp_id for ref in cap.plps],
            texts=cap.texts,
            ttl_seconds=cap.ttl_seconds,
            about_alert_id=cap.about_alert_id,
            exercise=cap.exercise,
            area=cap.area,
        )
    except ValidationError as exc:  # read_alert checks what AlertIn does: this would be a gap between the two
        reasons = "; ".join(str(e["msg"]) for e in exc.errors())
        raise Problem(422, "Invalid CAP document", reasons, errors=[{"field": "/alert", "reason": reasons}]) from None
