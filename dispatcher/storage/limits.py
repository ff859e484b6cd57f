"""Provider send limits shared by every worker process, kept in Redis.

Each limit is a GCRA ("generic cell rate algorithm") meter: one key per limit holds
the theoretical arrival time (TAT), the moment from which the limit is idle again.
One Lua script reads and moves the TATs of all the limits a send needs, atomically,
using the Redis server's clock: any number of workers, on any number of hosts with
skewed clocks, together stay under a provider's rate.

Priority: an urgent caller *reserves* the next free slot, even one in the future (up to
``RESERVE_AHEAD`` seconds ahead), and is told how long to wait for it. A non-urgent caller
only *takes* a slot that is free now. A caller that gets no slot reserves nothing and is
told when to ask again. Non-urgent work thus never holds a slot that urgent work would
need: while both wait on a limit, urgent goes first (and a steady urgent load can hold
non-urgent work back indefinitely). Reservations never reach further than ``RESERVE_AHEAD``:
the sends waiting for their turn stay few, and a cancelled alert leaves at most that
many seconds of turns unused.

First come, first served among urgent callers: while the line reaches further than
``RESERVE_AHEAD``, every refused caller asks again when the next slot comes within reach, and the
first to ask would get it. A process slower to wake (a worker run nicer, on a busy host) would then
never get one while a busier process keeps asking: zone B's SMS waited a minute behind zone A's
20,000. So the refused urgent caller that has waited longest becomes the provider limit's *waiter*
(one per first limit, a hash with its ``id`` and the moment it first asked, ``since``): the next
slot within reach is kept for it, and every caller that has waited less (every non-urgent one) is
told to ask again one interval later. A waiter that got its slot, or gave up (cancelled), lets go at
once; one that died holds the line ``WAITER_GRACE`` seconds after it should have asked at most.

A key expires once its TAT has passed, when it no longer changes anything: idle
limits (say, the per-chat limit of a Telegram chat messaged once) vanish by themselves.

Departures: a slot says when a send may go, not when it goes. Between the two come the
round trip of the claim, composing the message, a busy event loop: a send that leaves late
followed by its neighbour on time would reach the provider closer than its rate allows, and
be refused. So a send also *departs*, at the last moment before its request is written (in the
delivery's claim, ``dispatcher.storage.scripts.CLAIM``; ``depart`` for the answers to members): a second
meter per limit, a GCRA kept on the moments sends actually leave, lets it go one emission interval
after the previous departure's moment (a tenth of an interval early at most, so that a waiter woken a
little late keeps the grid), and numbers the departures (SMS: the number picks the sender, so
consecutive departures use consecutive senders). The limits are
set a margin below the provider's rate (``PLP_LIMIT_MARGIN``), so that a departure held back
by its neighbour's lateness catches up instead of pushing every later send back.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import uuid
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from dispatcher.storage.keys import Keys

_MICROS = 1_000_000

#: Seconds ahead of now an urgent caller may reserve a slot; beyond, it asks again later.
RESERVE_AHEAD = 2.0

# KEYS: one key per limit, then the first limit's waiter. ARGV: how far ahead of now the caller may
# reserve a slot (0: only a slot free now), then per limit (in KEYS order) its emission interval and
# its burst tolerance, all in whole microseconds; then the caller's id ('' for a caller that never
# waits in line: non-urgent), the moment it first asked (µs, '' on its first ask: now) and the
# waiter's grace (µs).
# Returns {owned (1 or 0), wait, slot} in microseconds of the server clock: the slot is
# the moment the caller may send (owned) or should ask again (not owned).
# All limits get the same slot: the first moment every one of them allows, so a send
# under several limits never leaves ahead of any of them.
# The waiter: a caller refused because the first limit's line reaches too far becomes it if there is
# none, or if it first asked earlier (refused by another limit only, it lets go); while a waiter
# stands, a caller that first asked later (or never waits in line) gets no slot and asks again one
# interval on. The waiter lets go when it gets a slot.
# TIME before a write needs effects replication: the default since Redis 5, but a 6.2 server
# set with lua-replicate-commands=no refuses the script unless it asks (Redis 7: a no-op).
# Times are integers held in Lua doubles (exact below 2^53 µs, about year 2255), written
# with '%.0f' because tostring() would keep only 14 digits.
GCRA = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local n = #KEYS - 1
local tats, slot, first = {}, now, now
for i = 1, n do
  local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), now)
  tats[i] = tat
  slot = math.max(slot, tat - tonumber(ARGV[2 * i + 1]))
  if i == 1 then first = slot end
end
local reach = tonumber(ARGV[1])
local caller, since, grace = ARGV[2 * n + 2], tonumber(ARGV[2 * n + 3]) or now, tonumber(ARGV[2 * n + 4])
local waiter = KEYS[n + 1]
local head, head_since = unpack(redis.call('HMGET', waiter, 'id', 'since'))
local ahead = head and head ~= caller and (caller == '' or tonumber(head_since) <= since)
if slot - now > reach then
  if caller ~= '' and not ahead then
    if first - now > reach then
      redis.call('HSET', waiter, 'id', caller, 'since', string.format('%.0f', since))
      redis.call('PEXPIRE', waiter, math.ceil((slot - reach - now + grace) / 1000))
    elseif head == caller then
      redis.call('DEL', waiter)  -- its own recipient's limit holds it back, not the provider's: others go
    end
  end
  return {0, slot - reach - now, slot - reach}
end
if ahead then
  local interval = tonumber(ARGV[2])
  return {0, interval, now + interval}
end
if head == caller then redis.call('DEL', waiter) end
for i = 1, n do
  local tat = math.max(tats[i], slot) + tonumber(ARGV[2 * i])
  redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
end
return {1, slot - now, slot}
"""

