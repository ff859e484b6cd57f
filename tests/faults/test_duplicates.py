"""Every possible duplicate counted, and only those: providers that take a message, then fail to say so.

Promise under test: once, not twice. A member receives an alert once per channel; a duplicate
is only ever a resend after a send the provider may have taken, and each such resend is
counted (``possible_duplicates``: per delivery, in the alert's counts, in ``plp alert watch``).

Each test sends one urgent alert to 300 members on SMS (Twilio), e-mail (SMTP) and Telegram:
900 deliveries, a backlog at Telegram's 30 messages a second, each provider failing a fifth of
the requests at random, and reads the simulators' ledgers against the service's counts.

- Faults after the provider took the message (the connection closed, a 5xx, no answer in
  time): every copy a member got beyond the first is counted, per delivery and per vendor.
  Twilio's report of an SMS it took settles the delivery before any retry: no SMS is sent
  again after a send in doubt.
- Faults before the provider took the message (a 503 or a 451, a 429, an SMTP connection
  closed at the RCPT): no send in doubt is counted.

``/metrics`` tells the two causes of a count apart (``plp_possible_duplicates_total``):
``in_doubt``, a resend after such a failure, and ``taken_over``, a send taken over from a worker
whose lease ran out during it. On a loaded machine a worker can stall past the 3 s lease of
these tests while its send is under way: the send then goes twice, and is counted as such.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.world import GONE_OUT, World, charter, open_world
from tests.simulators.faults import Fault, FaultPlan
from tests.support import RedisServer, get_json, post_json, until

pytestmark = pytest.mark.faults

MEMBERS = 300
CHANNELS = ("sms", "email", "telegram")
WEBHOOK_SECRET = "telegram-secret-duplicates"
SETTINGS = {
    "telegram_bot_username": "plp_bot",
    "telegram_webhook_secret": WEBHOOK_SECRET,
    # 300 Telegram links issued in seconds from one address: the API's own limits have their tests.
    "rate_limit_per_token": 0,
    "rate_limit_per_address": 0,
}

#: A fifth of the requests fail, before or after the provider takes the message. SMTP has no 429, and
#: no 5xx after the data (its reply to the data is the server's word); an HTTP connection closed once
#: the request was read is left out for Twilio (it would only add the 20 s wait for a report).
TAKEN_AND_NOT = {
    "sms": {
        Fault.SERVER_ERROR: 0.04,
        Fault.THROTTLE: 0.03,
        Fault.TAKEN_THEN_RESET: 0.05,
        Fault.TAKEN_THEN_ERROR: 0.05,
        Fault.TIMEOUT: 0.03,
    },
    "email": {Fault.SERVER_ERROR: 0.05, Fault.RESET: 0.04, Fault.TAKEN_THEN_RESET: 0.07, Fault.TIMEOUT: 0.04},
    "telegram": {
        Fault.SERVER_ERROR: 0.03,
        Fault.THROTTLE: 0.02,
        Fault.RESET: 0.02,
        Fault.TAKEN_THEN_RESET: 0.05,
        Fault.TAKEN_THEN_ERROR: 0.05,
        Fault.TIMEOUT: 0.03,
    },
}
#: A fifth of the requests refused before the provider takes the message, in ways the client can tell.
NOT_TAKEN = {
    "sms": {Fault.SERVER_ERROR: 0.12, Fault.THROTTLE: 0.08},
    "email": {Fault.SERVER_ERROR: 0.10, Fault.RESET: 0.10},  # SMTP: a 451 to the RCPT, or closed at the RCPT
    "telegram": {Fault.SERVER_ERROR: 0.12, Fault.THROTTLE: 0.08},
}


@dataclass
class Outcome:
    """One alert's deliveries as the API shows them, and the copies of each message the providers took."""

    alert_id: str
    shown: dict[str, dict[str, Any]]  # ref -> the delivery (GET /v1/alerts/{id}/deliveries)
    copies: Counter[str]  # ref -> how many times its message is in the provider's ledger

    def vendor(self, channel: str) -> dict[str, int]:
        refs = [ref for ref in self.shown if ref.startswith(f"{channel}:")]
        return {
            "observed": sum(max(0, self.copies[ref] - 1) for ref in refs),
            "counted": sum(self.shown[ref]["possible_duplicates"] for ref in refs),
        }


