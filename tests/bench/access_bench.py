"""Measure what access control costs: the throttle's time per request, the audit log's memory.

Run with ``.venv/bin/python -m tests.bench.access_bench`` (a real Redis is needed; the
default is the tests' database; keys under ``plpbench:`` are removed afterwards).

1. ``GET /v1/me`` in process, one request at a time, with the rate limits off and on
   (limits too high to refuse anything, so only their cost shows), alternating rounds;
   prints the median time per request of each.
2. ``--entries`` audit entries of a typical shape (a member read: a PLP id and a member
   id) appended to the stream; prints the stream's ``MEMORY USAGE`` per entry and for the
   cap of ``dispatcher.access.audit.MAX_ENTRIES``.

The figures are measured, not asserted; on a shared machine they vary by some tenths of
a millisecond from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from config import Settings
from dispatcher.access import audit
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.models import Actor, ActorIn, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.keys import Keys
from dispatcher.storage.runtime import Runtime

PREFIX = "plpbench:"


async def _per_request(redis_url: str, requests: int, **limits: float) -> float:
    settings = Settings(
        environment="development",
        redis_url=redis_url,
        key_prefix=PREFIX,
        queue_prefix="plpbench",
        data_dir=Path(tempfile.mkdtemp()),
        **limits,
    )
    async with TestClient(TestServer(create_app(Runtime.from_settings(settings)))) as client:
        _, token = await create_actor(client.server.app[SERVICES].store, ActorIn(name="Bench", role=Role.ADMIN))
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(100):  # warm up connections and scripts
            await client.get("/v1/me", headers=headers)
        started = time.perf_counter()
        for _ in range(requests):
            response = await client.get("/v1/me", headers=headers)
            assert response.status == 200, response.status
        return (time.perf_counter() - started) / requests


async def _audit_bytes(redis: Redis, entries: int) -> float:
    keys = Keys(PREFIX)
    actor = Actor(id="3f0c9a1e5b7d2c48", name="Bench", role=Role.COORDINATOR, plp_ids=["p"])
    for i in range(entries):
        target = {"plp": "8f3edc3f06e97b1f", "member": f"{i:016x}"}
        await audit.record(redis, keys, actor=actor, action=audit.Action.MEMBER_VIEWED, target=target)
    return float(await redis.memory_usage(keys.audit()) or 0) / entries


async def _clean(redis: Redis) -> None:
    async for key in redis.scan_iter(match=f"{PREFIX}*"):
        await redis.delete(key)


async def main(redis_url: str, *, requests: int, rounds: int, entries: int) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    off: list[float] = []
    on: list[float] = []
    try:
        for _ in range(rounds):
            off.append(await _per_request(redis_url, requests, rate_limit_per_token=0, rate_limit_per_address=0))
            await _clean(redis)
            on.append(await _per_request(redis_url, requests, rate_limit_per_token=1e9, rate_limit_per_address=1e9))
            await _clean(redis)
        per_entry = await _audit_bytes(redis, entries)
    finally:
        await _clean(redis)
        await redis.aclose()
    median_off, median_on = statistics.median(off) * 1000, statistics.median(on) * 1000
    print(f"GET /v1/me, {rounds} rounds of {requests}: limits off {median_off:.2f} ms, on {median_on:.2f} ms")
    print(f"  the throttle costs {median_on - median_off:.2f} ms a request (median)")
    cap_mb = per_entry * audit.MAX_ENTRIES / 1e6
    print(f"audit: {per_entry:.0f} bytes an entry ({entries} entries); {cap_mb:.0f} MB at the cap")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entries", type=int, default=50_000)
    args = parser.parse_args()
    asyncio.run(main(args.redis_url, requests=args.requests, rounds=args.rounds, entries=args.entries))
