"""Lua scripts that change deliveries and alerts atomically inside Redis.

Each status change is one script, so that the checks (statuses only move forward,
nothing starts after a cancel, an expiry or an opt-out) and the bookkeeping (the
per-status sets, the counters, the alert's completion) can never disagree, whatever
number of workers and webhooks run at once.

Key names are built by ``dispatcher.storage.keys`` and passed in; where a script must reach
a key per status, it is given the key's prefix and appends the status.

The same scripts keep the service-wide counters that ``/metrics`` shows (``dispatcher.operations.metrics``)
in one hash, ``metrics``: a send costs no round trip more for being counted. Its fields:

==================================  =============================================================
field                               counts
==================================  =============================================================
``d|<channel>|<status>``            deliveries that moved into a status
``r|<channel>|<urgency>``           deliveries handed over (first ``sent`` or ``delivered``)
``a|<channel>|<urgency>``           deliveries acknowledged (first time)
``s|<channel>|<provider>|<kind>``   send attempts by outcome (``ok`` or the kind of error)
``pf|<channel>|<provider>``         the provider's calls in a row that failed for a reason of its own (an outage,
                                    an error, credentials refused); an answer (``ok`` or a refused recipient)
                                    sets it to 0, a rate limit leaves it
``pfk|<channel>|<provider>``        the kind of its last such failure
``pft|<channel>|<provider>``        the Unix time of its last such failure
``pok|<channel>|<provider>``        the Unix time of its last answer (the four ``p*`` fields: the geocoder's
                                    calls too, channel ``geocoder``, written by ``dispatcher.people.locating``)
``dup|<channel>|<cause>``           sends made again after one that may have reached the provider:
                                    ``taken_over`` from a worker that died (or stalled) during it,
                                    ``in_doubt`` after a failure that left it in doubt
``rd|<cause>``                      deliveries the clock dispatched again (written by ``dispatcher.pipeline.clock``)
``f|<urgency>|<status>``            alerts that ended in a status
``xr|…``, ``xa|…``, ``xf|…``        as ``r``, ``a`` and ``f``, for exercises (drills): counted apart, and
                                    left out of the alert histograms
``h|<name>|<labels>|<bin>``         histogram ``<name>``: observations in bin ``<bin>`` (0-based;
                                    one past the last bound: above them all)
``hs|<name>|<labels>``              histogram ``<name>``: sum of the observations
==================================  =============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dispatcher.core.models import ALERT_RANK, DELIVERY_RANK
from dispatcher.storage.keys import ALL_CLEAR_FIELD
from dispatcher.storage.limits import DEPARTURES_LUA, REPLICATE

#: The cause of a delivery that an all-clear ended (a retry that was waiting for its time).
ALL_CLEAR_CAUSE = "all-clear"

#: Upper bounds (seconds) of the histograms' bins: one call to a provider; from an alert's
#: creation to its first delivery handed over, and to its completion (relays awaited included).
SEND_SECONDS_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ALERT_SECONDS_BOUNDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)


def _lua_table(ranks: dict[Any, int]) -> str:
    return "{" + ", ".join(f"{status.value}={rank}" for status, rank in ranks.items()) + "}"


def _lua_list(values: tuple[float, ...]) -> str:
    return "{" + ", ".join(repr(v) for v in values) + "}"


_PRELUDE = f"""
local RANK = {_lua_table(DELIVERY_RANK)}
local ALERT_RANK = {_lua_table(ALERT_RANK)}
local SEND_BOUNDS = {_lua_list(SEND_SECONDS_BOUNDS)}
local ALERT_BOUNDS = {_lua_list(ALERT_SECONDS_BOUNDS)}

-- One observation of the histogram `name` (see the module's docstring for the fields).
local function observe(metrics_key, name, labels, bounds, value)
  local bin = #bounds
  for i, bound in ipairs(bounds) do
    if value <= bound then
      bin = i - 1
      break
    end
  end
  redis.call('HINCRBY', metrics_key, 'h|' .. name .. '|' .. labels .. '|' .. bin, 1)
  redis.call('HINCRBYFLOAT', metrics_key, 'hs|' .. name .. '|' .. labels, value)
end

-- An alert's urgency and creation time (its first status's time), from its state, and the prefix of its
-- counters' fields: 'x' for an exercise (a drill), counted apart, else ''.
local function alert_origin(state_key)
  local found = redis.call('HMGET', state_key, 'urgency', 't_awaiting_relay', 't_accepted', 'exercise')
  return found[1] or 'unknown', tonumber(found[2] or found[3]), found[4] and 'x' or ''
