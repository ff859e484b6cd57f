"""Actors of the API and their bearer tokens (shown once, stored as a hash)."""

from __future__ import annotations

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


async def open_account(store: Store, data: ActorIn, *, ttl_days: int) -> tuple[Actor, NewToken]:
    """As ``create_actor``, but return the new token's record (public id, expiry) with its secret."""
    if data.role is Role.COORDINATOR:
        found = await store.get_plps(data.plp_ids)
        missing = [plp_id for plp_id, plp in found.items() if plp is None]
        if missing:
            raise ValueError(f"plp_ids: unknown PLP(s) {', '.join(missing)}")
    try:
        actor = Actor(
            id=new_id(),
            name=data.name,
            role=data.role,
            police_zone=data.police_zone if data.role is Role.POLICE else None,
            plp_ids=data.plp_ids if data.role is Role.COORDINATOR else [],
        )
    except ValidationError as exc:
        raise ValueError(exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")) from None
    await store.save_actor(actor)
    return actor, await store.issue_token(actor, ttl_days=ttl_days)
