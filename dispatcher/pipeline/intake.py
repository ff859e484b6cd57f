"""Accepting alerts and relay decisions: durable in Redis and enqueued in one transaction.

These writes use RQ's synchronous client so that the alert, its state and the job
that fans it out are stored by a single MULTI/EXEC: once it returns, the alert will
be sent even if the web process dies the next instant. The web calls them in a
thread so as not to block its event loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.exceptions

from dispatcher.access.audit import MAX_ENTRIES as AUDIT_MAX_ENTRIES
from dispatcher.core.models import Alert, AlertStatus, Relay, RelayState
from dispatcher.pipeline import jobs
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Conflict, now_ts


@dataclass(frozen=True)
class Once:
    """An Idempotency-Key: the Redis key that remembers it, the digest of the request's body, for how long."""

    key: str
    digest: str
    ttl: int

    def record(self, alert_id: str) -> str:
        return json.dumps({"digest": self.digest, "alert_id": alert_id})


class KeyReused(ValueError):
    """The Idempotency-Key was already used with another request body."""


class NotSettled(redis.exceptions.ConnectionError):
    """The alert's transaction lost its connection and was not applied (yet): retry with the same key."""


@dataclass(frozen=True)
class Accepted:
    """What a request to send an alert came to: a new alert and its first status, or the replay of an earlier
    request with the same Idempotency-Key (``replayed``; ``status`` is None: read the alert)."""

    alert_id: str
    status: AlertStatus | None
    replayed: bool = False


def accept_alert(
    rt: Runtime,
    alert: Alert,
    relays: list[Relay],
    *,
    once: Once | None = None,
    audit: Mapping[str, str] | None = None,
    also: Callable[[Any], None] | None = None,
    watch: tuple[str, ...] = (),
    check: Callable[[Any], None] | None = None,
) -> Accepted:
    """Store a new alert and enqueue the fan-out of every PLP that does not wait for a relay, in one
    transaction with its Idempotency-Key (``once``) and its audit entry (``audit``, fields of ``keys.audit()``).

    The transaction watches the Idempotency-Key (or, without one, the alert's own key), so that it
    is applied once whatever happens to its connection: redis-py never runs it again by itself
    after a lost reply, and a request retried with the same key finds either the key (the alert
    was stored: the earlier alert is answered) or nothing at all (it was not: it is stored now).
    The first status is ``accepted``, or ``awaiting_relay`` when every target PLP waits for its
    coordinator. ``also`` adds its writes to the transaction (given the pipeline, in MULTI): what
    accepting this alert changes elsewhere (a follow-up's effects on the alert it follows); ``check``
    reads what must hold first (given the pipeline, watching ``watch`` too) and raises to refuse. Raises
    ``KeyReused`` if the key was used with another body, ``NotSettled`` (a ``redis.ConnectionError``)
    if the connection was lost and the transaction is not applied.
    """
    guard = once.key if once is not None else rt.keys.alert(alert.id)
    with rt.rq_connection.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(guard, *watch)
            if once is not None and (earlier := _earlier(pipe.get(guard), once)) is not None:
                return Accepted(earlier, None, replayed=True)
            if check is not None:
                check(pipe)
            pipe.multi()  # explicit, so that RQ enqueues inside this transaction
            status = _store_alert(rt, pipe, alert, relays)
            if also is not None:
                also(pipe)
            if once is not None:
                pipe.set(once.key, once.record(alert.id), ex=once.ttl)
            if audit:
                pipe.xadd(rt.keys.audit(), dict(audit), maxlen=AUDIT_MAX_ENTRIES, approximate=True)  # type: ignore[arg-type]
            pipe.execute()
            return Accepted(alert.id, status)
        except redis.exceptions.WatchError:
            pass  # the connection was lost while watching, or another request with the key came first
    return _settled(rt, alert, once)


def _earlier(raw: Any, once: Once) -> str | None:
    """The alert id an earlier request with this Idempotency-Key stored, if any; ``KeyReused`` for another body."""
    if raw is None:
        return None
    earlier = json.loads(raw)
    if earlier["digest"] != once.digest:
        raise KeyReused(once.key)
    return str(earlier["alert_id"])


def _settled(rt: Runtime, alert: Alert, once: Once | None) -> Accepted:
    """What became of a transaction not seen to end: applied (or another request's came first), or ``NotSettled``."""
    conn = rt.rq_connection
    if once is not None and (earlier := _earlier(conn.get(once.key), once)) is not None and earlier != alert.id:
        return Accepted(earlier, None, replayed=True)
    status = conn.hget(rt.keys.alert_state(alert.id), "status")
    if status is None:
        raise NotSettled("the alert's transaction lost its connection before it was applied")
    return Accepted(alert.id, AlertStatus(status.decode()))  # type: ignore[union-attr]