end

-- A send attempt's outcome and the provider's time, when the caller made one (ARGV from `first`).
local function count_send(metrics_key, channel, first)
  local provider = ARGV[first]
  if not metrics_key or not provider or provider == '' then return end
  local labels = channel .. '|' .. provider
  local outcome = ARGV[first + 1]
  redis.call('HINCRBY', metrics_key, 's|' .. labels .. '|' .. outcome, 1)
  observe(metrics_key, 'send', labels, SEND_BOUNDS, tonumber(ARGV[first + 2]))
  local clock = redis.call('TIME')
  local now = clock[1] .. '.' .. string.format('%06d', tonumber(clock[2]))
  if outcome == 'ok' or outcome == 'permanent' then  -- the provider answered (a refusal is the recipient's)
    redis.call('HSET', metrics_key, 'pf|' .. labels, 0, 'pok|' .. labels, now)
  elseif outcome ~= 'rate_limited' then  -- an outage, an error, refused credentials: the provider's own
    redis.call('HINCRBY', metrics_key, 'pf|' .. labels, 1)
    redis.call('HSET', metrics_key, 'pfk|' .. labels, outcome, 'pft|' .. labels, now)
  end
end

local function advance_alert(state_key, events_key, alert_id, new, now, metrics_key)
  local old = redis.call('HGET', state_key, 'status')
  if not old or ALERT_RANK[new] <= ALERT_RANK[old] then return false end
  redis.call('HSET', state_key, 'status', new, 't_' .. new, now)
  redis.call('PUBLISH', events_key, cjson.encode({{alert_id=alert_id, status=new, at=tonumber(now)}}))
  if metrics_key and ALERT_RANK[new] == 4 then
    local urgency, created, x = alert_origin(state_key)
    redis.call('HINCRBY', metrics_key, x .. 'f|' .. urgency .. '|' .. new, 1)
    if new == 'completed' and created and x == '' then
      observe(metrics_key, 'completion', urgency, ALERT_BOUNDS, math.max(0, tonumber(now) - created))
    end
  end
  return true
end

local function maybe_complete(state_key, counts_key, events_key, alert_id, now, metrics_key)
  if tonumber(redis.call('HGET', state_key, 'fanouts_pending') or '0') > 0 then return end
  if tonumber(redis.call('HGET', state_key, 'relays_awaiting') or '0') > 0 then return end
  local planned = tonumber(redis.call('HGET', counts_key, 'planned') or '0')
  local settled = tonumber(redis.call('HGET', counts_key, 'settled') or '0')
  if settled < planned then return end
  local expired = tonumber(redis.call('HGET', counts_key, 's:expired') or '0')
  if planned > 0 and expired == planned then
    advance_alert(state_key, events_key, alert_id, 'expired', now, metrics_key)
  else
    advance_alert(state_key, events_key, alert_id, 'completed', now, metrics_key)
  end
end

-- A send handed to its provider has its answer (or will never be sent by that worker): it leaves
-- the handed set, and whoever waits for the sends of a cancelled alert or an opted-out member hears it.
local function landed(k, entry)
  if k.handed and redis.call('ZREM', k.handed, entry) == 1 then
    redis.call('PUBLISH', k.handed .. ':landed', entry)
  end
end

-- Move a delivery from old to new status: record, re-file, count, maybe complete the alert.
-- A delivery is settled once handed to its provider (sent) or ended: the alert completes when
-- all are settled; providers' later reports (delivered, undelivered) still update the counts.
local function move(k, alert_id, ref, channel, old, new, now)
  redis.call('HSET', k.delivery, 'status', new, 't_' .. new, now)
  redis.call('ZREM', k.by_status .. old, ref)
  redis.call('ZADD', k.by_status .. new, 0, ref)
  redis.call('HINCRBY', k.counts, 's:' .. old, -1)
  redis.call('HINCRBY', k.counts, 's:' .. new, 1)
  redis.call('HINCRBY', k.counts, 'c:' .. channel .. ':' .. old, -1)
  redis.call('HINCRBY', k.counts, 'c:' .. channel .. ':' .. new, 1)
  if RANK[new] >= 2 then
    redis.call('ZREM', k.leases, alert_id .. '|' .. ref)  -- nobody works on it any more
    redis.call('ZREM', k.holds, alert_id .. '|' .. ref)
    landed(k, alert_id .. '|' .. ref)
  end
  if k.metrics then
    redis.call('HINCRBY', k.metrics, 'd|' .. channel .. '|' .. new, 1)
    if RANK[old] < 2 and (new == 'sent' or new == 'delivered') then
      local urgency, created, x = alert_origin(k.state)
      redis.call('HINCRBY', k.metrics, x .. 'r|' .. channel .. '|' .. urgency, 1)
      if redis.call('HSETNX', k.state, 'first_send_at', now) == 1 and created and x == '' then
        observe(k.metrics, 'first_send', urgency, ALERT_BOUNDS, math.max(0, tonumber(now) - created))
      end
    end
  end
  if RANK[new] >= 2 and RANK[old] < 2 then
    redis.call('HINCRBY', k.counts, 'settled', 1)
    maybe_complete(k.state, k.counts, k.events, alert_id, now, k.metrics)
  end
end

local function delivery_keys()
  return {{
    delivery=KEYS[1], state=KEYS[2], counts=KEYS[3], by_status=KEYS[4], events=KEYS[5], leases=KEYS[6], holds=KEYS[7],
    metrics=KEYS[8], handed=KEYS[9]
  }}
end

-- Create a queued delivery (once); with due_at, it is put in the leases for the clock to dispatch.
local function create_delivery(counts, all, prefix, by_status, leases, alert_id, member, channel, plp, now, due_at)
  local ref = channel .. ':' .. member
  local key = prefix .. ref
  if redis.call('EXISTS', key) == 1 then return 0 end
  redis.call('HSET', key, 'status', 'queued', 't_queued', now, 'attempts', 0, 'plp', plp)
  redis.call('ZADD', all, 0, ref)
  redis.call('ZADD', by_status .. 'queued', 0, ref)
  redis.call('HINCRBY', counts, 'planned', 1)
  redis.call('HINCRBY', counts, 's:queued', 1)
  redis.call('HINCRBY', counts, 'c:' .. channel .. ':queued', 1)
  if due_at then redis.call('ZADD', leases, due_at, alert_id .. '|' .. ref) end
  return 1
end
"""

# KEYS: alert members set, counts, all deliveries zset, delivery key prefix, by-status prefix,
#       alert unreachable set, leases, members planned through this PLP
# ARGV: alert id, member id, now, outcome (plan | opted_out | unreachable), PLP id, channel...
# A member is planned once per alert. One unreachable through a PLP's plan stays a candidate
# for the plans of the alert's other PLPs; they count as unreachable only if none reaches them.
# A member planned is filed under the PLP that planned them (its follow-ups count them).
PLAN_MEMBER = (
    _PRELUDE
    + """
local member = ARGV[2]
if ARGV[4] == 'unreachable' then
  if redis.call('SISMEMBER', KEYS[1], member) == 1 then return -1 end
  redis.call('SADD', KEYS[6], member)
  return 0
end
if redis.call('SADD', KEYS[1], member) == 0 then return -1 end
redis.call('SREM', KEYS[6], member)
if ARGV[4] == 'opted_out' then
  redis.call('HINCRBY', KEYS[2], 'opted_out', 1)
  return 0
end
redis.call('SADD', KEYS[8], member)
local created = 0
for i = 6, #ARGV do
  created = created + create_delivery(
    KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], ARGV[1], member, ARGV[i], ARGV[5], ARGV[3], nil)
