"""Alerts: send, follow, list deliveries, cancel; and the coordinator's relay of police messages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from dispatcher.access import policy
from dispatcher.access.audit import Action, entry_fields
from dispatcher.api import guards
from dispatcher.api.audit import note
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import (
    AlertCost,
    AlertList,
    AlertListQuery,
    AlertPreview,
    AlertView,
    ConsentingMember,
    DeliveryPage,
    DeliveryQuery,
    DeliveryView,
    SectorCount,
    SmsTextView,
)
from dispatcher.core.models import (
    Actor,
    Alert,
    AlertIn,
    Plp,
    Relay,
    RelayDecision,
    RelayDecline,
    RelayMode,
    RelayState,
    Role,
    Urgency,
)
from dispatcher.core.places import AreaIn, Coordinates, LocatingState
from dispatcher.core.wording import default_answers
from dispatcher.geo.areas import unknown_sectors
from dispatcher.people import locating
from dispatcher.pipeline import audience, intake
from dispatcher.pipeline.estimate import estimate, sms_texts
from dispatcher.reports.reach import ReachReport, reach_report
from dispatcher.storage.replication import confirm_replicas
from dispatcher.storage.store import Store, new_id

log = structlog.get_logger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"


async def view(call: Call, alert: Alert) -> AlertView:
    svc = services(call)
    built = AlertView.build(alert, await svc.store.get_progress(alert.id), svc.runtime.settings)
    if not any(a.consent for a in alert.answers):
        return built
    return built.model_copy(update={"consenting": await _consenting(svc.store, alert, call.who)})


async def _consenting(store: Store, alert: Alert, actor: Actor) -> list[ConsentingMember]:
    """The members whose answer that counts consents to be contacted about the alert, first answered first: all of
    them for the police and admins; for a coordinator, the members of their own PLPs only (an alert to two PLPs
    never shows one PLP's members to the other's coordinator)."""
    consent = {a.id for a in alert.answers if a.consent}
    chosen = sorted((at, m, a) for m, (a, at) in (await store.answers(alert.id)).items() if a in consent)
    members = [await store.get_member(m) for _, m, _ in chosen]
    return [
        ConsentingMember(
            member_id=member.id,
            name=member.name,
            phone=member.phone,
            answer=answer,
            answered_at=datetime.fromtimestamp(at, UTC),
        )
        for (at, _, answer), member in zip(chosen, members, strict=True)
        if member is not None and (actor.role is not Role.COORDINATOR or set(member.plp_ids) & set(actor.plp_ids))
    ]


@dataclass(frozen=True)
class Fields:
    """How the problems of a request to send name its fields: the target PLPs (by index) and the earlier
    alert of police feedback, the sectors of its area (by index). A JSON body's by default; a CAP document's by
    their place in it."""

    plp: Callable[[int], str] = lambda i: f"body.plp_ids[{i}]"
    about: str = "body.about_alert_id"
    sector: Callable[[int], str] = lambda i: f"body.area.sectors[{i}]"
    #: what stands for the Idempotency-Key, and what is said when it is reused with another request
    key: str = f"header.{IDEMPOTENCY_HEADER}"
    reused: str = "this Idempotency-Key was already used with a different request body; use a new key for a new alert"


JSON_FIELDS = Fields()


async def _target_plps(call: Call, body: AlertIn, fields: Fields) -> list[Plp]:
    found = await services(call).store.get_plps(body.plp_ids)
    errors = [
        {"field": fields.plp(i), "reason": f"unknown PLP {plp_id!r}"}
        for i, plp_id in enumerate(body.plp_ids)
        if found[plp_id] is None
    ]
    if errors:
        raise Problem(422, "Invalid request", "some target PLPs do not exist", errors=errors)
    return [p for p in found.values() if p is not None]


def _relays(actor: Actor, body: AlertIn, plps: list[Plp]) -> list[Relay]:
    """Urgent alerts, police feedback and coordinators' messages go at once; police advice waits if the charter says."""

    def waits(plp: Plp) -> bool:
        advice = body.urgency is Urgency.NON_URGENT and body.about_alert_id is None
        return advice and actor.role is Role.POLICE and plp.charter.relay is RelayMode.COORDINATOR

    return [Relay(plp_id=p.id, state=RelayState.AWAITING if waits(p) else RelayState.AUTO) for p in plps]


def once_for(call: Call, digest: str, default_key: str | None) -> intake.Once | None:
    """The request's Idempotency-Key (or ``default_key`` without one), kept per actor with the digest of
    the request, if it has one."""
    key = _idempotency_key(call) or default_key
    if key is None:
        return None
    svc = services(call)
    return intake.Once(
        key=svc.runtime.keys.idempotency(call.who.id, key), digest=digest, ttl=svc.runtime.settings.idempotency_ttl
    )


