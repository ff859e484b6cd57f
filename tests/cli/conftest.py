"""The ``plp`` command under test: run in-process by click's CliRunner, against the test Redis and, for the
commands that act through the API, a real ``plp web`` process started once for the package.

The web process, the workers a test starts and the commands share one data folder (outbox,
secret key) and the test's Redis prefix; the test Redis is flushed around each test as
everywhere else, which the long-running web process does not mind (it keeps nothing itself).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result
from pydantic import SecretStr

from config import Settings
from config import settings as config_settings
from dispatcher.cli import main
from dispatcher.core.models import (
    ActorIn,
    ChannelName,
    Charter,
    ClassPlan,
    DeliveryMode,
    Language,
    MemberIn,
    Plp,
    RelayMode,
    Role,
)
from dispatcher.people.accounts import create_actor
from dispatcher.people.membership import enroll
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.support import start_web

PREFIX, QUEUES = "plptest:", "plptest"
SECRET = "cli-tests-secret-key-0123456789abcdef"


class PlpCommand:
    """Runs ``plp`` in-process with an environment of its own, with settings read afresh each time."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, **env: str) -> Result:
        """Run ``plp ARGS``; whatever happens, it ends by exiting (an error is a sentence), never by a traceback."""
        config_settings.load_settings.cache_clear()
        try:
            result = self.runner.invoke(main, list(args), env={**self.env, **env}, input=input, prog_name="plp")
        finally:
            config_settings.load_settings.cache_clear()
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"plp {' '.join(args)} raised {result.exception!r}\n{result.output}"
        )
        assert "Traceback" not in result.output
        return result

    def ok(self, *args: str, input: str | None = None, **env: str) -> Result:
        """Run and check the command succeeded (exit status 0)."""
        result = self(*args, input=input, **env)
        assert result.exit_code == 0, f"plp {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result


@pytest.fixture(scope="package")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plp-cli")


@pytest.fixture
def settings(redis_url: str, shared_dir: Path) -> Settings:
    """The tests' settings, with the data folder and secret key the web process has too."""
    return Settings(
        redis_url=redis_url,
        key_prefix=PREFIX,
        queue_prefix=QUEUES,
        data_dir=shared_dir,
        public_base_url="http://127.0.0.1:8080",
        secret_key=SecretStr(SECRET),
    )


@pytest.fixture(scope="package")
def web(redis_url: str, shared_dir: Path) -> Iterator[str]:
    """A real ``plp web`` process on a free port, for every test of the package; its base URL."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PLP_KEY_PREFIX": PREFIX,
        "PLP_QUEUE_PREFIX": QUEUES,
        "PLP_DATA_DIR": str(shared_dir),
        "PLP_SECRET_KEY": SECRET,
        "PLP_LOG_LEVEL": "ERROR",
    }
    process, url = start_web(env, shared_dir / "web.log")
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def plp(runtime: Runtime, settings: Settings) -> Iterator[PlpCommand]:
    """``plp`` with REDIS_URL on the (flushed) test Redis; the logging it configures is undone afterwards.

    The command configures structlog and the root logger to write to the stderr it sees,
    which under CliRunner is a buffer closed once the command returns.
    """
    structlog_config, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield PlpCommand(
        {
            "REDIS_URL": settings.redis_url or "",
            "PLP_KEY_PREFIX": PREFIX,
            "PLP_QUEUE_PREFIX": QUEUES,
            "PLP_DATA_DIR": str(settings.data_dir),
            "PLP_SECRET_KEY": SECRET,
            "PLP_LOG_LEVEL": "WARNING",
            "PLP_PORT": "8080",
            "PLP_API_URL": "",
            "PLP_TOKEN": "",
            "PLP_TOKEN_FILE": "",
        }
    )
    structlog.configure(**structlog_config)
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def api(plp: PlpCommand, web: str) -> PlpCommand:
    """``plp`` pointed at the package's ``plp web`` (PLP_API_URL); give the token with ``PLP_TOKEN=...``."""
    return PlpCommand({**plp.env, "PLP_API_URL": web})


@dataclass
class Scene:
    """A PLP "parc" in police zone 5340 with members, and a token per role (coordinator: of parc)."""

    plp_id: str
    tokens: dict[str, str]
    members: dict[str, str]  # name -> member id

    def token(self, role: str) -> dict[str, str]:
        """The environment that makes ``plp`` act as ``role``."""
        return {"PLP_TOKEN": self.tokens[role]}


#: Members of the scene: SMS and e-mail, e-mail only, SMS and voice.
MEMBERS = [
    MemberIn(name="Anne Dubois", phone="0470 11 22 01", email="anne@example.org", language=Language.FR),
    MemberIn(name="Pieter Janssens", email="pieter@example.org", language=Language.NL, channels=[ChannelName.EMAIL]),
    MemberIn(
        name="Karim Benali", phone="0470 11 22 03", language=Language.FR, channels=[ChannelName.SMS, ChannelName.VOICE]
    ),
]


@pytest.fixture
def scene(runtime: Runtime) -> Scene:
    """The scene, written to the test Redis. Its charter: urgent to SMS, e-mail and voice; non-urgent at once."""
    sms, email, voice = ChannelName.SMS, ChannelName.EMAIL, ChannelName.VOICE
    charter = Charter(
        urgent=ClassPlan(channels=[sms, email, voice], ttl_seconds=3600),
        non_urgent=ClassPlan(channels=[email, sms], mode=DeliveryMode.FIRST_THAT_WORKS, ttl_seconds=86400),
        relay=RelayMode.AUTO,
    )
    plp = Plp(
        id="parc",
        name="PLP Quartier du Parc",
        commune="Uccle",
        police_zone="5340",
        charter=charter,
        created_at=datetime.now(UTC),
    )

    async def build() -> Scene:
        redis = runtime.async_redis()
        try:
            store = Store(redis, runtime.keys)
            await store.save_plp(plp)
            members = {m.name: (await enroll(store, plp, m, region="BE"))[0].id for m in MEMBERS}
            tokens = {}
            for role, data in {
                "admin": ActorIn(name="Admin", role=Role.ADMIN),
                "police": ActorIn(name="Inspecteur Parc", role=Role.POLICE, police_zone="5340"),
                "police_elsewhere": ActorIn(name="Inspecteur Ailleurs", role=Role.POLICE, police_zone="9999"),
                "coordinator": ActorIn(name="Coordinatrice Parc", role=Role.COORDINATOR, plp_ids=["parc"]),
            }.items():
                tokens[role] = (await create_actor(store, data))[1]
            return Scene(plp_id=plp.id, tokens=tokens, members=members)
        finally:
            await redis.aclose()

    return asyncio.run(build())
