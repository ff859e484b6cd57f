"""Redis killed and started again while accepted alerts fan out and send.

The service's Redis here persists every write before answering (AOF, ``appendfsync
always``), as a deployment that promises "a 202 means it will be sent" must run it. Promise
under test: no accepted alert is lost, and every delivery of each ends settled, whatever the
moment Redis dies; workers and the clock that die with it are restarted, as a supervisor
would, and those that survive reconnect.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.models import AlertStatus
from tests.faults.world import GONE_OUT, World, charter, open_world
from tests.support import RedisServer, until

pytestmark = pytest.mark.faults

MEMBERS = 150
ALERTS = 3
PERSISTENT = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]


async def test_no_accepted_alert_is_lost_when_redis_restarts_during_the_fan_out_and_the_sends(
    tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """Three alerts accepted (202), then Redis stopped (SIGKILL or SIGTERM) at a random point of the first
    one's fan-out or, one run in three, once sends are under way, and started again on the same port and
    data: every alert completes, every delivery of each (150 members, SMS and e-mail) is sent, and the
    duplicates the restart caused are counted."""
    rng = random.Random(seed)
    figures.update(seed=seed)
    server = RedisServer(tmp_path / "redis", args=PERSISTENT)
    server.start()
    try:
        async with open_world(server.url, tmp_path / "data", fanout_chunk=10, send_batch_size=20) as world:
            plp = await world.plp("PLP Parc", charter(urgent=["sms", "email"]))
            await world.members(plp, MEMBERS)
            await world.start_processes("urgent", "general", "clock")
            alerts = [await world.alert([plp], f"Alerte {n}: cambriolage rue du Parc.") for n in range(ALERTS)]

            planned = rng.randrange(10, 2 * MEMBERS - 40)  # deliveries of the first alert planned
            sent = rng.randrange(1, ALERTS * MEMBERS) if rng.random() < 1 / 3 else 0  # messages out
            async with _supervised(world) as restarted:
                await until(
                    lambda: world.counts(alerts[0]).get("planned", 0) >= planned and _ledger(world) >= sent,
                    timeout=30,
                    what="the moment to stop Redis",
                )
                statuses = "/".join(world.status(a) for a in alerts)
                moment = f"{statuses} ({_ledger(world)} messages out, {_open(world)} in flight)"
                how, outage = await _restart(server, rng)
                back = time.monotonic()
                for alert_id in alerts:
                    assert await world.finished(alert_id, timeout=30) is AlertStatus.COMPLETED
                recovered = time.monotonic() - back
            await world.vendors.run(world.twilio.callbacks_done(timeout=10))

            records = {alert_id: world.records(alert_id) for alert_id in alerts}
            per_delivery = Counter((s.alert_id, s.ref) for s in world.sent())
            counted = sum(world.counts(a).get("possible_duplicates", 0) for a in alerts)
            figures.update(
                alerts=len(alerts),
                deliveries=sum(len(r) for r in records.values()),
                stopped_by=how,
                outage_s=round(outage, 2),
                restarted_while=moment,
                done_after_restart_s=round(recovered, 2),
                processes_restarted=dict(Counter(restarted)),
                duplicates_observed=world.duplicates_observed(),
                duplicates_counted=counted,
            )

            assert world.redis.zcard(world.runtime.keys.alerts()) == ALERTS
            for alert_id in alerts:
                assert len(records[alert_id]) == 2 * MEMBERS
                for ref, record in records[alert_id].items():
                    assert record["status"] in GONE_OUT, (alert_id, ref, record)
                    assert per_delivery[alert_id, ref] >= 1, (alert_id, ref, record)
                    assert per_delivery[alert_id, ref] - 1 <= int(record.get("possible_duplicates", 0)), (
                        alert_id,
                        ref,
                        record,
                    )
            assert world.duplicates_observed() <= counted
    finally:
        server.stop()


async def _restart(server: RedisServer, rng: random.Random) -> tuple[str, float]:
    """Stop Redis (SIGKILL, or SIGTERM: a clean shutdown), leave it down for a random moment, start it
    again on the same port and data; return how it was stopped and how long it was down."""
    down = time.monotonic()
    how = rng.choice(["SIGKILL", "SIGTERM"])
    await asyncio.to_thread(server.kill if how == "SIGKILL" else server.stop)
    await asyncio.sleep(rng.uniform(0.2, 1.0))  # the length of the outage: the fault itself, not a wait
    await asyncio.to_thread(server.start)
    return how, time.monotonic() - down


@asynccontextmanager
async def _supervised(world: World) -> AsyncIterator[list[str]]:
    """Restart any worker or clock process that dies, as a process supervisor would; yields the lanes restarted."""
    restarted: list[str] = []

    async def watch() -> None:
        while True:
            restarted.extend(world.workers.restart_dead())
            await asyncio.sleep(0.2)  # process deaths publish no event to await

    task = asyncio.create_task(watch())
    try:
        yield restarted
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _ledger(world: World) -> int:
    return len(world.twilio.ledger) + len(world.smtp.messages)


def _open(world: World) -> int:
    return world.twilio.in_flight + world.smtp.in_flight