async def test_every_copy_beyond_the_first_is_counted_when_providers_fail_after_taking_the_message(
    fault_redis: RedisServer, tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """With a fifth of the requests to Twilio, the mail server and the Bot API failing, more than half of them
    after the provider took the message, every delivery ends handed over or failed with a reason; per delivery
    and per vendor the copies beyond the first in the ledgers are counted; no SMS is sent again after a send in
    doubt (Twilio's report comes first); the alert's counts and ``plp alert watch`` show the total."""
    figures.update(seed=seed)
    async with open_world(fault_redis.url, tmp_path, **SETTINGS) as world:
        outcome = await _send(world, TAKEN_AND_NOT, seed=seed)
        by_vendor = {channel: outcome.vendor(channel) for channel in CHANNELS}
        figures.update(_figures(world, outcome), **{f"{c}_duplicates": v for c, v in by_vendor.items()})

        causes = await _counted_by_cause(world)
        figures.update(counted_by_cause=causes)

        _ended(outcome)
        for ref, delivery in outcome.shown.items():  # every copy beyond the first is counted
            assert outcome.copies[ref] - 1 <= delivery["possible_duplicates"], (ref, outcome.copies[ref], delivery)
        assert by_vendor["sms"]["observed"] == sum(world.twilio.duplicates().values())
        assert by_vendor["email"]["observed"] == sum(world.smtp.duplicates().values())
        # the answers to members (links confirmed) are retried when in doubt too, and counted nowhere: not here
        assert by_vendor["telegram"]["observed"] == sum(world.telegram.duplicates(answers=False).values())
        for channel, found in by_vendor.items():
            assert found["observed"] <= found["counted"], (channel, found)
            assert found["counted"] == causes[channel, "in_doubt"] + causes[channel, "taken_over"], (channel, causes)
        assert causes["sms", "in_doubt"] == 0  # Twilio's reports settled every SMS in doubt before its retry
        assert causes["email", "in_doubt"] > 0 and causes["telegram", "in_doubt"] > 0  # the faults made doubts

        total = sum(found["counted"] for found in by_vendor.values())
        view = await get_json(world.client, f"/v1/alerts/{outcome.alert_id}", headers=world.auth("police"))
        assert view["counts"]["possible_duplicates"] == total
        watched = await _plp_alert_watch(world, outcome.alert_id, tmp_path)
        assert f"{total} sent again after a send in doubt (may have arrived twice)" in watched, watched


async def test_faults_before_the_provider_takes_the_message_count_no_duplicate(
    fault_redis: RedisServer, tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """With a fifth of the requests refused before the provider takes the message (503, 451, 429, an SMTP
    connection closed at the RCPT), every delivery ends handed over or failed with a reason, and no resend is
    counted as one after a send in doubt: per vendor, what is counted is the sends taken over from stalled
    workers, and covers every message that went twice."""
    figures.update(seed=seed)
    # A bound no send reaches on this machine: a timeout here would be a doubt of its own.
    async with open_world(fault_redis.url, tmp_path, **SETTINGS, provider_timeout=10.0) as world:
        outcome = await _send(world, NOT_TAKEN, seed=seed)
        figures.update(_figures(world, outcome), **{f"{c}_duplicates": outcome.vendor(c) for c in CHANNELS})

        causes = await _counted_by_cause(world)
        figures.update(counted_by_cause=causes)

        _ended(outcome)
        assert sum(len(sim.injected) for _, sim in _sims(world)) > MEMBERS // 2  # the faults did happen
        for channel in CHANNELS:
            assert causes[channel, "in_doubt"] == 0, (channel, causes)
            found = outcome.vendor(channel)  # what is counted comes from stalled workers, and covers what went twice
            assert found["observed"] <= found["counted"] == causes[channel, "taken_over"], (channel, found, causes)


async def _send(world: World, rates: dict[str, dict[Fault, float]], *, seed: int) -> Outcome:
    """300 members with a phone, an e-mail address and a linked Telegram chat; the providers failing at
    ``rates``; one urgent alert sent to them by real workers until it is over."""
    hold = world.settings.provider_timeout + 0.5
    world.twilio.faults = FaultPlan(seed=seed, rates=rates["sms"], hold=hold, retry_after=0.3)
    world.smtp.faults = FaultPlan(seed=seed + 1, rates=rates["email"], hold=hold)
    world.telegram.faults = FaultPlan(seed=seed + 2, rates=rates["telegram"], hold=hold, retry_after=1)
    plp = await world.plp("PLP Parc", charter(urgent=list(CHANNELS)))
    members = await world.members(plp, MEMBERS)
    await _link_telegram(world, plp, {member["id"]: 700_000 + i for i, member in enumerate(members)})

    await world.start_processes("urgent", "general", "clock")
    alert_id = await world.alert([plp], "Cambriolage rue du Parc, voiture grise 1-ABC-123.")
    await world.finished(alert_id, timeout=180)
    await world.vendors.run(world.twilio.callbacks_done(timeout=10))
    await until(lambda: world.twilio.in_flight + world.smtp.in_flight == 0, timeout=15, what="late answers")
    return Outcome(alert_id, await world.deliveries(alert_id), _copies(world, alert_id))


def _ended(outcome: Outcome) -> None:
    """Every delivery ends handed over, or failed with a reason."""
    assert len(outcome.shown) == len(CHANNELS) * MEMBERS
    for ref, delivery in outcome.shown.items():
        assert delivery["status"] in GONE_OUT or (delivery["status"] == "failed" and delivery["last_error"]), (
            ref,
            delivery,
        )


async def _counted_by_cause(world: World) -> Counter[tuple[str, str]]:
    """``plp_possible_duplicates_total`` from ``GET /metrics``, by (channel, cause)."""
    response = await world.client.get("/metrics")
    assert response.status == 200
    [family] = [f for f in text_string_to_metric_families(await response.text()) if f.name == "plp_possible_duplicates"]
    return Counter({(s.labels["channel"], s.labels["cause"]): int(s.value) for s in family.samples})


def _sims(world: World) -> list[tuple[str, Any]]:
    return [("sms", world.twilio), ("email", world.smtp), ("telegram", world.telegram)]


def _figures(world: World, outcome: Outcome) -> dict[str, Any]:
    return {
        "deliveries": len(outcome.shown),
        "faults": {channel: dict(Counter(i.fault.value for i in sim.injected)) for channel, sim in _sims(world)},
        "statuses": dict(Counter(f"{ref.split(':')[0]}:{d['status']}" for ref, d in outcome.shown.items())),
    }


async def _link_telegram(world: World, plp: str, chats: dict[str, int]) -> None:
    """Each member opens their deep link in Telegram (``/start <token>``), a few at a time."""
    url = f"{world.base}/v1/webhooks/telegram"
    gate = asyncio.Semaphore(16)

    async def link(member_id: str, chat: int) -> None:
        async with gate:
            path = f"/v1/plps/{plp}/members/{member_id}/telegram-link"
            issued = await post_json(world.client, path, None, headers=world.auth(), expect=201)
            status, answer = await world.vendors.run(
                world.telegram.member_sends(url, chat, issued["start_command"], secret=WEBHOOK_SECRET)
            )
            assert status == 200, answer

    await asyncio.gather(*(link(member_id, chat) for member_id, chat in chats.items()))


def _copies(world: World, alert_id: str) -> Counter[str]:
    """How many times each delivery's message is in its provider's ledger, by ref (``World.sent``: SMS and calls
    by their callback URL, e-mails by their Message-ID, Telegram messages by their "received" button)."""
    return Counter(sent.ref for sent in world.sent() if sent.alert_id == alert_id)


async def _plp_alert_watch(world: World, alert_id: str, tmp_path: Path) -> str:
    """``plp alert watch <id>`` as a police officer types it, against the world's web app; its output."""
    env = {
        **os.environ,
        "PLP_API_URL": world.base,
        "PLP_TOKEN": world.tokens["police"],
        "PLP_DATA_DIR": str(tmp_path / "cli"),
        "NO_COLOR": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dispatcher.cli", "alert", "watch", alert_id,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()
