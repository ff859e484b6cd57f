"""The embedded Redis: a real server under the data folder, shared by the processes, persisted to an AOF."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import Settings
from dispatcher.storage.redis_server import EmbeddedRedis, EmbeddedRedisError, resolve_redis_url


@pytest.fixture
def folder() -> Iterator[Path]:
    """A short folder under /tmp (a Unix socket path must fit in 108 bytes); its server is stopped afterwards."""
    path = Path(tempfile.mkdtemp(prefix="plp-", dir="/tmp")) / "redis"
    try:
        yield path
    finally:
        shut_down(path / "redis.sock")
        shutil.rmtree(path.parent, ignore_errors=True)


def shut_down(socket: Path) -> None:
    """Stop whatever server answers on the socket; a client without retries, so an absent server costs nothing."""
    if not socket.exists():
        return
    client = redis.Redis(unix_socket_path=str(socket), retry=Retry(NoBackoff(), 0))
    try:
        client.shutdown(nosave=False)
    except (redis.ConnectionError, FileNotFoundError):
        pass  # nothing answers, or it closed the connection as it exited
    finally:
        client.close()


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def test_ensure_running_starts_a_server_on_its_unix_socket(folder: Path) -> None:
    """ensure_running starts a real Redis answering on <folder>/redis.sock, persisting with appendonly yes."""
    url = EmbeddedRedis(folder).ensure_running()
    assert url == f"unix://{folder.resolve() / 'redis.sock'}"
    with connect(url) as server:
        assert server.ping()
        assert server.config_get("appendonly") == {"appendonly": "yes"}
        assert server.info("server")["process_id"] == int((folder / "redis.pid").read_text())


def test_a_first_start_does_not_stall(folder: Path) -> None:
    """Starting the server in an empty folder is ready within a second: probing an absent server fails fast."""
    started = time.monotonic()
    EmbeddedRedis(folder).ensure_running()
    assert time.monotonic() - started < 1.0


def test_a_second_process_reuses_the_running_server(folder: Path) -> None:
    """A second ensure_running, as another process of the service would do, finds the server and starts none."""
    first = EmbeddedRedis(folder)
    url = first.ensure_running()
    pid = (folder / "redis.pid").read_text()
    with connect(url) as server:
        server.set("plptest:marker", "first")
    assert EmbeddedRedis(folder).ensure_running() == url
    assert (folder / "redis.pid").read_text() == pid
    with connect(url) as server:
        assert server.get("plptest:marker") == "first"


def test_data_survives_a_stop_and_a_new_start(folder: Path) -> None:
    """What was written before stop() is there again after the next ensure_running (append-only file)."""
    embedded = EmbeddedRedis(folder)
    with connect(embedded.ensure_running()) as server:
        server.set("plptest:alert", "accepted")
        server.rpush("plptest:queue", "job-1", "job-2")
        pid_before = server.info("server")["process_id"]
    embedded.stop()
    with connect(EmbeddedRedis(folder).ensure_running()) as server:
        assert server.info("server")["process_id"] != pid_before
        assert server.get("plptest:alert") == "accepted"
        assert server.lrange("plptest:queue", 0, -1) == ["job-1", "job-2"]


def test_resolve_redis_url_prefers_redis_url(tmp_path: Path) -> None:
    """With REDIS_URL set, resolve_redis_url returns it and starts no embedded server."""
    settings = Settings(redis_url="redis://redis.example:6379/2", data_dir=tmp_path)
    assert resolve_redis_url(settings) == "redis://redis.example:6379/2"
    assert not (tmp_path / "redis").exists()


def test_a_data_folder_too_long_for_a_socket_is_refused_clearly(tmp_path: Path) -> None:
    """A folder whose socket path would not fit gives EmbeddedRedisError saying what to set instead."""
    too_long = tmp_path / ("d" * 120)
    with pytest.raises(EmbeddedRedisError, match="too long") as raised:
        EmbeddedRedis(too_long).ensure_running()
    assert "PLP_DATA_DIR" in str(raised.value)
    assert "REDIS_URL" in str(raised.value)
    assert not too_long.exists()
