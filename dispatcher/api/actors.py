"""Actors (admin) and their tokens (admin, or each actor their own), and who am I.

A token's secret is shown once, when it is issued; listings show its public id
(``tok_...``), whose it is and its validity, never the secret nor its hash. Removing an
actor revokes their tokens and ends their console sessions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from config.settings import MAX_TOKEN_TTL_DAYS
from dispatcher.access import policy
from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.audit import changed, note
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.sessions import sessions_of
from dispatcher.api.views import ActorView, IssuedToken, Query
from dispatcher.core.models import Actor, ActorIn, EmailAddress, Identifier, Role, ShortText, Strict
from dispatcher.people import accounts
from dispatcher.storage.records import NewToken, TokenRecord
from dispatcher.storage.store import now_ts


class TokenRequest(Strict):
    """How long the new token stays valid; the body may be left out."""

    ttl_days: int | None = Field(
        default=None, ge=1, le=MAX_TOKEN_TTL_DAYS, description="Days; default PLP_TOKEN_TTL_DAYS"
    )


class TokenIssued(IssuedToken):
    """A bearer token, shown this once (only its hash is kept), with its public id and expiry."""

    token_id: str
    expires_at: datetime


class TokenView(BaseModel):
    """A token as listings show it: never its secret."""

    id: str
    actor_id: str
    actor_name: str | None = Field(description="null if the actor is gone")
    role: Role | None
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    status: Literal["active", "expired", "revoked"]

    @classmethod
    def build(cls, record: TokenRecord, actor: Actor | None) -> TokenView:
        return cls(
            id=record.id,
            actor_id=record.actor_id,
            actor_name=actor.name if actor else None,
            role=actor.role if actor else None,
            issued_at=record.issued_at,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
            status=record.refusal(now_ts()) or "active",
        )


class TokenList(BaseModel):
    """Tokens, newest first."""

    items: list[TokenView]


class TokenListQuery(Query):
    actor_id: str | None = Field(default=None, max_length=100, description="Only this actor's tokens")
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


def _issued(actor: Actor, token: NewToken) -> TokenIssued:
    return TokenIssued(
        actor=ActorView.model_validate(actor.model_dump()),
        token=token.secret,
        token_id=token.record.id,
        expires_at=token.record.expires_at,
    )


@api.operation(
    "POST",
    "/v1/actors",
    summary="Create an actor and issue their first token (admin)",
    tag="access",
    body=ActorIn,
    authorize=guards.admin("create actors and issue tokens"),
    responses={201: TokenIssued},
)
async def create_actor(call: Call) -> Reply:
    ttl_days = services(call).runtime.settings.token_ttl_days
    try:
        actor, token = await accounts.open_account(services(call).store, call.body, ttl_days=ttl_days)
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc), errors=[{"field": "body", "reason": str(exc)}]) from None
    await note(call, Action.ACTOR_CREATED, detail=actor.role.value, actor=actor.id)
    await note(call, Action.TOKEN_ISSUED, actor=actor.id, token=token.record.id)
    return Reply(201, _issued(actor, token))


@api.operation(
    "POST",
    "/v1/actors/{actor_id}/tokens",
    summary="Issue another token to an actor, optionally with its validity in days (admin, or the actor themselves)",
    tag="access",
    body=TokenRequest,
    body_required=False,
    authorize=guards.token_owner,
    responses={201: TokenIssued},
)
async def issue_token(call: Call) -> Reply:
    svc = services(call)
    actor = await svc.store.get_actor(call.path("actor_id"))
    if actor is None:
        raise Problem(404, "Not found", f"no actor {call.path('actor_id')!r}")
    token = await svc.store.issue_token(actor, ttl_days=call.body.ttl_days or svc.runtime.settings.token_ttl_days)
    await note(call, Action.TOKEN_ISSUED, actor=actor.id, token=token.record.id)
    return Reply(201, _issued(actor, token))


@api.operation(
    "GET",
    "/v1/tokens",
    summary="List tokens, newest first: ids, owners, validity; never the secrets (admin: all; others: their own)",
    tag="access",
    query=TokenListQuery,
    authorize=guards.anyone,
    responses={200: TokenList},
)
async def list_tokens(call: Call) -> Reply:
    store, who = services(call).store, call.who
    owner = call.query.actor_id if who.role is Role.ADMIN else (call.query.actor_id or who.id)
    if owner is not None:
        _may_manage_tokens(who, owner)
    records = await store.list_tokens(actor_id=owner, limit=call.query.limit)
    actors = {actor_id: await store.get_actor(actor_id) for actor_id in {r.actor_id for r in records}}
    return Reply(200, TokenList(items=[TokenView.build(r, actors[r.actor_id]) for r in records]))


@api.operation(
    "DELETE",
    "/v1/tokens/{token_id}",
    summary="Revoke a token: it is refused from now on (admin, or the token's owner)",
    tag="access",
    authorize=guards.token_revoker,
    responses={204: None},
)
async def revoke_token(call: Call) -> Reply:
    record = await services(call).store.revoke_token(call.scope.id) or call.scope
    await note(call, Action.TOKEN_REVOKED, actor=record.actor_id, token=record.id)
    return Reply(204)


@api.operation(
    "GET",
    "/v1/me",
    summary="The actor this token belongs to",
    tag="access",
    authorize=guards.anyone,
    responses={200: ActorView},
)
async def whoami(call: Call) -> Reply:
    return Reply(200, ActorView.model_validate(call.who.model_dump()))


def _may_manage_tokens(who: Actor, owner_id: str) -> None:
    try:
        policy.can_manage_tokens(who, owner_id)
    except policy.Denied as exc:
        raise Problem(403, "Forbidden", exc.reason) from None


class ActorList(BaseModel):
    """Every actor, by name."""

    items: list[ActorView]


class ActorPatch(Strict):
    """The fields to change; a role's binding (a police zone, PLPs) comes with it."""

    name: ShortText | None = None
    role: Role | None = None
    police_zone: str | None = Field(default=None, max_length=64)
    plp_ids: list[Identifier] | None = Field(default=None, max_length=100)
    email: EmailAddress | None = None


