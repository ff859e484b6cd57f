"""Provider limits kept, not discovered by refusals: every message to a vendor, answers included.

The simulators enforce the providers' real rates on what they receive, on their own clocks (Twilio
10 SMS a second per sender, Telegram 30 a second per bot and one a second per chat), and answer a
request beyond them with a 429; Telegram drops, without a word, an answer a webhook gave beyond
them. Promises under test: with three SMS senders and a backlog of claimed sends, every message
goes out, round the senders, and what a provider refused is sent again; 171 members linking their
chats within a few seconds all get their confirmation, from a worker in its turn, none lost.

The sends are paced where they leave (``dispatcher.storage.limits``): one interval apart at the moment
each is claimed. What a simulator sees adds the jitter between that moment and the request's
arrival (an event loop or a process held up, on a loaded host). Twilio's per-sender interval
(100 ms) absorbs most of it, Telegram's (33 ms at 30 a second) less: on a loaded 2-core host the
simulators still refuse a few sends (0 to 22 of 240 per provider in the runs so far, against 24 %
before departures were paced). A refused send is retried after ``retry_after``; the figures say
how many, and the tests bound them at 10 % of the messages, far below an unpaced limiter's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.models import AlertStatus, Language
from dispatcher.core.wording import Words, say
from tests.faults.world import GONE_OUT, World, charter, open_world
from tests.support import RedisServer, until

# python-telegram-bot 22 warns, when it builds a RetryAfter (on every 429), that retry_after will
# become a timedelta; the channel reads both forms.
pytestmark = [
    pytest.mark.faults,
    pytest.mark.filterwarnings(
        "ignore:Deprecated since version v22.2. In a future major version attribute .retry_after."
        ":telegram.warnings.PTBDeprecationWarning"
    ),
]

SMS_PER_SENDER = 10
TELEGRAM_PER_SECOND = 30
SENDERS = ("+3225550101", "+3225550102", "+3225550103")
CHAT_BASE = 8_000_000
LIMITS: dict[str, Any] = {
    "limit_sms_per_second": SMS_PER_SENDER,
    "limit_telegram_per_second": TELEGRAM_PER_SECOND,
    "limit_telegram_per_chat_per_second": 1,
    "twilio_sms_from": SENDERS,
    "telegram_webhook_secret": "fault-suite-telegram-secret",
    "rate_limit_per_token": 0,  # the API's own throttles are not under test here
    "rate_limit_per_address": 0,
}


def _enforce_real_rates(world: World) -> None:
    world.twilio.limit(sms_per_sender=SMS_PER_SENDER)
    world.telegram.limit(per_second=TELEGRAM_PER_SECOND, per_chat=1.0)


async def _link(world: World, plp: str, members: list[dict[str, Any]]) -> list[int]:
    """Every member opens their Telegram link at once (the coordinator issued them); their chat ids."""
    links = await asyncio.gather(*(world.telegram_link_of(plp, m["id"]) for m in members))
    chats = [CHAT_BASE + i for i in range(len(members))]
    answers = await asyncio.gather(*(world.telegram_says(chat, link) for chat, link in zip(chats, links, strict=True)))
    assert all(status == 200 for status, _ in answers)
    return chats


async def test_171_chats_linked_within_seconds_all_get_their_confirmation_in_turn_none_lost(
    fault_redis: RedisServer, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """171 members open their Telegram link within a few seconds: each chat gets its confirmation once, from a
    worker (none in a webhook's reply), paced under the bot's 30 a second; any the provider refused was sent
    again."""
    async with open_world(fault_redis.url, tmp_path, **LIMITS) as world:
        _enforce_real_rates(world)
        plp = await world.plp("PLP Parc", charter(urgent=["telegram"]))
        members = await world.members(plp, 171)
        await world.start_processes("urgent", "general", "clock")

        chats = await _link(world, plp, members)

        def confirmed() -> dict[int, int]:
            texts = [c for c in world.telegram.calls("sendMessage") if c.status == 200]
            found: dict[int, int] = {}
            for call in texts:
                found[int(call.params["chat_id"])] = found.get(int(call.params["chat_id"]), 0) + 1
            return found

        await until(lambda: len(confirmed()) == len(chats), timeout=60, what="every confirmation")
        sent = [c for c in world.telegram.calls("sendMessage") if c.status == 200]
        span = max(c.received_at for c in sent) - min(c.received_at for c in sent)
        figures.update(
            chats=len(chats),
            confirmations=len(sent),
            refused_for_rate=world.telegram.refused_for_rate,
            via_webhook=sum(1 for c in world.telegram.ledger if c.via_webhook),
            span_s=round(span, 2),
        )
        assert set(confirmed()) == set(chats) and set(confirmed().values()) == {1}
        assert {c.params["text"] for c in sent} <= {say(Words.TELEGRAM_LINKED, language) for language in Language}
        assert not any(c.via_webhook for c in world.telegram.ledger), "an answer went out in a webhook's reply"
        assert world.telegram.refused_for_rate <= len(chats) // 10  # the jitter after departure, retried
        assert span >= (len(chats) - 2) / TELEGRAM_PER_SECOND  # paced, not a burst the provider would refuse


async def test_an_alert_at_the_real_limits_with_three_senders_gets_every_message_out_round_the_senders(
    fault_redis: RedisServer, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """An urgent alert to 240 members on SMS (three senders at 10 a second each) and Telegram, sent while a
    non-urgent backlog waits on the same limits: every message goes out, the load goes round the three senders,
    and the few sends a provider refused (the jitter after departure) were sent again."""
    async with open_world(fault_redis.url, tmp_path, **LIMITS) as world:
        _enforce_real_rates(world)
        plp = await world.plp("PLP Parc", charter(urgent=["sms", "telegram"]))
        members = await world.members(plp, 240)
        quiet = await world.plp("PLP Bois", charter(urgent=["sms"]))
        await world.members(quiet, 150, start=1000)
        await world.start_processes("urgent", "general", "clock")
        await _link(world, plp, members)

        backlog = await world.alert([quiet], "Conseil: fermez vos fenêtres.", urgency="non_urgent")
        await until(lambda: len(world.twilio.ledger) >= 20, timeout=30, what="the backlog to flow")
        alert = await world.alert([plp], "Cambriolage rue du Parc, voiture grise 1-ABC-123.")
        assert await world.finished(alert, timeout=90) is AlertStatus.COMPLETED
        assert await world.finished(backlog, timeout=90) is AlertStatus.COMPLETED

        records = world.records(alert)
        sms = [s for s in world.sent() if s.alert_id == alert and s.channel == "sms"]
        per_sender = {sender: 0 for sender in SENDERS}
        for message in world.twilio.messages:
            per_sender[message.from_] = per_sender.get(message.from_, 0) + 1
        took = max(s.received_at for s in world.sent() if s.alert_id == alert) - min(
            s.received_at for s in world.sent() if s.alert_id == alert
        )
        figures.update(
            deliveries=len(records),
            twilio_refused=world.twilio.refused_for_rate,
            telegram_refused=world.telegram.refused_for_rate,
            per_sender=per_sender,
            alert_took_s=round(took, 2),
        )
        assert all(r["status"] in GONE_OUT for r in records.values())
        assert len(sms) == 240
        assert world.twilio.refused_for_rate <= len(members) // 10  # the jitter after departure, retried
        assert world.telegram.refused_for_rate <= len(members) // 10
        assert min(per_sender.values()) > 0  # the load went round the three senders
