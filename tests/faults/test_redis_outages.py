"""Workers and the clock ride out Redis outages: no process exits, nothing accepted is lost.

Unlike ``test_redis_restart``, nothing here restarts a process: a process that exits during an
outage fails the test. A supervisor would hide such exits (and under ``plp dev``, honcho stops
the whole service when one process exits).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.models import AlertStatus
from tests.faults.world import GONE_OUT, World, charter, open_world
from tests.support import RedisServer, until

MEMBERS = 120
pytestmark = pytest.mark.faults

PERSISTENT = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]


async def test_workers_and_the_clock_ride_out_five_redis_restarts_in_a_row_mid_alert(
    tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """Five times in a row, an alert is accepted, Redis is killed (SIGKILL or SIGTERM) once its messages are
    going out and started again: the urgent worker, the general worker and the clock are the same processes
    at the end, every alert completes, every delivery went out, and the duplicates are counted."""
    rng = random.Random(seed)
    figures.update(seed=seed)
    server = RedisServer(tmp_path / "redis", args=PERSISTENT)
    server.start()
    try:
        async with open_world(server.url, tmp_path / "data", send_batch_size=20, latency=0.1) as world:
            plp = await world.plp("PLP Parc", charter(urgent=["sms", "email"]))
            await world.members(plp, MEMBERS)
            await world.start_processes("urgent", "general", "clock")
            pids = _pids(world)
            alerts, outages = [], []
            for _ in range(5):
                alert_id = await _post_alert(world, plp, f"Alerte {len(alerts)}: cambriolage rue du Parc.")
                alerts.append(alert_id)
                out = _ledger(world) + rng.randrange(1, MEMBERS)
                await until(lambda o=out: _ledger(world) >= o, timeout=30, what="messages going out")
                outages.append(await _outage(server, rng.choice(["SIGKILL", "SIGTERM"]), rng.uniform(0.3, 1.5)))
                assert _pids(world) == pids, _exits(world)
            for alert_id in alerts:
                assert await world.finished(alert_id, timeout=60) is AlertStatus.COMPLETED
            _assert_all_sent_once_or_counted(world, alerts)
            figures.update(outages_s=[round(o, 2) for o in outages], **_duplicates(world, alerts))
            assert _pids(world) == pids, _exits(world)
    finally:
        server.stop()


async def test_a_ten_second_redis_outage_mid_alert_stops_no_process(
    tmp_path: Path, seed: int, figures: dict[str, Any]
) -> None:
    """Redis killed for ten seconds while an alert sends: the workers and the clock wait for it without
    exiting, and the alert completes once it is back, every delivery sent."""
    figures.update(seed=seed)
    server = RedisServer(tmp_path / "redis", args=PERSISTENT)
    server.start()
    try:
        async with open_world(server.url, tmp_path / "data", send_batch_size=20, latency=0.1) as world:
            plp = await world.plp("PLP Parc", charter(urgent=["sms", "email"]))
            await world.members(plp, MEMBERS)
            await world.start_processes("urgent", "general", "clock")
            pids = _pids(world)
            alert_id = await world.alert([plp], "Cambriolage rue du Parc, voiture grise 1-ABC-123.")
            await until(lambda: _ledger(world) >= MEMBERS // 2, timeout=30, what="messages going out")
            outage = await _outage(server, "SIGKILL", 10.0)
            back = time.monotonic()
            assert _pids(world) == pids, _exits(world)
            assert await world.finished(alert_id, timeout=60) is AlertStatus.COMPLETED
            figures.update(outage_s=round(outage, 1), done_after_s=round(time.monotonic() - back, 1))
            _assert_all_sent_once_or_counted(world, [alert_id])
            figures.update(_duplicates(world, [alert_id]))
            assert _pids(world) == pids, _exits(world)
            assert _logged(world, "worker.redis_back") >= 1, "the workers said nothing of the outage's end"
    finally:
        server.stop()


async def _post_alert(world: World, plp: str, text: str) -> str:
    """Post an alert as a client does after an outage: the same Idempotency-Key again until it is accepted."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [plp], "texts": {"fr": text}}
    headers = {**world.auth("police"), "Idempotency-Key": f"outage-{text}"}

    async def accepted() -> str | None:
        response = await world.client.post("/v1/alerts", json=body, headers=headers)
        return str((await response.json())["id"]) if response.status == 202 else None

    return await until(accepted, timeout=30, what="the alert to be accepted once Redis is back", every=0.2)


async def _outage(server: RedisServer, how: str, seconds: float) -> float:
    """Stop Redis (SIGKILL: a crash; SIGTERM: a clean shutdown) for ``seconds``, start it again on the same
    port and data; return how long it was down."""
    down = time.monotonic()
    await asyncio.to_thread(server.kill if how == "SIGKILL" else server.stop)
    await asyncio.sleep(seconds)  # the length of the outage: the fault itself, not a wait
    await asyncio.to_thread(server.start)
    return time.monotonic() - down


def _pids(world: World) -> dict[str, list[int]]:
    """The worker and clock processes running now, by lane (a process that exited is missing)."""
    alive: dict[str, list[int]] = {}
    for process in world.workers.alive():
        alive.setdefault(world.workers.roles[process.pid], []).append(process.pid)
    return alive


def _exits(world: World) -> str:
    """Which processes exited, with their exit codes and the end of their logs."""
    gone = [p for p in world.workers.processes if p.poll() is not None]
    lines = []
    for process in gone:
        logs = sorted(world.settings.data_dir.glob("*.log"))
        tails = [path.read_text().splitlines()[-3:] for path in logs]
        role = world.workers.roles[process.pid]
        lines.append(f"{role} (pid {process.pid}) exited with {process.returncode}: {tails}")
    return "a process exited: " + "; ".join(lines)


def _ledger(world: World) -> int:
    return len(world.twilio.ledger) + len(world.smtp.messages)


def _assert_all_sent_once_or_counted(world: World, alerts: list[str]) -> None:
    per_delivery = Counter((s.alert_id, s.ref) for s in world.sent())
    for alert_id in alerts:
        records = world.records(alert_id)
        assert len(records) == 2 * MEMBERS
        for ref, record in records.items():
            assert record["status"] in GONE_OUT, (alert_id, ref, record)
            assert per_delivery[alert_id, ref] >= 1, (alert_id, ref, record)
            assert per_delivery[alert_id, ref] - 1 <= int(record.get("possible_duplicates", 0)), (alert_id, ref)


def _duplicates(world: World, alerts: list[str]) -> dict[str, int]:
    counted = sum(world.counts(a).get("possible_duplicates", 0) for a in alerts)
    assert world.duplicates_observed() <= counted
    return {"duplicates_observed": world.duplicates_observed(), "duplicates_counted": counted}


def _logged(world: World, event: str) -> int:
    """How many log lines of the worker processes carry ``event``."""
    return sum(path.read_text().count(f'"{event}"') for path in world.settings.data_dir.glob("worker-*.log"))
