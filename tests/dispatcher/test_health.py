"""The service's health as ``plp status``, ``/v1/status`` and ``/metrics`` assess it: a provider failing.

The world of ``tests.world``: the real vendor libraries against the Twilio, SMTP and Telegram simulators.
"""

from __future__ import annotations

from pathlib import Path

from dispatcher.operations import metrics
from dispatcher.operations.health import Concern, problems
from dispatcher.operations.queues import PROVIDER_FAILING_STREAK, ProviderHealth, queue_health
from dispatcher.storage.runtime import Runtime
from tests.simulators.twilio import Failure
from tests.support import run_queued
from tests.world import PEOPLE, open_world

PHONES = ("+32470111111", "+32470222222", "+32470444444")  # every member of the world with a phone
assert len(PHONES) == sum(1 for person in PEOPLE.values() if "phone" in person)


def _sms(runtime: Runtime) -> ProviderHealth:
    return next(p for p in queue_health(runtime).providers if (p.channel, p.provider) == ("sms", "twilio"))


async def test_a_provider_failing_call_after_call_is_a_problem_until_it_answers(redis_url: str, tmp_path: Path) -> None:
    """Twilio answering 500 to every SMS: after three calls in a row it is failing (``provider_failing``, with the
    kind of error, in the status and the metrics); its next answer sets it right."""
    async with open_world(redis_url, tmp_path) as world:
        for phone in PHONES:
            world.twilio.failures[phone] = Failure(500, 20500, "Internal Server Error")
        await world.alert()
        await run_queued(world.runtime)
        sms = _sms(world.runtime)
        assert (sms.failures, sms.failing, sms.last_failure) == (len(PHONES), True, "transient")
        assert len(PHONES) >= PROVIDER_FAILING_STREAK
        found = [p.sentence for p in problems(queue_health(world.runtime), world.runtime.settings)]
        assert any(s.startswith("twilio is failing for sms: its last 3 calls failed (transient") for s in found)
        scraped = metrics.render(world.runtime).decode()
        assert 'plp_provider_consecutive_failures{channel="sms",provider="twilio"} 3.0' in scraped
        assert f'plp_problem{{problem="{Concern.PROVIDER_FAILING.value}"}} 1.0' in scraped

        world.twilio.failures.clear()
        await world.alert()
        await run_queued(world.runtime)
        sms = _sms(world.runtime)
        assert (sms.failures, sms.failing) == (0, False) and sms.last_success_age is not None
