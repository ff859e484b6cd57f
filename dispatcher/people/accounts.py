"""Actors of the API and their bearer tokens (shown once, stored as a hash)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from config.settings import DEFAULT_TOKEN_TTL_DAYS
from dispatcher.core.models import Actor, ActorIn, Role
from dispatcher.storage.records import NewToken
from dispatcher.storage.store import Store, new_id


async def create_actor(store: Store, data: ActorIn, *, ttl_days: int = DEFAULT_TOKEN_TTL_DAYS) -> tuple[Actor, str]:
    """Create an actor and their first token; return both, the token in clear (it is not kept so).

    Raises ``ValueError`` naming the field when the role's binding is missing or its
    PLPs do not exist.
    """
    actor, token = await open_account(store, data, ttl_days=ttl_days)
    return actor, token.secret


async def _check_plps(store: Store, plp_ids: list[str]) -> None:
    found = await store.get_plps(plp_ids)
    missing = [plp_id for plp_id, plp in found.items() if plp is None]
    if missing:
        raise ValueError(f"plp_ids: unknown PLP(s) {', '.join(missing)}")


def _bound(data: dict[str, Any]) -> Actor:
    """An actor with only the binding of their role (a zone for police, PLPs for coordinators);
    raises ``ValueError`` when the role's binding is missing."""
    role = Role(data["role"])
    data = data | {
        "police_zone": data.get("police_zone") if role is Role.POLICE else None,
        "plp_ids": (data.get("plp_ids") or []) if role is Role.COORDINATOR else [],
    }
    try:
        return Actor.model_validate(data)
    except ValidationError as exc:
        raise ValueError(exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")) from None


async def changed_actor(store: Store, actor: Actor, changes: dict[str, Any]) -> Actor:
    """The actor with ``changes`` (fields of ``ActorIn``) applied and saved; a new role keeps only its own
    binding. Raises ``ValueError`` naming the field as ``open_account`` does."""
    updated = _bound(actor.model_dump() | changes)
    if updated.role is Role.COORDINATOR:
        await _check_plps(store, updated.plp_ids)
    await store.save_actor(updated)
    return updated


async def remove_actor(store: Store, actor: Actor) -> None:
    """Take the actor out: every token of theirs revoked, then the actor gone (their audit entries stay)."""
    for record in await store.list_tokens(actor_id=actor.id, limit=10_000):
        await store.revoke_token(record.id)
    await store.delete_actor(actor.id)


async def open_account(store: Store, data: ActorIn, *, ttl_days: int) -> tuple[Actor, NewToken]:
    """As ``create_actor``, but return the new token's record (public id, expiry) with its secret."""
    if data.role is Role.COORDINATOR:
        await _check_plps(store, data.plp_ids)
    actor = _bound(data.model_dump() | {"id": new_id()})
    await store.save_actor(actor)
    return actor, await store.issue_token(actor, ttl_days=ttl_days)
