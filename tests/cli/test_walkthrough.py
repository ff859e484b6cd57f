"""The README's operator walkthrough, as a new user runs it: ``plp dev`` in one terminal (embedded Redis, demo
data, web, workers, clock), and the other commands as separate ``plp`` processes in another, with no token and
no URL given: they find the service at PLP_PORT and the demo tokens ``plp dev`` wrote."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


class Terminal:
    """Runs ``plp`` processes with the environment of the walkthrough."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, input: str | None = None, expect: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "dispatcher.cli", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert done.returncode == expect, f"plp {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        return done


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/ready", timeout=0.5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def terminal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminal]:
    """``plp dev`` running on a free port with a data folder of its own (embedded Redis); stopped afterwards."""
    data = tmp_path_factory.mktemp("dev")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith(("PLP_", "TWILIO_", "SMTP_"))}
    env |= {"PLP_DATA_DIR": str(data), "PLP_PORT": str(port), "PLP_LOG_LEVEL": "WARNING", "PLP_LOG_FORMAT": "json"}
    with (data / "dev.log").open("wb") as log:
        dev = subprocess.Popen(
            [sys.executable, "-m", "dispatcher.cli", "dev"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"http://127.0.0.1:{port}"):  # processes we just launched: nothing to wait on but HTTP
            assert dev.poll() is None, (data / "dev.log").read_text()
            assert time.monotonic() < deadline, "plp dev did not get ready in time\n" + (data / "dev.log").read_text()
            time.sleep(0.1)
        yield Terminal(env)
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait()


@pytest.mark.slow
def test_a_new_user_sends_an_alert_from_the_command_line_and_sees_it_complete(terminal: Terminal) -> None:
    """Status is healthy, the demo officer sends an urgent alert (typing URGENT) and watches it complete, the
    demo coordinator reads the PLP's evaluation."""
    status = terminal("status").stdout
    assert re.search(r"^urgent +\S+ +0 ", status, re.MULTILINE), status
    sent = terminal(
        "alert", "send", "--as", "police", "--plp", "demo", "--urgent", "--category", "burglary",
        "--text", "fr=Cambriolage rue du Parc il y a 10 min, voiture grise 1-ABC-123",
        "--text", "nl=Inbraak in de Parkstraat 10 min geleden, grijze wagen 1-ABC-123",
        "--watch", "--timeout", "60", input="URGENT\n",
    )  # fmt: skip
    assert "Members reached: 6" in sent.stdout
    assert re.search(r"^alert \w+ completed [\d.]+ s after it was posted: \d+ deliveries$", sent.stdout, re.MULTILINE)
    assert "using the demo police token" in sent.stderr
    listed = terminal("alert", "list", "--as", "coordinator").stdout
    assert re.search(r" urgent +burglary +demo +completed ", listed), listed
    report = terminal("report", "--plp", "demo", "--as", "coordinator").stdout
    assert report.startswith("# Annual evaluation ") and "| urgent | 1 |" in report
