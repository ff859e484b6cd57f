"""Console sessions opened by a one-time sign-in link sent by e-mail (passwordless).

- A sign-in link carries a random code; Redis keeps only its hash, with the actor's id, for
  ``signin_link_minutes``. Opening a session takes the code out (``GETDEL``): a link works once.
- A session's id is random and new at every sign-in (no fixation: an id from before is never
  promoted); Redis keeps its hash with the actor, a CSRF token and its start. Each request made
  with it pushes its expiry to ``session_idle_minutes`` from now; past ``session_max_hours`` from
  its start it is refused whatever its activity.
- Every session of an actor is listed under the actor, so "sign out everywhere" ends them all.

The cookie and the CSRF check are the API's (``dispatcher.api.sessions``); this module keeps the state.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from dispatcher.storage.keys import Keys


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """An open console session: whose, its CSRF token, its public id (a hash prefix, for logs)."""

    actor_id: str
    csrf_token: str
    started_at: float
    digest: str

    @property
    def public_id(self) -> str:
        return f"ses_{self.digest[:10]}"


@dataclass(frozen=True)
class Lifetimes:
    """How long links and sessions last, in seconds."""

    link: int
    idle: int
    absolute: int


class Sessions:
    """Sign-in links and console sessions in Redis."""

    def __init__(self, redis: Redis, keys: Keys, lifetimes: Lifetimes) -> None:
        self.redis, self.keys, self.lifetimes = redis, keys, lifetimes

    async def new_link_code(self, actor_id: str) -> str:
        """A one-time code that opens a session for the actor, valid ``lifetimes.link`` seconds."""
        code = secrets.token_urlsafe(32)
        await self.redis.set(self.keys.signin(_digest(code)), actor_id, ex=self.lifetimes.link)
        return code

    async def open(self, code: str) -> tuple[str, Session] | None:
        """Spend the code and open a new session; returns its id (secret, for the cookie) and the session,
        or None if the code is unknown, spent or expired."""
        actor_id = await self.redis.getdel(self.keys.signin(_digest(code)))
        if actor_id is None:
            return None
        session_id = secrets.token_urlsafe(32)
        session = Session(
            actor_id=str(actor_id), csrf_token=secrets.token_urlsafe(32), started_at=time.time(), digest=""
        )
        digest = _digest(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self.keys.session(digest),
                mapping={"actor_id": session.actor_id, "csrf": session.csrf_token, "started": session.started_at},
            )
            pipe.expire(self.keys.session(digest), self.lifetimes.idle)
            pipe.sadd(self.keys.actor_sessions(session.actor_id), digest)
            await pipe.execute()
        return session_id, Session(session.actor_id, session.csrf_token, session.started_at, digest)

    async def resume(self, session_id: str) -> Session | None:
        """The session of this id, its idle time renewed; None if unknown, idle too long or past its lifetime."""
        digest = _digest(session_id)
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.session(digest)))
        if not raw:
            return None
        session = Session(raw["actor_id"], raw["csrf"], float(raw["started"]), digest)
        if time.time() - session.started_at >= self.lifetimes.absolute:
            await self.close(session)
            return None
        await self.redis.expire(self.keys.session(digest), self.lifetimes.idle)
        return session

    async def close(self, session: Session) -> None:
        """End one session (sign out)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.session(session.digest))
            pipe.srem(self.keys.actor_sessions(session.actor_id), session.digest)
            await pipe.execute()

    async def close_all(self, actor_id: str) -> int:
        """End every session of the actor (sign out everywhere); returns how many were still open."""
        digests = cast(set[str], await self.redis.smembers(self.keys.actor_sessions(actor_id)))
        if not digests:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(self.keys.session(d) for d in digests))
            pipe.delete(self.keys.actor_sessions(actor_id))
            ended, _ = await pipe.execute()
        return int(ended)
