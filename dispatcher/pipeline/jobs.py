"""The jobs the workers run: their names, how each is enqueued, and the clock's timers that enqueue them later.

A job is named by the dotted path of its function in ``workers.jobs``: RQ stores that path with
each queued job, and with each timer, so the paths below are part of the queue format and stay
valid from one release to the next (a job queued before a deploy runs after it).

Every job is enqueued here (``enqueue``), on a transaction of RQ's client that the caller has
started and executes: the job is queued with the writes that record it (a fan-out's lease, a send
job's record, an answer), or not at all. A job's timeout and its description are properties of
the job, the same wherever it is enqueued from; no job keeps a result. Each lane is a queue, but
each urgent alert's send jobs wait in a queue of their own (``Runtime.alert_queue``), which the
workers take in turn (``workers.main``): a zone-wide burst never holds another urgent alert
behind it.

A fan-out is leased as it is enqueued (``enqueue_fan_out``): should the worker that takes it die
before its first write, the clock enqueues it again once the lease runs out.

Timers (``schedule``) have the clock enqueue a job at a given time: escalations, acknowledgement
checks, fan-outs held by quiet hours, answers to resend, and the jobs that schedule their own
next run (``RECURRING``), which the clock also starts as it starts (``schedule_recurring``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from dispatcher.core.models import Urgency
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import now_ts

FAN_OUT: Final = "workers.jobs.fan_out"
SEND_BATCH: Final = "workers.jobs.send_batch"
SEND_REPLY: Final = "workers.jobs.send_reply"
ESCALATE: Final = "workers.jobs.escalate"
CHECK_ACKNOWLEDGEMENTS: Final = "workers.jobs.check_acknowledgements"
PURGE: Final = "workers.jobs.purge"
LOCATE: Final = "workers.jobs.locate_members"
#: Every job the workers run.
JOBS: Final = (FAN_OUT, SEND_BATCH, SEND_REPLY, ESCALATE, CHECK_ACKNOWLEDGEMENTS, PURGE, LOCATE)

#: Jobs that send, or plan sends, run for ``PLP_SEND_JOB_TIMEOUT`` at most; the others for RQ's default.
_SEND_TIMEOUT: Final = frozenset({FAN_OUT, SEND_BATCH})
#: How RQ describes a job (its listings); a job not here gets RQ's description, its call.
_DESCRIPTIONS: Final[dict[str, Callable[..., str]]] = {
    FAN_OUT: lambda alert_id, plp_ids: f"fan out alert {alert_id} to {len(plp_ids)} PLP(s)",
    SEND_BATCH: lambda alert_id, _plp_id, refs: f"send {len(refs)} deliveries of alert {alert_id}",
    SEND_REPLY: lambda _reply_id: "send an answer to a member",
}

#: Jobs that schedule their own next run, and how many seconds after the clock starts it runs each first.
RECURRING: Final = {PURGE: 60, LOCATE: 1}

#: Prefix of a fan-out's lease reference, beside the deliveries' ``<channel>:<member>``.
FANOUT_REF: Final = "fanout:"


def enqueue(
    rt: Runtime, pipe: Any, job: str, *args: Any, lane: Urgency, zone: str | None = None, job_id: str | None = None
) -> str:
    """Queue ``job(*args)`` on the lane's queue (under ``job_id``, default a new one), on ``pipe``: a
    transaction of ``rt.rq_connection`` the caller has started (``pipe.multi()``) and executes. An
    urgent send job names its police ``zone``: it waits in its alert's queue (``Runtime.alert_queue``), which
    the workers take in turn with the other alerts'. Returns the queue's name."""
    queue = rt.queue_for(lane, zone, args[0]) if job == SEND_BATCH else rt.queue_for(lane)
    queue.enqueue_call(
        job,
        args=args,
        timeout=rt.settings.send_job_timeout if job in _SEND_TIMEOUT else None,
        result_ttl=0,
        description=_DESCRIPTIONS[job](*args) if job in _DESCRIPTIONS else None,
        job_id=job_id,
        pipeline=pipe,
    )
    return queue.name


def fanout_lease(alert_id: str, plp_id: str) -> str:
    """The lease of one PLP's fan-out of an alert (in the same zset as deliveries' leases)."""
    return f"{alert_id}|{FANOUT_REF}{plp_id}"


def leased_fanout(ref: str) -> str | None:
    """The PLP whose fan-out a lease's reference (after ``<alert>|``) stands for; None for a delivery's."""
    return ref.removeprefix(FANOUT_REF) if ref.startswith(FANOUT_REF) else None


def enqueue_fan_out(rt: Runtime, pipe: Any, alert_id: str, plp_ids: list[str], *, lane: Urgency, now: float) -> None:
    """Queue the fan-out of an alert to these PLPs and lease each, on ``pipe`` (as ``enqueue``): the lease
    lasts as long as the job may wait in its lane's queue (``Runtime.horizon``), from ``now``."""
    until = now + rt.horizon(lane)
    pipe.zadd(rt.keys.leases(), {fanout_lease(alert_id, plp_id): until for plp_id in plp_ids})
    enqueue(rt, pipe, FAN_OUT, alert_id, plp_ids, lane=lane)


def schedule(rt: Runtime, at: float, job: str, *args: object, urgent: bool, pipe: Any = None) -> None:
    """Have the clock enqueue ``job(*args)`` on a lane at Unix time ``at`` (once; scheduled again, it moves);
    on ``pipe`` if given (a pipeline of either synchronous client)."""
    (pipe or rt.sync_redis).zadd(rt.keys.timers(), {timer_spec(job, *args, urgent=urgent): at})


def timer_spec(job: str, *args: object, urgent: bool) -> str:
    """The timer's member in the timers set: the same job with the same arguments is the same timer."""
    return json.dumps({"job": job, "args": list(args), "urgent": urgent}, sort_keys=True)


def enqueue_timer(rt: Runtime, pipe: Any, spec: str | bytes) -> None:
    """Queue the job of a timer that is due (its ``timer_spec``) on its lane, on ``pipe`` (as ``enqueue``)."""
    timer = json.loads(spec)
    lane = Urgency.URGENT if timer["urgent"] else Urgency.NON_URGENT
    enqueue(rt, pipe, timer["job"], *timer["args"], lane=lane)


def schedule_recurring(rt: Runtime) -> None:
    """Have the clock run each job that schedules its own next run (``RECURRING``) soon; for the clock's
    start-up, so that a chain a crash broke starts again with the clock."""
    for job, after in RECURRING.items():
        schedule(rt, now_ts() + after, job, urgent=False)