end
return created
"""
)

# KEYS: counts, all deliveries zset, delivery key prefix, by-status prefix, leases
# ARGV: alert id, member id, channel, PLP id, now
# A delivery added after the fan-out (a fallback, an escalation): queued, and due at once.
ADD_DELIVERY = (
    _PRELUDE
    + """
return create_delivery(
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[5])
"""
)

# KEYS: delivery, alert state, counts, by-status prefix, events, leases, holds, metrics, handed, opt-outs set,
#       then the departure meters of the send's provider limits (see ``dispatcher.storage.limits``; 'go' only)
# ARGV: alert id, ref, channel, member id, now, lease end, mode ('check' or 'go'; default 'go'),
#       end of the provider call (default: the lease end), then the meters' intervals (µs)
# Takes a queued delivery, or one in "sending" whose lease has run out (its retry is due, or
# the worker that had it died), unless the alert was cancelled, its time-to-live has passed or
# the member opted out: then the delivery ends at once, in its final state with the cause.
# 'go' is called at the last moment, once the provider's turn has come: the caller then owns the
# send, which is handed to the provider (phase in_flight, in the handed set) and leased.
# 'check' (before waiting for a turn) changes nothing on a delivery that may still go.
# 'go' also departs: a send under provider limits is claimed only when every departure meter lets
# it leave now, and leaves in the same step (so nothing claimed waits behind a late neighbour, and
# nothing departs that a cancel, opt-out or TTL stops); otherwise the delivery is left as it was.
# Returns 'claimed' (go; 'claimed:<n>' with meters: the n-th departure under the first),
# 'depart-in:<µs>' (go: ask again then), or 'ready' (check), else the status the delivery is in
# (a delivery still leased belongs to someone else).
# The send about to be made ('go') is counted as a possible duplicate when the previous one may
# have reached the provider: its worker died during it (phase 'in_flight'), or it failed in a way
# that leaves it in doubt (phase 'uncertain', see RETRY). Counted here, at the resend, so that a
# doubt settled without one (a provider's report, a cancel, the time-to-live) counts nothing.
CLAIM = (
    REPLICATE
    + DEPARTURES_LUA
    + _PRELUDE
    + """
