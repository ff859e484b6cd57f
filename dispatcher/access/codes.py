"""One-time codes: six digits sent to a phone or an e-mail address, to prove the person holds it.

Used by a member's change of phone or e-mail on their own page (``dispatcher.people.contact_change``)
and by a resident's request to join a PLP (``dispatcher.people.joining``). Each use names three
keys (``CodeKeys``): the pending thing with the code's hash, the count of codes sent within the
hour, and the lock.

``issue`` refuses while the lock lives (``locked``) and past ``per_hour`` codes within the hour
(``rate``), else keeps the fields pending with a fresh code's hash for ``CODE_TTL`` seconds and
returns the code (only its hash is kept). ``check`` returns the pending fields for the right code
and drops them (a code works once); a wrong code counts, and the ``MAX_WRONG``-th drops the pending
fields and sets the lock for ``LOCK_SECONDS``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

#: Seconds a code stays valid.
CODE_TTL = 600
#: Wrong codes that drop what was pending and set the lock.
MAX_WRONG = 5
#: Seconds the lock lives after ``MAX_WRONG`` wrong codes.
LOCK_SECONDS = 3600
#: Seconds the count of codes sent is kept (the rate limit's window).
RATE_WINDOW = 3600


class CodeRefused(Exception):
    """No code now, or not this one; ``reason`` says why, for the person: ``rate``, ``locked``, ``wrong``,
    ``expired``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CodeKeys:
    """Where one use of codes keeps its state: the pending fields, the codes sent, the lock."""

    pending: str
    sent: str
    lock: str


def _digest(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


async def issue(redis: Redis, keys: CodeKeys, *, salt: str, fields: dict[str, str], per_hour: int) -> str:
    """Keep ``fields`` pending with a fresh code (hashed with ``salt``); return the code.

    Raises ``CodeRefused("locked")`` while the lock lives and ``CodeRefused("rate")`` past ``per_hour`` codes.
    """
    if await redis.exists(keys.lock):
        raise CodeRefused("locked")
    sent = int(await redis.incr(keys.sent))
    if sent == 1:
        await redis.expire(keys.sent, RATE_WINDOW)
    if sent > per_hour:
        raise CodeRefused("rate")
    code = f"{secrets.randbelow(10**6):06d}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.pending)
        pipe.hset(keys.pending, mapping=fields | {"code": _digest(salt, code), "wrong": "0"})  # type: ignore[arg-type]
        pipe.expire(keys.pending, CODE_TTL)
        await pipe.execute()
    return code


async def check(redis: Redis, keys: CodeKeys, *, salt: str, code: str) -> dict[str, str]:
    """The pending fields if ``code`` is their code (then dropped: a code works once).

    Raises ``CodeRefused("expired")`` with nothing pending, ``("wrong")`` for a wrong code and ``("locked")``
    at the ``MAX_WRONG``-th.
    """
    pending = cast(dict[str, str], await redis.hgetall(keys.pending))
    if not pending:
        raise CodeRefused("expired")
    if not hmac.compare_digest(pending["code"], _digest(salt, code.strip())):
        if int(await redis.hincrby(keys.pending, "wrong", 1)) >= MAX_WRONG:
            await redis.delete(keys.pending)
            await redis.set(keys.lock, "1", ex=LOCK_SECONDS)
            raise CodeRefused("locked")
        raise CodeRefused("wrong")
    await redis.delete(keys.pending)
    return {k: v for k, v in pending.items() if k not in ("code", "wrong")}
