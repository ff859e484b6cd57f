"""Workers that die the instant after they take a job, before they have started on it.

Taking a job moves it out of the queue into RQ's hands (its intermediate list, then its
started registry); a worker killed then leaves it there, and RQ never runs it again (it
fails it as abandoned, minutes later). So the work is marked for the clock when its job is
enqueued: a fan-out is leased and a batch's deliveries are held in the same transaction, and
the clock enqueues them again once the lease or hold runs out. The test takes such jobs off the
queue exactly as a worker's dequeue does and drops them: the state these crashes leave, at
instants too short to hit on purpose with a signal (the random kills and Redis restarts of
the other tests hit them now and then). Promise under test: a 202 means it will be sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rq.job import Job

from dispatcher import fanout
from dispatcher.models import AlertStatus
from tests.faults.world import World, charter, open_world
from tests.support import RedisServer, until

pytestmark = pytest.mark.faults

MEMBERS = 10


def _queued(world: World, func_name: str, alert_id: str) -> Job | None:
    """The urgent queue's job running ``func_name`` for the alert, if one is queued."""
    for job in world.runtime.urgent_queue.get_jobs():
        if job.func_name == f"workers.jobs.{func_name}" and job.args and job.args[0] == alert_id:
            return job
    return None


async def _lose(world: World, func_name: str, alert_id: str) -> Job:
    """Once the alert's ``func_name`` job is queued, take it out of the queue for good, as a worker that
    dequeues it and dies at once does (RQ keeps it as taken, then abandoned; nobody runs it)."""
    job = await until(lambda: _queued(world, func_name, alert_id), timeout=20, what=f"a {func_name} job")
    world.runtime.urgent_queue.remove(job)
    return job


async def test_jobs_whose_workers_died_as_they_took_them_are_done_within_a_lease(
    fault_redis: RedisServer, tmp_path: Path
) -> None:
    """Three alerts, each losing one job to a worker that died as it took it: the fan-out; the first send
    job of a fan-out; the send job the clock enqueued again after the sender of a claimed delivery died.
    The clock hands each piece of work to a live worker once a lease has run out: every alert completes."""
    async with open_world(fault_redis.url, tmp_path, lease_seconds=2) as world:
        plp = await world.plp("PLP Parc", charter(urgent=["sms"]))
        mailed = await world.plp("PLP Bois", charter(urgent=["email"]))
        await world.members(plp, MEMBERS)
        stalled = await world.members(mailed, MEMBERS, start=100)

        fan_out_lost = await world.alert([plp], "Alerte 1: cambriolage rue du Parc.")
        await _lose(world, "fan_out", fan_out_lost)

        send_lost = await world.alert([plp], "Alerte 2: voiture suspecte rue du Parc.")
        job = await _lose(world, "fan_out", send_lost)  # this fan-out runs to its end (here) ...
        await asyncio.to_thread(fanout.fan_out, world.runtime, *job.args)
        await _lose(world, "send_batch", send_lost)  # ... and its send job is lost

        resend_lost = await _resend_lost(world, mailed, stalled)

        await world.start_processes("urgent", "general", "clock")
        bound = world.settings.lease_seconds + 6  # a lease, a sweep, a send, and room
        outcomes = await asyncio.gather(
            *(world.finished(a, timeout=bound) for a in (fan_out_lost, send_lost, resend_lost)), return_exceptions=True
        )
        stuck = {
            name: str(outcome)
            for name, outcome in zip(("fan-out", "first send", "re-sent send"), outcomes, strict=True)
            if outcome is not AlertStatus.COMPLETED
        }
        assert not stuck, f"lost for good with the job their worker took: {stuck}"


async def _resend_lost(world: World, plp: str, members: list[dict[str, str]]) -> str:
    """An alert whose e-mails a worker claimed and was sending when it died (the mail server stalls); the
    clock sends them again once their leases run out, and the worker that takes that job dies too."""
    world.smtp.stall.update(m["email"] for m in members)
    alert = await world.alert([plp], "Alerte 3: suspect en fuite rue du Bois.")
    await world.start_processes("urgent", "clock")
    await until(lambda: len(world.smtp.received) >= len(members), timeout=20, what="the e-mails to be under way")
    [worker] = world.workers.alive("urgent")
    world.workers.kill(worker)
    await _lose(world, "send_batch", alert)  # enqueued by the clock once the dead sender's leases ran out
    world.smtp.stall.clear()
    return alert
