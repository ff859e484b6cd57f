"""The service under supervisord (``plp supervise``, ``deploy/supervisord.conf``), its processes killed.

Each kind of process (a web process, the urgent worker, a general worker, the clock) is killed
with SIGKILL while an alert is sending: supervisord starts it again, the web keeps answering on
the same address, and the alert completes with every delivery gone out and every duplicate counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
import xmlrpc.client
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from supervisor.xmlrpc import SupervisorTransport

from dispatcher.core.models import AlertStatus
from tests.faults.world import GONE_OUT, World, charter, open_world
from tests.support import RedisServer, free_port, settings_env, until

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "supervisord.conf"
MEMBERS = 200
#: Process kinds killed, in this order, each once a further share of the messages has gone out.
KILLED = ("web-0", "urgent", "general-0", "clock", "web-1")


class Supervised:
    """``plp supervise`` started with the world's settings, and ``plp supervise --ctl`` against it."""

    def __init__(self, world: World, folder: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **settings_env(world.settings),
            "REDIS_URL": world.settings.redis_url or "",
            "PLP_PORT": str(self.port),
            "PLP_LOG_LEVEL": "WARNING",
        }
        self.folder = folder
        self.env_data_dir = world.settings.data_dir.resolve()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.folder / "supervise.log").open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dispatcher.cli",
                    "supervise",
                    "--web",
                    "2",
                    "--general",
                    "2",
                    "--config",
                    CONFIG,
                ],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def pids(self) -> dict[str, int]:
        """The processes supervisord runs now, by name (``web-0``, ``urgent``, ...), those RUNNING only.

        Asked over supervisord's XML-RPC socket, as supervisorctl does.
        """
        socket_path = self.env_data_dir / "run" / "supervisor.sock"
        if not socket_path.exists():
            return {}
        transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_path}")
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        try:
            processes = proxy.supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault):
            return {}  # still starting
        finally:
            transport.close()
        return {p["name"]: int(p["pid"]) for p in processes if p["statename"] == "RUNNING"}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def supervised(world: World, folder: Path) -> Iterator[Supervised]:
    service = Supervised(world, folder)
    service.start()
    try:
        yield service
    finally:
        service.stop()


def _post_alert(service: Supervised, world: World, plp: str, text: str) -> str:
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [plp], "texts": {"fr": text}}
    request = urllib.request.Request(
        f"{service.base}/v1/alerts",
        data=json.dumps(body).encode(),
        headers={**world.auth("police"), "Content-Type": "application/json", "Idempotency-Key": text},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as answer:  # a loaded machine starts Python slowly
        assert answer.status == 202
        return str(json.loads(answer.read())["id"])


async def test_every_process_kind_killed_mid_alert_is_restarted_and_the_alert_completes(
    tmp_path: Path, figures: dict[str, Any]
) -> None:
    """Under ``plp supervise``, a web process, the urgent worker, a general worker, the clock and the other web
    process are each killed with SIGKILL while an urgent alert to 200 members sends (SMS at 40/s): each comes
    back with a new pid, the web answers the next alert on the same address, both alerts complete, every
    delivery went out, and every duplicate is counted."""
    server = RedisServer(tmp_path / "redis", args=["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
    server.start()
    try:
        async with open_world(
            server.url, tmp_path / "data", limit_sms_per_second=40, latency=0.1, lease_seconds=10
        ) as world:
            plp = await world.plp("PLP Parc", charter(urgent=["sms", "email"]))
            await world.members(plp, MEMBERS)
            with supervised(world, tmp_path) as service:
                names = {"web-0", "web-1", "urgent", "general-0", "general-1", "clock"}
                before = await until(
                    lambda: _running(service, names), timeout=60, what="supervisord's processes", every=0.2
                )
                text = "Cambriolage rue du Parc, voiture grise 1-ABC-123."
                alerts = [await asyncio.to_thread(_post_alert, service, world, plp, text)]
                restarted: dict[str, tuple[int, int]] = {}
                for n, name in enumerate(KILLED, start=1):
                    share = n * MEMBERS // (len(KILLED) + 1)
                    await until(lambda s=share: _ledger(world) >= s, timeout=60, what=f"{share} messages out")
                    os.kill(before[name], signal.SIGKILL)
                    after = await until(
                        lambda n=name, b=before: _replaced(service, n, b[n], names),
                        timeout=60,
                        what=f"{name} to be restarted",
                        every=0.2,
                    )
                    restarted[name] = (before[name], after[name])
                    before = after
                alerts.append(await asyncio.to_thread(_post_alert, service, world, plp, "Second passage, rue du Parc."))
                for alert_id in alerts:
                    assert await world.finished(alert_id, timeout=120) is AlertStatus.COMPLETED
                per_delivery = Counter((s.alert_id, s.ref) for s in world.sent())
                for alert_id in alerts:
                    records = world.records(alert_id)
                    assert len(records) == 2 * MEMBERS
                    for ref, record in records.items():
                        assert record["status"] in GONE_OUT, (alert_id, ref, record)
                        assert per_delivery[alert_id, ref] >= 1, (alert_id, ref, record)
                        assert per_delivery[alert_id, ref] - 1 <= int(record.get("possible_duplicates", 0))
                counted = sum(world.counts(a).get("possible_duplicates", 0) for a in alerts)
                assert world.duplicates_observed() <= counted
                figures.update(
                    restarted={name: f"{old}->{new}" for name, (old, new) in restarted.items()},
                    deliveries=2 * MEMBERS * len(alerts),
                    duplicates_observed=world.duplicates_observed(),
                    duplicates_counted=counted,
                )
    finally:
        server.stop()


async def _running(service: Supervised, names: set[str]) -> dict[str, int] | None:
    """The pids of every process named, once all of them run (else None); supervisorctl runs off the loop."""
    pids = await asyncio.to_thread(service.pids)
    return pids if pids.keys() >= names else None


async def _replaced(service: Supervised, name: str, old: int, names: set[str]) -> dict[str, int] | None:
    """The pids of every process, once all run and ``name`` runs under a new pid (else None)."""
    pids = await _running(service, names)
    return pids if pids is not None and pids[name] != old else None


def _ledger(world: World) -> int:
    return len(world.twilio.ledger) + len(world.smtp.messages)
