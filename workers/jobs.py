"""The functions RQ runs. Each is a thin entry point: the policy lives in ``dispatcher``.

RQ imports these by dotted path, so their names and arguments are part of the queue
format: jobs already queued must still run after a deploy. The paths are named, and the jobs
enqueued and scheduled, in one place: ``dispatcher.pipeline.jobs``.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache

from rq import get_current_job

from config import WorkerKind, load_settings
from dispatcher.people import locating, retention
from dispatcher.pipeline import escalation, fanout, replies
from dispatcher.storage.runtime import Runtime
from workers.loop import ProcessLoop, SendsHere, process_loop, running_loop, send_on


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """The worker process's runtime, built on first use (never at import time)."""
    return Runtime.from_settings(load_settings())


def fan_out(alert_id: str, plp_ids: list[str]) -> int:
    """Plan one delivery per member and channel for these PLPs, and enqueue their sends; an urgent alert's first
    batch is sent from here, on the process's event loop, while the rest is planned (``dispatcher.pipeline.fanout``).

    In a forked work horse, which would take that batch with it when it exits, the job waits for it to end.
    """
    rt = runtime()
    planned = fanout.fan_out(
        rt, alert_id, plp_ids, here=SendsHere(rt, lambda: process_loop(rt.settings.worker_batches))
    )
    if rt.settings.worker_kind is WorkerKind.FORK and (loop := running_loop()) is not None:
        loop.drain()
    return planned


def send_batch(alert_id: str, plp_id: str, refs: list[str]) -> None:
    """Send a batch of deliveries concurrently, on the process's event loop and its open connections.

    The job returns once the batch is admitted to send, beside the other batches from its queue (see
    ``workers.loop``); the batch holds its
    deliveries from its first moment. In a forked work horse, which would take the batch with it
    when it exits, the job waits for the batch to end.
    """
    rt = runtime()
    job = get_current_job()
    job_id = job.id if job is not None else None
    queue = job.origin if job is not None else rt.urgent_queue.name
    loop = process_loop(rt.settings.worker_batches)
    if rt.settings.worker_kind is WorkerKind.FORK:
        loop.run(lambda: send_on(loop, rt, alert_id, plp_id, refs, job_id=job_id))
    else:
        loop.submit(
            lambda admitted: send_on(loop, rt, alert_id, plp_id, refs, job_id=job_id, admitted=admitted), queue=queue
        )


def send_reply(reply_id: str) -> None:
    """Send a queued answer to a member in its turn (``dispatcher.pipeline.replies``), on the process's loop.

    The job returns at once: the answer waits for its turn on the loop, apart from the batches'
    admission (an answer is one message, not a batch). In a forked work horse it waits.
    """
    rt = runtime()
    loop = process_loop(rt.settings.worker_batches)
    if rt.settings.worker_kind is WorkerKind.FORK:
        loop.run(lambda: _send_reply(rt, loop, reply_id))
    else:
        loop.spawn(lambda: _send_reply(rt, loop, reply_id))


async def _send_reply(rt: Runtime, loop: ProcessLoop, reply_id: str) -> str:
    connections = await loop.connections(rt)
    return await replies.send(rt, connections.redis, connections.channels, reply_id)


def purge() -> dict[str, float | int | bool]:
    """Purge deliveries, receipts and replies older than PLP_RETENTION_DAYS; schedule the next run (daily)."""
    return asdict(retention.run_scheduled(runtime()))


async def locate_members() -> dict[str, int]:
    """Locate the members waiting for the geocoder at its rate (``people.locating``); schedule the next run."""
    return asdict(await locating.run_scheduled(runtime()))


def escalate(alert_id: str, plp_id: str) -> int:
    """Reach once more the PLP's members who have not acknowledged an urgent alert; return the deliveries added."""
    return escalation.escalate(runtime(), alert_id, plp_id).added


async def check_acknowledgements(alert_id: str, plp_id: str) -> bool:
    """Tell the PLP's coordinators and the author if too few members acknowledged; True if they were told now."""
    check = await escalation.check_acknowledgements(runtime(), alert_id, plp_id)
    return check is not None and check.notification is not None
