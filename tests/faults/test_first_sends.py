"""A worker killed while it sends the first batch of an urgent alert it fanned out itself.

The fan-out job sends its first batch from its own process (``dispatcher.pipeline.fanout``): no send job
carries those deliveries, only the batch's holds and leases. A SIGKILL there must lose nothing: the clock
dispatches them again once the leases run out, as for any batch. Promises under test: a 202 means it will
be sent, and once, not twice (each send in flight at the kill is counted as a possible duplicate).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.models import AlertStatus
from tests.faults.world import GONE_OUT, World, charter, open_world
from tests.support import RedisServer, until

pytestmark = pytest.mark.faults

MEMBERS = 10
STALLED = 5  # members whose mail server never answers: their sends are in flight at the kill


async def test_a_worker_killed_mid_way_through_the_batch_its_fan_out_sent_itself_loses_nothing(
    fault_redis: RedisServer, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """The fan-out's worker dies with half of its own first batch sent and half in flight at the mail server;
    no send job was ever queued for the alert. Once the leases run out, the clock hands the deliveries in flight
    to another worker: every member gets the e-mail, each send taken over is counted, and no more."""
    async with open_world(fault_redis.url, tmp_path) as world:
        plp = await world.plp("PLP Bois", charter(urgent=["email"]))
        members = await world.members(plp, MEMBERS)
        world.smtp.stall.update(m["email"] for m in members[:STALLED])
        await world.start_processes("urgent")
        alert = await world.alert([plp], "Suspect en fuite rue du Bois.")
        await until(lambda: _sent(world, alert) >= MEMBERS - STALLED, timeout=20, what="the first e-mails")
        await until(lambda: len(world.smtp.received) >= MEMBERS, timeout=20, what="every e-mail under way")
        assert world.runtime.alert_queues() == []  # no send job: the fan-out's own process sends them
        in_flight = world.in_flight_claims([alert])
        [worker] = world.workers.alive("urgent")
        world.workers.kill(worker)
        world.smtp.stall.clear()
        await world.start_processes("urgent", "clock")
        assert await world.finished(alert, timeout=world.settings.lease_seconds + 10) is AlertStatus.COMPLETED

        records = world.records(alert)
        per_delivery = Counter(s.ref for s in world.sent() if s.alert_id == alert)
        counted = world.counts(alert).get("possible_duplicates", 0)
        figures.update(in_flight_at_kill=in_flight, counted=counted, redispatched=world.redispatched())
        assert all(r["status"] in GONE_OUT for r in records.values()), records
        assert set(per_delivery) == set(records)
        for ref, times in per_delivery.items():
            assert times - 1 <= int(records[ref].get("possible_duplicates", 0)), ref
        assert world.duplicates_observed() <= counted <= in_flight
        assert counted == STALLED  # the deliveries sent before the kill stay sent: only those in flight went again


def _sent(world: World, alert_id: str) -> int:
    return sum(1 for r in world.records(alert_id).values() if r["status"] in GONE_OUT)
