"""PLPs and their charters, and what a proposed charter would change for the next alert."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from channels import unsendable
from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.audit import note
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import PlpList, PlpListQuery, PlpView
from dispatcher.core.models import (
    Alert,
    Category,
    ChannelName,
    Charter,
    DeliveryMode,
    MessageClass,
    Plp,
    PlpIn,
    QuietHours,
    RelayMode,
    Role,
    Urgency,
)
from dispatcher.operations.production import charter_faults
from dispatcher.pipeline.estimate import estimate
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


#: The sample message a charter preview prices, in each member's language: one SMS segment, a short call.
PREVIEW_TEXT = "Cambriolage signalé rue de la Station il y a dix minutes. Fermez portes et fenêtres."


class ClassOutcome(BaseModel):
    """What one message class of a charter does to the PLP's next alert of that class, as the members are now."""

    channels: list[ChannelName]
    mode: DeliveryMode
    ttl_seconds: int
    quiet_hours: QuietHours | None
    members_reached: int
    by_channel: dict[ChannelName, int] = Field(description="Deliveries planned per channel")
    members_unreachable: int = Field(description="Members none of the class's channels can reach")
    estimated_cost: Decimal = Field(description="Of the sample message (one SMS segment), in currency")


class ClassChange(BaseModel):
    """One message class: the charter in force, the proposed one, and the names of the settings that change."""

    message_class: MessageClass
    before: ClassOutcome
    after: ClassOutcome
    changed: list[str] = Field(description="The class's settings that differ (channels, mode, ttl_seconds, ...)")


class CharterPreview(BaseModel):
    """What a proposed charter changes for the PLP's next alert of each class; nothing is saved."""

    plp_id: str
    currency: str
    classes: list[ClassChange]
    relay: dict[str, RelayMode] = Field(description='"before" and "after": how non-urgent police messages go out')


def _sample(plp: Plp, message_class: MessageClass) -> Alert:
    return Alert(
        id="preview",
        author_id="preview",
        author_role=Role.POLICE,
        urgency=Urgency.URGENT if message_class is MessageClass.URGENT else Urgency.NON_URGENT,
        category=Category.BURGLARY if message_class is MessageClass.URGENT else Category.PREVENTION_ADVICE,
        plp_ids=[plp.id],
        texts={plp.default_language: PREVIEW_TEXT},
        ttl_seconds=plp.charter.plan_of(message_class).ttl_seconds,
        created_at=datetime.now(UTC),
        about_alert_id="preview" if message_class is MessageClass.POLICE_FEEDBACK else None,
    )


async def _outcome(call: Call, plp: Plp, message_class: MessageClass) -> ClassOutcome:
    plan = plp.charter.plan_of(message_class)
    found = await estimate(services(call).store, _sample(plp, message_class), [plp])
    return ClassOutcome(
        channels=plan.channels,
        mode=plan.mode,
        ttl_seconds=plan.ttl_seconds,
        quiet_hours=plan.quiet_hours,
        members_reached=found.members,
        by_channel=found.by_channel,
        members_unreachable=found.unreachable,
        estimated_cost=found.cost(services(call).runtime.settings),
    )


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/charter/preview",
    summary="What a proposed charter changes for the next alert of each class (nothing is saved)",
    tag="plps",
    body=Charter,
    authorize=guards.charter_editor,
    responses={200: CharterPreview},
)
async def preview_charter(call: Call) -> Reply:
    plp: Plp = call.scope
    proposed: Charter = call.body
    refuse_unsendable(call, proposed, where="body")
    after = plp.model_copy(update={"charter": proposed})
    classes = []
    for message_class in MessageClass:
        old, new = plp.charter.plan_of(message_class), proposed.plan_of(message_class)
        changed = [name for name in type(old).model_fields if getattr(old, name) != getattr(new, name)]
        classes.append(
            ClassChange(
                message_class=message_class,
                before=await _outcome(call, plp, message_class),
                after=await _outcome(call, after, message_class),
                changed=changed,
            )
        )
    relay = {"before": plp.charter.relay, "after": proposed.relay}
    return Reply(
        200,
        CharterPreview(plp_id=plp.id, currency=services(call).runtime.settings.currency, classes=classes, relay=relay),
    )
