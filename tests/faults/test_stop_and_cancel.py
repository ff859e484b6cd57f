"""STOP and cancel in the middle of an alert, at the providers' real limits, with a backlog of sends.

At 10 SMS per second per Twilio sender and 30 Telegram messages per second (one per second per
chat), an alert to a few hundred members keeps most of its sends waiting for their turn for many
seconds. Promises under test: never after "stop" (once the service has answered a member's STOP,
by SMS through the signed webhook or /stop on Telegram, no request to them reaches a provider) and
cancel means cancel (once the cancel has returned, no request of the alert reaches a provider);
what did not go ends cancelled, with its cause. The simulators' own clocks are the referee: they
note when each request arrived, whatever they answered.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.models import AlertStatus
from tests.faults.world import GONE_OUT, World, charter, open_world
from tests.support import RedisServer, until

pytestmark = pytest.mark.faults

SMS_PER_SECOND = 10  # Twilio, per sender outside +1
TELEGRAM_PER_SECOND = 30  # per bot; 1 per chat
MEMBERS = 300  # 30 s of SMS at that rate, 10 s of Telegram
STOPS = 10  # half by SMS, half on Telegram
CHAT_BASE = 7_000_000
REAL_LIMITS = {
    "limit_sms_per_second": SMS_PER_SECOND,
    "limit_telegram_per_second": TELEGRAM_PER_SECOND,
    "limit_telegram_per_chat_per_second": 1,
    "telegram_webhook_secret": "fault-suite-telegram-secret",
    # 300 members linking their Telegram in a few seconds: the API's own throttles are not under test here.
    "rate_limit_per_token": 0,
    "rate_limit_per_address": 0,
}


async def _neighbourhood(world: World) -> tuple[str, list[dict[str, Any]]]:
    """A PLP whose urgent plan is SMS and Telegram, ``MEMBERS`` members on both; the providers enforce their rates."""
    world.twilio.limit(sms_per_sender=SMS_PER_SECOND)
    world.telegram.limit(per_second=TELEGRAM_PER_SECOND, per_chat=1.0)
    plp = await world.plp("PLP Parc", charter(urgent=["sms", "telegram"]))
    members = await world.members(plp, MEMBERS)
    for start in range(0, MEMBERS, 25):
        group = members[start : start + 25]
        await asyncio.gather(*(world.link_telegram(plp, m["id"], CHAT_BASE + start + i) for i, m in enumerate(group)))
    for i, member in enumerate(members):
        member["chat"] = CHAT_BASE + i
    return plp, members


async def _all_settled(world: World, alert_id: str) -> None:
    def settled() -> bool:
        counts = world.counts(alert_id)
        return counts.get("settled", 0) >= counts.get("planned", 1)

    try:
        await until(settled, timeout=60, what="every delivery to settle")
    except AssertionError:
        raise AssertionError(world.diagnose(alert_id)) from None


def _phases(world: World, alert_id: str) -> dict[str, int]:
    """Deliveries claimed by a worker now, by phase: ``in_flight`` (claimed for a send), ``waiting`` (a retry)."""
    found: dict[str, int] = {}
    for record in world.records(alert_id).values():
        if record["status"] == "sending":
            found[record.get("phase", "")] = found.get(record.get("phase", ""), 0) + 1
    return found


async def test_a_cancel_mid_alert_stops_every_send_waiting_for_its_turn(
    fault_redis: RedisServer, tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """Cancelled through the API while most of its SMS and Telegram messages wait for their turn, an alert to
    300 members sends nothing more once the cancel has returned; what did not go ends cancelled, with the cause."""
    rng = random.Random(seed)
    figures.update(seed=seed)
    async with open_world(fault_redis.url, tmp_path, **REAL_LIMITS) as world:
        plp, _ = await _neighbourhood(world)
        await world.start_processes("urgent", "general", "clock")
        alert = await world.alert([plp], "Cambriolage rue du Parc.")
        at_least = rng.randrange(30, 60)
        await until(lambda: len(world.twilio.messages) >= at_least, timeout=30, what=f"{at_least} SMS")

        phases = _phases(world, alert)
        answered = await world.cancel(alert)
        await _all_settled(world, alert)

        after = world.requests_after(answered)
        records = world.records(alert)
        sent = [s for s in world.sent() if s.alert_id == alert]
        figures.update(
            sms_sent=sum(1 for s in sent if s.channel == "sms"),
            telegram_sent=sum(1 for s in sent if s.channel == "telegram"),
            cancelled=sum(1 for r in records.values() if r["status"] == "cancelled"),
            claimed_at_cancel=phases.get("in_flight", 0),
            retrying_at_cancel=phases.get("waiting", 0),
            requests_after_cancel=len(after),
            latest_after_cancel_s=round(max(at for *_, at in after) - answered, 2) if after else None,
        )
        assert world.status(alert) == AlertStatus.CANCELLED
        assert not after, f"{len(after)} requests reached a provider after the cancel returned: {after[:5]}"
        for ref, record in records.items():
            if record["status"] not in GONE_OUT:
                assert (record["status"], record.get("cause")) == ("cancelled", "alert cancelled"), (ref, record)
        assert figures["cancelled"] >= MEMBERS, "most of the SMS should still have been waiting"


async def test_stop_by_sms_and_on_telegram_mid_alert_stops_every_send_to_those_members(
    fault_redis: RedisServer, tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """Members who text STOP (the signed Twilio webhook) or write /stop to the bot while their messages of an
    alert to 300 wait for their turn get nothing more once the service has answered; the others get theirs."""
    rng = random.Random(seed)
    figures.update(seed=seed)
    async with open_world(fault_redis.url, tmp_path, **REAL_LIMITS) as world:
        plp, members = await _neighbourhood(world)
        await world.start_processes("urgent", "general", "clock")
        alert = await world.alert([plp], "Cambriolage rue du Parc.")
        at_least = rng.randrange(20, 50)
        await until(lambda: len(world.twilio.messages) >= at_least, timeout=30, what=f"{at_least} SMS")

        records = world.records(alert)
        # Half whose SMS a worker has claimed (the sends a late check would let through), half still in line.
        sms = {m["id"]: records[f"sms:{m['id']}"] for m in members}
        claimed = [m for m in members if sms[m["id"]]["status"] == "sending"]
        in_line = sorted((m for m in members if sms[m["id"]]["status"] == "queued"), key=lambda m: str(m["id"]))
        stopping = rng.sample(claimed, min(STOPS // 2, len(claimed)))
        stopping += rng.sample(in_line, STOPS - len(stopping))
        answered: dict[str, float] = {}
        for n, member in enumerate(stopping):
            if n % 2:
                await world.opt_out_by_telegram(member["chat"])
            else:
                await world.opt_out_by_sms(member["e164"])
            answered[member["id"]] = time.time()
        await world.finished(alert, timeout=60)
        await _all_settled(world, alert)

        records = world.records(alert)
        stopped = {m["id"]: m for m in stopping}
        late = [
            (who, to, round(at - answered[m_id], 2))
            for m_id, member in stopped.items()
            for who, to, at in world.requests_after(answered[m_id])
            if to in (member["e164"], str(member["chat"]))
        ]
        cancelled = {ref: r for ref, r in records.items() if r["status"] == "cancelled"}
        figures.update(
            stops=len(stopped),
            claimed_when_chosen=sum(1 for m in stopping if m in claimed),
            cancelled=len(cancelled),
            requests_after_stop=len(late),
        )
        assert world.status(alert) == AlertStatus.COMPLETED
        assert not late, f"requests reached a provider after the STOP was answered (provider, to, s after): {late}"
        for ref, record in records.items():
            member_id = ref.split(":", 1)[1]
            if record["status"] == "cancelled":
                assert member_id in stopped and record.get("cause") == "member opted out", (ref, record)
            else:
                assert record["status"] in GONE_OUT, (ref, record)
        for member in stopping:
            if member in in_line[len(in_line) // 2 :]:  # far back in the line (by id): their SMS cannot have gone
                assert records[f"sms:{member['id']}"]["status"] == "cancelled"
