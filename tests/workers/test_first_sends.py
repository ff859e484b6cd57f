"""An urgent alert's first sends leave from the worker that plans them: no queue, no second job in between.

The fan-out job of an urgent alert hands its first batch to its own process's event loop as soon as the
transaction that plans it has run (``dispatcher.pipeline.fanout``, ``workers.loop.SendsHere``); the rest of
the alert's batches are queued as before. Promise under test: urgent first (the first provider request
does not wait for a send job to be queued, taken and started), and once, not twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from dispatcher.core.models import AlertStatus
from dispatcher.pipeline import fanout, jobs
from tests.faults.world import charter, open_world
from tests.support import queued_jobs, until
from workers.loop import ProcessLoop, SendsHere

MEMBERS = 10
BATCH = 4  # deliveries per send job: the fan-out sends 4 itself, and queues 4 and 2


async def test_an_urgent_fan_out_sends_its_first_batch_itself_while_the_rest_waits_in_the_queue(
    redis_url: str, tmp_path: Path
) -> None:
    """The SMS of the first batch reach Twilio from the fan-out's own process while every send job it queued
    still waits, untaken; it was handed over with only its own members planned (the first chunk no larger than
    a batch); a worker then sends the rest, and each member gets the alert once."""
    async with open_world(redis_url, tmp_path, send_batch_size=BATCH) as world:
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
        try:
            await asyncio.to_thread(fanout.fan_out, world.runtime, *job.args, here=here)
            await until(lambda: len(world.sent()) == BATCH, timeout=10, what="the first batch's SMS")
            waiting = [j for j in queued_jobs(world.runtime) if j.func_name == jobs.SEND_BATCH]
            assert sorted(len(j.args[2]) for j in waiting) == [MEMBERS - 2 * BATCH, BATCH]
            queued = {ref for j in waiting for ref in j.args[2]}
            assert not queued & {s.ref for s in world.sent()}
            assert planned_then == [BATCH]
            assert await asyncio.to_thread(loop.drain, 10)
        finally:
            loop.close()
        await world.start_processes("urgent", "clock")
        assert await world.finished(alert, timeout=30) is AlertStatus.COMPLETED
        sent = sorted(s.ref for s in world.sent())
        assert sent == sorted(set(sent)) and len(sent) == MEMBERS
        assert world.counts(alert).get("possible_duplicates", 0) == 0
        assert world.redispatched() == {}


async def test_a_fan_out_without_a_sender_here_queues_every_batch(redis_url: str, tmp_path: Path) -> None:
    """Run anywhere but in a worker (a test, a tool), the fan-out queues all its batches, the first one too."""
    async with open_world(redis_url, tmp_path, send_batch_size=BATCH) as world:
        plp = await world.plp("PLP Parc", charter(urgent=["sms"]))
        await world.members(plp, MEMBERS)
        alert = await world.alert([plp], "Cambriolage rue du Parc.")
        await asyncio.to_thread(fanout.fan_out, world.runtime, alert, [plp])
        waiting = [j for j in queued_jobs(world.runtime) if j.func_name == jobs.SEND_BATCH]
        assert sorted(len(j.args[2]) for j in waiting) == [MEMBERS - 2 * BATCH, BATCH, BATCH]
        assert world.sent() == []
