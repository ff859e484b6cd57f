"""Queue health: what waits on each lane and for how long, RQ's registries, the workers alive, the clock, limits.

Against the real Redis, with real RQ jobs and real ``plp worker`` / ``plp clock`` processes.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from config import Settings
from dispatcher.operations.heartbeats import FORGET_SECONDS, STALE_SECONDS
from dispatcher.operations.queues import clock_stale_after, provider_limits, queue_health, record_clock_sweep
from dispatcher.storage.runtime import Runtime
from tests.support import Workers, until

SLEEP = "time.sleep"  # a real importable function: a job that keeps a worker busy


def test_empty_queues_report_nothing_waiting_no_worker_and_no_clock(runtime: Runtime) -> None:
    """With nothing running, each lane is empty with no worker, and the clock has never been seen."""
    health = queue_health(runtime)
    assert [(lane.lane, lane.queue) for lane in health.lanes] == [
        ("urgent", "plptest-urgent"),
        ("general", "plptest-general"),
    ]
    for lane in health.lanes:
        assert (lane.pending, lane.oldest_age, lane.scheduled, lane.started, lane.failed) == (0, None, 0, 0, 0)
        assert lane.workers_alive == 0
    assert (health.clock.last_sweep_age, health.clock.alive) == (None, False)
    assert health.channels == {
        "sms": "OutboxChannel",
        "voice": "OutboxChannel",
        "email": "OutboxChannel",
        "telegram": "OutboxChannel",
        "whatsapp": "OutboxChannel",
    }


def test_pending_jobs_are_counted_and_the_oldest_one_ages(runtime: Runtime) -> None:
    """Jobs waiting on a lane are counted, and the age is that of the job waiting longest (the next to run)."""
    before = time.time()
    runtime.general_queue.enqueue_call(SLEEP, args=(0,))
    runtime.general_queue.enqueue_call(SLEEP, args=(0,))
    runtime.urgent_queue.enqueue_call(SLEEP, args=(0,))
    later = before + 45
    health = queue_health(runtime, now=later)
    general, urgent = health.lane("general"), health.lane("urgent")
    assert (urgent.pending, general.pending) == (1, 2)
    for lane in (urgent, general):
        assert lane.oldest_age is not None and 44 <= lane.oldest_age <= 45
    runtime.urgent_queue.empty()
    assert queue_health(runtime, now=later).lane("urgent").oldest_age is None


def test_the_urgent_lane_adds_up_its_alerts_send_queues_and_lists_their_police_zones(runtime: Runtime) -> None:
    """The urgent lane is its own queue plus one send queue per urgent alert: counted together, the oldest job of
    any of them gives the age, and the police zones with send jobs waiting are listed with their counts."""
    before = time.time()
    runtime.alert_queue("5340", "a1").enqueue_call(SLEEP, args=(0,))
    later = before + 45
    runtime.alert_queue("5340", "a2").enqueue_call(SLEEP, args=(0,))
    runtime.alert_queue("5341", "a3").enqueue_call(SLEEP, args=(0,))
    runtime.alert_queue("5342", "a4").empty()  # known, but nothing waits there
    runtime.urgent_queue.enqueue_call(SLEEP, args=(0,))
    urgent = queue_health(runtime, now=later).lane("urgent")
    assert (urgent.pending, urgent.zones) == (4, {"5340": 2, "5341": 1})
    assert urgent.oldest_age is not None and 44 <= urgent.oldest_age <= 45
    assert queue_health(runtime, now=later).lane("general").zones == {}


def test_a_stale_job_id_at_the_head_of_a_queue_is_skipped(runtime: Runtime) -> None:
    """A job deleted while still listed in its queue does not hide the age of the one behind it."""
    before = time.time()
    gone = runtime.urgent_queue.enqueue_call(SLEEP, args=(0,))
    runtime.urgent_queue.enqueue_call(SLEEP, args=(0,))
    runtime.rq_connection.delete(gone.key)
    lane = queue_health(runtime, now=before + 10).lane("urgent")
    assert lane.pending == 2
    assert lane.oldest_age is not None and 9 <= lane.oldest_age <= 10


def test_scheduled_jobs_are_counted_apart_from_pending_ones(runtime: Runtime) -> None:
    """A job scheduled for later is in the scheduled registry, not pending."""
    runtime.general_queue.enqueue_in(timedelta(minutes=5), SLEEP, 0)
    lane = queue_health(runtime).lane("general")
    assert (lane.pending, lane.scheduled) == (0, 1)


async def test_workers_are_counted_per_lane_while_they_run(runtime: Runtime, workers: Workers) -> None:
    """The urgent worker serves the urgent queue only; a general worker serves both; a stopped worker leaves."""
    urgent = workers.start("urgent")
    await until(lambda: queue_health(runtime).lane("urgent").workers_alive == 1, timeout=20, what="the urgent worker")
    assert queue_health(runtime).lane("general").workers_alive == 0
    workers.start("general")
    health = await until(
        lambda: (h := queue_health(runtime)).lane("general").workers_alive == 1 and h, timeout=20, what="general worker"
    )
    assert health.lane("urgent").workers_alive == 2
    for worker in health.lane("urgent").workers:
        assert worker.state in {"unknown", "starting", "started", "idle", "busy"} and worker.heartbeat_age is not None
        assert worker.heartbeat_age <= STALE_SECONDS and worker.pid in {p.pid for p in workers.alive()}
    urgent.terminate()  # a clean stop unregisters at once
    urgent.wait(timeout=10)
    assert queue_health(runtime).lane("urgent").workers_alive == 1


async def test_a_killed_worker_is_not_counted_once_its_heartbeat_is_stale(runtime: Runtime, workers: Workers) -> None:
    """A worker killed without a word is counted until its last heartbeat is STALE_SECONDS old, then listed
    as lost, with its pid and host, for a day."""
    process = workers.start("urgent")
    await until(lambda: queue_health(runtime).lane("urgent").workers_alive, timeout=20, what="the worker")
    workers.kill(process)
    assert queue_health(runtime).lane("urgent").workers_alive == 1  # it may be between two beats
    later = queue_health(runtime, now=time.time() + STALE_SECONDS + 1)
    assert later.lane("urgent").workers_alive == 0
    assert [(beat.role, beat.pid, beat.alive) for beat in later.lost] == [("urgent", process.pid, False)]
    assert queue_health(runtime, now=time.time() + FORGET_SECONDS + STALE_SECONDS).lost == ()


async def test_busy_and_failed_jobs_show_in_the_started_and_failed_registries(
    runtime: Runtime, workers: Workers
) -> None:
    """A job being run is in the started registry; one that raised is in the failed registry."""
    runtime.general_queue.enqueue_call("dispatcher.operations.queues.no_such_function")
    runtime.general_queue.enqueue_call(SLEEP, args=(60,))
    process = workers.start("general")
    lane = await until(
        lambda: (g := queue_health(runtime).lane("general")).failed == 1 and g.started == 1 and g,
        timeout=20,
        what="one failed job and one running",
    )
    assert lane.pending == 0
    assert [w.state for w in lane.workers] == ["busy"]
    workers.kill(process)  # rather than wait a minute for the job to end


async def test_a_running_clock_is_alive_and_a_silent_one_is_not(runtime: Runtime, workers: Workers) -> None:
    """``plp clock`` notes each sweep; the clock is taken for stopped once no sweep came for a while."""
    workers.start_clock()
    clock = await until(
        lambda: queue_health(runtime).clock.alive and queue_health(runtime).clock, timeout=20, what="clock"
    )
    assert clock.last_sweep_age is not None and clock.last_sweep_age < clock.stale_after
    workers.stop()
    record_clock_sweep(runtime, at=time.time() - clock_stale_after(runtime.settings) - 1)
    silent = queue_health(runtime).clock
    assert not silent.alive and silent.last_sweep_age is not None and silent.last_sweep_age > silent.stale_after


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, []),
        (
            {
                "twilio_account_sid": "AC" + "1" * 32,
                "twilio_auth_token": "t",
                "twilio_sms_from": ("+3225550001", "+3225550002"),
                "twilio_voice_from": "+3225550003",
                "limit_sms_per_second": 10,
            },
            [
                ("sms", "twilio-sms", 20.0, "10/s per sender × 2 sender(s)"),
                ("voice", "twilio-voice", 1.0, "calls for the account"),
            ],
        ),
        (
            {
                "telegram_bot_token": "1:x",
                "smtp_host": "mail",
                "smtp_from": "a@b.example",
                "limit_email_per_minute": 120,
            },
            [
                ("email", "smtp", 2.0, "120/min for the relay"),
                ("telegram", "telegram", 30.0, "messages for the bot"),
                ("telegram", "telegram-chat", 1.0, "messages per chat"),
            ],
        ),
    ],
)
def test_provider_limits_are_those_of_the_configured_channels(
    settings: Settings, fields: dict[str, object], expected: list[tuple[str, str, float, str]]
) -> None:
    """Each configured vendor's limits are listed as the workers apply them; the outbox has none."""
    configured = settings.model_copy(update=fields)
    limits = provider_limits(configured)
    assert sorted((lim.channel, lim.name, lim.per_second, lim.detail) for lim in limits) == sorted(expected)


def test_to_dict_gives_plain_data(runtime: Runtime) -> None:
    """``to_dict`` is JSON-ready, with the count of workers alive per lane."""
    runtime.urgent_queue.enqueue_call(SLEEP, args=(0,))
    data = queue_health(runtime).to_dict()
    assert data["lanes"][0]["lane"] == "urgent" and data["lanes"][0]["pending"] == 1
    assert data["lanes"][0]["workers_alive"] == 0 and data["lanes"][0]["workers"] == []
    assert set(data) == {"lanes", "clock", "clocks", "lost", "limits", "providers", "channels"}
