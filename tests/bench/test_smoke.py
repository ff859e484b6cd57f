"""The benchmark harness still works: every scenario runs at its tiny size and reports its figures.

The figures of a tiny run mean nothing (a few dozen sends on a busy test machine); what this checks
is that the harness starts the real processes, drives the simulators, measures each baseline and
writes the report. The real run is ``python -m tests.bench.run`` (see docs/performance.md).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.run import SCENARIOS
from tests.bench.scenarios import children
from tests.support import until

pytestmark = pytest.mark.slow


def test_every_scenario_runs_at_its_tiny_size_and_reports_against_its_baseline(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "tests.bench.run", "--size", "tiny", "--json", str(report), "--keep", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    result = json.loads(report.read_text(encoding="utf-8"))
    assert set(result["machine"]) >= {"cores", "memory", "python", "redis"}
    scenarios = {figure["scenario"].split(".")[0] for figure in result["figures"]}
    assert scenarios == {str(n) for n in range(1, len(SCENARIOS) + 1)}
    for figure in result["figures"]:
        assert figure["baseline_value"] > 0, figure
        if figure["unit"] == "B":
            # Redis memory a tiny run adds (a few hundred deliveries, some kilobytes) is within what Redis frees
            # meanwhile (expiring keys, its allocator): a number, of either sign; the real run's are megabytes.
            assert math.isfinite(figure["value"]), figure
        else:
            assert figure["value"] > 0, figure
        assert figure["target"] and isinstance(figure["met"], bool), figure
    fanout = {f["measure"].split(":")[0]: f for f in result["figures"] if f["scenario"] == "1. fan-out"}
    assert set(fanout) >= {"sms", "telegram", "email", "whatsapp", "mix"}
    for channel in ("sms", "telegram", "email", "whatsapp"):  # each against its bare library, CPU per send too
        assert fanout[channel]["detail"]["workers_cpu_ms_per_send"] > 0, fanout[channel]
        assert fanout[channel]["detail"]["bare_cpu_ms_per_send"] > 0, fanout[channel]
    targets = {f["measure"]: f["target"] for f in result["figures"]}  # the rows of issue 20's table, its bars
    assert targets["POST to first provider request, p99, idle service"] == "≤ 50 ms"
    assert (
        targets["POST to first provider request, p99, during a 300-SMS non-urgent backlog"]
        == "≤ 100 ms and ratio ≤ 1.2"
    )
    assert targets["POST to completed, p99, during the backlog"] == "ratio ≤ 1.1"
    assert targets["mix: sends/s, POST to completed"] == "ratio ≥ 100"
    idle = next(f for f in result["figures"] if f["measure"] == "POST to first provider request, p99, idle service")
    for where in ("hops_median_ms", "hops_p99_ms", "slowest_alert_hops_ms"):  # where the urgent path's time went
        assert set(idle["detail"][where]) == {"intake", "to_fan_out", "to_first_claim", "to_provider"}, idle
    done = next(f for f in result["figures"] if f["measure"] == "POST to completed, p99, during the backlog")
    for where in ("idle_median", "backlog_median", "idle_p99", "backlog_p99"):  # what its completion is made of
        parts = done["detail"][f"completion_{where}_ms"]
        assert set(parts) == {"to_last_claim", "send_median", "send_longest", "last_answer_to_completed"}, done
        assert parts["to_last_claim"] > 0 and parts["send_longest"] >= parts["send_median"] > 0, done
    for where in ("idle", "backlog"):  # and where the host's cores went meanwhile
        cores = done["detail"][f"cores_{where}"]
        assert {"web", "urgent-0", "general-0", "redis", "vendors", "load"} <= set(cores), cores
        assert 0 <= sum(cores.values()) <= 1.1 * (os.cpu_count() or 1), cores  # each process counted once
    [limits] = [t for m, t in targets.items() if m.startswith("POST to completed:")]
    assert limits == "ratio ≤ 1.02"
    waits = [f for f in result["figures"] if f["scenario"] == "8. replication wait"]  # its rows, and their waits
    assert {f["measure"].split(":")[0] for f in waits} == {
        "WAIT for 1 replica, sequential",
        "WAIT for 1 replica, 8 in flight",
        "replica stopped, sequential",
        "replica stopped, 8 in flight",
    }
    for f in waits:
        counted = f["detail"]["waits"]
        if f["measure"].startswith("replica stopped"):  # each POST answered 202 all the same (or the run fails)
            assert counted == {"missed": 6}, f
        else:
            assert sum(counted.values()) == 16, f
    assert "scenario" in run.stdout and "baseline" in run.stdout  # the table
    assert "WAIT for 1 replica, sequential: POST to 202, p99" in run.stdout  # its rows in the table
    assert "national scale, a column per number of worker processes" in run.stdout  # the national scenario's


def test_the_telegram_transport_benchmark_prints_cpu_per_message_for_each_http_layer(tmp_path: Path) -> None:
    """``python -m tests.bench.telegram_transport`` measures every variant and prints its CPU per message (a tiny
    run's figures mean nothing; the real run's are in docs/performance.md)."""
    report = tmp_path / "telegram.json"
    run = subprocess.run(
        [sys.executable, "-m", "tests.bench.telegram_transport", "--messages", "40", "--rounds", "1", "--json", report],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(report.read_text(encoding="utf-8"))
    assert set(figures) == {"bare aiohttp", "PTB + HTTPXRequest", "PTB + AiohttpRequest", "TelegramChannel"}
    assert all(ms > 0 for ms in figures.values()), figures
    assert "x bare aiohttp" in run.stdout


def _descendants(pid: int) -> set[int]:
    found = set(children(pid))
    for child in list(found):
        found |= _descendants(child)
    return found


async def test_a_benchmark_stopped_with_sigterm_stops_every_process_it_started(tmp_path: Path) -> None:
    """A SIGTERM (a supervisor, ``timeout``, ``kill``) stops the run and every process it started: the service's,
    the vendors' and its Redis server, none left running beside the next measurement."""
    bench = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.run", "--size", "tiny", "--only", "urgent", "--json", tmp_path / "b.json"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started: set[int] = set()

        def all_up() -> bool:  # the vendors and Redis first, then the service's web, urgent, general and clock
            started.update(_descendants(bench.pid))
            return len(started) >= 6

        await until(all_up, timeout=60, what="the benchmark's processes")
        bench.send_signal(signal.SIGTERM)
        _, err = bench.communicate(timeout=60)
    finally:
        bench.kill()
    assert bench.returncode == 128 + signal.SIGTERM, err
    assert "stopped; the figures of the scenarios that ended are in" in err
    left = {pid for pid in started if Path(f"/proc/{pid}").exists()}
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]
