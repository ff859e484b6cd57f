"""Metrics: what the scripts count while real alerts go through the vendor simulators, as Prometheus reads it.

Alerts are posted through the API of a world (``tests.world``) whose Twilio, SMTP and Telegram
are simulators; their jobs run in this process (``run_queued``) or in real worker processes.
The exposition is parsed with ``prometheus_client``'s own parser.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.core.models import AlertStatus
from dispatcher.operations import metrics
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.scripts import ALERT_SECONDS_BOUNDS, SEND_SECONDS_BOUNDS
from tests.simulators.twilio import Failure
from tests.support import Workers, run_queued, until, wait_for_alert
from tests.world import SMS_FROM, World, open_world

ANNE, JOHN = "+32470111111", "+32470444444"  # Anne: SMS, call, e-mail; John: SMS, call, e-mail, Telegram 1002
PIET_CHAT = 1001  # Piet: SMS, call, Telegram


class Scrape:
    """One scrape, parsed: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value for f in self.families.values() for s in f.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when absent (a counter that never moved is not shown)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, found), v in self.samples.items() if n == name and wanted <= found)


def scrape(runtime: Runtime) -> Scrape:
    return Scrape(metrics.render(runtime).decode())


@pytest.fixture
async def world(redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(redis_url, tmp_path) as opened:
        yield opened


async def test_a_fresh_service_shows_every_family_with_redis_up(world: World) -> None:
    """Before any alert, every family is declared, counters have no samples yet, and Redis is up."""
    seen = scrape(world.runtime)
    assert seen("plp_redis_up") == 1
    for family in (
        "plp_deliveries",
        "plp_deliveries_handed_over",
        "plp_acknowledgements",
        "plp_provider_sends",
        "plp_provider_errors",
        "plp_alerts_finished",
        "plp_possible_duplicates",
        "plp_provider_send_duration_seconds",
        "plp_alert_first_send_seconds",
        "plp_alert_completion_seconds",
        "plp_acknowledgement_ratio",
        "plp_queue_depth",
        "plp_zone_queue_depth",
        "plp_queue_oldest_job_age_seconds",
        "plp_queue_registry_jobs",
        "plp_workers_alive",
        "plp_clock_up",
        "plp_clocks_alive",
        "plp_provider_consecutive_failures",
        "plp_channel_outbox",
        "plp_problem",
        "plp_provider_limit_per_second",
    ):
        assert family in seen.families, family
    assert seen.total("plp_deliveries_total") == 0 and seen.total("plp_possible_duplicates_total") == 0


async def test_an_alert_is_counted_by_channel_status_provider_and_urgency(world: World) -> None:
    """Every delivery's moves, each provider call by outcome with its time, the first send and the completion."""
    alert = await world.alert()
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    assert await wait_for_alert(world.runtime, alert["id"], timeout=10) is AlertStatus.COMPLETED
    seen = scrape(world.runtime)

    # 11 deliveries: SMS and calls to Anne, Piet, John; e-mails to Anne, Lea, John; Telegram to Piet, John
    planned = {"sms": 3, "voice": 3, "email": 3, "telegram": 2}
    for channel, count in planned.items():
        assert seen("plp_deliveries_total", channel=channel, status="sending") == count
        assert seen("plp_deliveries_handed_over_total", channel=channel, urgency="urgent") == count
        provider = {"sms": "twilio", "voice": "twilio", "email": "smtp", "telegram": "telegram"}[channel]
        assert seen("plp_provider_sends_total", channel=channel, provider=provider, outcome="ok") == count
        assert seen("plp_provider_send_duration_seconds_count", channel=channel, provider=provider) == count
        assert seen("plp_provider_send_duration_seconds_sum", channel=channel, provider=provider) > 0
    # Twilio reports "sent", then its callbacks "delivered"; SMTP stops at "sent"; Telegram is "delivered" at once
    assert seen("plp_deliveries_total", channel="sms", status="sent") == 3
    assert seen("plp_deliveries_total", channel="sms", status="delivered") == 3
    assert seen("plp_deliveries_total", channel="email", status="sent") == 3
    assert seen("plp_deliveries_total", channel="email", status="delivered") == 0
    assert seen("plp_deliveries_total", channel="telegram", status="delivered") == 2
    assert seen.total("plp_provider_errors_total") == 0

    assert seen("plp_alert_first_send_seconds_count", urgency="urgent") == 1
    assert seen("plp_alert_completion_seconds_count", urgency="urgent") == 1
    assert 0 < seen("plp_alert_completion_seconds_sum", urgency="urgent") < 60
    assert seen("plp_alert_first_send_seconds_sum", urgency="urgent") <= seen(
        "plp_alert_completion_seconds_sum", urgency="urgent"
    )
    assert seen("plp_alerts_finished_total", urgency="urgent", status="completed") == 1


# python-telegram-bot 22 warns when it builds a RetryAfter (the simulated 429); the channel reads both forms.
@pytest.mark.filterwarnings(
    "ignore:Deprecated since version v22.2. In a future major version attribute .retry_after."
    ":telegram.warnings.PTBDeprecationWarning"
)
async def test_provider_errors_are_counted_by_kind(world: World) -> None:
    """A permanent refusal, a transient failure and a rate limit are each counted under their kind."""
    world.twilio.failures[ANNE] = Failure(400, 21211, "The 'To' number is not a valid phone number.")
    world.twilio.failures[JOHN] = Failure(503, None, "Service unavailable")
    world.telegram.throttle_once[PIET_CHAT] = 5
    alert = await world.alert()
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    seen = scrape(world.runtime)

    for channel in ("sms", "voice"):  # Anne's number is refused for good, John's fails for now (retried later)
        assert seen("plp_provider_errors_total", channel=channel, provider="twilio", kind="permanent") == 1
        assert seen("plp_provider_errors_total", channel=channel, provider="twilio", kind="transient") == 1
        assert seen("plp_provider_sends_total", channel=channel, provider="twilio", outcome="ok") == 1
        assert seen("plp_provider_send_duration_seconds_count", channel=channel, provider="twilio") == 3
        assert seen("plp_deliveries_total", channel=channel, status="failed") == 1
    assert seen("plp_provider_errors_total", channel="telegram", provider="telegram", kind="rate_limited") == 1
    assert seen("plp_provider_sends_total", channel="telegram", provider="telegram", outcome="ok") == 1
    assert seen.total("plp_provider_errors_total") == 5
    # the alert waits for its retries: a first send, no completion yet
    state = await world.client.get(f"/v1/alerts/{alert['id']}", headers=world.auth("police"))
    assert (await state.json())["status"] == "sending"
    assert seen("plp_alert_first_send_seconds_count", urgency="urgent") == 1
    assert seen("plp_alert_completion_seconds_count", urgency="urgent") == 0


async def test_acknowledgements_are_counted_against_deliveries_handed_over(world: World) -> None:
    """An SMS reply "OK" counts one acknowledgement of an urgent SMS; the ratio is over every delivery handed over."""
    await world.alert()
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    status, _ = await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "OK")
    assert status == 200
    status, _ = await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "ok")  # said twice: counted once
    assert status == 200
    seen = scrape(world.runtime)
    assert seen("plp_acknowledgements_total", channel="sms", urgency="urgent") == 1
    assert seen.total("plp_acknowledgements_total") == 1
    assert seen("plp_acknowledgement_ratio", urgency="urgent") == pytest.approx(1 / 11)