local k = delivery_keys()
local status = redis.call('HGET', k.delivery, 'status')
local leased = ARGV[1] .. '|' .. ARGV[2]
local taken_over = false
if status == 'sending' then
  local lease = redis.call('ZSCORE', k.leases, leased)
  if lease and tonumber(lease) > tonumber(ARGV[5]) then return 'sending' end
  taken_over = true
elseif status ~= 'queued' then
  return status or 'missing'
end
local target, cause = 'sending', nil
if redis.call('HGET', k.state, 'status') == 'cancelled' then
  target, cause = 'cancelled', 'alert cancelled'
elseif taken_over and redis.call('HEXISTS', k.state, '"""
    + ALL_CLEAR_FIELD
    + """') == 1 then
  target, cause = 'cancelled', '"""
    + ALL_CLEAR_CAUSE
    + """'  -- the danger has passed: no retry after an all-clear
elseif tonumber(ARGV[5]) > tonumber(redis.call('HGET', k.state, 'expires_at')) then
  target, cause = 'expired', 'time-to-live passed before it could be sent'
elseif redis.call('SISMEMBER', KEYS[10], ARGV[4]) == 1 then
  target, cause = 'cancelled', 'member opted out'
end
if cause then
  redis.call('HSET', k.delivery, 'cause', cause)
  move(k, ARGV[1], ARGV[2], ARGV[3], status, target, ARGV[5])
  return target
end
if ARGV[7] == 'check' then return 'ready' end
local meters, intervals, departed = {}, {}, nil
for i = 11, #KEYS do
  meters[#meters + 1] = KEYS[i]
  intervals[#intervals + 1] = ARGV[i - 2]
end
if #meters > 0 then
  local now = server_now()
  local wait = departure_wait(meters, intervals, now)
  if wait > 0 then return 'depart-in:' .. string.format('%.0f', wait) end
  departed = leave(meters, intervals, now)
end
redis.call('HINCRBY', k.delivery, 'attempts', 1)
local phase = redis.call('HGET', k.delivery, 'phase')
if taken_over and (phase == 'in_flight' or phase == 'uncertain') then
  -- the previous send may have reached the provider: this one may deliver the message twice
  redis.call('HINCRBY', k.delivery, 'possible_duplicates', 1)
  redis.call('HINCRBY', k.counts, 'possible_duplicates', 1)
  if k.metrics then
    local cause = 'in_doubt'
    if phase == 'in_flight' then cause = 'taken_over' end
    redis.call('HINCRBY', k.metrics, 'dup|' .. ARGV[3] .. '|' .. cause, 1)
  end
end
redis.call('HSET', k.delivery, 'phase', 'in_flight')
redis.call('ZADD', k.leases, ARGV[6], leased)
redis.call('ZADD', k.handed, ARGV[8] or ARGV[6], leased)
if not taken_over then move(k, ARGV[1], ARGV[2], ARGV[3], status, target, ARGV[5]) end
if departed then return 'claimed:' .. departed end
return 'claimed'
"""
)

