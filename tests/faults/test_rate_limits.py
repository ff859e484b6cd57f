"""One provider limit shared by urgent and non-urgent work, saturated.

Promises under test: urgent first (no amount of non-urgent work waiting on the same SMS
limit delays an urgent alert beyond the time its own messages need at that rate), and
never late (a send that waits for its turn under the limit does not leave after the
alert's time-to-live).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.models import AlertStatus, Urgency
from tests.faults.world import GONE_OUT, HOP, charter, open_world
from tests.support import RedisServer, post_json, until

pytestmark = pytest.mark.faults

SMS_PER_SECOND = 20


async def test_an_urgent_alert_is_not_delayed_by_a_non_urgent_sms_backlog_under_the_shared_limit(
    fault_redis: RedisServer, tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """While 300 non-urgent SMS wait on a limit of 20 per second (15 s of work), the SMS of an urgent alert
    to 20 to 40 members all leave within the time they need at that rate plus 5 s (the backlog needs 15 s)."""
    rng = random.Random(seed)
    figures.update(seed=seed)
    async with open_world(fault_redis.url, tmp_path, limit_sms_per_second=SMS_PER_SECOND) as world:
        quiet = await world.plp("PLP Bois", charter(urgent=["sms"]))
        busy = await world.plp("PLP Parc", charter(urgent=["sms"]))
        await world.members(quiet, 300)
        urgent_members = rng.randrange(20, 41)
        await world.members(busy, urgent_members, start=1000)
        await world.start_processes("urgent", "general", "clock")
        backlog = await world.alert([quiet], "Conseil de prévention: fermez vos portes.", urgency="non_urgent")
        await until(lambda: len(world.twilio.ledger) >= rng.randrange(10, 60), timeout=30, what="the backlog to flow")

        posted = time.time()
        urgent = await world.alert([busy], "Cambriolage en cours rue du Parc.")
        assert await world.finished(urgent, timeout=30) is AlertStatus.COMPLETED
        urgent_sms = [s for s in world.sent() if s.alert_id == urgent]
        took = max(s.received_at for s in urgent_sms) - posted
        backlog_meanwhile = sum(1 for s in world.sent() if s.alert_id == backlog and s.received_at > posted)
        await post_json(world.client, f"/v1/alerts/{backlog}/cancel", None, headers=world.auth("police"), expect=200)

        need = urgent_members / SMS_PER_SECOND
        figures.update(
            urgent_sms=len(urgent_sms),
            need_s=round(need, 2),
            took_s=round(took, 2),
            backlog_sms_meanwhile=backlog_meanwhile,
        )
        assert len(urgent_sms) == urgent_members
        # Generous: the API, the fan-out and a worker's pick-up come on top of the paced sends.
        assert took <= need + 5.0, f"urgent SMS took {took:.2f} s; at {SMS_PER_SECOND}/s they need {need:.2f} s"


async def test_a_send_waiting_for_its_turn_under_the_limit_does_not_leave_after_the_ttl(
    fault_redis: RedisServer, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """An urgent alert with a 2 s time-to-live to 80 members, at 20 SMS per second: the sends whose turn
    comes after the TTL expire instead of going out late."""
    async with open_world(fault_redis.url, tmp_path, limit_sms_per_second=SMS_PER_SECOND) as world:
        plp = await world.plp("PLP Parc", charter(urgent=["sms"]))
        await world.members(plp, 80)
        await world.start_processes("urgent", "general", "clock")
        alert = await world.accept([plp], "Suspect en fuite rue du Parc.", ttl_seconds=2, urgency=Urgency.URGENT)
        await world.finished(alert, timeout=30)
        expires = world.expires_at(alert)
        sent = [s for s in world.sent() if s.alert_id == alert]
        late = [s for s in sent if s.received_at > expires + HOP]
        records = world.records(alert)
        figures.update(
            sent=len(sent),
            expired=sum(1 for r in records.values() if r["status"] == "expired"),
            sent_after_ttl=len(late),
            latest_after_ttl_s=round(max(s.received_at for s in sent) - expires, 2) if sent else None,
        )
        assert all(r["status"] in GONE_OUT | {"expired"} for r in records.values())
        assert sent and len(sent) < len(records), "the limit should let some SMS out before the TTL, not all"
        assert not late, f"{len(late)} SMS left after the TTL, up to {figures['latest_after_ttl_s']} s late"
