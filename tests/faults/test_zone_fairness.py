"""One police zone's zone-wide burst never holds another urgent alert behind it, in another zone or its own.

Zone A's police send an urgent alert to 20,000 members: at Twilio's real rate (10 SMS a second
from one sender) that is over half an hour of sends, 80 send jobs waiting in the urgent lane.
A second later zone B's police send one to their PLP's 50 members, then zone A's police one to a
neighbouring PLP of 50 of their own. The first SMS of each must leave as
soon as on an idle service, give or take the provider's turns that A already holds
(``RESERVE_AHEAD``, the seconds of turns an urgent send may book ahead): each urgent alert's send
jobs wait in a queue of their own, the workers take those queues in turn, and never sit on a job
of one whose batches already fill their process. The rest of B's SMS then get their share of the
sender's turns, not a fiftieth: each alert's sends ask for turns together
(``dispatcher.storage.limits.Askers``). Measured against the same alert on the same service, idle, in the same run.
The deployment is the default one: an urgent worker, a general worker and the clock.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.models import AlertStatus
from dispatcher.storage.limits import RESERVE_AHEAD
from tests.faults.world import World, charter, open_world
from tests.support import RedisServer, until

pytestmark = pytest.mark.faults

SMS_PER_SECOND = 10  # Twilio, per sender outside +1
ZONE_A, ZONE_B = "5340", "5341"
BURST = 20_000  # zone A's zone-wide alert
SMALL = 50  # zone B's PLP
#: Seconds from an urgent alert's 202 to its first SMS at the provider that an idle service keeps to (on a loaded
#: CI machine): the bound both of B's alerts are held to, B's behind A's burst with A's booked turns added.
IDLE_BOUND = 2.0
#: How many times longer than idle B's 50 SMS may take behind A's burst: three alerts ask for the sender's turns
#: at once, each from at most two worker processes, one asker per alert and process: B gets a sixth at least.
FAIR_SHARE = 6


def _first_sent(world: World, alert_id: str) -> float | None:
    """When the provider received the alert's first SMS (Unix time), if it did."""
    times = [sent.received_at for sent in world.sent() if sent.alert_id == alert_id]
    return min(times) if times else None


def _last_sent(world: World, alert_id: str) -> float:
    return max(sent.received_at for sent in world.sent() if sent.alert_id == alert_id)


async def _first_send_after_posting(world: World, plp: str, who: str) -> tuple[str, float]:
    """Post an alert to ``plp`` as ``who``; return its id and the seconds from its 202 to its first SMS at the
    provider."""
    posted = time.time()
    alert = await world.alert([plp], "Cambriolage rue du Parc, voiture grise 1-ABC-123.", who=who)
    first = await until(lambda: _first_sent(world, alert), timeout=120, what=f"the first SMS of alert {alert}")
    return alert, first - posted


async def test_a_zone_wide_burst_delays_no_other_urgent_alert_in_another_zone_or_its_own(
    fault_redis: RedisServer, tmp_path: Path, figures: dict[str, Any]
) -> None:
    async with open_world(
        fault_redis.url,
        tmp_path / "data",
        limit_sms_per_second=SMS_PER_SECOND,
        rate_limit_per_token=0,
        rate_limit_per_address=0,
    ) as world:
        world.twilio.limit(sms_per_sender=SMS_PER_SECOND)
        big = await world.plp("PLP Zone A", charter(urgent=["sms"]), zone=ZONE_A)
        small = await world.plp("PLP Zone B", charter(urgent=["sms"]), zone=ZONE_B)
        neighbour = await world.plp("PLP Zone A, its neighbour", charter(urgent=["sms"]), zone=ZONE_A)
        await world.many_members(big, BURST)
        await world.many_members(small, SMALL, start=BURST)
        await world.many_members(neighbour, SMALL, start=BURST + SMALL)
        zone_b = await world.police_of(ZONE_B)
        await world.start_processes("urgent", "general", "clock")

        idle_alert, idle = await _first_send_after_posting(world, small, zone_b)
        assert await world.finished(idle_alert, timeout=60) is AlertStatus.COMPLETED
        idle_done = _last_sent(world, idle_alert) - _first_sent(world, idle_alert)  # type: ignore[operator]

        burst = await world.alert([big], "Alerte zone A: cambriolages en série.")
        await until(lambda: _first_sent(world, burst), timeout=60, what="zone A's burst to start sending")
        backlog_alert, behind_burst = await _first_send_after_posting(world, small, zone_b)
        waiting = sum(queue.count for queue in world.runtime.alert_queues(ZONE_A))
        same_zone_alert, same_zone = await _first_send_after_posting(world, neighbour, "police")
        assert await world.finished(backlog_alert, timeout=60) is AlertStatus.COMPLETED
        assert await world.finished(same_zone_alert, timeout=60) is AlertStatus.COMPLETED
        backlog_done = _last_sent(world, backlog_alert) - _first_sent(world, backlog_alert)  # type: ignore[operator]
        burst_sent = sum(1 for sent in world.sent() if sent.alert_id == burst)
        await world.cancel(burst)
        assert await world.finished(burst, timeout=60) is AlertStatus.CANCELLED

        figures.update(
            idle_first_send_s=round(idle, 2),
            behind_burst_first_send_s=round(behind_burst, 2),
            same_zone_first_send_s=round(same_zone, 2),
            idle_first_to_last_send_s=round(idle_done, 1),
            behind_burst_first_to_last_send_s=round(backlog_done, 1),
            zone_a_jobs_waiting=waiting,
            zone_a_sent_meanwhile=burst_sent,
        )
        assert waiting > 10, "zone A's burst should still have had a backlog of send jobs"
        assert idle <= IDLE_BOUND
        assert behind_burst <= IDLE_BOUND + RESERVE_AHEAD
        assert same_zone <= IDLE_BOUND + RESERVE_AHEAD  # nor behind its own zone's burst: each alert takes turns
        # and the rest of B's sends get a fair share of the sender's turns: in each worker process each alert asks
        # for turns with one caller
        assert backlog_done <= FAIR_SHARE * idle_done