# KEYS: delivery, alert state, counts, by-status prefix, events, leases, holds, metrics, handed
# ARGV: alert id, ref, next attempt time, error, '1' if the failure counts against the attempts,
#       '1' if the failed attempt may have reached the provider, channel, then the attempt that
#       failed (provider, kind of error, seconds) for the metrics
# The delivery stays "sending", waiting (phase 'uncertain' if the attempt may have reached the
# provider: CLAIM counts the resend): its lease ends at the next attempt, when the clock hands
# it to a worker again.
RETRY = (
    _PRELUDE
    + """
local k = delivery_keys()
local status = redis.call('HGET', k.delivery, 'status')
count_send(k.metrics, ARGV[7], 8)
if status ~= 'sending' then return status or 'missing' end
local phase = 'waiting'
if ARGV[6] == '1' then phase = 'uncertain' end
redis.call('HSET', k.delivery, 'phase', phase, 'last_error', ARGV[4], 'next_attempt_at', ARGV[3])
if ARGV[5] == '1' then redis.call('HINCRBY', k.delivery, 'failures', 1) end
redis.call('ZADD', k.leases, ARGV[3], ARGV[1] .. '|' .. ARGV[2])
redis.call('ZREM', k.holds, ARGV[1] .. '|' .. ARGV[2])  -- the lease holds it until its next attempt
landed(k, ARGV[1] .. '|' .. ARGV[2])
return 'waiting'
"""
)

# KEYS: delivery, alert state, counts, by-status prefix, events, leases, holds, metrics, handed
# ARGV: alert id, ref, channel, new status, now, provider id or '', error or '', cause or '',
#       then, after a send attempt, its provider, outcome and seconds for the metrics
# Returns the status afterwards; a move backwards (a late or repeated report) changes nothing.
RECORD = (
    _PRELUDE
    + """
local k = delivery_keys()
local old = redis.call('HGET', k.delivery, 'status')
if not old then return 'missing' end
count_send(k.metrics, ARGV[3], 9)
if RANK[ARGV[4]] <= RANK[old] then return old end
if ARGV[6] ~= '' then redis.call('HSET', k.delivery, 'provider_id', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', k.delivery, 'last_error', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', k.delivery, 'cause', ARGV[8]) end
move(k, ARGV[1], ARGV[2], ARGV[3], old, ARGV[4], ARGV[5])
return ARGV[4]
"""
)

# KEYS: delivery, alert state, counts, by-status prefix, events, leases, holds, metrics, handed
# ARGV: alert id, ref, channel, now, cause
# Ends a delivery waiting for its next attempt (phase 'waiting' or 'uncertain'), cancelled with the cause; one
# being sent (or not sent yet, or over) is left alone. Returns the status afterwards.
CANCEL_WAITING = (
    _PRELUDE
    + """
local k = delivery_keys()
local status = redis.call('HGET', k.delivery, 'status')
if status ~= 'sending' then return status or 'missing' end
local phase = redis.call('HGET', k.delivery, 'phase')
if phase ~= 'waiting' and phase ~= 'uncertain' then return status end
redis.call('HSET', k.delivery, 'cause', ARGV[5])
move(k, ARGV[1], ARGV[2], ARGV[3], status, 'cancelled', ARGV[4])
return 'cancelled'
"""
)

