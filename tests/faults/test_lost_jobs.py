"""Workers that die the instant after they take a job, before they have started on it.

Taking a job moves it out of the queue into RQ's hands (its intermediate list, then its
started registry); a worker killed then leaves it there, and RQ never runs it again (it
fails it as abandoned, minutes later). So the work is marked for the clock when its job is
enqueued: a fan-out is leased and a batch's deliveries are held in the same transaction, and
the clock enqueues them again once the lease or hold runs out. The test takes such jobs out of
the queue for good, as a worker's dequeue does: the state these crashes leave, at instants too
short to hit on purpose with a signal (the random kills and Redis restarts of the other tests
hit them now and then). Promise under test: a 202 means it will be sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from rq.job import Job

from dispatcher.core.models import AlertStatus
from dispatcher.pipeline import fanout
from tests.faults.world import World, charter, open_world
from tests.support import RedisServer, queued_jobs, until

pytestmark = pytest.mark.faults

MEMBERS = 10


def _queued(world: World, func_name: str, alert_id: str) -> Job | None:
    """The urgent lane's job running ``func_name`` for the alert, if one is queued."""
    for job in queued_jobs(world.runtime):
        if job.func_name == f"workers.jobs.{func_name}" and job.args and job.args[0] == alert_id:
            return job
    return None


async def _lose(world: World, func_name: str, alert_id: str) -> Job:
    """Once the alert's ``func_name`` job is queued, take it out of the queue for good, as a worker that
    dequeues it and dies at once does (RQ keeps it as taken, then abandoned; nobody runs it)."""
    job = await until(lambda: _queued(world, func_name, alert_id), timeout=20, what=f"a {func_name} job")
    world.runtime.queue_named(job.origin).remove(job)
    return job


async def _fan_out_lost(world: World, plp: str) -> str:
    """The alert's fan-out job is lost."""
    alert = await world.alert([plp], "Cambriolage rue du Parc.")
    await _lose(world, "fan_out", alert)
    return alert


async def _first_send_lost(world: World, plp: str) -> str:
    """The fan-out runs to its end (here, in the test's process); the send job it enqueued is lost."""
    alert = await world.alert([plp], "Voiture suspecte rue du Parc.")
    job = await _lose(world, "fan_out", alert)
    await asyncio.to_thread(fanout.fan_out, world.runtime, *job.args)
    await _lose(world, "send_batch", alert)
    return alert


async def _resend_lost(world: World, plp: str) -> str:
    """A worker claims the alert's e-mails and dies while sending them (the mail server stalls); the clock
    enqueues them again once their leases run out, and that job is lost too."""
    members = await world.members(plp, MEMBERS, start=100)
    world.smtp.stall.update(m["email"] for m in members)
    alert = await world.alert([plp], "Suspect en fuite rue du Bois.")
    await world.start_processes("urgent", "clock")
    await until(lambda: len(world.smtp.received) >= MEMBERS, timeout=20, what="the e-mails to be under way")
    [worker] = world.workers.alive("urgent")
    world.workers.kill(worker)
    await _lose(world, "send_batch", alert)
    world.smtp.stall.clear()
    return alert


@pytest.mark.parametrize(
    "lose",
    [
        pytest.param(_fan_out_lost, id="fan-out"),
        pytest.param(_first_send_lost, id="first-send"),
        pytest.param(_resend_lost, id="re-sent-send"),
    ],
)
async def test_a_job_whose_worker_died_as_it_took_it_is_done_within_a_lease(
    fault_redis: RedisServer, tmp_path: Path, lose: Callable[[World, str], Awaitable[str]]
) -> None:
    """The fan-out job, the first send job of a fan-out, or the send job the clock enqueued again after a
    sender died, taken by a worker that died at once: the clock hands the work to a live worker once a
    lease has run out, and the alert completes."""
    async with open_world(fault_redis.url, tmp_path, lease_seconds=2) as world:
        plp = await world.plp("PLP Parc", charter(urgent=["sms"]))
        mailed = await world.plp("PLP Bois", charter(urgent=["email"]))
        await world.members(plp, MEMBERS)
        alert = await lose(world, mailed if lose is _resend_lost else plp)
        await world.start_processes(*(lane for lane in ("urgent", "general", "clock") if not world.workers.alive(lane)))
        bound = world.settings.lease_seconds + 6  # a lease, a sweep, a send, and room
        assert await world.finished(alert, timeout=bound) is AlertStatus.COMPLETED
