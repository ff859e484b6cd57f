"""Actors and tokens (admin), and who am I."""

from __future__ import annotations

from dispatcher import accounts, policy
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import ActorView, IssuedToken
from dispatcher.models import ActorIn


@api.operation(
    "POST",
    "/v1/actors",
    summary="Create an actor and issue their first token (admin)",
    tag="access",
    body=ActorIn,
    responses={201: IssuedToken},
)
async def create_actor(call: Call) -> Reply:
    policy.require_admin(call.who, "create actors and issue tokens")
    try:
        actor, token = await accounts.create_actor(services(call).store, call.body)
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc), errors=[{"field": "body", "reason": str(exc)}]) from None
    return Reply(201, IssuedToken(actor=ActorView.model_validate(actor.model_dump()), token=token))


@api.operation(
    "POST",
    "/v1/actors/{actor_id}/tokens",
    summary="Issue another token to an actor (admin)",
    tag="access",
    responses={201: IssuedToken},
)
async def issue_token(call: Call) -> Reply:
    policy.require_admin(call.who, "issue tokens")
    store = services(call).store
    actor = await store.get_actor(call.path("actor_id"))
    if actor is None:
        raise Problem(404, "Not found", f"no actor {call.path('actor_id')!r}")
    return Reply(
        201, IssuedToken(actor=ActorView.model_validate(actor.model_dump()), token=await store.issue_token(actor))
    )


@api.operation("GET", "/v1/me", summary="The actor this token belongs to", tag="access", responses={200: ActorView})
async def whoami(call: Call) -> Reply:
    return Reply(200, ActorView.model_validate(call.who.model_dump()))