# KEYS: delivery, counts, alert acknowledgements set, alert state, metrics
# ARGV: channel the receipt came by, now, member id, the delivery's channel
# Returns 1 the first time a delivery is acknowledged, 0 after (-1: no such delivery).
ACKNOWLEDGE = (
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], 'ack_at', ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'ack_channel', ARGV[1])
redis.call('HINCRBY', KEYS[2], 'acknowledged', 1)
redis.call('SADD', KEYS[3], ARGV[3])
if KEYS[5] then
  local urgency, _, x = alert_origin(KEYS[4])
  redis.call('HINCRBY', KEYS[5], x .. 'a|' .. ARGV[4] .. '|' .. urgency, 1)
end
return 1
"""
)

# KEYS: delivery, alert answers, answer log, counts, alert state; ARGV: member, answer id, time, channel.
# Records a member's answer while the alert is live (not cancelled nor declined, no all-clear, given before its
# time-to-live passed): always in the log; it counts if it is later than the one counting (a late webhook for an earlier
# answer changes nothing), and the tally (``answer:<id>`` in counts) moves with it.
# Returns -2 (the alert has ended), -1 (no such delivery), 0 (logged, the tally unchanged) or 1 (it counts now).
ANSWER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local state = redis.call('HMGET', KEYS[5], 'status', 'expires_at', 'all_clear')
if state[1] == 'cancelled' or state[1] == 'declined' or state[3] then return -2 end
if state[2] and tonumber(state[2]) < tonumber(ARGV[3]) then return -2 end
redis.call('RPUSH', KEYS[3], cjson.encode({ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]}))
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current then
  local sep = string.find(current, '|', 1, true)
  local answer, at = string.sub(current, 1, sep - 1), tonumber(string.sub(current, sep + 1))
  if at > tonumber(ARGV[3]) then return 0 end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
  if answer == ARGV[2] then return 0 end
  redis.call('HINCRBY', KEYS[4], 'answer:' .. answer, -1)
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
end
redis.call('HINCRBY', KEYS[4], 'answer:' .. ARGV[2], 1)
return 1
"""

# KEYS: alert state, events, metrics; ARGV: alert id, new status, now. Returns 1 if the alert moved.
ADVANCE_ALERT = (
    _PRELUDE
    + """
if advance_alert(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], KEYS[3]) then return 1 end
return 0
"""
)

# KEYS: alert fan-outs set, alert state, counts, events, metrics; ARGV: alert id, PLP id, now
# Marks one PLP's fan-out finished (once), then moves the alert to sending or completes it.
FANOUT_DONE = (
    _PRELUDE
    + """
if redis.call('SREM', KEYS[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'fanouts_pending', -1)
end
advance_alert(KEYS[2], KEYS[4], ARGV[1], 'sending', ARGV[3], KEYS[5])
maybe_complete(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[3], KEYS[5])
return redis.call('HGET', KEYS[2], 'status')
"""
)

# KEYS: alert state, counts, events, metrics; ARGV: alert id, now, '1' if some PLP receives the alert
# After a relay decision: all declined -> declined; otherwise complete if nothing is left.
SETTLE_RELAYS = (
    _PRELUDE
    + """
if tonumber(redis.call('HGET', KEYS[1], 'relays_awaiting') or '0') > 0 then
  return redis.call('HGET', KEYS[1], 'status')
end
if ARGV[3] == '0' then
  advance_alert(KEYS[1], KEYS[3], ARGV[1], 'declined', ARGV[2], KEYS[4])
else
  maybe_complete(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], KEYS[4])
end
return redis.call('HGET', KEYS[1], 'status')
"""
)

# KEYS: alert relays hash, alert state, counts, events, metrics; ARGV: alert id, now
# Once the time-to-live has passed, relays still awaiting a decision expire; the alert then
# completes with what went out, or expires if nothing went out.
EXPIRE_RELAYS = (
    _PRELUDE
    + """
if tonumber(ARGV[2]) <= tonumber(redis.call('HGET', KEYS[2], 'expires_at')) then return 0 end
if tonumber(redis.call('HGET', KEYS[2], 'relays_awaiting') or '0') == 0 then return 0 end
local going = false
local relays = redis.call('HGETALL', KEYS[1])
for i = 1, #relays, 2 do
  local relay = cjson.decode(relays[i + 1])
  if relay.state == 'awaiting' then
    relay.state = 'expired'
    redis.call('HSET', KEYS[1], relays[i], cjson.encode(relay))
  elseif relay.state == 'auto' or relay.state == 'approved' then
    going = true
  end
end
redis.call('HSET', KEYS[2], 'relays_awaiting', 0)
if going then
  maybe_complete(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], KEYS[5])
else
  advance_alert(KEYS[2], KEYS[4], ARGV[1], 'expired', ARGV[2], KEYS[5])
end
return 1
"""
)


