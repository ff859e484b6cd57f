"""The stage of every benchmark: a Redis server of its own, the vendors' process, the service's processes.

``Stage`` starts a ``redis-server`` (append-only file, fsync every second: a common production
setting), the simulators in their own process (``tests.bench.vendors``), and, per scenario, the
real ``plp web``, ``plp worker`` and ``plp clock`` processes configured to talk to them, exactly
as in production but for the providers' base URLs. Members are written in bulk through the
store (``Store.add_new_members``, the importer's own write path); alerts are posted through the
API like any client would.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis

from config import Settings
from dispatcher.core.models import ActorIn, ChannelName, Consent, ConsentSource, Language, Member, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, new_id
from tests.bench import vendors
from tests.support import RedisServer, free_port, settings_env, wait_for_alert

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[2]  # the checkout whose code every process runs
SMS_SENDERS = ("+3225550101", "+3225550102", "+3225550103")
LANGUAGES = (Language.FR, Language.NL, Language.DE, Language.EN)
TEXTS = {
    "fr": "Cambriolage rue du Parc il y a 10 minutes, voiture grise 1-ABC-123.",
    "nl": "Inbraak in de Parkstraat 10 minuten geleden, grijze wagen 1-ABC-123.",
}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    memory = ""
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=True).stdout
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "redis": version.split()[2].removeprefix("v="),
        "os": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


@dataclass
class Service:
    """The service's processes of one scenario."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def pid(self, name: str) -> int:
        return self.processes[name].pid


