"""PLPs and their charters."""

from __future__ import annotations

from datetime import UTC, datetime

from channels import unsendable
from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.audit import note
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import PlpList, PlpListQuery, PlpView
from dispatcher.core.models import Charter, Plp, PlpIn, Role
from dispatcher.operations.production import charter_faults
from dispatcher.storage.store import new_id


def refuse_unsendable(call: Call, charter: Charter, *, where: str) -> None:
    """A 422 naming each place of ``charter`` (at ``where`` in the body) that names a channel nothing can send here.

    Only in production: in development the outbox stands in for every channel.
    """
    faults = charter_faults(charter, unsendable(services(call).runtime.settings))
    if faults:
        errors = [{"field": f"{where}.{fault.field}", "reason": fault.reason} for fault in faults]
        detail = "the charter names a channel this service cannot send: " + "; ".join(
            f"{e['field']}: {e['reason']}" for e in errors
        )
        raise Problem(422, "Invalid request", detail, errors=errors)


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
    refuse_unsendable(call, body.charter, where="body.charter")
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
    refuse_unsendable(call, call.body, where="body")
    updated = await services(call).store.set_charter(plp, call.body)
    await note(call, Action.CHARTER_CHANGED, plp=plp.id)
    return Reply(200, PlpView.model_validate(updated.model_dump()))
