"""``plp token``: issuing, listing and revoking tokens on Redis; bad input and bad configuration refused in one line."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from click.testing import Result

from dispatcher.api.services import SERVICES
from dispatcher.storage.runtime import Runtime
from tests.cli.conftest import PlpCommand, Scene

TOKEN = re.compile(r"plp_[A-Za-z0-9_-]{20,}")


def issued_token(result: Result) -> str:
    assert result.exit_code == 0, result.output
    tokens = TOKEN.findall(result.output)
    assert len(tokens) == 1, result.output
    return str(tokens[0])


async def test_an_issued_token_authenticates_against_the_api(client: TestClient, plp: PlpCommand) -> None:
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


def test_redis_keeps_only_the_hash_of_a_token(plp: PlpCommand, runtime: Runtime) -> None:
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
            "stream": lambda k: [v for _, fields in redis.xrange(k) for item in fields.items() for v in item],
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
def test_a_role_without_its_binding_is_a_short_error(
    plp: PlpCommand, runtime: Runtime, args: list[str], says: str
) -> None:
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
def test_an_invalid_environment_is_one_line_naming_the_variable(plp: PlpCommand, variable: str, value: str) -> None:
    """A bad setting stops the command with one line saying the configuration is not valid and which variable."""
    result = plp("token", "issue", "--name", "X", "--role", "admin", **{variable: value})
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "configuration is not valid" in lines[0]
    assert variable in lines[0]


TOKEN_ID = re.compile(r"tok_[0-9a-f]{10}")


def actor_of(result: Result) -> str:
    found = re.search(r"^actor (\w+)", result.output, re.MULTILINE)
    assert found, result.output
    return found.group(1)


def issued_token_id(result: Result) -> str:
    found = TOKEN_ID.findall(result.output)
    assert len(found) == 1, result.output
    return str(found[0])


async def test_issue_gives_a_token_id_and_the_validity_asked(client: TestClient, plp: PlpCommand) -> None:
    """``--ttl-days 7`` prints the token's id and an expiry 7 days ahead; the API agrees."""
    result = await asyncio.to_thread(plp, "token", "issue", "--name", "Admin Y", "--role", "admin", "--ttl-days", "7")
    token, token_id = issued_token(result), issued_token_id(result)
    expires = datetime.now(UTC) + timedelta(days=7)
    assert f"expires {expires:%Y-%m-%d}" in result.output
    listed = await client.get("/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    [item] = (await listed.json())["items"]
    assert item["id"] == token_id
    assert abs(datetime.fromisoformat(item["expires_at"]) - expires) < timedelta(minutes=1)


def test_issue_to_an_existing_actor(plp: PlpCommand) -> None:
    """``--actor ID`` issues another token to that actor; an unknown actor is a one-line error."""
    first = plp("token", "issue", "--name", "Inspecteur X", "--role", "police", "--zone", "5340")
    actor_id = actor_of(first)
    second = plp("token", "issue", "--actor", actor_id)
    assert issued_token(second) != issued_token(first)
    assert f"actor {actor_id} (police)" in second.output
    result = plp("token", "issue", "--actor", "nosuchactor")
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == ["Error: no actor 'nosuchactor'"]


def test_issue_needs_an_actor_or_a_name_and_role(plp: PlpCommand) -> None:
    """Neither ``--actor`` nor ``--name``/``--role``, or both, is a usage error."""
    for args in (["--name", "X"], ["--actor", "abc", "--role", "admin"]):
        result = plp("token", "issue", *args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output


def test_list_shows_tokens_without_their_secrets(plp: PlpCommand) -> None:
    """``plp token list`` shows id, actor, name, role, times and status of each token, never a secret."""
    first = plp("token", "issue", "--name", "Admin X", "--role", "admin")
    second = plp("token", "issue", "--name", "Inspecteur X", "--role", "police", "--zone", "5340")
    result = plp("token", "list")
    assert result.exit_code == 0, result.output
    assert not TOKEN.findall(result.output)
    lines = result.output.strip().splitlines()
    assert lines[0].split()[:4] == ["TOKEN", "ACTOR", "NAME", "ROLE"]
    assert [line.split()[0] for line in lines[1:]] == [issued_token_id(second), issued_token_id(first)]
    assert all(line.endswith("active") for line in lines[1:])
    actor_id = actor_of(second)
    only = plp("token", "list", "--actor", actor_id).output.strip().splitlines()
    assert [line.split()[0] for line in only[1:]] == [issued_token_id(second)]


async def test_a_revoked_token_is_refused_by_the_api(client: TestClient, plp: PlpCommand) -> None:
    """``plp token revoke TOKEN_ID`` makes the API refuse the token at once; the listing says revoked."""
    issued = await asyncio.to_thread(plp, "token", "issue", "--name", "Admin X", "--role", "admin")
    token, token_id = issued_token(issued), issued_token_id(issued)
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).status == 200
    result = await asyncio.to_thread(plp, "token", "revoke", token_id)
    assert result.exit_code == 0, result.output
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert (await response.json())["errors"][0]["reason"] == "revoked"
    listed = await asyncio.to_thread(plp, "token", "list")
    assert listed.output.strip().splitlines()[1].endswith("revoked")


def test_revoking_an_unknown_token_is_a_one_line_error(plp: PlpCommand) -> None:
    """An id no token has is refused in one line."""
    result = plp("token", "revoke", "tok_0000000000")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: no token 'tok_0000000000'"]


def test_the_command_line_is_audited_as_the_operator(plp: PlpCommand, runtime: Runtime) -> None:
    """Issuing and revoking from the command line are in the audit log, by actor "cli", role "operator"."""
    token_id = issued_token_id(plp("token", "issue", "--name", "Admin X", "--role", "admin"))
    plp("token", "revoke", token_id)
    entries = runtime.sync_redis.xrange(runtime.keys.audit())
    actions = [(f["actor_id"], f["role"], f["action"]) for _, f in entries]
    assert actions == [
        ("cli", "operator", "actor.created"),
        ("cli", "operator", "token.issued"),
        ("cli", "operator", "token.revoked"),
    ]
    assert all(token_id in f["target"] for _, f in entries[1:])


async def test_a_coordinator_created_with_an_email_can_sign_in_by_link(
    client: TestClient, plp: PlpCommand, scene: Scene
) -> None:
    """``--email`` gives the new actor the address their console sign-in links go to."""
    result = await asyncio.to_thread(
        plp,
        "token", "issue", "--name", "Jan Claes", "--role", "coordinator", "--plp", scene.plp_id,
        "--email", "Jan@PLP-Parc.example",
    )  # fmt: skip
    token = issued_token(result)
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    me = await response.json()
    assert (me["name"], me["role"], me["plp_ids"]) == ("Jan Claes", "coordinator", [scene.plp_id])
    actor = await client.server.app[SERVICES].store.get_actor(me["id"])
    assert actor is not None and actor.email == "Jan@plp-parc.example"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--name", "X", "--role", "admin", "--email", "not an address"], "mail"),
        (["--actor", "someone", "--email", "x@example.org"], "--email"),
    ],
)
def test_a_bad_email_is_a_short_error(plp: PlpCommand, runtime: Runtime, args: list[str], says: str) -> None:
    """An address that is not one, or an address given for an existing actor, is refused in one line."""
    result = plp("token", "issue", *args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert says.lower() in result.output.lower()
