"""PLPs and their charters."""

from __future__ import annotations

from datetime import UTC, datetime

from dispatcher.api import guards
from dispatcher.api.audit import note
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import PlpList, PlpListQuery, PlpView
from dispatcher.audit import Action
from dispatcher.models import Charter, Plp, PlpIn, Role
from dispatcher.store import new_id


@api.operation(
    "POST",
    "/v1/plps",
    summary="Create a PLP (admin)",
    tag="plps",
    body=PlpIn,
    authorize=guards.admin("create a PLP"),
    responses={201: PlpView},
)
async def create_plp(call: Call) -> Reply:
    body: PlpIn = call.body
    plp = Plp(**body.model_dump(), id=new_id(), created_at=datetime.now(UTC))
    await services(call).store.save_plp(plp)
    await note(call, Action.PLP_CREATED, plp=plp.id)
    return Reply(201, PlpView.model_validate(plp.model_dump()), {"Location": f"/v1/plps/{plp.id}"})


@api.operation(
    "GET",
    "/v1/plps",
    summary="List the PLPs of your part",
    tag="plps",
    query=PlpListQuery,
    authorize=guards.anyone,
    responses={200: PlpList},
)
async def list_plps(call: Call) -> Reply:
    store, actor = services(call).store, call.who
    if actor.role is Role.POLICE:
        ids = await store.zone_plp_ids(actor.police_zone or "")
    elif actor.role is Role.COORDINATOR:
        ids = list(actor.plp_ids)
    else:
        ids = await store.all_plp_ids()
    plps = [p for p in (await store.get_plps(ids)).values() if p is not None]
    needle = (call.query.q or "").casefold()
    found = [p for p in plps if needle in p.name.casefold() or needle in p.commune.casefold()]
    return Reply(
        200, PlpList(items=[PlpView.model_validate(p.model_dump()) for p in sorted(found, key=lambda p: p.name)])
    )


@api.operation(
    "GET",
    "/v1/plps/{plp_id}",
    summary="Read a PLP and its charter",
    tag="plps",
    authorize=guards.plp_reader,
    responses={200: PlpView},
)
async def get_plp(call: Call) -> Reply:
    plp: Plp = call.scope
    return Reply(200, PlpView.model_validate(plp.model_dump()))


@api.operation(
    "PUT",
    "/v1/plps/{plp_id}/charter",
    summary="Replace a PLP's charter",
    tag="plps",
    body=Charter,
    authorize=guards.charter_editor,
    responses={200: PlpView},
)
async def put_charter(call: Call) -> Reply:
    plp: Plp = call.scope
    updated = await services(call).store.set_charter(plp, call.body)
    await note(call, Action.CHARTER_CHANGED, plp=plp.id)
    return Reply(200, PlpView.model_validate(updated.model_dump()))
