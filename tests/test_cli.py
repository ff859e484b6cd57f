"""The ``plp`` command: issuing tokens, refusing bad input and bad configuration with one clear line."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from aiohttp.test_utils import TestClient
from click.testing import CliRunner, Result

from config import settings as config_settings
from dispatcher.cli import main
from dispatcher.runtime import Runtime

TOKEN = re.compile(r"plp_[A-Za-z0-9_-]{20,}")


class Plp:
    """Runs ``plp`` in-process against the test Redis, with settings read afresh from its environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, **env: str) -> Result:
        config_settings.load_settings.cache_clear()
        try:
            return self.runner.invoke(main, list(args), env={**self.env, **env})
        finally:
            config_settings.load_settings.cache_clear()


@pytest.fixture
def plp(redis_url: str, tmp_path: Path, runtime: Runtime) -> Iterator[Plp]:
    """``plp`` with REDIS_URL on the (flushed) test Redis; the logging it configures is undone afterwards.

    The command configures structlog and the root logger to write to the stderr it sees,
    which under CliRunner is a buffer closed once the command returns.
    """
    structlog_config, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield Plp(
        {
            "REDIS_URL": redis_url,
            "PLP_KEY_PREFIX": "plptest:",
            "PLP_QUEUE_PREFIX": "plptest",
            "PLP_DATA_DIR": str(tmp_path),
            "PLP_LOG_LEVEL": "WARNING",
            "PLP_PORT": "8080",
        }
    )
    structlog.configure(**structlog_config)
    root.handlers[:], root.level = handlers, level


def issued_token(result: Result) -> str:
    assert result.exit_code == 0, result.output
    tokens = TOKEN.findall(result.output)
    assert len(tokens) == 1, result.output
    return str(tokens[0])


async def test_an_issued_token_authenticates_against_the_api(client: TestClient, plp: Plp) -> None:
    """``plp token issue`` prints a token once, and that token is accepted by the API as the actor it names."""
    # In a thread: the command runs its own event loop, and this test already has one.
    result = await asyncio.to_thread(
        plp, "token", "issue", "--name", "Inspecteur X", "--role", "police", "--zone", "5340"
    )
    token = issued_token(result)
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    me = await response.json()
    assert (me["name"], me["role"], me["police_zone"]) == ("Inspecteur X", "police", "5340")
    assert me["id"] in result.output


def test_redis_keeps_only_the_hash_of_a_token(plp: Plp, runtime: Runtime) -> None:
    """No Redis key or value holds the clear token; its sha256 names the token's record."""
    token = issued_token(plp("token", "issue", "--name", "Admin X", "--role", "admin"))
    redis = runtime.sync_redis
    keys = list(redis.scan_iter(match="*"))
    assert keys, "the actor and token were not stored in the test Redis"
    for key in keys:
        assert token not in key
        kind = redis.type(key)
        stored = {
            "string": lambda k: [redis.get(k)],
            "hash": lambda k: [*redis.hkeys(k), *redis.hvals(k)],
            "zset": lambda k: redis.zrange(k, 0, -1),
            "set": lambda k: list(redis.smembers(k)),
            "list": lambda k: redis.lrange(k, 0, -1),
        }[kind](key)
        assert not any(token in str(value) for value in stored), key
    assert redis.exists(f"plptest:token:{hashlib.sha256(token.encode()).hexdigest()}")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--role", "coordinator"], "PLP"),
        (["--role", "coordinator", "--plp", "nosuchplp"], "nosuchplp"),
        (["--role", "police"], "zone"),
    ],
)
def test_a_role_without_its_binding_is_a_short_error(plp: Plp, runtime: Runtime, args: list[str], says: str) -> None:
    """A coordinator without an existing PLP, or police without a zone, is refused in one line, with no traceback."""
    result = plp("token", "issue", "--name", "X", *args)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    assert says.lower() in result.output.lower()
    assert len(result.output.strip().splitlines()) == 1
    assert list(runtime.sync_redis.scan_iter(match="plptest:actor:*")) == []


@pytest.mark.parametrize(("variable", "value"), [("PLP_PORT", "abc"), ("PLP_PORT", "70000"), ("PLP_LOG_LEVEL", "LOUD")])
def test_an_invalid_environment_is_one_line_naming_the_variable(plp: Plp, variable: str, value: str) -> None:
    """A bad setting stops the command with one line saying the configuration is not valid and which variable."""
    result = plp("token", "issue", "--name", "X", "--role", "admin", **{variable: value})
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "configuration is not valid" in lines[0]
    assert variable in lines[0]


def test_help_lists_the_commands() -> None:
    """``plp --help`` lists web, worker, token and dev."""
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    listed = {line.split()[0] for line in commands.strip().splitlines()}
    assert listed >= {"web", "worker", "token", "dev"}
