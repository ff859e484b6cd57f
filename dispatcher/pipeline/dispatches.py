"""Send jobs waiting in a queue, and how the clock tells a lost one from one still waiting.

A send job carries a batch of deliveries from the moment it is enqueued until a worker
starts it. While it waits in its queue, nobody has to renew anything for it: the queue keeps
it, however long a provider's rate makes it wait. So the job, not each of its deliveries, is
recorded, in the transaction that enqueues it: ``dispatches`` (job id -> when the clock looks
at it next) and ``dispatch:<job id>`` (what it carries). The batch that runs the job takes its
deliveries over (``holds``, renewed while its worker lives, see ``dispatcher.pipeline.sending``) and
drops the record, in one transaction.

Every lease, the clock looks at each record again (``take_lost``). A job still in its queue
is left alone. A job gone from its queue whose record is still there was taken by a worker
that has not started it: a live worker starts a job milliseconds after taking it, so one seen
so at two looks in a row is lost (its worker died in between), and the clock dispatches its
deliveries again. Work is dispatched again only when its owner is gone: a queue that still
holds it, or a live worker that renews its holds, keeps it.

An urgent fan-out sends its first batches itself (``SendsHere``: the worker's running event loop), with
no queue between them: each is recorded as a job already taken (``keep_sends``), in the
transaction that plans it, and the batch takes the record over as it starts, as a send job's would.
If the worker dies in between, the clock finds the record at its first look and dispatches the
deliveries again; once the batch runs, its holds and leases keep them safe, as for any batch.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis as AsyncRedis

from dispatcher.core.models import Urgency
from dispatcher.pipeline import jobs
from dispatcher.storage.keys import Keys
from dispatcher.storage.runtime import Runtime

_TAKE = 500  # records looked at per sweep


@dataclass(frozen=True)
class Lost:
    """A send job a worker took and never started: the deliveries it carried."""

    job_id: str
    alert_id: str
    plp_id: str
    refs: list[str]


def enqueue_sends(
    rt: Runtime,
    pipe: Any,
    alert_id: str,
    plp_id: str,
    refs: list[str],
    *,
    urgency: Urgency,
    zone: str | None,
    now: float,
) -> list[str]:
    """Queue the send jobs of ``refs`` (``PLP_SEND_BATCH_SIZE`` each) on the urgency's lane (urgent: the alert's
    own queue, named after the PLP's police ``zone``) and record them, on ``pipe``: a transaction the caller has
    started and executes. Return the jobs' ids."""
    keys, size, ids = rt.keys, rt.settings.send_batch_size, []
    for batch in (refs[start : start + size] for start in range(0, len(refs), size)):
        job_id = uuid.uuid4().hex
        queue = jobs.enqueue(rt, pipe, jobs.SEND_BATCH, alert_id, plp_id, batch, lane=urgency, zone=zone, job_id=job_id)
        pipe.zadd(keys.dispatches(), {job_id: now + rt.settings.lease_seconds})
        record = {"alert": alert_id, "plp": plp_id, "lane": urgency.value, "queue": queue, "refs": json.dumps(batch)}
        pipe.hset(keys.dispatch(job_id), mapping=record)
        ids.append(job_id)
    return ids


class SendsHere(Protocol):
    """A process that sends a batch itself, at once, beside the job that plans it (a worker's event loop)."""

    def free(self, queue: str) -> bool:
        """Whether a batch of ``queue`` (a send job's queue) would start sending here at once."""

    def send(self, alert_id: str, plp_id: str, refs: list[str], *, job_id: str, queue: str) -> None:
        """Start sending the batch recorded under ``job_id`` (``keep_sends``); return once it is under way."""