# KEYS: a waiter. ARGV: a caller's id. The caller gives up its place: the waiter goes if it is that caller.
LET_GO = """
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: Seconds a waiter that stopped asking (its process died) keeps its place after it should have asked.
WAITER_GRACE = 2.0

# Departure meters, one per limit: a hash with "t", the moment (µs, Redis' clock) from which the next
# send may leave, and "n", departures counted. Lua functions shared by the scripts that let a send
# depart: DEPART here, and the delivery's claim (``dispatcher.storage.scripts.CLAIM``), which departs in the
# same step as it checks cancel, opt-out and time-to-live. ``departure_wait``: microseconds until
# every meter lets a send leave (0: now): from a tenth of an interval before its next moment (GCRA's
# tolerance). ``leave``: mark the departure now, moving the next moment one interval on from the
# later of it and now (so the long-run rate never exceeds the limit's); return its number under
# the first meter since it was last idle. A meter vanishes a second after its interval ends, counter
# included: by then every sender is idle again. Scripts calling ``server_now`` before a write must
# start with ``REPLICATE`` (effects replication, for a Redis 6.2 set without it).
REPLICATE = "if redis.replicate_commands then redis.replicate_commands() end\n"
#: How early, in emission intervals, a send may depart before the meter's next moment (GCRA's tolerance):
#: a waiter woken a few milliseconds late then keeps the grid instead of pushing every later send back.
DEPARTURE_TOLERANCE = 0.1
DEPARTURES_LUA = f"""
local DEPARTURE_TOLERANCE = {DEPARTURE_TOLERANCE}
local function server_now()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end
local function departure_wait(meters, intervals, now)
  local wait = 0
  for i, key in ipairs(meters) do
    local early = tonumber(intervals[i]) * DEPARTURE_TOLERANCE
    wait = math.max(wait, tonumber(redis.call('HGET', key, 't') or '0') - early - now)
  end
  return wait
end
local function leave(meters, intervals, now)
  local n = 0
  for i, key in ipairs(meters) do
    local interval = tonumber(intervals[i])
    local next = math.max(tonumber(redis.call('HGET', key, 't') or '0'), now) + interval
    redis.call('HSET', key, 't', string.format('%.0f', next))
    local count = redis.call('HINCRBY', key, 'n', 1)
    if i == 1 then n = count end
    redis.call('PEXPIRE', key, math.ceil(interval / 1000) + 1000)
  end
  return n
end
"""

# KEYS: the departure meters. ARGV: their emission intervals (µs), in KEYS order.
# Returns {1, n, now}: the send departs now, the n-th under the first meter; or {0, wait} (µs).
DEPART = (
    REPLICATE
    + DEPARTURES_LUA
    + """
