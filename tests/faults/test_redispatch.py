"""The clock dispatches work again only when its owner is gone, at the providers' real limits.

At 10 SMS per second, an alert to 300 members keeps its send jobs waiting in the queue for up to
30 s, ten times a 3 s lease. Promise under test: no wasted work (nothing is dispatched again while
a queue still holds it or a live worker renews its holds), and a 202 means it will be sent (a dead
worker's deliveries are dispatched again, and only those). The clock's own count of what it
dispatched again (``plp_redispatched_total``) is checked against the deliveries actually orphaned.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from rq import Worker

from dispatcher.core.models import AlertStatus
from tests.faults.world import GONE_OUT, SETTLED, World, charter, open_world
from tests.support import RedisServer, queued_jobs, until

pytestmark = pytest.mark.faults

SMS_PER_SECOND = 10  # Twilio, per sender outside +1
MEMBERS = 300  # 30 s of SMS at that rate
BATCH = 25  # deliveries per send job: 12 jobs, most of them waiting in the queue for many leases
ORPHANED_CAUSES = ("lease", "hold", "job")  # the owner died; "retry" and "added" are work scheduled for the clock


def _orphans_redispatched(world: World) -> int:
    found = world.redispatched()
    return sum(found.get(cause, 0) for cause in ORPHANED_CAUSES)


def _orphaned(world: World, alert_id: str) -> int:
    """Deliveries whose owner is a dead worker, when the only worker has just died: those its batches held (not
    settled), those it had claimed for a send, and those of a job it took and had not started."""
    keys, queue = world.runtime.keys, world.runtime.urgent_queue
    records = world.records(alert_id)
    held = {str(e).partition("|")[2] for e in world.redis.zrange(keys.holds(), 0, -1)}
    claimed = {ref for ref, r in records.items() if r["status"] == "sending" and r.get("phase") == "in_flight"}
    taken: set[str] = set()
    waiting = set(queue.get_job_ids())
    for job_id in world.redis.zrange(keys.dispatches(), 0, -1):
        record = world.redis.hgetall(keys.dispatch(str(job_id)))
        if record and record["alert"] == alert_id and job_id not in waiting:
            taken.update(json.loads(record["refs"]))
    return sum(1 for ref in held | claimed | taken if records[ref]["status"] not in SETTLED)


async def test_no_delivery_is_dispatched_again_while_its_job_waits_in_the_queue(
    fault_redis: RedisServer, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """Without any fault, an urgent alert to 300 members whose send jobs wait up to 30 s in the queue under a
    3 s lease is sent without the clock dispatching any delivery again, and without Twilio refusing one for its
    rate."""
    async with open_world(
        fault_redis.url, tmp_path, limit_sms_per_second=SMS_PER_SECOND, send_batch_size=BATCH
    ) as world:
        world.twilio.limit(sms_per_sender=SMS_PER_SECOND)
        plp = await world.plp("PLP Parc", charter(urgent=["sms"]))
        await world.members(plp, MEMBERS)
        await world.start_processes("urgent", "clock")
        started = time.time()
        alert = await world.alert([plp], "Cambriolage rue du Parc.")
        await until(lambda: len(queued_jobs(world.runtime)) >= 5, timeout=30, what="a backlog of send jobs")
        assert await world.finished(alert, timeout=90) is AlertStatus.COMPLETED

        records = world.records(alert)
        jobs_run = sum(w.successful_job_count for w in Worker.all(connection=world.runtime.rq_connection))
        retries = world.redispatched().get("retry", 0)
        figures.update(
            jobs_run=jobs_run,
            lease_s=world.settings.lease_seconds,
            took_s=round(time.time() - started, 1),
            redispatched=world.redispatched(),
            sms=len(world.twilio.messages),
            refused_for_rate=world.twilio.refused_for_rate,
        )
        assert all(r["status"] in GONE_OUT for r in records.values())
        assert world.twilio.refused_for_rate == 0, figures  # every send waited for its turn, however long it queued
        assert _orphans_redispatched(world) == 0, figures["redispatched"]
        # Counted apart from the clock: the fan-out, the 12 send jobs, at most one more job per retry.
        assert jobs_run <= 1 + -(-MEMBERS // BATCH) + retries, figures
        assert figures["took_s"] > 5 * world.settings.lease_seconds, "the jobs should have waited many leases"


async def test_after_a_worker_is_killed_only_its_own_deliveries_are_dispatched_again(
    fault_redis: RedisServer, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """SIGKILLed mid-alert, the only worker leaves the deliveries of the batches it held; the clock dispatches
    again no more than those (not the jobs still waiting in the queue), and every delivery is sent."""
    async with open_world(
        fault_redis.url, tmp_path, limit_sms_per_second=SMS_PER_SECOND, send_batch_size=BATCH
    ) as world:
        world.twilio.limit(sms_per_sender=SMS_PER_SECOND)
        plp = await world.plp("PLP Parc", charter(urgent=["sms"]))
        await world.members(plp, MEMBERS)
        await world.start_processes("urgent", "clock")
        alert = await world.alert([plp], "Cambriolage rue du Parc.")
        await until(lambda: len(world.twilio.messages) >= 60, timeout=30, what="60 SMS")

        [worker] = world.workers.alive("urgent")
        world.workers.kill(worker)
        killed_at = time.time()
        orphaned = _orphaned(world, alert)
        waiting = len(queued_jobs(world.runtime))
        world.workers.restart(worker)  # as a supervisor would, at once
        assert await world.finished(alert, timeout=90) is AlertStatus.COMPLETED

        records = world.records(alert)
        recovered = max(float(r.get("t_sent", 0)) for r in records.values()) - killed_at
        figures.update(
            orphaned=orphaned,
            queued_jobs_at_kill=waiting,
            redispatched=world.redispatched(),
            duplicates_counted=world.counts(alert).get("possible_duplicates", 0),
            duplicates_observed=world.duplicates_observed(),
            finished_after_kill_s=round(recovered, 1),
        )
        assert waiting > 0, "some jobs should still have waited in the queue at the kill"
        assert all(r["status"] in GONE_OUT for r in records.values())
        assert 0 < _orphans_redispatched(world) <= orphaned, (figures["redispatched"], orphaned)
        assert world.duplicates_observed() <= figures["duplicates_counted"]
