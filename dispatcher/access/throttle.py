"""Slowing callers down: request rates per token and per address, and failed authentications.

Policy only: who counts as one caller, how many requests they may make, how long they
wait. The API's middlewares (``dispatcher.api.app``) turn a refusal into a 429 with a
``Retry-After`` header. Everything is kept in Redis, so every web process shares it.

Rates reuse the GCRA meters of ``dispatcher.storage.limits`` with non-urgent semantics: a request
takes a slot that is free now, or is refused with the wait until one is; a refused
request reserves nothing. One meter per bearer token (``api-token:<token id>``) and one
per source address (``api-address:<address>``); the latter counts every request, public
ones (member pages, health, the OpenAPI document) included, but the providers' signed
callbacks (webhooks): their volume follows our own sends, from a few provider addresses,
and a refused one would be lost (see ``dispatcher.api.app``).

Failed authentications (a bearer token that is unknown, expired or revoked, or another
scheme) are counted per address, and the count is forgotten 10 minutes after the last
failure. From the 5th on, each failure locks the address out for twice as long as the
one before (2 s, 4 s, 8 s... at most 300 s): while locked, every request of the address
that needs a token is refused; once the lock ends, the next attempt is let through, and
if it fails again the lock doubles. A successful authentication forgets the count.
A request without any ``Authorization`` header is not an attempt and is not counted.

The source address is the peer's, or the first ``X-Forwarded-For`` entry when the peer
is one of the trusted proxies (``PLP_TRUSTED_PROXIES``). IPv6 callers are counted per
/64, the block one subscriber usually holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import redis.asyncio as aioredis

from config import Settings
from dispatcher.storage.keys import Keys
from dispatcher.storage.limits import Limit, ProviderLimits

#: Failed authentications an address may make before it is locked out.
FAILURES_BEFORE_LOCK = 5
#: Seconds after its last failure that an address's count is forgotten.
FORGET_FAILURES_AFTER = 600
#: The first lock-out, in seconds; each further failure doubles it, up to ``MAX_LOCK``.
FIRST_LOCK = 2.0
MAX_LOCK = 300.0

# KEYS: the address's failure count, its lock. ARGV: failures before a lock, first lock and
# longest lock (ms), seconds to remember failures. Returns {failures, lock in ms (0: none)}.
# The lock is a key with a time-to-live, so every process reads the same remaining time.
_FAIL = """
local n = redis.call('INCR', KEYS[1])
local lock = 0
if n >= tonumber(ARGV[1]) then
  lock = math.min(tonumber(ARGV[2]) * 2 ^ (n - tonumber(ARGV[1])), tonumber(ARGV[3]))
  redis.call('SET', KEYS[2], n, 'PX', lock)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]) + math.ceil(lock / 1000))
return {n, lock}
"""


@dataclass(frozen=True)
class Refusal:
    """A request refused for now: ``wait`` seconds before trying again, and why."""

    wait: float
    reason: str

    @property
    def retry_after(self) -> int:
        """The wait as a ``Retry-After`` value: whole seconds, at least 1."""
        return max(1, math.ceil(self.wait))


@dataclass(frozen=True)
class FailedAuth:
    """An address's recent failed authentications, and how long it is still locked out."""

    failures: int = 0
    locked_for: float = 0.0

    @property
    def refusal(self) -> Refusal | None:
        """The refusal its requests get while locked out; None when not locked."""
        if self.locked_for <= 0:
            return None
        return Refusal(self.locked_for, f"{self.failures} failed authentications from your address")

    @property
    def slowed(self) -> Refusal | None:
        """For a failure just recorded: past the failures allowed, the answer is the lock-out (else a plain 401)."""
        return self.refusal if self.failures > FAILURES_BEFORE_LOCK else None


Network = IPv4Network | IPv6Network


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address a request counts against: the peer's, or the first ``X-Forwarded-For``
    entry when the peer is a trusted proxy (and that entry is an address). IPv6: its /64.
    """
    address = _parse(peer)
    if address is None:
        return "unknown"  # a Unix socket: no address to tell callers apart
    if forwarded_for and any(address in network for network in trusted):
        address = _parse(forwarded_for.split(",")[0]) or address
    if isinstance(address, IPv6Address):
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


def _parse(value: str | None) -> IPv4Address | IPv6Address | None:
    if not value:
        return None
    text = value.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


#: Join requests a client address may start, an hour, and at once.
JOINS_PER_ADDRESS_PER_HOUR = 10
JOINS_PER_ADDRESS_BURST = 5


async def admit_join(limits: ProviderLimits, address: str) -> Refusal | None:
    """Take a slot of the address's rate of join requests (a PLP's join page); None if taken, else the wait."""
    limit = Limit(f"join-address:{address}", JOINS_PER_ADDRESS_PER_HOUR / 3600, JOINS_PER_ADDRESS_BURST)
    turn = await limits.take([limit], urgent=False)
    return None if turn.owned else Refusal(turn.wait, "too many join requests from your address")


class Throttle:
    """Rate limits and failed-authentication lock-outs, kept in one Redis."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: Settings) -> None:
        self._redis, self._keys, self._settings = redis, keys, settings
        self._limits = ProviderLimits(redis, keys)
        self._fail = redis.register_script(_FAIL)
        self.trusted_proxies: tuple[Network, ...] = tuple(ip_network(n) for n in settings.trusted_proxies)

    async def admit_address(self, address: str) -> Refusal | None:
        """Take a slot of the address's rate; None if taken, else the wait before one is free."""
        per_minute = self._settings.rate_limit_per_address
        burst = self._settings.rate_limit_per_address_burst
        return await self._admit(f"api-address:{address}", per_minute, burst, "too many requests from your address")

    async def admit_token(self, token_id: str) -> Refusal | None:
        """Take a slot of the token's rate; None if taken, else the wait before one is free."""
        per_minute, burst = self._settings.rate_limit_per_token, self._settings.rate_limit_per_token_burst
        return await self._admit(f"api-token:{token_id}", per_minute, burst, "too many requests with this token")

    async def _admit(self, name: str, per_minute: float, burst: int, reason: str) -> Refusal | None:
        if per_minute == 0:
            return None
        turn = await self._limits.take([Limit(name, per_minute / 60, burst)], urgent=False)
        return None if turn.owned else Refusal(turn.wait, reason)

    async def failed_auth(self, address: str) -> FailedAuth:
        """The address's recent failed authentications and remaining lock-out."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._keys.auth_failures(address))
            pipe.pttl(self._keys.auth_lock(address))
            failures, lock_ms = await pipe.execute()
        return FailedAuth(failures=int(failures or 0), locked_for=max(0, int(lock_ms)) / 1000)

    async def record_failure(self, address: str) -> FailedAuth:
        """Count a failed authentication from the address; return its count and the lock-out it starts."""
        failures, lock_ms = await self._fail(
            keys=[self._keys.auth_failures(address), self._keys.auth_lock(address)],
            args=[FAILURES_BEFORE_LOCK, int(FIRST_LOCK * 1000), int(MAX_LOCK * 1000), FORGET_FAILURES_AFTER],
        )
        return FailedAuth(failures=int(failures), locked_for=int(lock_ms) / 1000)

    async def forget_failures(self, address: str) -> None:
        """A successful authentication: the address starts afresh."""
        await self._redis.delete(self._keys.auth_failures(address), self._keys.auth_lock(address))