async def test_a_cancelled_alert_is_counted_as_finished_and_its_deliveries_as_cancelled(world: World) -> None:
    """Cancelled after its fan-out, before its sends: one alert cancelled, its deliveries cancelled, nothing sent."""
    alert = await world.alert()
    await run_queued(world.runtime, limit=1)  # the fan-out only
    response = await world.client.post(f"/v1/alerts/{alert['id']}/cancel", headers=world.auth("police"))
    assert response.status == 200, await response.text()
    await run_queued(world.runtime)  # the send jobs find every delivery cancelled
    seen = scrape(world.runtime)
    assert seen("plp_alerts_finished_total", urgency="urgent", status="cancelled") == 1
    assert seen.total("plp_deliveries_total", status="cancelled") == 11
    assert seen.total("plp_provider_sends_total") == 0
    assert seen("plp_alert_completion_seconds_count", urgency="urgent") == 0


async def test_histograms_have_cumulative_buckets_ending_in_their_count(world: World) -> None:
    """Each histogram's buckets follow its bounds, never decrease, and the +Inf bucket equals the count."""
    await world.alert()
    await run_queued(world.runtime)
    seen = scrape(world.runtime)
    for name, bounds in (
        ("plp_provider_send_duration_seconds", SEND_SECONDS_BOUNDS),
        ("plp_alert_first_send_seconds", ALERT_SECONDS_BOUNDS),
    ):
        family = seen.families[name]
        series: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = {}
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                labels = frozenset((k, v) for k, v in sample.labels.items() if k != "le")
                series.setdefault(labels, []).append((float(sample.labels["le"]), sample.value))
        assert series, name
        for labels, buckets in series.items():
            assert [edge for edge, _ in buckets] == [*bounds, float("inf")]
            counts = [count for _, count in buckets]
            assert counts == sorted(counts) and counts[-1] == seen(f"{name}_count", **dict(labels)) > 0


