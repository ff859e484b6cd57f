"""Fuzzing the whole API from its OpenAPI document (schemathesis), against a real ``plp web`` process.

Every operation gets generated requests, valid and invalid, with an admin's token: the
service must never answer 5xx, and every response must agree with the document (status,
content type, headers, schema). ``PLP_FUZZ_EXAMPLES`` sets the examples per operation (10 in
the test suite; docs/security.md gives the larger run). One body in three goes out re-encoded or
broken (``tests/api/fuzz_hooks.py``: UTF-16, Windows-1252, cut short, unknown charsets...),
including the member import's sheets (CSV, .xlsx).

Besides, every route that takes a body gets a table of raw bodies (bad bytes, other encodings,
a zip bomb, form posts in a charset nobody knows) with each media type: a 4xx, never a 5xx.

One check is left out: "positive data acceptance" expects every schema-valid request to
succeed, but some rules span several fields (a member needs a phone *or* an e-mail; an
urgent plan has no quiet hours) and unknown ids are a 404 by design. One is added
(``tests/api/fuzz_checks.py``): a 503 (Redis out of reach), which "no 5xx" lets through, is
accepted only from an operation that declares it, with its Retry-After.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES, api
from dispatcher.core.models import ActorIn, Role
from dispatcher.operations.queues import urgent_workers_alive
from dispatcher.people.accounts import create_actor
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.conftest import Cast
from tests.sheetfiles import XLSX, entity_bomb, xlsx_file, zip_bomb
from tests.support import Workers, free_port, notify, pending_join_request, post_json, until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = os.environ.get("PLP_FUZZ_EXAMPLES", "10")
SEED = os.environ.get("PLP_FUZZ_SEED", "20261124")


async def _admin_token(runtime: Runtime) -> str:
    redis = runtime.async_redis()
    try:
        _, token = await create_actor(Store(redis, runtime.keys), ActorIn(name="Fuzzer", role=Role.ADMIN))
        return token
    finally:
        await redis.aclose()


@pytest.fixture
def web(settings: Settings, runtime: Runtime, tmp_path: Path) -> Iterator[str]:
    """A real ``plp web`` process on a free port, with the test's Redis and prefix."""
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "PLP_KEY_PREFIX": settings.key_prefix,
        "PLP_QUEUE_PREFIX": settings.queue_prefix,
        "PLP_DATA_DIR": str(tmp_path),
        "PLP_PORT": str(port),
        "PLP_LOG_LEVEL": "ERROR",
        "PLP_RATE_LIMIT_PER_TOKEN": "1000000",
        "PLP_RATE_LIMIT_PER_ADDRESS": "1000000",
    }
    with (tmp_path / "web.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "web"], env=env, stdout=log, stderr=log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_fuzzing_the_api_finds_no_server_error_and_nothing_the_document_contradicts(
    web: str, runtime: Runtime, workers: Workers, tmp_path: Path
) -> None:
    """schemathesis' checks pass on every operation: no 5xx, and responses as documented."""
    token = asyncio.run(_admin_token(runtime))
    workers.start("urgent")  # the service is whole, so it is ready (GET /v1/ready answers 503 without a worker)
    asyncio.run(until(lambda: urgent_workers_alive(runtime), timeout=20, what="the urgent worker", every=0.05))
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'hooks = "{Path(__file__).with_name("fuzz_checks.py")}"\n'
        "[checks.not_a_server_error]\n"
        'expected-statuses = ["2XX", "3XX", "4XX", "503"]\n'
    )
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(config),
        "run",
        f"{web}/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-color",
        "--wait-for-schema",  # the process we just started: schemathesis waits for it to answer
        "20",
    ]
    hooks = {"SCHEMATHESIS_HOOKS": "tests.api.fuzz_hooks", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path, env={**os.environ, **hooks}
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


_RANDOM = random.Random(20261124)


def cap_entity_bomb() -> bytes:
    """A CAP alert whose text is a "billion laughs" entity expansion (10**9 "ha")."""
    laughs = b'<!ENTITY a0 "ha">' + b"".join(b'<!ENTITY a%d "%s">' % (i, b"&a%d;" % (i - 1) * 10) for i in range(1, 10))
    return b"<!DOCTYPE alert [" + laughs + b']><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&a9;</alert>'


#: (name, media type, body): what a broken client, another encoding or an attacker sends.
RAW_BODIES = [
    ("json-not-utf8", "application/json", b'{"name": "Ren\xe9", "members": []}'),
    ("json-utf16", "application/json", '{"name": "René"}'.encode("utf-16")),
    ("json-utf16-truncated", "application/json; charset=utf-16", '{"name": "René"}'.encode("utf-16")[:-1]),
    ("json-bom-only", "application/json", b"\xef\xbb\xbf"),
    ("json-utf32", "application/json; charset=utf-32", b"\x00" * 7),
    ("json-unknown-charset", "application/json; charset=x-klingon", b"{}"),
    ("json-non-text-codec", "application/json; charset=base64", b"{}"),
    ("json-random-bytes", "application/json", _RANDOM.randbytes(512)),
    ("json-empty", "application/json", b""),
    ("octets-random", "application/octet-stream", _RANDOM.randbytes(2048)),
    ("csv-random", "text/csv", _RANDOM.randbytes(2048)),
    ("csv-utf16-truncated", "text/csv", "Nom;GSM\n".encode("utf-16")[:-1]),
    ("csv-cp1252", "text/csv", "Nom;Téléphone\nRené;0470 12 34 56\n".encode("cp1252")),
    ("csv-nul", "text/csv; charset=utf-16-le", bytes(64)),
    ("xlsx-zip-bomb", XLSX, zip_bomb(40 * 1024 * 1024)),
    ("xlsx-entity-bomb", XLSX, entity_bomb()),
    ("xlsx-truncated", XLSX, xlsx_file({"Membres": [["Nom", "GSM"], ["Anne", "0470 12 34 56"]]})[:300]),
    ("form-unknown-charset", "application/x-www-form-urlencoded; charset=x-klingon", b"Body=OK&From=%2B32470"),
    ("form-not-utf8", "application/x-www-form-urlencoded", b"Body=\xff\xfe&From=\xe9"),
    ("multipart-no-boundary", "multipart/form-data", b"--x\r\n\r\n"),
    ("text-unknown-charset", "text/plain; charset=x-klingon", b"hello"),
    ("cap-entity-bomb", "application/cap+xml", cap_entity_bomb()),
    ("cap-random", "application/cap+xml", _RANDOM.randbytes(512)),
]
#: What an invalid JSON body may answer: 400/415/422, or 403/404/410 when the route refuses the caller, the
#: resource or the link (a member's page) before it reads the body.
INVALID_JSON = {400, 403, 404, 410, 415, 422}


@pytest.fixture
async def unthrottled(settings: Settings, client: TestClient) -> AsyncIterator[TestClient]:
    """An app on the test's Redis (the cast's tokens work) without rate limits: every raw body is read."""
    limits = {"rate_limit_per_token": 0.0, "rate_limit_per_address": 0.0}  # 0: no limit
    runtime = Runtime.from_settings(settings.model_copy(update=limits))
    async with TestClient(TestServer(create_app(runtime))) as app:
        yield app
    runtime.close()


async def _targets(client: TestClient, cast: Cast) -> dict[str, str]:
    """Path parameters naming things that exist (a PLP, a member, an actor), so routes reach their body."""
    member = await post_json(
        client,
        f"/v1/plps/{cast.plp_a}/members",
        {"name": "Fuzz", "email": "fuzz@example.org"},
        headers=cast.auth("admin"),
        expect=201,
    )
    return {
        "plp_id": cast.plp_a,
        "member_id": member["id"],
        "actor_id": cast.ids["coordinator_a"],
        "alert_id": "0123456789abcdef",
        "token_id": "tok_0123456789abcdef",
        "token": "not-a-real-token",
        "request_id": await pending_join_request(client.server.app[SERVICES].store, cast.plp_a),
        "notification_id": await notify(client, cast, "admin"),
    }


async def test_raw_bodies_on_every_route_that_takes_one_are_a_4xx_never_a_5xx(
    unthrottled: TestClient, cast: Cast
) -> None:
    """Each POST, PUT and PATCH route, given bad bytes, other encodings, bombs and unknown charsets under each
    media type, answers a 4xx (or a 2xx for a body it could read); an invalid JSON body is a 400, 415 or 422."""
    client = unthrottled
    targets = await _targets(client, cast)
    routes = [
        (op.method, op.path, op.body is not None) for op in api.operations if op.method in ("POST", "PUT", "PATCH")
    ]
    assert len(routes) > 15
    failures = []
    for method, path, has_model in routes:
        url = re.sub(r"{([a-z_]+)}", lambda m: targets[m.group(1)], path)
        for name, media_type, body in RAW_BODIES:
            headers = {**cast.auth("admin"), "Content-Type": media_type}
            async with client.request(method, url, data=body, headers=headers) as response:
                status = response.status
            json_broken = (
                has_model and media_type.startswith("application/json") and name not in ("json-utf16", "json-empty")
            )
            if status >= 500 or (json_broken and 200 <= status < 300):
                failures.append(f"{method} {path} {name}: {status}")
            elif json_broken and path.endswith("/members/import") and status not in {400, 415, 422}:
                failures.append(f"{method} {path} {name}: {status}, expected 400/415/422")
            elif json_broken and status not in INVALID_JSON and status != 401:
                failures.append(f"{method} {path} {name}: {status}")
    assert not failures, "\n".join(failures)
