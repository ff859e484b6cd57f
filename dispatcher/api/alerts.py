"""Alerts: send, follow, list deliveries, cancel; and the coordinator's relay of police messages."""

from __future__ import annotations

import hashlib
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
    DeliveryPage,
    DeliveryQuery,
    DeliveryView,
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
from dispatcher.pipeline import audience, intake
from dispatcher.pipeline.estimate import estimate, sms_texts
from dispatcher.storage.replication import confirm_replicas
from dispatcher.storage.store import new_id

log = structlog.get_logger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"


async def _view(call: Call, alert: Alert) -> AlertView:
    svc = services(call)
    return AlertView.build(alert, await svc.store.get_progress(alert.id), svc.runtime.settings)


async def _target_plps(call: Call, body: AlertIn) -> list[Plp]:
    found = await services(call).store.get_plps(body.plp_ids)
    errors = [
        {"field": f"body.plp_ids[{i}]", "reason": f"unknown PLP {plp_id!r}"}
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


def _once(call: Call, body: AlertIn) -> intake.Once | None:
    """The request's Idempotency-Key, kept per actor with the digest of the body, if it has one."""
    key = _idempotency_key(call)
    if key is None:
        return None
    svc = services(call)
    return intake.Once(
        key=svc.runtime.keys.idempotency(call.who.id, key),
        digest=hashlib.sha256(body.model_dump_json().encode()).hexdigest(),
        ttl=svc.runtime.settings.idempotency_ttl,
    )


async def _replay(call: Call, alert_id: str) -> Reply:
    """The answer to a request whose Idempotency-Key an earlier request stored: the same alert, as it is now."""
    alert = await services(call).store.get_alert(alert_id)
    if alert is None:  # removed since (retention): the key stands for nothing that can be shown
        raise Problem(409, "Conflict", "this Idempotency-Key was used for an alert that is no longer kept")
    return Reply(202, await _view(call, alert), {"Location": f"/v1/alerts/{alert.id}", "Idempotent-Replayed": "true"})


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
    actor, svc = call.who, services(call)
    plps = await _checked_targets(call, body)
    once = _once(call, body)
    alert = _alert(new_id(), actor, body, plps)
    created = entry_fields(
        actor=actor,
        action=Action.ALERT_CREATED,
        target={"alert": alert.id},
        detail=f"{alert.urgency.value} {alert.category.value}",
    )
    try:
        accepted = await svc.blocking(
            intake.accept_alert, svc.runtime, alert, _relays(actor, body, plps), once=once, audit=created
        )
        # held by PLP_REDIS_WAIT_REPLICAS replicas before the 202 (a replay too: its first answer may have been lost)
        await svc.blocking(confirm_replicas, svc.runtime.rq_connection, svc.runtime.keys, svc.runtime.settings)
    except intake.KeyReused:
        raise Problem(
            422,
            "Idempotency-Key reused",
            "this Idempotency-Key was already used with a different request body; use a new key for a new alert",
            errors=[{"field": "header.Idempotency-Key", "reason": "already used with another body"}],
        ) from None
    if accepted.replayed:
        return await _replay(call, accepted.alert_id)
    return Reply(202, await _view(call, alert), {"Location": f"/v1/alerts/{alert.id}"})


def _alert(alert_id: str, actor: Actor, body: AlertIn, plps: list[Plp]) -> Alert:
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
    )
    ttl = body.ttl_seconds or min(p.charter.plan_of(alert.message_class).ttl_seconds for p in plps)
    return alert.model_copy(update={"ttl_seconds": ttl})


async def _checked_targets(call: Call, body: AlertIn) -> list[Plp]:
    """The target PLPs, once the actor may send there (and, for police feedback, the earlier alert fits)."""
    plps = await _target_plps(call, body)
    policy.can_send(call.who, body.urgency, plps)
    if body.about_alert_id is not None:
        policy.can_send_police_feedback(call.who)
        earlier = await services(call).store.get_alert(body.about_alert_id)
        if earlier is None:
            error = {"field": "body.about_alert_id", "reason": "unknown alert"}
            raise Problem(422, "Invalid request", "unknown earlier alert", errors=[error])
        errors = [
            {"field": f"body.plp_ids[{i}]", "reason": "the earlier alert did not target this PLP"}
            for i, plp_id in enumerate(body.plp_ids)
            if plp_id not in earlier.plp_ids
        ]
        if errors:
            raise Problem(
                422, "Invalid request", "police feedback goes to the PLPs of the earlier alert", errors=errors
            )
    return plps


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
    alert = _alert("preview", call.who, body, plps)
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
            cost=cost,
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
    return Reply(200, AlertList(items=[await _view(call, a) for a in alerts]))


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
    return Reply(200, await _view(call, alert))


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
    "POST",
    "/v1/alerts/{alert_id}/cancel",
    summary="Cancel an alert: no send that has not started will start; answered once those started have landed",
    tag="alerts",
    authorize=guards.alert_canceller,
    responses={200: AlertView},
)
async def cancel_alert(call: Call) -> Reply:
    alert, _ = call.scope
    store = services(call).store
    if not await store.cancel_alert(alert.id):
        progress = await store.get_progress(alert.id)
        raise Problem(409, "Conflict", f"the alert is already {progress.status.value}")
    # Answered once the sends already with a provider have their answer: after it, nothing of the alert goes out.
    if unanswered := await store.sends_landed(alert_id=alert.id):
        log.warning("alert.cancelled_with_sends_unanswered", alert_id=alert.id, sends=unanswered)
    await note(call, Action.ALERT_CANCELLED, alert=alert.id)
    return Reply(200, await _view(call, alert))


async def _decide(call: Call, relay: Relay) -> Reply:
    alert, plp = call.scope
    svc = services(call)
    await svc.blocking(intake.decide_relay, svc.runtime, alert, relay)
    await note(call, Action(f"relay.{relay.state.value}"), alert=alert.id, plp=plp.id)  # approved or declined
    return Reply(200, await _view(call, alert))


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