@api.operation(
    "GET",
    "/v1/actors",
    summary="List every actor with their role and binding (admin)",
    tag="access",
    authorize=guards.admin("list actors"),
    responses={200: ActorList},
)
async def list_actors(call: Call) -> Reply:
    found = [a async for chunk in services(call).store.all_actors() for a in chunk]
    items = [ActorView.model_validate(a.model_dump()) for a in sorted(found, key=lambda a: (a.name.casefold(), a.id))]
    return Reply(200, ActorList(items=items))


async def _actor_or_404(call: Call) -> Actor:
    actor = await services(call).store.get_actor(call.path("actor_id"))
    if actor is None:
        raise Problem(404, "Not found", f"no actor {call.path('actor_id')!r}")
    return actor


def _not_yourself(call: Call, actor: Actor, what: str) -> None:
    if actor.id == call.who.id:
        reason = f"you may not {what} yourself: another admin does it (so that an admin always remains)"
        raise Problem(409, "Conflict", reason)


@api.operation(
    "PATCH",
    "/v1/actors/{actor_id}",
    summary="Change an actor: name, e-mail, role and its binding (admin)",
    tag="access",
    body=ActorPatch,
    authorize=guards.admin("change actors"),
    responses={200: ActorView},
)
async def change_actor(call: Call) -> Reply:
    actor, patch = await _actor_or_404(call), call.body
    if patch.role is not None and patch.role is not actor.role:
        _not_yourself(call, actor, "change the role of")
    try:
        updated = await accounts.changed_actor(services(call).store, actor, patch.model_dump(exclude_unset=True))
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc), errors=[{"field": "body", "reason": str(exc)}]) from None
    await note(call, Action.ACTOR_CHANGED, detail=changed(patch), actor=actor.id)
    return Reply(200, ActorView.model_validate(updated.model_dump()))


@api.operation(
    "DELETE",
    "/v1/actors/{actor_id}",
    summary="Remove an actor: their tokens are revoked and their console sessions end (admin)",
    tag="access",
    authorize=guards.admin("remove actors"),
    responses={204: None},
)
async def remove_actor(call: Call) -> Reply:
    actor = await _actor_or_404(call)
    _not_yourself(call, actor, "remove")
    svc = services(call)
    await accounts.remove_actor(svc.store, actor)
    await sessions_of(call.request).close_all(actor.id)
    await note(call, Action.ACTOR_REMOVED, detail=actor.role.value, actor=actor.id)
    return Reply(204)
