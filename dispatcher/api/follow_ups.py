"""Follow-ups of an alert: an update or an all-clear to the members it reached (see
``dispatcher.pipeline.follow_ups``)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from dispatcher.access.audit import Action, entry_fields
from dispatcher.api import guards
from dispatcher.api.alerts import IDEMPOTENCY_HEADER, once_for, replay, view
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import AlertView
from dispatcher.core.models import Alert, FollowUpIn
from dispatcher.pipeline import follow_ups, intake
from dispatcher.storage.replication import confirm_replicas
from dispatcher.storage.store import new_id


@api.operation(
    "POST",
    "/v1/alerts/{alert_id}/follow-ups",
    summary="Send an update or an all-clear to exactly the members the alert reached, each on a channel that "
    "reached them, in their language (Idempotency-Key header); an all-clear ends the alert's escalations and "
    "pending retries",
    tag="alerts",
    body=FollowUpIn,
    authorize=guards.alert_follower,
    responses={202: AlertView},
)
async def create_follow_up(call: Call) -> Reply:
    original, plps = call.scope
    body: FollowUpIn = call.body
    svc = services(call)
    _check_followable(original)
    digest = hashlib.sha256(f"{original.id}\n{body.model_dump_json()}".encode()).hexdigest()
    once = once_for(call, digest, None)
    follow_up = follow_ups.follow_up_of(
        original, body, follow_up_id=new_id(), actor=call.who, plps=plps, now=datetime.now(UTC)
    )
    audit = entry_fields(
        actor=call.who,
        action=Action.ALERT_CREATED,
        target={"alert": follow_up.id},
        detail=f"{follow_up.urgency.value} {follow_up.category.value} {body.kind.value} of {original.id}",
    )
    try:
        accepted = await svc.blocking(follow_ups.accept_follow_up, svc.runtime, follow_up, once=once, audit=audit)
        await confirm_replicas(svc.store.redis, svc.runtime.keys, svc.runtime.settings)
    except follow_ups.AlreadyAllClear as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    except intake.KeyReused:
        raise Problem(
            422,
            "Idempotency-Key reused",
            "this Idempotency-Key was already used with a different request; use a new key for a new follow-up",
            errors=[{"field": f"header.{IDEMPOTENCY_HEADER}", "reason": "already used with another body"}],
        ) from None
    if accepted.replayed:
        return await replay(call, accepted.alert_id)
    return Reply(202, await view(call, follow_up), {"Location": f"/v1/alerts/{follow_up.id}"})


def _check_followable(original: Alert) -> None:
    """A follow-up follows an alert, not another follow-up: else a 422 naming the path's alert."""
    if original.follows is not None:
        error = {
            "field": "path.alert_id",
            "reason": f"this alert is itself a follow-up of alert {original.follows}: follow that one up",
        }
        raise Problem(422, "Invalid request", "a follow-up cannot be followed up", errors=[error])