class Stage:
    def __init__(self, folder: Path, *, latency: float, profile: bool = False) -> None:
        self.folder = folder
        self.latency = latency
        self.profile = profile  # record each service process with py-spy (folder/profile-<n>-<name>.txt)
        self.profiles: list[Path] = []
        self.redis = RedisServer(
            folder / "redis", args=["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        )
        self.vendors: subprocess.Popen[str] | None = None
        self.addresses: dict[str, Any] = {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.http: aiohttp.ClientSession | None = None
        self.tokens: dict[str, str] = {}

    # -- the stage --------------------------------------------------------------------------

    async def __aenter__(self) -> Stage:
        try:
            return await self._enter()
        except BaseException:  # stopped half-way (a SIGTERM, a vendor that failed to start): stop what started
            await self.__aexit__()
            raise

    async def _enter(self) -> Stage:
        (self.folder / "redis").mkdir(parents=True, exist_ok=True)
        self.redis.start()
        self.vendors = subprocess.Popen(
            [PYTHON, "-m", "tests.bench.vendors", "--latency", str(self.latency)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=(self.folder / "vendors.log").open("w"),
            text=True,
        )
        assert self.vendors.stdout is not None
        line = await asyncio.to_thread(self.vendors.stdout.readline)
        if not line:
            raise RuntimeError(f"the vendors' process did not start: see {self.folder / 'vendors.log'}")
        self.addresses = json.loads(line)
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.vendors is not None:  # the processes first: a run stopped again while it closes leaves none
            self.vendors.terminate()
            self.vendors.wait(timeout=10)
        self.redis.stop()
        if self.http is not None:
            await self.http.close()

    def settings(self, **overrides: Any) -> Settings:
        """The service's settings on this stage; the providers' limits out of the way unless given."""
        values: dict[str, Any] = {
            "redis_url": self.redis.url,
            "key_prefix": "plpbench:",
            "queue_prefix": "plpbench",
            "data_dir": self.folder / "data",
            "host": "127.0.0.1",
            "port": self.port,
            "public_base_url": self.base,
            "twilio_account_sid": vendors.ACCOUNT,
            "twilio_auth_token": vendors.AUTH_TOKEN,
            "twilio_sms_from": SMS_SENDERS,
            "twilio_voice_from": "+3225550109",
            "twilio_api_base_url": self.addresses["twilio"],
            "smtp_host": self.addresses["smtp_host"],
            "smtp_port": self.addresses["smtp_port"],
            "smtp_security": "none",
            "smtp_from": "PLP alerts <alerts@plp.example>",
            "telegram_bot_token": vendors.BOT_TOKEN,
            "telegram_api_base_url": self.addresses["telegram"],
            "telegram_bot_username": "plp_bench_bot",
            "telegram_webhook_secret": "bench-webhook-secret",
            "whatsapp_token": vendors.WHATSAPP_TOKEN,
            "whatsapp_phone_id": vendors.WHATSAPP_PHONE_ID,
            "whatsapp_api_base_url": self.addresses["whatsapp"],
            "limit_sms_per_second": 1e6,
            "limit_voice_per_second": 1e6,
            "limit_telegram_per_second": 1e6,
            "limit_whatsapp_per_second": 1e6,
            "limit_email_per_minute": 1e8,
            "rate_limit_per_token": 0,
            "rate_limit_per_address": 0,
            "environment": "development",  # a lab on one machine: a key file is fine
        }
        return Settings(**(values | overrides))

    async def vendor(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        assert self.http is not None
        async with self.http.request(method, self.addresses["control"] + path, json=body, params=query) as response:
            response.raise_for_status()
            return await response.json()

    # -- the service ------------------------------------------------------------------------

    @asynccontextmanager
    async def service(
        self, settings: Settings, *, web: bool = True, urgent: int = 1, general: int = 1, clock: bool = True
    ) -> AsyncIterator[Service]:
        """A clean database, fresh vendors, and the service's processes for one scenario."""
        runtime = Runtime.from_settings(settings)
        runtime.rq_connection.flushall()
        await self.vendor("POST", "/reset")
        env = {
            **os.environ,
            **settings_env(settings),
            "REDIS_URL": self.redis.url,
            "PLP_LOG_FORMAT": "json",
            "PLP_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        (settings.data_dir).mkdir(parents=True, exist_ok=True)
        commands = {f"urgent-{i}": ["worker", "urgent"] for i in range(urgent)}
        commands |= {f"general-{i}": ["worker", "general"] for i in range(general)}
        if clock:
            commands["clock"] = ["clock"]
        if web:
            commands["web"] = ["web"]
        running = Service()
        spies: list[subprocess.Popen[bytes]] = []
        try:
            for name, command in commands.items():
                with (self.folder / f"{name}.log").open("ab") as log:
                    running.processes[name] = subprocess.Popen(
                        [PYTHON, "-m", "dispatcher.cli", *command],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
            store = Store(runtime.async_redis(), runtime.keys)
            try:
                _, admin = await create_actor(store, ActorIn(name="Bench admin", role=Role.ADMIN))
                _, police = await create_actor(
                    store, ActorIn(name="Bench police", role=Role.POLICE, police_zone="5340")
                )
            finally:
                await store.redis.aclose()
            self.tokens = {"admin": admin, "police": police}
            await self._ready(runtime, running, urgent + general, web=web)
            if self.profile:
                spies = [self._spy(name, p.pid) for name, p in running.processes.items()]
            yield running
        finally:
            for process in running.processes.values():
                process.terminate()
            for process in running.processes.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for spy in spies:
                spy.wait(timeout=30)
            runtime.rq_connection.flushall()

    def _spy(self, name: str, pid: int) -> subprocess.Popen[bytes]:
        out = self.folder / f"profile-{len(self.profiles)}-{name}.txt"
        self.profiles.append(out)
        command = [
            str(Path(PYTHON).parent / "py-spy"),
            "record",
            "--idle",
            "--format",
            "raw",
            "--output",
            str(out),
            "--pid",
            str(pid),
        ]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def _ready(self, runtime: Runtime, running: Service, workers: int, *, web: bool) -> None:
        from rq import Worker

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            dead = [name for name, p in running.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"service process {dead[0]} exited: see {self.folder / (dead[0] + '.log')}")
            registered = len(Worker.all(connection=runtime.rq_connection))
            if registered >= workers and (not web or await self._answers()):
                return
            await asyncio.sleep(0.05)  # processes starting up publish no event to wait on
        raise RuntimeError("the service's processes did not become ready in 30 s")

    async def _answers(self) -> bool:
        assert self.http is not None
        try:
            async with self.http.get(self.base + "/v1/health") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    # -- data -------------------------------------------------------------------------------

    async def plp(self, name: str, channels: Sequence[str], *, urgency: str = "urgent") -> str:
        plan = {"channels": list(channels), "ttl_seconds": 3600}
        charter = {"urgent": plan} if urgency == "urgent" else {"non_urgent": plan, "relay": "auto"}
        body = {"name": name, "commune": "Uccle", "police_zone": "5340", "charter": charter}
        created = await self.api("POST", "/v1/plps", body, who="admin", expect=201)
        return str(created["id"])

    async def members(
        self,
        runtime: Runtime,
        plp_id: str,
        count: int,
        *,
        series: int,
        channels: Callable[[int], list[ChannelName]] | None = None,
        whatsapp: bool = False,
    ) -> None:
        """``count`` members with a phone, an e-mail address and a Telegram chat each (``whatsapp``: and their
        consent to WhatsApp, as an import records it).

        ``series`` (0-9) keeps the contact points of separate PLPs apart: phones +32 47<series>...,
        e-mail addresses ...@s<series>.bench.example, chat ids <series+1>00000000 + i.
        ``channels(i)``: the channels member ``i`` accepts (default: every one).
        """
        now = datetime.now(UTC)
        consent = Consent(at=now, source=ConsentSource.IMPORT) if whatsapp else None
        store = Store(runtime.async_redis(), runtime.keys)
        try:
            for start in range(0, count, 5000):
                batch = [
                    Member(
                        id=new_id(),
                        name=f"Member {series}-{i}",
                        phone=f"+3247{series}{i:06d}",
                        email=f"m{i}@s{series}.bench.example",
                        telegram_chat_id=(series + 1) * 100_000_000 + i,
                        language=LANGUAGES[i % 2],
                        channels=channels(i) if channels else list(ChannelName),
                        consent_at=now,
                        whatsapp_consent=consent,
                        plp_ids=[plp_id],
                        created_at=now,
                        updated_at=now,
                    )
                    for i in range(start, min(count, start + 5000))
                ]
                await store.add_new_members(batch)
        finally:
            await store.redis.aclose()

    async def api(self, method: str, path: str, body: Any = None, *, who: str, expect: int) -> Any:
        assert self.http is not None
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as response:
            text = await response.text()
            if response.status != expect:
                raise RuntimeError(f"{method} {path}: {response.status} {text}")
            return json.loads(text) if text else None

    async def alert(self, plp_id: str, *, urgency: str = "urgent", text: str | None = None) -> tuple[str, float]:
        """Post an alert as the police officer; return its id and the Unix time the POST left."""
        texts = {"fr": text} if text else TEXTS
        body = {"urgency": urgency, "category": "burglary", "plp_ids": [plp_id], "texts": texts}
        posted = time.time()
        created = await self.api("POST", "/v1/alerts", body, who="police", expect=202)
        return str(created["id"]), posted

    async def finished(self, runtime: Runtime, alert_id: str, *, timeout: float) -> float:
        """Wait for the alert to finish; return the Unix time it was marked completed."""
        status = await wait_for_alert(runtime, alert_id, timeout=timeout)
        if status.value != "completed":
            raise RuntimeError(f"alert {alert_id} ended {status.value}, not completed")
        completed = runtime.rq_connection.hget(runtime.keys.alert_state(alert_id), "t_completed")
        if completed is None:
            raise RuntimeError(f"alert {alert_id}: completed with no completion time")
        return float(completed)

    def redis_memory(self) -> int:
        client = redis.Redis.from_url(self.redis.url)
        try:
            return redis_data_bytes(client)
        finally:
            client.close()


def redis_data_bytes(client: redis.Redis) -> int:
    """The bytes Redis holds for data: ``used_memory`` less its overhead (clients' buffers, replication
    and append-only buffers), which moves by tens of kilobytes with the connections alone and would
    swamp what a small run stores."""
    return int(client.info("memory")["used_memory_dataset"])
