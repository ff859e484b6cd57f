"""``plp alert send`` against a real ``plp web`` whose Redis dies while the alert is being stored.

The web process reaches its own ``redis-server`` (AOF, ``appendfsync always``) through a relay
that cuts the alert's transaction at its EXEC and kills the server there
(``tests.redis_cut``): the web answers 503 with Retry-After. The command, a real ``plp``
process, says it waits and tries again with the same Idempotency-Key; the test starts Redis
again once it has said so. Promise under test: once, not twice.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.storage.runtime import Runtime
from tests.cli.conftest import PREFIX, QUEUES, SECRET, Scene
from tests.redis_cut import Cut, RedisCut
from tests.support import RedisServer, start_web

PERSISTENT = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
TEXT = "fr=Cambriolage rue du Parc il y a 10 min, voiture grise 1-ABC-123"
SEND = ["alert", "send", "--plp", "parc", "--urgent", "--category", "burglary", "--text", TEXT, "--yes"]
WAITING = "the service is unavailable for now"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    found = RedisServer(tmp_path / "redis", args=PERSISTENT)
    found.start()
    yield found
    found.stop()


@pytest.fixture
def relay(server: RedisServer) -> Iterator[RedisCut]:
    with RedisCut(server.port) as opened:
        yield opened


@pytest.fixture
def redis_url(relay: RedisCut) -> str:
    return relay.url


@pytest.fixture
def own_web(relay: RedisCut, tmp_path: Path) -> Iterator[str]:
    """A ``plp web`` of the test's own, on the relayed Redis."""
    env = {
        **os.environ,
        "REDIS_URL": relay.url,
        "PLP_KEY_PREFIX": PREFIX,
        "PLP_QUEUE_PREFIX": QUEUES,
        "PLP_DATA_DIR": str(tmp_path / "web"),
        "PLP_SECRET_KEY": SECRET,
        "PLP_LOG_LEVEL": "ERROR",
    }
    process, url = start_web(env, tmp_path / "web.log")
    yield url
    process.terminate()
    process.wait(timeout=10)


async def test_a_send_that_meets_redis_down_waits_and_is_stored_once_redis_is_back(
    own_web: str, scene: Scene, server: RedisServer, relay: RedisCut, runtime: Runtime, tmp_path: Path
) -> None:
    """Redis dies right after it stored the alert, before the web heard so: the web answers 503, the command says
    it waits and sends again with the same key; once Redis is back it prints the alert, stored and enqueued once."""
    relay.arm(Cut.AFTER_EXEC, server.kill, containing=runtime.urgent_queue.key.encode())  # the one enqueuing
    env = {**os.environ, "PLP_API_URL": own_web, "PLP_DATA_DIR": str(tmp_path / "cli"), **scene.token("police")}
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dispatcher.cli",
        *SEND,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert command.stderr is not None and command.stdout is not None
    said: list[str] = []
    while WAITING not in (line := (await asyncio.wait_for(command.stderr.readline(), 30)).decode()):
        assert line, f"the command ended without waiting: {said}"
        said.append(line)
    assert relay.done.is_set()
    assert "with the same Idempotency-Key plp-cli-" in line
    await asyncio.to_thread(server.start)

    out, err = await asyncio.wait_for(command.communicate(), 60)
    assert command.returncode == 0, (out + err).decode()
    [stored] = runtime.rq_connection.zrange(runtime.keys.alerts(), 0, -1)
    assert f"alert {stored.decode()} accepted" in out.decode()
    assert runtime.urgent_queue.count == 1
