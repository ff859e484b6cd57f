"""``plp status``: queue health read directly in Redis: pending work, workers alive, the clock, provider limits."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from dispatcher.operations import metrics
from dispatcher.operations.queues import WorkerHealth, queue_health
from dispatcher.storage.runtime import Runtime
from tests.cli.conftest import PlpCommand, Scene
from tests.support import Workers, free_port, until

SLEEP = "time.sleep"  # a real importable function: a job that keeps a worker busy
URGENT = ("--plp", "parc", "--urgent", "--category", "burglary", "--text", "fr=Cambriolage rue du Parc")


def lane_row(output: str, lane: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(f"{lane} "))


def test_with_nothing_running_status_shows_the_waiting_work_and_what_to_start(
    api: PlpCommand, plp: PlpCommand, scene: Scene
) -> None:
    """An alert waits in the urgent queue; no worker, no clock: each said with the command that fixes it, exit 3."""
    api.ok("alert", "send", *URGENT, "--yes", **scene.token("police"))
    result = plp("status")
    assert result.exit_code == 3, result.output
    urgent = lane_row(result.output, "urgent")
    assert urgent[:3] == ["urgent", "plptest-urgent", "1"]
    assert re.fullmatch(r"[\d.]+", urgent[3]) and urgent[-1] == "0"  # how long it waited; no worker
    assert lane_row(result.output, "general")[2] == "0"
    assert "clock: stopped, never seen" in result.output
    attention = [line for line in result.output.splitlines() if line.startswith("attention: ")]
    assert attention == [
        "attention: no worker serves the urgent queue: start one with `plp worker urgent` (or `plp dev`)",
        "attention: no worker serves the general queue: start one with `plp worker general`",
        "attention: the clock is not sweeping (retries, dead workers' work, timers wait): start it with `plp clock`",
    ]


def test_with_workers_and_clock_running_status_is_healthy(plp: PlpCommand, workers: Workers, runtime: Runtime) -> None:
    """Urgent and general workers and the clock: the urgent lane counts both workers, exit 0, nothing to do."""
    workers.start("urgent")
    workers.start("general")
    workers.start_clock()

    def ready() -> bool:
        health = queue_health(runtime)
        return health.lane("urgent").workers_alive == 2 and health.clock.alive

    asyncio.run(until(ready, timeout=30, what="the workers and the clock to report"))
    result = plp.ok("status")
    assert lane_row(result.output, "urgent")[-1] == "2"
    assert lane_row(result.output, "general")[-1] == "1"
    assert re.search(r"^clock: alive, last sweep [\d.]+ s ago$", result.output, re.MULTILINE)
    assert "attention" not in result.output
    figures = json.loads(plp.ok("status", "--json").stdout)
    assert figures["problems"] == []
    assert {lane["lane"]: lane["workers_alive"] for lane in figures["lanes"]} == {"urgent": 2, "general": 1}


def test_status_shows_the_provider_limits_in_effect(plp: PlpCommand) -> None:
    """With Twilio configured, the SMS and call limits the workers pace sends under are listed."""
    twilio = {
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "secret",
        "TWILIO_SMS_FROM": "+32460000001,+32460000002",
        "TWILIO_VOICE_FROM": "+32460000001",
        "PLP_LIMIT_SMS_PER_SECOND": "5",
    }
    result = plp("status", **twilio)
    assert "provider limits in effect:" in result.output
    assert re.search(r"^  sms +twilio-sms +10/s +5/s per sender × 2 sender\(s\)$", result.output, re.MULTILINE)
    assert re.search(r"^  voice +twilio-voice +1/s +calls for the account$", result.output, re.MULTILINE)
    assert "sms by TwilioSmsChannel" in result.output
    outbox = plp("status").output
    assert "none (every channel is served by the outbox)" in outbox


def test_status_without_redis_is_one_sentence(plp: PlpCommand) -> None:
    """Redis not answering is an error of one line naming it and what to do, exit status 1."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = plp("status", REDIS_URL=url)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: Redis at {url} does not answer")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("kind", ["simple", "fork"])
def test_a_worker_killed_while_busy_is_known_dead_within_30_s(
    plp: PlpCommand, workers: Workers, runtime: Runtime, kind: str
) -> None:
    """The only urgent worker, busy with a job, is SIGKILLed: within 30 s ``plp status`` exits 3 saying no worker
    serves the urgent queue, and ``/metrics`` says 0 alive, although RQ's key for it lives on for minutes."""
    runtime.urgent_queue.enqueue_call(SLEEP, args=(30,), timeout=600)
    process = workers.start("urgent", PLP_WORKER_KIND=kind)

    def busy() -> list[WorkerHealth]:
        found = queue_health(runtime).lane("urgent").workers
        return list(found) if [w.state for w in found] == ["busy"] else []

    worker = asyncio.run(until(busy, timeout=20, what="the worker to be busy"))[0]
    workers.kill(process)
    killed = time.monotonic()
    asyncio.run(
        until(lambda: queue_health(runtime).lane("urgent").workers_alive == 0, timeout=30, what="the death to show")
    )
    print(f"\nworker ({kind}) killed while busy: known dead after {time.monotonic() - killed:.1f} s")
    assert runtime.rq_connection.ttl(f"rq:worker:{worker.name}") > 60  # RQ alone would count it alive
    result = plp("status")
    assert result.exit_code == 3
    assert "attention: no worker serves the urgent queue" in result.output
    assert re.search(
        rf"^  urgent +{worker.name}  last heartbeat [\d.]+ s ago  \(pid {process.pid} on ", result.output, re.M
    )
    scraped = metrics.render(runtime).decode()
    assert 'plp_workers_alive{queue="urgent"} 0.0' in scraped
    assert 'plp_problem{problem="no_urgent_worker"} 1.0' in scraped


def test_urgent_work_waiting_too_long_is_a_problem(plp: PlpCommand, runtime: Runtime) -> None:
    """A job waiting on the urgent lane longer than PLP_URGENT_WAIT_ALARM is named, with how long it waited."""
    runtime.urgent_queue.enqueue_call(SLEEP, args=(0,))
    result = plp("status", "--json", PLP_URGENT_WAIT_ALARM="0.001")
    found = json.loads(result.stdout)
    assert result.exit_code == 3 and found["status"] == "attention"
    late = [p["detail"] for p in found["problems"] if p["problem"] == "urgent_late"]
    assert len(late) == 1 and late[0].startswith("the next urgent job has waited ")


def test_status_as_json_writes_nothing_but_json_to_standard_output_even_on_a_new_database(
    plp: PlpCommand, runtime: Runtime
) -> None:
    """A script reads ``plp status --json``'s standard output: the log line of a first start (the data version
    stamped on an empty database) goes to standard error, as every log does, never into the JSON."""
    runtime.rq_connection.flushdb()
    result = plp("status", "--json")
    assert json.loads(result.stdout)["lanes"][0]["lane"] == "urgent"