async def test_queue_gauges_show_pending_jobs_and_the_age_of_the_oldest(world: World) -> None:
    """Jobs waiting are shown per queue with the age of the next one; without workers, none are alive."""
    await world.alert()  # its fan-out waits on the urgent queue: no worker runs
    world.runtime.general_queue.enqueue_call("time.sleep", args=(0,))
    world.runtime.general_queue.enqueue_call("time.sleep", args=(0,))
    seen = scrape(world.runtime)
    assert seen("plp_queue_depth", queue="urgent") == 1 and seen("plp_queue_depth", queue="general") == 2
    for queue in ("urgent", "general"):
        assert 0 < seen("plp_queue_oldest_job_age_seconds", queue=queue) < 30
        assert seen("plp_workers_alive", queue=queue) == 0
        assert seen("plp_queue_registry_jobs", queue=queue, registry="failed") == 0
    assert seen("plp_clock_up") == 0
    # the world's vendors are configured: the workers pace them under these limits
    assert seen("plp_provider_limit_per_second", channel="sms", limit="twilio-sms") == 10
    assert seen("plp_provider_limit_per_second", channel="telegram", limit="telegram-chat") == 1
    world.runtime.general_queue.empty()
    await run_queued(world.runtime)  # the fan-out, then its sends
    emptied = scrape(world.runtime)
    assert (
        emptied("plp_queue_depth", queue="urgent") == 0
        and emptied("plp_queue_oldest_job_age_seconds", queue="urgent") == 0
    )


@pytest.mark.slow
async def test_counts_from_worker_processes_add_up_in_one_scrape(world: World) -> None:
    """With real urgent and general workers and the clock, the scrape of the web process sees all their sends."""
    pool = Workers(world.runtime.settings, python=sys.executable)
    try:
        pool.start("urgent")
        pool.start("general")
        pool.start_clock()
        await until(lambda: scrape(world.runtime)("plp_clock_up") == 1, timeout=20, what="the clock's first sweep")
        first, second = await world.alert(), await world.alert()
        for alert in (first, second):
            assert await wait_for_alert(world.runtime, alert["id"], timeout=30) is AlertStatus.COMPLETED
        await world.twilio.callbacks_done()
        response = await world.client.get("/metrics")
        assert response.status == 200
        seen = Scrape(await response.text())
    finally:
        pool.stop()
    assert seen.total("plp_provider_sends_total", outcome="ok") == 22
    assert seen.total("plp_deliveries_handed_over_total", urgency="urgent") == 22
    assert seen("plp_alert_completion_seconds_count", urgency="urgent") == 2
    assert seen("plp_workers_alive", queue="urgent") == 2 and seen("plp_workers_alive", queue="general") == 1
    assert seen("plp_clock_up") == 1