def keep_sends(
    rt: Runtime, pipe: Any, alert_id: str, plp_id: str, refs: list[str], *, zone: str | None, now: float
) -> tuple[str, str]:
    """Record an urgent batch that the process planning it sends itself, on ``pipe`` (as ``enqueue_sends``): a
    job already taken from the alert's queue, never put in it, which the clock dispatches again at its first look
    unless the batch took it over by then. Returns its job id and the queue it counts in."""
    job_id, queue = uuid.uuid4().hex, rt.queue_for(Urgency.URGENT, zone, alert_id).name
    pipe.zadd(rt.keys.dispatches(), {job_id: now + rt.settings.lease_seconds})
    record = {"alert": alert_id, "plp": plp_id, "lane": Urgency.URGENT.value, "queue": queue, "refs": json.dumps(refs)}
    pipe.hset(rt.keys.dispatch(job_id), mapping=record | {"taken": "1"})
    return job_id, queue


def forget_empty_queues(rt: Runtime) -> int:
    """Drop the urgent alerts' send queues that hold no job from RQ's register of queues (which the workers
    read before each look); a job enqueued later registers its queue again. Returns how many were dropped."""
    queues = rt.alert_queues()
    with rt.rq_connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
        lengths = pipe.execute()
    return sum(
        int(rt.sync_scripts.forget_empty_queue(keys=[rt.queues_register, queue.key], args=[queue.key]))
        for queue, length in zip(queues, lengths, strict=True)
        if not length
    )


async def take_over(redis: AsyncRedis, keys: Keys, job_id: str | None, holds: dict[str, float]) -> None:
    """A batch starts: hold its deliveries (``holds``: entry -> hold end) and drop its job's record, at once."""
    async with redis.pipeline(transaction=True) as pipe:
        if holds:
            pipe.zadd(keys.holds(), holds)
        if job_id is not None:
            pipe.zrem(keys.dispatches(), job_id)
            pipe.delete(keys.dispatch(job_id))
        await pipe.execute()


def drop(pipe: Any, keys: Keys, job_id: str) -> None:
    """Forget a lost job's record, on ``pipe`` (with the transaction that dispatches its deliveries again)."""
    pipe.zrem(keys.dispatches(), job_id)
    pipe.delete(keys.dispatch(job_id))


def take_lost(rt: Runtime, now: float) -> list[Lost]:
    """The recorded send jobs due for a look that a worker took and never started (seen so twice).

    Each record looked at is pushed back by a lease; one still in its queue is left as it is.
    """
    keys, redis = rt.keys, rt.sync_redis
    again = now + rt.settings.lease_seconds
    due = [_text(j) for j in rt.sync_scripts.take_due(keys=[keys.dispatches()], args=[now, _TAKE, again])]
    if not due:
        return []
    with redis.pipeline(transaction=False) as pipe:
        for job_id in due:
            pipe.hgetall(keys.dispatch(job_id))
        records: list[dict[str, str]] = pipe.execute()
    with redis.pipeline(transaction=False) as pipe:
        for job_id, record in zip(due, records, strict=True):
            pipe.lpos(_queue_of(rt, record).key, job_id)
        places = pipe.execute()
    lost = []
    for job_id, record, place in zip(due, records, places, strict=True):
        if not record:  # taken over as it was looked at
            redis.zrem(keys.dispatches(), job_id)
        elif place is None and record.get("taken"):
            lost.append(Lost(job_id, record["alert"], record["plp"], json.loads(record["refs"])))
        elif place is None:  # taken from its queue: the next look tells whether its worker started it
            _mark_taken(rt, job_id)
    return lost


def _queue_of(rt: Runtime, record: dict[str, str]) -> Any:
    """The queue a recorded send job waits in (a record written before zones had queues names only its lane)."""
    if "queue" in record:
        return rt.queue_named(record["queue"])
    return rt.queue_for(Urgency(record.get("lane", Urgency.URGENT.value)))


def _mark_taken(rt: Runtime, job_id: str) -> None:
    key = rt.keys.dispatch(job_id)

    def mark(pipe: Any) -> None:
        if pipe.exists(key):  # not taken over meanwhile (which deletes the record)
            pipe.multi()
            pipe.hset(key, "taken", "1")

    rt.sync_redis.transaction(mark, key)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
