"""Accepting alerts and relay decisions: durable in Redis and enqueued in one transaction.

These writes use RQ's synchronous client so that the alert, its state and the job
that fans it out are stored by a single MULTI/EXEC: once it returns, the alert will
be sent even if the web process dies the next instant. The web calls them in a
thread so as not to block its event loop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dispatcher.models import Alert, AlertStatus, Relay, RelayState
from dispatcher.runtime import Runtime
from dispatcher.store import Conflict, now_ts

FAN_OUT_JOB = "workers.jobs.fan_out"
#: Prefix of a fan-out's lease reference, beside the deliveries' ``<channel>:<member>``.
FANOUT_REF = "fanout:"


def fanout_lease(alert_id: str, plp_id: str) -> str:
    """The lease of one PLP's fan-out of an alert (in the same zset as deliveries' leases)."""
    return f"{alert_id}|{FANOUT_REF}{plp_id}"


def accept_alert(rt: Runtime, alert: Alert, relays: list[Relay]) -> AlertStatus:
    """Store a new alert and enqueue the fan-out of every PLP that does not wait for a relay.

    Returns the alert's first status: ``accepted``, or ``awaiting_relay`` when every
    target PLP waits for its coordinator.
    """
    keys, created = rt.keys, alert.created_at.timestamp()
    going = [r.plp_id for r in relays if r.state is RelayState.AUTO]
    awaiting = [r.plp_id for r in relays if r.state is RelayState.AWAITING]
    status = AlertStatus.ACCEPTED if going else AlertStatus.AWAITING_RELAY
    with rt.rq_connection.pipeline(transaction=True) as pipe:
        pipe.multi()  # explicit, so that RQ enqueues inside this transaction
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
            },
        )
        pipe.hset(keys.alert_relays(alert.id), mapping={r.plp_id: r.model_dump_json() for r in relays})
        pipe.zadd(keys.alerts(), {alert.id: created})
        for plp_id in alert.plp_ids:
            pipe.zadd(keys.plp_alerts(plp_id), {alert.id: created})
        if going:
            pipe.sadd(keys.alert_fanouts(alert.id), *going)
            _enqueue_fan_out(rt, alert, going, pipe)
        pipe.execute()
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
            _enqueue_fan_out(rt, alert, [decided.plp_id], pipe)
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


def _enqueue_fan_out(rt: Runtime, alert: Alert, plp_ids: list[str], pipe: Any) -> None:
    # Leased at once, in the same transaction: if the worker that takes the job dies before
    # its first write, the clock enqueues the fan-out again once the lease runs out.
    until = now_ts() + rt.horizon(alert.urgency)
    pipe.zadd(rt.keys.leases(), {fanout_lease(alert.id, plp_id): until for plp_id in plp_ids})
    rt.queue_for(alert.urgency).enqueue_call(
        FAN_OUT_JOB,
        args=(alert.id, plp_ids),
        timeout=rt.settings.send_job_timeout,
        result_ttl=0,
        description=f"fan out alert {alert.id} to {len(plp_ids)} PLP(s)",
        pipeline=pipe,
    )
