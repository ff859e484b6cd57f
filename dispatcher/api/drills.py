"""Recurring drills of a PLP: schedule one, list them, delete one (the clock sends each occurrence, see
``dispatcher.pipeline.drills``)."""

from __future__ import annotations

from datetime import UTC, datetime

from dispatcher.access import policy
from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.audit import note
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.core.drills import DrillList, DrillSchedule, DrillScheduleIn
from dispatcher.core.models import Plp
from dispatcher.pipeline import drills
from dispatcher.storage.store import new_id

#: At most this many schedules per PLP: a drill a week on each lane is already more than any charter asks.
MAX_PER_PLP = 10


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/drills",
    summary="Schedule a recurring drill for the PLP (an exercise, e.g. monthly on the first Monday at 18:00, "
    "the PLP's local time); coordinators' drills are non-urgent",
    tag="drills",
    body=DrillScheduleIn,
    authorize=guards.drill_scheduler,
    responses={201: DrillSchedule},
)
async def schedule_drill(call: Call) -> Reply:
    plp: Plp = call.scope
    body: DrillScheduleIn = call.body
    policy.can_send(call.who, body.urgency, [plp])
    store = services(call).store
    if len(await drills.of_plp(store, plp.id)) >= MAX_PER_PLP:
        raise Problem(409, "Conflict", f"PLP {plp.id} has {MAX_PER_PLP} drill schedules already: delete one first")
    now = datetime.now(UTC)
    schedule = DrillSchedule(
        **body.model_dump(),
        id=new_id(),
        plp_id=plp.id,
        author_id=call.who.id,
        author_role=call.who.role,
        created_at=now,
        next_at=body.rule.next_after(now, plp.timezone),
    )
    await drills.save(store, schedule)
    await note(call, Action.DRILL_SCHEDULED, detail=f"{schedule.id} {body.urgency.value}", plp=plp.id)
    return Reply(201, schedule, {"Location": f"/v1/plps/{plp.id}/drills"})


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/drills",
    summary="The PLP's recurring drills, next first",
    tag="drills",
    authorize=guards.plp_reader,
    responses={200: DrillList},
)
async def list_drills(call: Call) -> Reply:
    plp: Plp = call.scope
    return Reply(200, DrillList(items=await drills.of_plp(services(call).store, plp.id)))


@api.operation(
    "DELETE",
    "/v1/plps/{plp_id}/drills/{drill_id}",
    summary="Delete a recurring drill: none of its occurrences goes any more",
    tag="drills",
    authorize=guards.drill_scheduler,
    responses={204: None},
)
async def delete_drill(call: Call) -> Reply:
    plp: Plp = call.scope
    drill_id = call.path("drill_id")
    if not await drills.delete(services(call).store, plp.id, drill_id):
        raise Problem(404, "Not found", f"no drill {drill_id!r} in PLP {plp.id}")
    await note(call, Action.DRILL_DELETED, detail=drill_id, plp=plp.id)
    return Reply(204)
