"""The README's quick start, as a new user runs it, on a fresh copy of the project: its first command exactly as
written (no ``PLP_*`` variable: every default, and honcho's ``PORT`` in every process), then, from another
terminal in the same folder, the README's curl calls to the URL ``plp dev`` announced, and the README's
``plp alert send ... --watch`` with no ``--api`` and no token.

``plp dev`` then listens on the default port, 8080, which other programs of this machine may use too: it runs
in a network namespace of its own (a loopback of its own) when the machine allows one (``unshare``), so the
test runs alongside anything. Otherwise it runs on the machine's own loopback and fails at once, saying so,
when the port is taken.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from dispatcher.storage.redis_server import EmbeddedRedis
from tests.output import OutputLines
from tests.readme import quick_start

ROOT = Path(__file__).resolve().parents[2]
RUN, _, CURL, SEND = quick_start()
#: A new user's shell: none of the service's variables, and no PORT but what honcho gives each process.
NOT_SET = ("PLP_", "REDIS_URL", "TWILIO_", "SMTP_", "TELEGRAM_", "PORT", "VIRTUAL_ENV", "PYTHONPATH")
README_ALERT_ID = "3f0c9a1e5b7d2c48"


def _user_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(NOT_SET)}


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the project (its tracked files), set up by the README's first command but its last part."""
    folder = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    setup, start = RUN.rsplit(" && ", 1)
    assert start == ".venv/bin/plp dev", RUN
    done = subprocess.run(
        ["bash", "-c", setup], cwd=folder, env=_user_environment(), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{setup}\n{done.stdout}\n{done.stderr}"
    return folder


def _private_network() -> list[str]:
    """The command prefix that runs a command in a new network namespace with its loopback up; [] if none."""
    prefix = ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "-"]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return prefix if probe.returncode == 0 else []


class Dev:
    """``plp dev`` running in the clone, its output read as it comes; commands run "in another terminal"."""

    def __init__(self, clone: Path, network: list[str]) -> None:
        self.clone, self.env = clone, _user_environment()
        self.process = subprocess.Popen(
            [*network, *RUN.rsplit(" && ", 1)[1].split()],
            cwd=clone, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        # In the namespace, the other terminal's commands enter plp dev's network (its loopback).
        self.enter = ["nsenter", "-t", str(self.process.pid), "-U", "-n", "--preserve-credentials"] if network else []
        self.output = OutputLines(self.process, what="plp dev")

    def wait_for(self, pattern: str, *, timeout: float = 90) -> re.Match[str]:
        """The first line of plp dev's output (its own, then its processes') matching ``pattern``."""
        return self.output.wait_for(pattern, timeout=timeout)

    def terminal(self, command: str, *, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a shell command in the clone, as a user types it in another terminal; it must succeed."""
        done = subprocess.run(
            [*self.enter, "bash", "-c", command],
            cwd=self.clone, env=self.env, input=input, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}\n-> {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()
        EmbeddedRedis(self.clone / "var" / "redis").stop()  # if plp dev could not
        shutil.rmtree(self.clone / "var", ignore_errors=True)


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def dev(clone: Path) -> Iterator[Dev]:
    """``plp dev`` started by the README's command in the clone, with an empty data folder; stopped afterwards."""
    network = _private_network()
    port = Settings.model_fields["port"].default
    if not network and _port_taken(port):
        pytest.fail(
            f"port {port}, where the quick start runs the service, is taken on this machine, and user namespaces "
            "are not allowed here (unshare --user --net) to give the test a loopback of its own: free the port"
        )
    running = Dev(clone, network)
    try:
        yield running
    finally:
        running.stop()


def _announced(dev: Dev) -> str:
    """The URL plp dev's welcome text announces, once its web process says it listens there."""
    base = dev.wait_for(r"plp-dispatch is starting at (\S+)")[1]
    listening = dev.wait_for(r"\bweb\.1 .*web\.listening").string
    url, pid = re.search(r"url=(\S+)", listening), re.search(r"pid=(\d+)", listening)
    assert url and pid, listening
    assert url[1] == base, f"plp dev announced {base}, and plp web listens at {url[1]}"
    environ = Path(f"/proc/{pid[1]}/environ").read_bytes().split(b"\0")
    assert b"PORT=5000" in environ, "honcho gives plp web PORT=5000: the service must not listen there"
    return base


@pytest.mark.slow
def test_the_readme_curl_calls_reach_the_url_plp_dev_announces(dev: Dev) -> None:
    """The README's curl calls go to the URL the welcome text prints, where plp web listens despite honcho's PORT;
    the alert completes, and the links of its e-mails lead back to the same URL."""
    base = _announced(dev)
    assert set(re.findall(r"https?://[^/\s']+", CURL)) == {base}, "the README's curl calls go elsewhere"
    post, get, deliveries = CURL.split("\n\n")
    accepted = json.loads(dev.terminal(post).stdout)
    # The 202 shows the alert as it stands when answered: accepted, or already being planned when a warm worker
    # took its fan-out first.
    assert accepted["status"] in {"accepted", "fanning_out", "sending"}, accepted
    dev.terminal(f".venv/bin/plp alert watch {accepted['id']} --as police --timeout 60")
    same_terminal = "source var/demo-tokens.env\n"  # the first call's terminal keeps its variables
    alert = json.loads(dev.terminal(same_terminal + get.replace(README_ALERT_ID, accepted["id"])).stdout)
    assert alert["status"] == "completed" and alert["counts"]["total"] == 13, alert
    sms = json.loads(dev.terminal(same_terminal + deliveries.replace(README_ALERT_ID, accepted["id"])).stdout)
    assert sms["items"] and {d["channel"] for d in sms["items"]} == {"sms"}, sms
    outbox = [json.loads(line) for line in (dev.clone / "var" / "outbox.jsonl").read_text().splitlines()]
    links = [url for m in outbox if m["channel"] == "email" for url in re.findall(r"https?://\S+", m["text"])]
    assert links and all(url.startswith(f"{base}/v1/") for url in links), links
    assert dev.terminal(f"curl -s -o /dev/null -w '%{{http_code}}' '{links[0]}'").stdout == "200"


@pytest.mark.slow
def test_the_readme_alert_send_reaches_the_service_with_no_api_given(dev: Dev) -> None:
    """The README's ``plp alert send --as police ... --watch`` finds the service and the demo officer's token by
    itself, asks for URGENT and follows the alert to completion; the coordinator then sees it and its report."""
    _announced(dev)
    sent = dev.terminal(SEND, input="URGENT\n")
    assert "Members reached: 6" in sent.stdout and "using the demo police token" in sent.stderr
    completed = re.search(r"^alert \w+ completed [\d.]+ s after it was posted: \d+ deliveries$", sent.stdout, re.M)
    assert completed, sent.stdout
    status = dev.terminal("PLP_ENV=development .venv/bin/plp status").stdout  # as the README says
    assert re.search(r"^urgent +\S+ +0 ", status, re.MULTILINE), status
    listed = dev.terminal(".venv/bin/plp alert list --as coordinator").stdout
    assert re.search(r" urgent +burglary +demo +completed ", listed), listed
    report = dev.terminal(".venv/bin/plp report --plp demo --as coordinator").stdout
    assert report.startswith("# Annual evaluation ") and "| urgent | 1 |" in report
