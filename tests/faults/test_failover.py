"""Redis' primary killed under a running service that finds it through Sentinel.

A primary, a replica and three sentinels of the test's own (``redis-server --sentinel``, a
primary taken for dead after one second without an answer); the web, two workers and the clock
connect through the sentinels (``PLP_REDIS_SENTINELS``), and an alert's 202 waits for the
replica (``PLP_REDIS_WAIT_REPLICAS=1``). Round after round, the primary is SIGKILLed during an
alert's fan-out or during its sends; the sentinels promote the replica; the dead server is
started again and rejoins as the new primary's replica, to be promoted at a later round.

Promise under test: every alert that got a 202 completes, every delivery of each is sent, and
the processes carry on through every failover without a restart. Replication is asynchronous:
what the primary acknowledged in its last instant and never sent to the replica is lost with
it (the figures give the bytes the replica had not acknowledged at each kill, as of
its last acknowledgement, at most a second old). A delivery whose "sent" was lost that
way is sent again, and nothing remembers the first copy to count it: the figures compare the
duplicates the simulators saw with those counted.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.models import AlertStatus
from tests.faults.world import GONE_OUT, World, charter, open_world
from tests.support import SentinelGroup, until

pytestmark = [
    pytest.mark.faults,
    # redis-py's asyncio Sentinel connections can drop a connection unclosed when a failover interrupts their
    # connect (redis/redis-py#3259, #3201: the library's, one per interrupted connect, not growing; traced with
    # tracemalloc to the web app's sentinel clients asking for the primary, ``discover_master``). The garbage
    # collector then warns from whichever finalizer of the dropped objects runs first: the StreamWriter's, the
    # socket's, or redis-py's Connection's. Only those warnings are ignored (the warnings themselves, not pytest's
    # "unraisable" report of them: raised as an error inside __del__, one would cut the cleanup short), and the
    # test collects its garbage before it ends, so that none surfaces in a later test.
    pytest.mark.filterwarnings("ignore:unclosed <StreamWriter:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:unclosed Connection <redis.asyncio:ResourceWarning"),
]

MEMBERS = 100
FAILOVERS = 4
ALERTS_PER_ROUND = 2


async def test_every_accepted_alert_completes_through_failovers_of_the_primary_during_fan_outs_and_sends(
    tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """Four failovers, alternately during an alert's fan-out and during its sends: every alert (two a round,
    100 members, SMS and e-mail) completes with every delivery sent; no worker or clock process restarted."""
    rng = random.Random(seed)
    figures.update(seed=seed)
    group = SentinelGroup(tmp_path / "sentinels")
    group.start()
    try:
        async with open_world(
            "redis://",
            tmp_path / "data",
            redis_sentinels=group.addresses,
            redis_wait_replicas=1,
            fanout_chunk=10,
            send_batch_size=20,
        ) as world:
            plp = await world.plp("PLP Parc", charter(urgent=["sms", "email"]))
            await world.members(plp, MEMBERS)
            await world.start_processes("urgent", "general", "clock")
            processes = {p.pid for p in world.workers.alive()}
            alerts: list[str] = []
            rounds = []
            for n in range(FAILOVERS):
                during = "fan-out" if n % 2 == 0 else "sends"
                out_before = _ledger(world)
                batch = [await world.alert([plp], f"Alerte {n}.{k}: cambriolage rue du Parc.") for k in range(2)]
                alerts += batch
                if during == "fan-out":
                    planned = rng.randrange(10, 2 * MEMBERS - 40)
                    await until(
                        lambda: world.counts(batch[0]).get("planned", 0) >= planned,  # noqa: B023
                        timeout=30,
                        what="the fan-out under way",
                    )
                else:
                    sent = out_before + rng.randrange(1, 2 * MEMBERS)
                    await until(lambda: _ledger(world) >= sent, timeout=30, what="the sends under way")  # noqa: B023
                unacknowledged = group.replication_lag()  # as the replica last acknowledged (once a second)
                dead, switched = await group.fail_over()
                promoted = time.monotonic()
                for alert_id in batch:
                    assert await world.finished(alert_id, timeout=60) is AlertStatus.COMPLETED, alert_id
                rounds.append(
                    {
                        "during": during,
                        "unacknowledged_bytes_at_kill": unacknowledged,
                        "promoted_after_s": round(switched, 2),
                        "done_after_promotion_s": round(time.monotonic() - promoted, 2),
                    }
                )
                await asyncio.to_thread(dead.start)  # back as the new primary's replica, the next round's spare
                await until(lambda: group.settled(dead), timeout=30, what="the old primary to rejoin as replica")  # noqa: B023
            await world.vendors.run(world.twilio.callbacks_done(timeout=10))

            per_delivery = Counter((s.alert_id, s.ref) for s in world.sent())
            counted = sum(world.counts(a).get("possible_duplicates", 0) for a in alerts)
            records = {alert_id: world.records(alert_id) for alert_id in alerts}
            figures.update(
                alerts=len(alerts),
                deliveries=sum(len(r) for r in records.values()),
                rounds=rounds,
                duplicates_observed=world.duplicates_observed(),
                duplicates_counted=counted,
            )
            assert {p.pid for p in world.workers.alive()} == processes  # none died: every one rode the failovers
            assert world.redis.zcard(world.runtime.keys.alerts()) == len(alerts)
            for alert_id in alerts:
                assert len(records[alert_id]) == 2 * MEMBERS
                for ref, record in records[alert_id].items():
                    assert record["status"] in GONE_OUT, (alert_id, ref, record)
                    assert per_delivery[alert_id, ref] >= 1, (alert_id, ref, record)
    finally:
        group.stop()
        gc.collect()  # under this test's filters: what the library dropped (see pytestmark) is finalized here


def _ledger(world: World) -> int:
    return len(world.twilio.ledger) + len(world.smtp.messages)