async def replay(call: Call, alert_id: str) -> Reply:
    """The answer to a request whose Idempotency-Key an earlier request stored: the same alert, as it is now."""
    alert = await services(call).store.get_alert(alert_id)
    if alert is None:  # removed since (retention): the key stands for nothing that can be shown
        raise Problem(409, "Conflict", "this Idempotency-Key was used for an alert that is no longer kept")
    return Reply(202, await view(call, alert), {"Location": f"/v1/alerts/{alert.id}", "Idempotent-Replayed": "true"})


def _idempotency_key(call: Call) -> str | None:
    key = call.request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not (1 <= len(key) <= 200 and key.isprintable()):
        raise Problem(
            422,
            "Invalid request",
            "Idempotency-Key must be 1 to 200 printable characters",
            errors=[{"field": "header.Idempotency-Key", "reason": "1 to 200 printable characters"}],
        )
    return key


@api.operation(
    "POST",
    "/v1/alerts",
    summary="Send an alert (Idempotency-Key header: the same key and body never send twice)",
    tag="alerts",
    body=AlertIn,
    authorize=guards.alert_sender,
    responses={202: AlertView},
)
async def create_alert(call: Call) -> Reply:
    body: AlertIn = call.body
    return await send_alert(call, body, digest=hashlib.sha256(body.model_dump_json().encode()).hexdigest())


async def send_alert(
    call: Call,
    body: AlertIn,
    *,
    digest: str,
    default_key: str | None = None,
    fields: Fields = JSON_FIELDS,
    origin: str = "",
) -> Reply:
    """Send what ``body`` asks, as ``POST /v1/alerts`` does, whatever the request's format: its PLPs and the
    actor's right checked (problems naming ``fields``), then stored and enqueued once per Idempotency-Key
    (``default_key`` when the request has none), with ``digest`` standing for the request. ``origin``
    completes the audit entry's detail (where the alert came from)."""
    actor, svc = call.who, services(call)
    plps = await _checked_targets(call, body, fields)
    once = once_for(call, digest, default_key)
    alert = _alert(new_id(), actor, body, plps, await _located_area(call, body))
    created = entry_fields(
        actor=actor,
        action=Action.ALERT_CREATED,
        target={"alert": alert.id},
        detail=f"{alert.urgency.value} {alert.category.value}{origin}",
    )
    try:
        accepted = await svc.blocking(
            intake.accept_alert, svc.runtime, alert, _relays(actor, body, plps), once=once, audit=created
        )
        # held by PLP_REDIS_WAIT_REPLICAS replicas before the 202 (a replay too: its first answer may have been lost)
        await confirm_replicas(svc.store.redis, svc.runtime.keys, svc.runtime.settings)
    except intake.KeyReused:
        raise Problem(
            422,
            "Idempotency-Key reused",
            fields.reused,
            errors=[{"field": fields.key, "reason": "already used with another body"}],
        ) from None
    if accepted.replayed:
        return await replay(call, accepted.alert_id)
    return Reply(202, await view(call, alert), {"Location": f"/v1/alerts/{alert.id}"})


def _alert(alert_id: str, actor: Actor, body: AlertIn, plps: list[Plp], area: AreaIn | None) -> Alert:
    alert = Alert(
        id=alert_id,
        author_id=actor.id,
        author_role=actor.role,
        urgency=body.urgency,
        category=body.category,
        plp_ids=body.plp_ids,
        texts=body.texts,
        ttl_seconds=60,
        created_at=datetime.now(UTC),
        about_alert_id=body.about_alert_id,
        area=area,
        exercise=body.exercise,
        answers=default_answers(body.category) if body.answers is None else body.answers,
    )
    ttl = body.ttl_seconds or min(p.charter.plan_of(alert.message_class).ttl_seconds for p in plps)
    return alert.model_copy(update={"ttl_seconds": ttl})


async def _checked_targets(call: Call, body: AlertIn, fields: Fields = JSON_FIELDS) -> list[Plp]:
    """The target PLPs, once the actor may send there (and, for police feedback, the earlier alert fits)."""
    plps = await _target_plps(call, body, fields)
    policy.can_send(call.who, body.urgency, plps)
    await _check_area(call, body, plps, fields)
    if body.about_alert_id is not None:
        policy.can_send_police_feedback(call.who)
        earlier = await services(call).store.get_alert(body.about_alert_id)
        if earlier is None:
            error = {"field": fields.about, "reason": "unknown alert"}
            raise Problem(422, "Invalid request", "unknown earlier alert", errors=[error])
        errors = [
            {"field": fields.plp(i), "reason": "the earlier alert did not target this PLP"}
            for i, plp_id in enumerate(body.plp_ids)
            if plp_id not in earlier.plp_ids
        ]
        if errors:
            raise Problem(
                422, "Invalid request", "police feedback goes to the PLPs of the earlier alert", errors=errors
            )
    return plps


