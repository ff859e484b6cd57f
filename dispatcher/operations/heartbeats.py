"""Heartbeats: how a worker or the clock says it is alive, to Redis, to a file and to systemd.

Each worker and clock process beats every ``BEAT_SECONDS``:

- **in Redis**: its name in ``beats:<role>``, scored by the time of the beat, and who it is (pid,
  host, start) in ``beat:<role>:<name>``. ``plp status``, ``GET /v1/status`` and ``/metrics``
  count a process alive while its last beat is less than ``STALE_SECONDS`` old: one killed, even
  in the middle of a job, stops counting within ``STALE_SECONDS``; one that stops cleanly leaves
  at once. (RQ's own worker key is no guide: a busy worker's lives for the job's timeout + 60 s.)
- **in a file** (``PLP_HEARTBEAT_FILE``, by default ``<temp dir>/plp-<kind>.heartbeat``), which
  ``plp probe worker`` or ``plp probe clock`` reads: a liveness probe for Docker's
  ``HEALTHCHECK`` or a Kubernetes exec probe that does not depend on Redis, so that a Redis outage,
  which the processes ride out, restarts none of them.
- **to systemd's watchdog** (``WATCHDOG=1`` on ``NOTIFY_SOCKET``), when systemd started the
  process with ``WatchdogSec=``: systemd restarts a process that stops beating.

A worker beats from a thread of its own (its main thread is in RQ's loop, waiting on the queue
or on a job); the clock beats from its sweeping loop, so a clock stuck in a sweep stops beating.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
import structlog

from config import Settings

if TYPE_CHECKING:
    from dispatcher.storage.runtime import Runtime

log = structlog.get_logger(__name__)

#: Seconds between two beats of a process.
BEAT_SECONDS = 5.0
#: A process whose last beat is older than this is dead (or stuck): three beats missed.
STALE_SECONDS = 15.0
#: ``plp probe`` fails once the heartbeat file is older than this (a probe's default).
PROBE_MAX_AGE = 30.0
#: How long a dead process stays listed (``plp status`` says when it was last seen).
FORGET_SECONDS = 86400


class Role(StrEnum):
    """What a process does: a worker of a lane, or the clock."""

    URGENT = "urgent"
    GENERAL = "general"
    CLOCK = "clock"

    @property
    def kind(self) -> str:
        """``worker`` or ``clock``: what ``plp probe`` is asked about."""
        return "clock" if self is Role.CLOCK else "worker"


@dataclass(frozen=True)
class Beat:
    """One process as its heartbeats show it: ``age`` seconds since its last beat, ``alive`` if recent."""

    role: str
    name: str
    pid: int | None
    host: str | None
    age: float
    alive: bool


def heartbeat_file(settings: Settings, kind: str) -> Path:
    """The file a process of ``kind`` (``worker``, ``clock``) rewrites at each beat, and ``plp probe`` reads."""
    return settings.heartbeat_file or Path(tempfile.gettempdir()) / f"plp-{kind}.heartbeat"


class Heartbeat:
    """The heartbeats of this process. ``beat()`` is cheap to call often (it beats every ``BEAT_SECONDS``)."""

    def __init__(self, runtime: Runtime, role: Role, name: str) -> None:
        self.role, self.name, self.keys = role, name, runtime.keys
        self.file = heartbeat_file(runtime.settings, role.kind)
        self.notify_socket = runtime.settings.notify_socket
        # Its own client, with timeouts: a Redis that hangs must not stop the file's and systemd's beats for long.
        self.redis = runtime.sync_client(socket_timeout=BEAT_SECONDS, socket_connect_timeout=2)
        self.identity = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        self._last = -math.inf
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, *, force: bool = False, now: float | None = None) -> None:
        """Beat (file, systemd, then Redis) unless the last beat was less than ``BEAT_SECONDS`` ago (or ``force``)."""
        if self._stopped.is_set() or (not force and time.monotonic() - self._last < BEAT_SECONDS):
            return
        first = self._last == -math.inf
        self._last = time.monotonic()
        at = time.time() if now is None else now
        self._write_file(at)
        self._notify(b"READY=1\nWATCHDOG=1" if first else b"WATCHDOG=1")
        self._tell_redis(at)

    def leave(self) -> None:
        """A clean stop: the beats end, the process no longer counts alive, and the probe's file goes."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * BEAT_SECONDS)
        self._notify(b"STOPPING=1")
        self.file.unlink(missing_ok=True)
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self.keys.beats(self.role.value), self.name)
                pipe.delete(self.keys.beat(self.role.value, self.name))
                pipe.execute()
        except (redis.RedisError, OSError):
            pass  # Redis is out: the entry goes stale on its own
        self.redis.close()

    def run_in_thread(self) -> None:
        """Beat from a daemon thread until ``leave()`` (a worker, whose main thread is RQ's)."""

        def beat_until_stopped() -> None:
            while not self._stopped.is_set():
                self.beat(force=True)
                self._stopped.wait(BEAT_SECONDS)

        self._thread = threading.Thread(target=beat_until_stopped, name="plp-heartbeat", daemon=True)
        self._thread.start()

    def _write_file(self, at: float) -> None:
        record = {"kind": self.role.kind, "role": self.role.value, "name": self.name, "at": at, **self.identity}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.file.with_name(f".{self.file.name}.{os.getpid()}")
            partial.write_text(json.dumps(record))
            partial.replace(self.file)  # atomic: a probe never reads half a file
        except OSError as exc:
            log.warning("heartbeat.file_unwritable", path=str(self.file), error=str(exc))

    def _notify(self, message: bytes) -> None:
        if not self.notify_socket:
            return
        address = "\0" + self.notify_socket[1:] if self.notify_socket.startswith("@") else self.notify_socket
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, address)
        except OSError as exc:
            log.warning("heartbeat.notify_failed", error=str(exc))

    def _tell_redis(self, at: float) -> None:
        beats = self.keys.beats(self.role.value)
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(beats, {self.name: at})
                pipe.set(self.keys.beat(self.role.value, self.name), json.dumps(self.identity), ex=FORGET_SECONDS)
                pipe.zremrangebyscore(beats, "-inf", at - FORGET_SECONDS)
                pipe.execute()
        except (redis.RedisError, OSError):
            pass  # the process logs the outage itself; the file and systemd still hear from it


