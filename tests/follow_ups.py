"""Helpers for the tests of what the clock runs later: timers made due, and queued jobs of every
kind (fan-outs, sends, escalations, acknowledgement checks) run in this process, with a given time."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from rq import Queue

from dispatcher.pipeline import escalation, fanout, sending
from dispatcher.storage.runtime import Runtime
from tests.support import send_reply


def timers(runtime: Runtime) -> list[tuple[dict[str, Any], float]]:
    """The clock's timers: each job spec (``job``, ``args``, ``urgent``) with its due time."""
    rows = runtime.sync_redis.zrange(runtime.keys.timers(), 0, -1, withscores=True)
    return [(json.loads(spec), score) for spec, score in rows]


def make_due(runtime: Runtime, job: str | None = None) -> int:
    """Move the timers (of one job, or all) to the past, so that the next tick enqueues them; return how many."""
    moved = {json.dumps(spec, sort_keys=True): 0.0 for spec, _ in timers(runtime) if job in (None, spec["job"])}
    if moved:
        runtime.sync_redis.zadd(runtime.keys.timers(), moved, xx=True)
    return len(moved)


def queued(queue: Queue) -> list[tuple[str, tuple[Any, ...]]]:
    """The jobs waiting on a queue: function name and arguments."""
    return [(str(job.func_name), tuple(job.args)) for job in queue.jobs]


async def run_jobs(runtime: Runtime, *, now: datetime | None = None) -> list[str]:
    """Run every queued job as a worker would, urgent lane first, with this runtime and this time
    (default: the current one); return the functions run, in order."""
    ran = []
    while found := Queue.dequeue_any(
        [*runtime.urgent_queues(), runtime.general_queue], timeout=None, connection=runtime.rq_connection
    ):
        job, _ = found
        name = str(job.func_name).rsplit(".", 1)[-1]
        ran.append(name)
        if name == "fan_out":
            await asyncio.to_thread(fanout.fan_out, runtime, *job.args, now=now)
        elif name == "send_batch":
            await sending.send_batch(runtime, *job.args)
        elif name == "escalate":
            await asyncio.to_thread(escalation.escalate, runtime, *job.args, now=now)
        elif name == "send_reply":
            await send_reply(runtime, *job.args)
        elif name == "check_acknowledgements":
            await escalation.check_acknowledgements(runtime, *job.args, now=now)
        else:
            raise AssertionError(f"no such job: {job.func_name}")
    return ran