async def _located_area(call: Call, body: AlertIn) -> AreaIn | None:
    """The alert's area, with its circle's center found from its address by the background geocoder; a 422 naming
    the address while the geocoder has not found it (it is asked now, in the background) or could not."""
    area = body.area
    if area is None or area.circle is None or area.circle.center is not None or area.circle.address is None:
        return area
    svc = services(call)
    place = await locating.find_place(svc.runtime, svc.store, area.circle.address)
    if place.state is LocatingState.LOCATED and place.lat is not None and place.lon is not None:
        center = Coordinates(lat=place.lat, lon=place.lon)
        return area.model_copy(update={"circle": area.circle.model_copy(update={"center": center})})
    reason, title, headers = place.reason or place.state.value, "Address not located", {}
    if place.state is LocatingState.PENDING:
        reason = f"{reason}: preview again in a few seconds, or give the center's coordinates"
        title, headers = "Address being located", {"Retry-After": "2"}
    error = {"field": "body.area.circle.address", "reason": reason}
    raise Problem(422, title, f"body.area.circle.address: {reason}", errors=[error], headers=headers)


async def _check_area(call: Call, body: AlertIn, plps: list[Plp], fields: Fields) -> None:
    """A 422 for each sector of the area that is no sector of the target PLPs."""
    if body.area is None or body.area.sectors is None:
        return
    store = services(call).store
    sectors = {plp.id: await store.get_sectors(plp.id) for plp in plps}
    errors = [
        {"field": fields.sector(i), "reason": f"no sector {body.area.sectors[i]!r} in the target PLPs"}
        for i in unknown_sectors(body.area, sectors)
    ]
    if errors:
        raise Problem(422, "Invalid request", "the area names sectors the target PLPs do not have", errors=errors)


@api.operation(
    "POST",
    "/v1/alerts/preview",
    summary="What an alert would do before it is sent: SMS per language, members reached, cost",
    tag="alerts",
    body=AlertIn,
    authorize=guards.alert_sender,
    responses={200: AlertPreview},
)
async def preview_alert(call: Call) -> Reply:
    body: AlertIn = call.body
    plps = await _checked_targets(call, body)
    svc, settings = services(call), services(call).runtime.settings
    alert = _alert("preview", call.who, body, plps, await _located_area(call, body))
    found = await estimate(svc.store, alert, plps)
    cost = AlertCost(
        sms_segments=found.sms_segments,
        voice_minutes=found.voice_minutes,
        estimated=found.cost(settings),
        currency=settings.currency,
    )
    return Reply(
        200,
        AlertPreview(
            sms=[SmsTextView(**t.__dict__) for t in sms_texts(alert, plps)],
            members_reached=found.members,
            by_channel=found.by_channel,
            members_unreachable=found.unreachable,
            members_opted_out=found.opted_out,
            members_declined_non_urgent=found.declined_non_urgent,
            cost=cost,
            by_plp=found.by_plp,
            by_sector=[
                SectorCount(plp_id=plp_id, sector_id=sector_id, members=n)
                for (plp_id, sector_id), n in sorted(found.by_sector.items())
            ],
            members_unlocated=found.unlocated,
            members_unlocated_left_out=found.unlocated_left_out,
        ),
    )


@api.operation(
    "GET",
    "/v1/alerts",
    summary="List the alerts of your part, newest first",
    tag="alerts",
    query=AlertListQuery,
    authorize=guards.anyone,
    responses={200: AlertList},
)
async def list_alerts(call: Call) -> Reply:
    store, actor = services(call).store, call.who
    if actor.role is Role.ADMIN:
        scope = None
    elif actor.role is Role.POLICE:
        scope = await store.zone_plp_ids(actor.police_zone or "")
    else:
        scope = list(actor.plp_ids)
    ids = await store.list_alert_ids(plp_ids=scope, limit=call.query.limit, before=call.query.before)
    alerts = [a for a in [await store.get_alert(i) for i in ids] if a is not None]
    return Reply(200, AlertList(items=[await view(call, a) for a in alerts]))


@api.operation(
    "GET",
    "/v1/alerts/{alert_id}",
    summary="Read an alert and its delivery counts",
    tag="alerts",
    authorize=guards.alert_reader,
    responses={200: AlertView},
)
async def get_alert(call: Call) -> Reply:
    alert, _ = call.scope
    return Reply(200, await view(call, alert))


