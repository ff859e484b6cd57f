"""An urgent alert's first sends leave from the worker that plans them: no queue, no second job in between.

The fan-out job of an urgent alert hands its first batches to its own process's event loop, each as soon as
the transaction that plans it has run (``dispatcher.pipeline.fanout``, ``workers.loop.SendsHere``): a lead
batch of a few members, then a full one planned while the lead sends, as many as the loop admits at once; the
rest of the alert's batches are queued as before. Promise under test: urgent first (the first provider request
does not wait for a send job to be queued, taken and started), and once, not twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from dispatcher.core.models import AlertStatus
from dispatcher.pipeline import fanout, jobs
from dispatcher.pipeline.fanout import LEAD_MEMBERS
from tests.faults.world import charter, open_world
from tests.support import queued_jobs, until
from workers.loop import ProcessLoop, SendsHere

MEMBERS = 40
BATCH = 12  # deliveries per send job: the fan-out sends 10 (the lead) and 12 itself, and queues 12 and 6


async def test_an_urgent_fan_out_sends_its_first_batches_itself_while_the_rest_waits_in_the_queue(
    redis_url: str, tmp_path: Path
) -> None:
    """The SMS of the first batches reach Twilio from the fan-out's own process while every send job it queued
    still waits, untaken. The lead batch was handed over with only its own few members planned, the next with
    only a batch more (chunks no larger than a batch while the process sends), and no more batches than its
    loop admits at once (two); a worker then sends the rest, and each member gets the alert once."""
    async with open_world(redis_url, tmp_path, send_batch_size=BATCH) as world:
        assert world.settings.worker_batches == 2
        plp = await world.plp("PLP Parc", charter(urgent=["sms"]))
        await world.members(plp, MEMBERS)
        alert = await world.alert([plp], "Cambriolage rue du Parc.")
        [job] = [j for j in queued_jobs(world.runtime) if j.func_name == jobs.FAN_OUT]
        world.runtime.queue_named(job.origin).remove(job)  # taken, as a worker's dequeue does
        loop = ProcessLoop()
        planned_then: list[int] = []

        class Counting(SendsHere):
            def send(self, alert_id: str, plp_id: str, refs: list[str], *, job_id: str, queue: str) -> None:
                planned_then.append(world.redis.zcard(world.runtime.keys.alert_deliveries(alert_id)))
                super().send(alert_id, plp_id, refs, job_id=job_id, queue=queue)

        here = Counting(world.runtime, lambda: loop)
        mine = LEAD_MEMBERS + BATCH
        try:
            await asyncio.to_thread(fanout.fan_out, world.runtime, *job.args, here=here)
            await until(lambda: len(world.sent()) == mine, timeout=10, what="the SMS of the batches sent here")
            waiting = [j for j in queued_jobs(world.runtime) if j.func_name == jobs.SEND_BATCH]
            assert sorted(len(j.args[2]) for j in waiting) == [MEMBERS - mine - BATCH, BATCH]
            queued = {ref for j in waiting for ref in j.args[2]}
            assert not queued & {s.ref for s in world.sent()}
            assert planned_then == [LEAD_MEMBERS, mine]
            assert await asyncio.to_thread(loop.drain, 10)
        finally:
            loop.close()
        await world.start_processes("urgent", "clock")
        assert await world.finished(alert, timeout=30) is AlertStatus.COMPLETED
        sent = sorted(s.ref for s in world.sent())
        assert sent == sorted(set(sent)) and len(sent) == MEMBERS
        assert world.counts(alert).get("possible_duplicates", 0) == 0
        assert world.redispatched() == {}


async def test_a_fan_out_whose_loop_sends_one_batch_at_a_time_sends_a_full_first_batch_itself(
    redis_url: str, tmp_path: Path
) -> None:
    """With ``PLP_WORKER_BATCHES=1`` the next batch could not send beside a lead: the process sends one full batch,
    planned alone, and queues the rest."""
    async with open_world(redis_url, tmp_path, send_batch_size=BATCH, worker_batches=1) as world:
        plp = await world.plp("PLP Parc", charter(urgent=["sms"]))
        await world.members(plp, MEMBERS)
        alert = await world.alert([plp], "Cambriolage rue du Parc.")
        [job] = [j for j in queued_jobs(world.runtime) if j.func_name == jobs.FAN_OUT]
        world.runtime.queue_named(job.origin).remove(job)
        loop = ProcessLoop(batches=1)
        here = SendsHere(world.runtime, lambda: loop)
        try:
            await asyncio.to_thread(fanout.fan_out, world.runtime, *job.args, here=here)
            await until(lambda: len(world.sent()) == BATCH, timeout=10, what="the SMS of the batch sent here")
            waiting = [j for j in queued_jobs(world.runtime) if j.func_name == jobs.SEND_BATCH]
            assert sorted(len(j.args[2]) for j in waiting) == [MEMBERS - 3 * BATCH, BATCH, BATCH]
            assert await asyncio.to_thread(loop.drain, 10)
        finally:
            loop.close()
        await world.start_processes("urgent", "clock")
        assert await world.finished(alert, timeout=30) is AlertStatus.COMPLETED
        assert sorted(s.ref for s in world.sent()) == sorted({s.ref for s in world.sent()})


async def test_a_fan_out_without_a_sender_here_queues_every_batch(redis_url: str, tmp_path: Path) -> None:
    """Run anywhere but in a worker (a test, a tool), the fan-out queues all its batches, the first one too."""
    async with open_world(redis_url, tmp_path, send_batch_size=BATCH) as world:
        plp = await world.plp("PLP Parc", charter(urgent=["sms"]))
        await world.members(plp, MEMBERS)
        alert = await world.alert([plp], "Cambriolage rue du Parc.")
        await asyncio.to_thread(fanout.fan_out, world.runtime, alert, [plp])
        waiting = [j for j in queued_jobs(world.runtime) if j.func_name == jobs.SEND_BATCH]
        assert sorted(len(j.args[2]) for j in waiting) == [MEMBERS - 3 * BATCH, BATCH, BATCH, BATCH]
        assert world.sent() == []