def beat_of(role: str, name: str, score: float, identity: str | bytes | None, now: float) -> Beat:
    """A process as read from ``beats:<role>`` (its last beat's time) and ``beat:<role>:<name>`` (who it is)."""
    found: dict[str, Any] = json.loads(identity) if identity else {}
    age = max(0.0, now - score)
    return Beat(role=role, name=name, pid=found.get("pid"), host=found.get("host"), age=age, alive=age <= STALE_SECONDS)


@dataclass(frozen=True)
class Probe:
    """What ``plp probe`` found: ``alive``, and a sentence saying why."""

    alive: bool
    sentence: str


def probe(settings: Settings, kind: str, *, max_age: float = PROBE_MAX_AGE, now: float | None = None) -> Probe:
    """Whether the process of ``kind`` (``worker``, ``clock``) writing this host's heartbeat file beat recently."""
    path = heartbeat_file(settings, kind)
    now = time.time() if now is None else now
    try:
        record = json.loads(path.read_text())
        at, pid, host = float(record["at"]), record.get("pid"), record.get("host")
    except FileNotFoundError:
        return Probe(False, f"no {kind} heartbeat in {path}: no {kind} runs here (or with another PLP_HEARTBEAT_FILE)")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Probe(False, f"the heartbeat file {path} cannot be read ({type(exc).__name__})")
    if record.get("kind") != kind:
        return Probe(False, f"{path} is the heartbeat of a {record.get('kind')}, not of a {kind}")
    age = max(0.0, now - at)
    who = f"the {kind} (pid {pid} on {host})"
    if age > max_age:
        return Probe(False, f"{who} last beat {age:.0f} s ago, more than {max_age:g} s: it is dead or stuck")
    return Probe(True, f"{who} is alive: last beat {age:.1f} s ago")


__all__ = [
    "BEAT_SECONDS",
    "FORGET_SECONDS",
    "PROBE_MAX_AGE",
    "STALE_SECONDS",
    "Beat",
    "Heartbeat",
    "Probe",
    "Role",
    "beat_of",
    "heartbeat_file",
    "probe",
]