@api.operation(
    "GET",
    "/v1/alerts/{alert_id}/deliveries",
    summary="List an alert's deliveries, by status and channel",
    tag="alerts",
    query=DeliveryQuery,
    authorize=guards.alert_reader,
    responses={200: DeliveryPage},
)
async def list_deliveries(call: Call) -> Reply:
    alert, _ = call.scope
    q: DeliveryQuery = call.query
    store = services(call).store
    page = await store.list_deliveries(alert.id, status=q.status, channel=q.channel, cursor=q.cursor, limit=q.limit)
    views = [DeliveryView.build(d) for d in page.items]
    if call.who.role is Role.COORDINATOR:  # the personal data of their own PLPs' members only
        own = await audience.members_of(store, {v.member_id for v in views}, set(call.who.plp_ids))
        views = [v if v.member_id in own else policy.without_personal_data(v) for v in views]
    return Reply(200, DeliveryPage(items=views, next_cursor=page.next_cursor))  # the police: see routing


@api.operation(
    "GET",
    "/v1/alerts/{alert_id}/reach",
    summary="An alert's reach report (for drills): times to hand-off and delivery per channel, acknowledgements "
    "over time, members not reached and why",
    tag="alerts",
    authorize=guards.alert_reader,
    responses={200: ReachReport},
)
async def get_reach(call: Call) -> Reply:
    alert, _ = call.scope
    plp_ids = alert.plp_ids
    if call.who.role is Role.COORDINATOR:  # their own PLPs' members, counts and list alike
        plp_ids = [p for p in alert.plp_ids if p in set(call.who.plp_ids)]
    return Reply(200, await reach_report(services(call).store, alert, plp_ids))  # the police: counts, see routing


@api.operation(
    "POST",
    "/v1/alerts/{alert_id}/cancel",
    summary="Cancel an alert: no send that has not started will start; answered once those started have landed",
    tag="alerts",
    authorize=guards.alert_canceller,
    responses={200: AlertView},
)
async def cancel_alert(call: Call) -> Reply:
    alert, _ = call.scope
    return await cancel(call, alert)


async def cancel(call: Call, alert: Alert) -> Reply:
    """Cancel the alert (the actor was found to be allowed to), as ``POST /v1/alerts/{id}/cancel`` does,
    whatever the request's format: 409 if it is already over; answered once the sends in flight landed."""
    store = services(call).store
    if not await store.cancel_alert(alert.id):
        progress = await store.get_progress(alert.id)
        raise Problem(409, "Conflict", f"the alert is already {progress.status.value}")
    # Answered once the sends already with a provider have their answer: after it, nothing of the alert goes out.
    if unanswered := await store.sends_landed(alert_id=alert.id):
        log.warning("alert.cancelled_with_sends_unanswered", alert_id=alert.id, sends=unanswered)
    await note(call, Action.ALERT_CANCELLED, alert=alert.id)
    return Reply(200, await view(call, alert))


async def _decide(call: Call, relay: Relay) -> Reply:
    alert, plp = call.scope
    svc = services(call)
    await svc.blocking(intake.decide_relay, svc.runtime, alert, relay)
    await note(call, Action(f"relay.{relay.state.value}"), alert=alert.id, plp=plp.id)  # approved or declined
    return Reply(200, await view(call, alert))


@api.operation(
    "POST",
    "/v1/alerts/{alert_id}/relays/{plp_id}/approve",
    summary="Relay a police message to the PLP's members, possibly with edited or added texts",
    tag="relay",
    body=RelayDecision,
    authorize=guards.relay_decider,
    responses={200: AlertView},
)
async def approve_relay(call: Call) -> Reply:
    body: RelayDecision = call.body
    relay = Relay(
        plp_id=call.path("plp_id"),
        state=RelayState.APPROVED,
        decided_by=call.who.id,
        decided_at=datetime.now(UTC),
        texts=dict(body.texts) if body.texts else None,
    )
    return await _decide(call, relay)


@api.operation(
    "POST",
    "/v1/alerts/{alert_id}/relays/{plp_id}/decline",
    summary="Decline to relay a police message to the PLP, with a reason the police will see",
    tag="relay",
    body=RelayDecline,
    authorize=guards.relay_decider,
    responses={200: AlertView},
)
async def decline_relay(call: Call) -> Reply:
    relay = Relay(
        plp_id=call.path("plp_id"),
        state=RelayState.DECLINED,
        decided_by=call.who.id,
        decided_at=datetime.now(UTC),
        reason=call.body.reason,
    )
    return await _decide(call, relay)