local now = server_now()
local wait = departure_wait(KEYS, ARGV, now)
if wait > 0 then return {0, wait} end
return {1, leave(KEYS, ARGV, now), now}
"""
)


@dataclass(frozen=True)
class Limit:
    """A provider's rate: at most ``per_second`` sends a second, ``burst`` of them at once."""

    name: str  # e.g. "twilio-sms", "telegram", "telegram-chat:<id>", "smtp"
    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a limit needs a name")
        if not self.per_second > 0:
            raise ValueError(f"limit {self.name!r}: per_second must be positive, got {self.per_second}")
        if self.burst < 1:
            raise ValueError(f"limit {self.name!r}: burst must be at least 1, got {self.burst}")

    @property
    def interval_us(self) -> int:
        """Microseconds between slots, rounded up so that rounding never exceeds the rate."""
        return math.ceil(_MICROS / self.per_second)

    @property
    def tolerance_us(self) -> int:
        """How far ahead of its TAT a send may go: room for ``burst - 1`` extra slots."""
        return (self.burst - 1) * self.interval_us


@dataclass(frozen=True)
class Turn:
    """The answer to one request for a slot.

    ``owned``: the caller holds the slot (for urgent callers, when it is at most
    ``RESERVE_AHEAD`` seconds away; for non-urgent ones, only when it is free now).
    ``at``: the slot's moment, in seconds of the Redis server's clock, when owned;
    otherwise the moment to ask again. ``wait``: seconds from the
    server's now to ``at`` (0.0 when the caller may send at once).
    """

    owned: bool
    at: float
    wait: float


@dataclass(frozen=True)
class Departure:
    """A send leaving: its ``number`` among the departures under its first limit (consecutive while the
    limit is busy), and the moment, ``at``, in seconds of the Redis server's clock."""

    number: int
    at: float


