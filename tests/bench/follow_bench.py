"""Measure what live followers cost the API: its p99 latency with 500 open followers vs without.

Run with ``.venv/bin/python -m tests.bench.follow_bench`` (a real Redis is needed; the default is
the tests' database; keys under ``plpbench-follow:`` are removed afterwards).

One ``plp web`` process (the default ``PLP_REDIS_MAX_CONNECTIONS``, 128) serves an urgent alert
that stays open (no worker runs). A bounded load generator (``--concurrency`` requests at once,
``--requests`` in all, each ``GET /v1/me`` or ``GET /v1/alerts/{id}``) measures the API's latency
in three rounds:

1. no follower;
2. ``--followers`` followers of the alert (``GET /v1/alerts/{id}/events``), held open by a
   process of their own, the alert not changing;
3. the same followers while the alert's counters change every second, so that every follower
   is woken and sent an event each second (a live alert).

It prints, for each round, the median and p99 latency, the requests a second, and the Redis
connections the web process holds. The figures are measured, not asserted; on a shared
machine they vary from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from config import Settings
from dispatcher.core.models import ActorIn, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.keys import Keys
from dispatcher.storage.store import Store
from tests.bench.scenarios import percentile
from tests.support import settings_env, start_web

PREFIX = "plpbench-follow:"
URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue du Parc"}}


@dataclass
class Round:
    name: str
    latencies: list[float]
    seconds: float
    connections: int

    def line(self) -> str:
        median, p99 = statistics.median(self.latencies) * 1000, percentile(self.latencies, 0.99) * 1000
        rate = len(self.latencies) / self.seconds
        return (
            f"{self.name:<44} median {median:6.1f} ms   p99 {p99:6.1f} ms   {rate:6.0f} req/s   "
            f"Redis connections of the web: {self.connections}"
        )


async def _load(base: str, token: str, alert_id: str, *, requests: int, concurrency: int) -> tuple[list[float], float]:
    """``requests`` GETs, ``concurrency`` at a time; returns each one's latency (s) and the whole time."""
    headers = {"Authorization": f"Bearer {token}"}
    paths = iter(["/v1/me", f"/v1/alerts/{alert_id}"] * (requests // 2))
    latencies: list[float] = []

    async def lane(session: aiohttp.ClientSession) -> None:
        for path in paths:
            started = time.perf_counter()
            async with session.get(base + path, headers=headers) as response:
                await response.read()
                assert response.status == 200, (path, response.status)
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(lane(session) for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def _hold_followers(base: str, token: str, alert_id: str, count: int, ready: Event, stop: Event) -> None:
    """In a process of its own: open ``count`` followers, set ``ready`` once each had its first event, read
    their events until ``stop``."""

    async def hold() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
            opened = 0

            async def follow() -> None:
                nonlocal opened
                async with session.get(f"{base}/v1/alerts/{alert_id}/events", headers=headers) as response:
                    assert response.status == 200, response.status
                    await response.content.readuntil(b"\n\n")
                    opened += 1
                    if opened == count:
                        ready.set()
                    async for _ in response.content:  # the events, until the stream or the test ends
                        pass

            tasks = [asyncio.create_task(follow()) for _ in range(count)]
            while not stop.is_set():
                await asyncio.sleep(0.1)  # the parent's signal crosses processes: there is nothing to await
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(hold())


async def _change_every_second(redis: Redis, keys: Keys, alert_id: str, stop: asyncio.Event) -> None:
    """A live alert: one more delivery sent every second (its counters only; nothing is sent)."""
    while not stop.is_set():
        await redis.hincrby(keys.alert_counts(alert_id), "c:sms:sent", 1)
        await redis.hincrby(keys.alert_counts(alert_id), "s:sent", 1)
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except TimeoutError:
            pass


async def _connections(redis: Redis, database: int) -> int:
    """Clients of the benchmark's database but this one (the web process is the only other)."""
    clients = await redis.client_list()
    return sum(1 for c in clients if int(c["db"]) == database) - 1


async def _clean(redis: Redis) -> None:
    async for key in redis.scan_iter(match=f"{PREFIX}*"):
        await redis.delete(key)


async def _setup(redis: Redis, base: str) -> tuple[str, str]:
    """An admin's token and an urgent alert to a PLP of three members, which stays open (no worker runs)."""
    _, token = await create_actor(Store(redis, Keys(PREFIX)), ActorIn(name="Bench", role=Role.ADMIN))
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        body = {"name": "PLP Bench", "commune": "Uccle", "police_zone": "5340"}
        async with session.post(f"{base}/v1/plps", json=body) as response:
            plp = (await response.json())["id"]
        for i in range(3):
            member = {"name": f"Member {i}", "email": f"m{i}@example.org", "language": "fr"}
            async with session.post(f"{base}/v1/plps/{plp}/members", json=member) as response:
                assert response.status == 201, await response.text()
        async with session.post(f"{base}/v1/alerts", json={**URGENT, "plp_ids": [plp]}) as response:
            assert response.status == 202, await response.text()
            return token, (await response.json())["id"]


async def main(redis_url: str, *, followers: int, requests: int, concurrency: int) -> list[Round]:
    data = Path(tempfile.mkdtemp(prefix="plp-follow-bench-"))
    settings = Settings(redis_url=redis_url, key_prefix=PREFIX, queue_prefix="plpbench-follow", data_dir=data)
    env = {**settings_env(settings), "PLP_LOG_LEVEL": "WARNING", "PLP_LOG_FORMAT": "json"}
    env |= {"PLP_RATE_LIMIT_PER_TOKEN": "0", "PLP_RATE_LIMIT_PER_ADDRESS": "0"}  # the load is one client
    redis = Redis.from_url(redis_url, decode_responses=True)
    database = int(redis.connection_pool.connection_kwargs.get("db", 0))
    web, base = start_web({**os.environ, **env}, data / "web.log")
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    holder = None
    rounds: list[Round] = []
    try:
        token, alert_id = await _setup(redis, base)

        async def measure(name: str) -> None:
            await _load(base, token, alert_id, requests=min(200, requests), concurrency=concurrency)  # warm up
            latencies, seconds = await _load(base, token, alert_id, requests=requests, concurrency=concurrency)
            rounds.append(Round(name, latencies, seconds, await _connections(redis, database)))
            print(rounds[-1].line(), flush=True)

        await measure("no follower")
        holder = context.Process(target=_hold_followers, args=(base, token, alert_id, followers, ready, stop))
        holder.start()
        opened = time.perf_counter()
        while not ready.is_set():
            if not holder.is_alive():
                raise SystemExit(f"the followers' process ended early:\n{(data / 'web.log').read_text()[-2000:]}")
            await asyncio.sleep(0.1)  # another process opens them: there is nothing to await here
        print(f"{followers} followers open after {time.perf_counter() - opened:.1f} s", flush=True)
        await measure(f"{followers} followers, alert not changing")
        changing = asyncio.Event()
        changer = asyncio.create_task(_change_every_second(redis, Keys(PREFIX), alert_id, changing))
        await measure(f"{followers} followers, alert changing every second")
        changing.set()
        await changer
    finally:
        stop.set()
        if holder is not None:
            holder.join(timeout=30)
        web.terminate()
        web.wait(timeout=30)
        await _clean(redis)
        await redis.aclose()
    return rounds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--followers", type=int, default=500)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    found = asyncio.run(
        main(args.redis_url, followers=args.followers, requests=args.requests, concurrency=args.concurrency)
    )
    none = percentile(found[0].latencies, 0.99)
    for later in found[1:]:
        print(f"p99 ratio, {later.name} / no follower: {percentile(later.latencies, 0.99) / none:.2f}", file=sys.stdout)