def _store_alert(rt: Runtime, pipe: Any, alert: Alert, relays: list[Relay]) -> AlertStatus:
    keys, created = rt.keys, alert.created_at.timestamp()
    going = [r.plp_id for r in relays if r.state is RelayState.AUTO]
    awaiting = [r.plp_id for r in relays if r.state is RelayState.AWAITING]
    status = AlertStatus.ACCEPTED if going else AlertStatus.AWAITING_RELAY
    pipe.set(keys.alert(alert.id), alert.model_dump_json())
    pipe.hset(
        keys.alert_state(alert.id),
        mapping={
            "status": status.value,
            f"t_{status.value}": created,
            "urgency": alert.urgency.value,
            "expires_at": created + alert.ttl_seconds,
            "fanouts_pending": len(going),
            "relays_awaiting": len(awaiting),
            **({"exercise": 1} if alert.exercise else {}),  # its counters apart (see dispatcher.storage.scripts)
        },
    )
    pipe.hset(keys.alert_relays(alert.id), mapping={r.plp_id: r.model_dump_json() for r in relays})
    pipe.zadd(keys.alerts(), {alert.id: created})
    for plp_id in alert.plp_ids:
        pipe.zadd(keys.plp_alerts(plp_id), {alert.id: created})
    if going:
        pipe.sadd(keys.alert_fanouts(alert.id), *going)
        jobs.enqueue_fan_out(rt, pipe, alert.id, going, lane=alert.urgency, now=now_ts())
    return status


def decide_relay(rt: Runtime, alert: Alert, decided: Relay) -> AlertStatus:
    """Record a coordinator's approval or refusal for one PLP; an approval starts its fan-out.

    Raises ``Conflict`` if that PLP's relay was already decided, or the alert is over.
    Returns the alert's status afterwards.
    """
    keys, conn = rt.keys, rt.rq_connection
    with conn.pipeline(transaction=True) as pipe:
        pipe.watch(keys.alert_relays(alert.id), keys.alert_state(alert.id))
        current = pipe.hget(keys.alert_relays(alert.id), decided.plp_id)
        state = pipe.hgetall(keys.alert_state(alert.id))
        if current is None or Relay.model_validate_json(current).state is not RelayState.AWAITING:
            raise Conflict("this PLP's relay was already decided")
        status = AlertStatus(state[b"status"].decode())  # type: ignore[union-attr]
        if status in (AlertStatus.CANCELLED, AlertStatus.EXPIRED, AlertStatus.DECLINED):
            raise Conflict(f"the alert is {status.value}")
        if decided.state is RelayState.APPROVED and now_ts() > float(state[b"expires_at"]):
            raise Conflict("the alert's time-to-live has passed: it can no longer be relayed")
        going = (
            any(
                Relay.model_validate_json(raw).state in (RelayState.AUTO, RelayState.APPROVED)
                for plp_id, raw in pipe.hgetall(keys.alert_relays(alert.id)).items()
                if plp_id.decode() != decided.plp_id  # type: ignore[union-attr]
            )
            or decided.state is RelayState.APPROVED
        )
        pipe.multi()
        pipe.hset(keys.alert_relays(alert.id), decided.plp_id, decided.model_dump_json())
        pipe.hincrby(keys.alert_state(alert.id), "relays_awaiting", -1)
        if decided.state is RelayState.APPROVED:
            pipe.hincrby(keys.alert_state(alert.id), "fanouts_pending", 1)
            pipe.sadd(keys.alert_fanouts(alert.id), decided.plp_id)
            _advance(rt, pipe, alert.id, AlertStatus.ACCEPTED)
            jobs.enqueue_fan_out(rt, pipe, alert.id, [decided.plp_id], lane=alert.urgency, now=now_ts())
        rt.sync_scripts.settle_relays(
            keys=[keys.alert_state(alert.id), keys.alert_counts(alert.id), keys.events(), keys.metrics()],
            args=[alert.id, now_ts(), "1" if going else "0"],
            client=pipe,
        )
        pipe.execute()
    return AlertStatus(str(rt.sync_redis.hget(keys.alert_state(alert.id), "status")))


def _advance(rt: Runtime, pipe: object, alert_id: str, status: AlertStatus) -> None:
    rt.sync_scripts.advance_alert(
        keys=[rt.keys.alert_state(alert_id), rt.keys.events(), rt.keys.metrics()],
        args=[alert_id, status.value, datetime.now(UTC).timestamp()],
        client=pipe,
    )