# KEYS: a zset of due work (score = due time), [a zset to move it to]; ARGV: now, most to take,
# score to give them or 'pop' or 'move' (then ARGV[4]: its score in KEYS[2]).
# Takes what is due, atomically (several clocks never take the same entry), and either removes it,
# pushes it back to ARGV[3], or moves it to KEYS[2], for whoever handles it to remove or push further.
TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  if ARGV[3] == 'pop' or ARGV[3] == 'move' then
    redis.call('ZREM', KEYS[1], member)
    if ARGV[3] == 'move' then redis.call('ZADD', KEYS[2], ARGV[4], member) end
  else
    redis.call('ZADD', KEYS[1], 'XX', ARGV[3], member)
  end
end
return due
"""

# KEYS: a set or sorted set, then counter hashes; ARGV: 'zadd', 'zrem' or 'sadd', a member, then the
# field to increment in each counter hash (ARGV[i + 1] in KEYS[i]).
# Adds (score 0) or removes the member, and counts the change only if there was one: a write
# repeated (an erasure run again after a crash, a second STOP) is counted once. Returns 1 or 0.
COUNTED_CHANGE = """
local changed
if ARGV[1] == 'zadd' then
  changed = redis.call('ZADD', KEYS[1], 'NX', 0, ARGV[2])
elseif ARGV[1] == 'zrem' then
  changed = redis.call('ZREM', KEYS[1], ARGV[2])
else
  changed = redis.call('SADD', KEYS[1], ARGV[2])
end
if changed == 1 then
  for i = 2, #KEYS do redis.call('HINCRBY', KEYS[i], ARGV[i + 1], 1) end
end
return changed
"""

# KEYS: RQ's register of queues, a queue's list; ARGV: the queue's entry in the register.
# Drops the queue from the register if it holds no job, atomically: an enqueue (RQ's MULTI registers the
# queue and pushes the job together) is either seen, and the queue kept, or comes after and registers it
# again. Returns 1 if dropped.
FORGET_EMPTY_QUEUE = """
if redis.call('LLEN', KEYS[2]) == 0 then return redis.call('SREM', KEYS[1], ARGV[1]) end
return 0
"""


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one Redis client (sync or asyncio)."""

    plan_member: Any
    add_delivery: Any
    claim: Any
    retry: Any
    cancel_waiting: Any
    record: Any
    acknowledge: Any
    answer: Any
    advance_alert: Any
    fanout_done: Any
    settle_relays: Any
    expire_relays: Any
    take_due: Any
    counted_change: Any
    forget_empty_queue: Any

    @classmethod
    def register(cls, client: Any) -> Scripts:
        """Register every script on ``client``; works for ``redis.Redis`` and ``redis.asyncio.Redis``."""
        return cls(
            plan_member=client.register_script(PLAN_MEMBER),
            add_delivery=client.register_script(ADD_DELIVERY),
            claim=client.register_script(CLAIM),
            retry=client.register_script(RETRY),
            cancel_waiting=client.register_script(CANCEL_WAITING),
            record=client.register_script(RECORD),
            acknowledge=client.register_script(ACKNOWLEDGE),
            answer=client.register_script(ANSWER),
            advance_alert=client.register_script(ADVANCE_ALERT),
            fanout_done=client.register_script(FANOUT_DONE),
            settle_relays=client.register_script(SETTLE_RELAYS),
            expire_relays=client.register_script(EXPIRE_RELAYS),
            take_due=client.register_script(TAKE_DUE),
            counted_change=client.register_script(COUNTED_CHANGE),
            forget_empty_queue=client.register_script(FORGET_EMPTY_QUEUE),
        )