class ProviderLimits:
    """Paces sends under provider limits kept in one Redis, shared by every process."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._keys = keys
        self._gcra = redis.register_script(GCRA)
        self._let_go = redis.register_script(LET_GO)
        self._depart = redis.register_script(DEPART)

    async def take(
        self, limits: Sequence[Limit], *, urgent: bool, caller: str = "", since: float | None = None
    ) -> Turn:
        """Ask once for a slot under every one of ``limits`` (atomically, all or none).

        Urgent: reserves the first slot free under all limits if it is at most ``RESERVE_AHEAD``
        seconds away, and returns it (``owned``). Non-urgent: takes it only if it is free now.
        Otherwise changes nothing and returns ``owned=False`` with the wait before asking again.
        ``caller``: an urgent caller's id, for it to wait in line (the module's "waiter"), with
        ``since``, the moment (server clock) it first asked; no id: the caller never waits in line,
        and a waiter goes first. Raises ``ValueError`` on no limits.
        """
        if not limits:
            raise ValueError("take() needs at least one limit")
        args: list[int | str] = [round(RESERVE_AHEAD * _MICROS) if urgent else 0]
        for limit in limits:
            args += [limit.interval_us, limit.tolerance_us]
        args += [caller, "" if since is None else round(since * _MICROS), round(WAITER_GRACE * _MICROS)]
        keys = [*(self._keys.limit(limit.name) for limit in limits), self._keys.limit_waiter(limits[0].name)]
        owned, wait_us, slot_us = await self._gcra(keys=keys, args=args)
        return Turn(owned=bool(owned), at=int(slot_us) / _MICROS, wait=int(wait_us) / _MICROS)

    async def acquire(self, limit: Limit, *, urgent: bool) -> float:
        """One attempt under one limit: 0.0 if the caller may send now, else the seconds to wait.

        An urgent caller then owns the slot it waits for (unless it is further than
        ``RESERVE_AHEAD``); a non-urgent one owns nothing and must ask again after the wait.
        """
        return (await self.take([limit], urgent=urgent)).wait

    async def wait_turn(
        self,
        limits: Sequence[Limit],
        *,
        urgent: bool,
        asking: contextlib.AbstractAsyncContextManager[object] | None = None,
        waiting: Callable[[], None] | None = None,
    ) -> Turn | None:
        """Wait until the caller may send under every one of ``limits``; return the turn it got.

        Urgent callers wait for the slot they reserved (asking again first while the line
        reaches further than ``RESERVE_AHEAD``); non-urgent callers ask again after each wait
        until a slot is free. Returns None at once when there are no limits.

        A caller refused asks again at a random moment within one interval of the provider's own
        rate (the first limit's) after the one it was told: every caller refused at once is told the
        same moment. Without the jitter the same process, and in it the same waiters, would ask first
        every time; the urgent caller refused longest ago waits in line (the module's "waiter") and
        gets the next slot within reach whenever it asks, so a process slow to wake is not passed
        over. The jitter is not a recipient's interval (a WhatsApp user's is 6 s): the waiter, who
        alone may take the next slot, would sleep through seconds of the provider's turns.

        ``asking``: held while the caller asks, released before it waits for a slot it owns (see
        ``Askers``: the callers that share it ask one at a time, and so have one chance together).
        ``waiting``: called before each wait (refused, or its slot still ahead), if the caller has to wait.
        """
        if not limits:
            return None
        spread = limits[0].interval_us / _MICROS
        told = waiting or _nothing
        caller = uuid.uuid4().hex if urgent else ""
        async with asking or contextlib.nullcontext():
            turn = await self.take(limits, urgent=urgent, caller=caller)
            since = turn.at - turn.wait  # the server's now at the first ask: the caller's place in line
            try:
                while not turn.owned:
                    told()
                    await asyncio.sleep(turn.wait + random.uniform(0, spread))
                    turn = await self.take(limits, urgent=urgent, caller=caller, since=since)
            finally:
                if not turn.owned and caller:  # gave up (cancelled, or Redis failed): the next in line goes
                    with contextlib.suppress(Exception):
                        await self._let_go(keys=[self._keys.limit_waiter(limits[0].name)], args=[caller])
        if turn.wait > 0:
            told()
            await asyncio.sleep(turn.wait)
        return turn

    async def depart(self, limits: Sequence[Limit]) -> Departure | None:
        """Wait until one emission interval has passed since the last send left under each of ``limits``,
        and mark this send as leaving now; return its number among the first limit's departures.

        Called at the last moment before the request is written, after ``wait_turn``: the wait is
        only the lateness of a neighbour, a few milliseconds. None at once when there are no limits.
        """
        if not limits:
            return None
        keys = [self._keys.departures(limit.name) for limit in limits]
        while True:
            departed, value, *at = await self._depart(keys=keys, args=[limit.interval_us for limit in limits])
            if departed:
                return Departure(number=int(value), at=int(at[0]) / _MICROS)
            await asyncio.sleep(int(value) / _MICROS)


def _nothing() -> None:
    pass


class Askers:
    """Callers that ask for turns together, one at a time: one chance at each slot between them.

    Refused callers all ask again at once for the next slot, and the first to ask gets it: a
    group of callers takes slots in proportion to how many of them ask. A worker groups the
    sends of one alert (and limits): a zone-wide alert's hundred waiting sends then have, in
    each process, one chance at a slot, as a small alert has, instead of a hundred to its one
    (zone B's 50 SMS took ten times as long behind zone A's 20,000 as on an idle service). It
    also spares Redis a hundred requests for every slot that frees. A caller that gets its slot
    lets the next one ask before it waits for the slot's moment.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, group: Hashable) -> AsyncIterator[None]:
        """Held while the caller asks, in turn with the group's other callers (in this event loop)."""
        lock, users = self._locks.get(group, (asyncio.Lock(), 0))
        self._locks[group] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[group]
            if users == 1:
                del self._locks[group]  # a group nobody asks for any more (a Telegram chat's) is forgotten
            else:
                self._locks[group] = (lock, users - 1)


def whatsapp_user_limit_name(phone: str) -> str:
    """The pair limit of one WhatsApp user (a member's mobile number); erasing the member deletes it."""
    return f"whatsapp-user:{phone}"


def chat_limit_name(chat_id: str) -> str:
    """The limit of one Telegram chat; its key names the chat, so erasing a member deletes it."""
    return f"telegram-chat:{chat_id}"
