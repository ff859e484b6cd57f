"""Measure provider limits shared by several processes: rate kept, and urgent work served first.

Run with ``.venv/bin/python -m tests.bench.limits_bench`` (a real Redis is needed; the
default is the tests' database). Four processes send "messages" through
``ProviderLimits.wait_turn`` under one limit of 20 a second for 3 seconds: in each, one
urgent sender with a message every 0.4 s (10 a second in all, half the limit) and two
non-urgent senders asking again as soon as they got a turn (far more than the limit).
Prints what was granted, the most turns in any one second of the server's clock (and of
the moments the senders actually woke up), and the mean wait of urgent and non-urgent
messages. The figures are measured, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier

import redis
from redis.asyncio import Redis as AsyncRedis

from dispatcher.storage.keys import Keys
from dispatcher.storage.limits import Limit, ProviderLimits

KEYS = Keys("plpbench:")
LIMIT = Limit("bench", 20.0)


@dataclass(frozen=True)
class Plan:
    redis_url: str
    processes: int
    seconds: float
    urgent_every: float  # seconds between one process's urgent messages
    non_urgent_senders: int  # per process


@dataclass(frozen=True)
class Granted:
    urgent: bool
    at_us: int  # the slot, on the Redis server's clock
    woke_us: int  # when wait_turn returned, on this host's wall clock (the server's, on one machine)
    waited: float  # seconds spent in wait_turn, on the process's clock


async def _urgent_sender(limits: ProviderLimits, plan: Plan, offset: float, out: list[Granted]) -> None:
    start = time.monotonic()
    due = start + offset
    while due < start + plan.seconds:
        await asyncio.sleep(max(0.0, due - time.monotonic()))  # the workload: a message every urgent_every
        out.append(await _send(limits, urgent=True))
        due += plan.urgent_every


async def _non_urgent_sender(limits: ProviderLimits, plan: Plan, out: list[Granted]) -> None:
    deadline = time.monotonic() + plan.seconds
    while time.monotonic() < deadline:
        out.append(await _send(limits, urgent=False))


async def _send(limits: ProviderLimits, *, urgent: bool) -> Granted:
    asked = time.monotonic()
    turn = await limits.wait_turn([LIMIT], urgent=urgent)
    assert turn is not None
    woke_us, waited = time.time_ns() // 1000, time.monotonic() - asked
    return Granted(urgent=urgent, at_us=round(turn.at * 1_000_000), woke_us=woke_us, waited=waited)


async def _run(plan: Plan, index: int) -> list[Granted]:
    client = AsyncRedis.from_url(plan.redis_url)
    limits = ProviderLimits(client, KEYS)
    out: list[Granted] = []
    offset = plan.urgent_every * index / plan.processes  # spread the processes' urgent messages
    try:
        await asyncio.gather(
            _urgent_sender(limits, plan, offset, out),
            *(_non_urgent_sender(limits, plan, out) for _ in range(plan.non_urgent_senders)),
        )
    finally:
        await client.aclose()
    return out


def _process(plan: Plan, index: int, barrier: Barrier, results: multiprocessing.Queue[list[Granted]]) -> None:
    barrier.wait()
    results.put(asyncio.run(_run(plan, index)))


def max_in_window(ats_us: list[int], window_us: int = 1_000_000) -> int:
    """The most slots in any half-open window [t, t + window) of the server clock."""
    ats, best, first = sorted(ats_us), 0, 0
    for last, at in enumerate(ats):
        while at - ats[first] >= window_us:
            first += 1
        best = max(best, last - first + 1)
    return best


def _mean_ms(waits: list[float]) -> str:
    if not waits:
        return "n/a (none granted)"
    return f"{statistics.mean(waits) * 1000:.1f} ms (max {max(waits) * 1000:.0f} ms, n={len(waits)})"


def report(plan: Plan, granted: list[Granted]) -> None:
    ats = sorted(g.at_us for g in granted)
    urgent = [g.waited for g in granted if g.urgent]
    non_urgent = [g.waited for g in granted if not g.urgent]
    span = (ats[-1] - ats[0]) / 1_000_000
    gaps = [b - a for a, b in itertools.pairwise(ats)]
    print(
        f"limit {LIMIT.per_second:g}/s (burst {LIMIT.burst}), {plan.processes} processes, {plan.seconds:g} s; "
        f"urgent demand {plan.processes / plan.urgent_every:g}/s, "
        f"{plan.processes * plan.non_urgent_senders} non-urgent senders asking without pause"
    )
    print(f"total granted: {len(granted)} (urgent {len(urgent)}, non-urgent {len(non_urgent)}) over {span:.2f} s")
    print(f"observed max rate over any 1 s window (server clock): {max_in_window(ats)} turns")
    woke = [g.woke_us for g in granted]
    print(f"same, at the moments the senders woke up (local clock, jitter included): {max_in_window(woke)} turns")
    print(f"smallest gap between two turns: {min(gaps) / 1000:.1f} ms (interval {LIMIT.interval_us / 1000:.1f} ms)")
    print(f"mean wait urgent: {_mean_ms(urgent)}")
    print(f"mean wait non-urgent: {_mean_ms(non_urgent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = os.environ.get("PLP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    parser.add_argument("--redis-url", default=default_url)
    args = parser.parse_args()
    plan = Plan(redis_url=args.redis_url, processes=4, seconds=3.0, urgent_every=0.4, non_urgent_senders=2)
    with redis.Redis.from_url(plan.redis_url) as client:
        client.delete(KEYS.limit(LIMIT.name))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(plan.processes)
    results: multiprocessing.Queue[list[Granted]] = context.Queue()
    workers = [context.Process(target=_process, args=(plan, i, barrier, results)) for i in range(plan.processes)]
    for worker in workers:
        worker.start()
    granted = [g for _ in workers for g in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)
    report(plan, granted)


if __name__ == "__main__":
    main()
