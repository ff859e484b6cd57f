"""Providers that fail a quarter of the time: 5xx, resets, 429 with a delay, timeouts, dead numbers.

Promises under test: every delivery still ends sent (or delivered), or failed with a reason
once its attempts are used up; a 429 (refused before processing) never uses up an attempt
and is waited out exactly; an SMS answered too late (it went out) is settled by Twilio's
report instead of being sent again; duplicates are counted; a number that fails for good in a
"first that works" charter falls back to e-mail.

E-mails are not timed out here: a send that may have gone out is tried again only after
``dispatcher.pipeline.retries.UNCERTAIN_WAIT`` (20 s, not a setting), which would triple this test's time.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.faults.world import GONE_OUT, SETTLED, charter, open_world
from tests.simulators.faults import Fault, FaultPlan
from tests.support import RedisServer, until

pytestmark = pytest.mark.faults

EVERY_CHANNEL_MEMBERS = 60
FIRST_THAT_WORKS_MEMBERS = 40
DEAD_NUMBERS = 5
SMS_RATES = {Fault.SERVER_ERROR: 0.10, Fault.THROTTLE: 0.10, Fault.TIMEOUT: 0.05}
EMAIL_RATES = {Fault.SERVER_ERROR: 0.10, Fault.RESET: 0.10}  # SMTP has no 429
COUNTING = (Fault.SERVER_ERROR, Fault.RESET, Fault.TIMEOUT)  # the faults that use up an attempt (429 does not)


async def test_deliveries_end_sent_or_failed_with_a_reason_under_transient_provider_errors(
    fault_redis: RedisServer, tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """With 25% of SMS and 20% of e-mails failing at random (plus scripted cases: a number throttled
    five times, a number and an address failing three times, an SMS answered too late, five dead numbers),
    every delivery ends sent/delivered or failed with a reason, 429s use up no attempt and are waited out,
    duplicates are counted, and dead numbers in a "first that works" charter fall back to e-mail."""
    rng = random.Random(seed)
    figures.update(seed=seed)
    async with open_world(fault_redis.url, tmp_path, provider_timeout=1.0) as world:
        hold = world.settings.provider_timeout + 0.5
        world.twilio.faults = FaultPlan(seed=rng.randrange(2**32), rates=SMS_RATES, hold=hold, retry_after=0.3)
        world.smtp.faults = FaultPlan(seed=rng.randrange(2**32), rates=EMAIL_RATES, hold=hold)
        every = await world.plp("PLP Parc", charter(urgent=["sms", "email"]))
        first_works = await world.plp("PLP Bois", charter(urgent=["sms", "email"], mode="first_that_works"))
        everyone = await world.members(every, EVERY_CHANNEL_MEMBERS)
        fallers = await world.members(first_works, FIRST_THAT_WORKS_MEMBERS, start=EVERY_CHANNEL_MEMBERS)
        members = {m["id"]: m for m in everyone + fallers}

        throttled, email_gives_up, late_sms = rng.sample(everyone, 3)
        sms_gives_up, *dead = rng.sample(fallers, 1 + DEAD_NUMBERS)
        attempts = world.settings.max_attempts
        # Scripted cases (None: that request goes well), so that random faults cannot blur them.
        world.twilio.faults.script[throttled["e164"]] = [Fault.THROTTLE] * (attempts + 2) + [None]
        world.twilio.faults.script[sms_gives_up["e164"]] = [Fault.SERVER_ERROR] * attempts
        world.twilio.faults.script[late_sms["e164"]] = [Fault.TIMEOUT]
        world.smtp.faults.script[email_gives_up["email"]] = [Fault.SERVER_ERROR] * attempts
        world.smtp.faults.script[sms_gives_up["email"]] = [None]
        for member in dead:
            world.twilio.failures[member["e164"]] = (400, 21211, "The 'To' number is not a valid phone number.")
            world.smtp.faults.script[member["email"]] = [None]

        await world.start_processes("urgent", "general", "clock")
        alert = await world.alert([every, first_works], "Vol à la tire au marché, soyez attentifs.")
        await world.finished(alert, timeout=30)
        await world.vendors.run(world.twilio.callbacks_done(timeout=10))
        await until(lambda: world.twilio.in_flight + world.smtp.in_flight == 0, timeout=5, what="late answers")

        shown = await world.deliveries(alert)
        records = world.records(alert)
        sent = world.sent()
        address_of = {
            **{("sms", m["e164"]): m["id"] for m in members.values()},
            **{("email", m["email"]): m["id"] for m in members.values()},
        }
        faults: dict[str, Counter[Fault]] = defaultdict(Counter)
        for injected in world.twilio.injected:
            faults[f"sms:{address_of['sms', injected.key[1]]}"][injected.fault] += 1  # type: ignore[index]
        for injected in world.smtp.injected:
            faults[f"email:{address_of['email', injected.key]}"][injected.fault] += 1
        counted = world.counts(alert).get("possible_duplicates", 0)
        figures.update(
            deliveries=len(records),
            requests=len(world.twilio.received) + len(world.smtp.received),
            sms_faults=dict(Counter(i.fault.value for i in world.twilio.injected)),
            email_faults=dict(Counter(i.fault.value for i in world.smtp.injected)),
            statuses=dict(Counter(r["status"] for r in records.values())),
            gave_up=sum(1 for d in shown.values() if "gave up" in (d["last_error"] or "") and d["status"] == "failed"),
            duplicates_observed=world.duplicates_observed(),
            duplicates_counted=counted,
        )

        # Every delivery ends handed over, or failed with a reason.
        for ref, delivery in shown.items():
            assert delivery["status"] in GONE_OUT or (delivery["status"] == "failed" and delivery["last_error"]), (
                ref,
                delivery,
            )
            assert delivery["status"] in SETTLED

        # Attempts: only 5xx, resets and timeouts use one up; a delivery gives up only when they are used up.
        for ref, record in records.items():
            failures = int(record.get("failures", 0))
            gave_up = record["status"] == "failed" and "gave up" in record.get("last_error", "")
            certain = faults[ref][Fault.SERVER_ERROR] + faults[ref][Fault.RESET]
            assert certain <= failures + gave_up <= certain + faults[ref][Fault.TIMEOUT], (ref, record, faults[ref])
            assert failures < attempts, (ref, record)
            assert shown[ref]["attempts"] >= failures + 1, (ref, shown[ref])
            if gave_up:
                assert sum(faults[ref][f] for f in COUNTING) >= attempts, (ref, record, faults[ref])
        throttled_sms = records[f"sms:{throttled['id']}"]
        assert throttled_sms["status"] == "delivered" and int(throttled_sms.get("failures", 0)) == 0
        assert faults[f"sms:{throttled['id']}"][Fault.THROTTLE] >= attempts + 2

        # A 429 is waited out: the next try comes no sooner than the delay the provider asked for.
        _waited_out(world.twilio.injected, world.twilio.received, world.twilio.faults.retry_after)

        # Attempts used up: failed with the reason; in "first that works", the next channel is tried.
        email_failed = shown[f"email:{email_gives_up['id']}"]
        assert email_failed["status"] == "failed" and f"gave up after {attempts} attempts" in email_failed["last_error"]
        assert shown[f"sms:{sms_gives_up['id']}"]["status"] == "failed"
        assert shown[f"email:{sms_gives_up['id']}"]["status"] in GONE_OUT

        # Dead numbers: failed with the reason, marked unusable, and the member gets the e-mail instead.
        for member in dead:
            sms = shown[f"sms:{member['id']}"]
            assert (sms["status"], sms["last_error"]) == ("failed", "number not valid")
            assert shown[f"email:{member['id']}"]["status"] in GONE_OUT
            seen = await world.member(first_works, member["id"])
            assert seen["unusable"] == {"sms": "number not valid"}
        for member in fallers:  # first that works: the e-mail only when the SMS failed (or may have)
            sms = f"sms:{member['id']}"
            if shown[sms]["status"] in GONE_OUT and not faults[sms][Fault.TIMEOUT]:
                assert f"email:{member['id']}" not in shown, (member, shown[sms])

        # An SMS answered too late went out: Twilio's report settles it, and it is not sent again.
        assert shown[f"sms:{late_sms['id']}"]["status"] == "delivered"
        assert sum(1 for s in sent if s.ref == f"sms:{late_sms['id']}") == 1
        per_delivery = Counter(s.ref for s in sent)
        for ref, times in per_delivery.items():
            assert times - 1 <= int(records[ref].get("possible_duplicates", 0)), (ref, times, records[ref])
        assert world.duplicates_observed() <= counted


def _waited_out(injected: list[Any], received: list[tuple[str, float]], retry_after: float) -> None:
    """Each 429's next request to the same number came at least ``retry_after`` seconds later."""
    for throttle in (i for i in injected if i.fault is Fault.THROTTLE):
        to = throttle.key[1]
        later = [at for dest, at in received if dest == to and at > throttle.at]
        if later:  # a 429 on the last request of an alert has no next one
            assert min(later) - throttle.at >= retry_after - 0.005, (to, min(later) - throttle.at)
