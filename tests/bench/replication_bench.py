"""8. Waiting for a replica: what ``PLP_REDIS_WAIT_REPLICAS=1`` costs an alert's intake (issue 15, item 2).

The stage's ``redis-server`` is the primary; this scenario starts a second one, its replica
(``--replicaof``), and waits until the replica is in sync. The real service (``plp web``, the
workers, the clock) is run three times on it, each time posting urgent alerts to a one-member PLP,
``Size.replication_alerts`` one after the other, then as many with ``IN_FLIGHT`` in flight, and timing
each POST until its 202:

- the baseline: ``PLP_REDIS_WAIT_REPLICAS=0`` (the replica attached all the same, so that only the
  wait differs);
- ``PLP_REDIS_WAIT_REPLICAS=1``: the 202 once the replica holds the alert;
- the same with the replica stopped, ``Size.replication_missed`` alerts each way: every wait runs out
  after ``PLP_REDIS_WAIT_TIMEOUT`` (the default, 1 s; Redis ends a ``WAIT`` on its timer, which ticks
  ``hz`` times a second, 10 by default: up to 100 ms later) and ``PLP_REDIS_WAIT_MISSED=accept`` still
  answers 202; the misses are read from ``plp_replication_waits_total{outcome}`` on ``/metrics``.

The target of the wait with its replica up: at most 1.5 times the baseline plus 5 ms, at each
percentile. On loopback the wait is one more round trip to the primary and one from the primary to
its replica and back (under a millisecond when idle); the 5 ms are room for the scheduler of a
two-core machine running six processes. With the replica stopped, the target is the timeout and one
tick of Redis' timer plus that much: the timeout, and nothing else, is what a missed wait costs.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import redis

from dispatcher.storage.runtime import Runtime
from tests.bench.harness import Stage
from tests.bench.scenarios import Figure, Size, percentile
from tests.support import RedisServer

SCENARIO = "8. replication wait"
IN_FLIGHT = 8  # the concurrent rounds: POSTs in flight at once
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
SLACK_RATIO, SLACK_MS = 1.5, 5.0  # the target: at most 1.5 times the baseline plus 5 ms
WAITS = re.compile(r'^plp_replication_waits_total\{outcome="(\w+)"\} ([0-9.e+]+)$', re.MULTILINE)

#: Latencies in ms of one service run: the sequential round's, the concurrent round's.
Rounds = dict[str, list[float]]


async def replication_wait(stage: Stage, size: Size) -> list[Figure]:
    """The three runs on the stage's Redis and a replica of it; each run's percentiles against the baseline's."""
    replica = await _replica(stage)
    load_before = os.getloadavg()[0]
    try:
        baseline, _ = await _run(stage, size.replication_alerts, redis_wait_replicas=0)
        waited, confirmed = await _run(stage, size.replication_alerts, redis_wait_replicas=1)
        await asyncio.to_thread(replica.stop)
        timeout, hz = stage.settings().redis_wait_timeout, _hz(stage)
        missed, outcomes = await _run(stage, size.replication_missed, redis_wait_replicas=1)
    finally:
        await asyncio.to_thread(replica.stop)
    load = {"before": load_before, "after": os.getloadavg()[0]}  # the machine's 1-minute load average
    print(f"   load average (1 min): {load['before']:.2f} before, {load['after']:.2f} after", file=sys.stderr)
    every = confirmed.get("confirmed", 0) == 2 * size.replication_alerts  # the target needs each wait confirmed
    figures = [
        _figure(
            f"WAIT for 1 replica, {mode}: POST to 202, {name}",
            waited[mode],
            baseline[mode],
            name,
            every,
            confirmed,
            load=load,
        )
        for mode in waited
        for name in PERCENTILES
    ]
    tally = f"202 each; {outcomes.get('missed', 0):g} of {2 * size.replication_missed} missed"
    for mode in missed:
        for name in ("p50", "p99"):
            what = f"replica stopped, {mode}: POST to 202, {name} ({tally})"
            late = timeout + 1 / hz  # Redis ends a blocked WAIT on its timer, which ticks hz times a second
            every = outcomes.get("missed", 0) == 2 * size.replication_missed
            figures.append(
                _figure(what, missed[mode], baseline[mode], name, every, outcomes, timeout=late, hz=hz, load=load)
            )
    return figures


def _figure(
    measure: str,
    values: list[float],
    baseline: list[float],
    name: str,
    every: bool,
    waits: dict[str, float],
    *,
    timeout: float = 0.0,
    **detail: object,
) -> Figure:
    """A percentile against the baseline's, its target ``timeout + 1.5 x baseline + 5 ms`` and ``every`` wait
    ending as the run expects (``waits``: the run's by outcome)."""
    value, base = percentile(values, PERCENTILES[name]), percentile(baseline, PERCENTILES[name])
    limit = 1000 * timeout + SLACK_RATIO * base + SLACK_MS
    target = f"≤ {SLACK_RATIO:g}× + {SLACK_MS:g} ms"
    if timeout:
        target = f"≤ {1000 * timeout:g} ms + {SLACK_RATIO:g}× + {SLACK_MS:g} ms"
    all_percentiles = {f"{p}_ms": round(percentile(values, s), 2) for p, s in PERCENTILES.items()}
    return Figure(
        SCENARIO,
        measure,
        value,
        "ms",
        f"same, PLP_REDIS_WAIT_REPLICAS=0 ({name})",
        base,
        value / base,
        target,
        value <= limit and every,
        {"alerts": len(values), **all_percentiles, "waits": waits, **detail},
    )


def _hz(stage: Stage) -> int:
    """The primary's ``hz``: how often a second its timer ends the blocked commands whose timeout passed."""
    with redis.Redis.from_url(stage.redis.url, decode_responses=True) as client:
        return int(client.config_get("hz")["hz"])


async def _replica(stage: Stage, *, timeout: float = 30) -> RedisServer:
    """A replica of the stage's Redis, started and in sync."""
    primary = stage.redis
    folder: Path = stage.folder / "replica"
    replica = RedisServer(folder, args=[*primary.args, "--replicaof", "127.0.0.1", str(primary.port)])
    await asyncio.to_thread(replica.start)
    # the primary's own WAIT returns once the replica has synced and acknowledged a write made now
    # redis-py's client gives up reading after 5 s by default: longer than the WAIT's own bound here
    with (
        redis.Redis.from_url(primary.url, socket_timeout=timeout + 5) as client,
        client.pipeline(transaction=False) as pipe,
    ):
        pipe.incr("plpbench:replica-sync").wait(1, round(timeout * 1000)).delete("plpbench:replica-sync")
        _, acknowledged, _ = await asyncio.to_thread(pipe.execute)
    if acknowledged < 1:
        raise RuntimeError(f"the replica did not sync in {timeout} s: see {folder}")
    return replica


async def _run(stage: Stage, count: int, *, redis_wait_replicas: int) -> tuple[Rounds, dict[str, float]]:
    """The service with these settings: ``count`` urgent alerts posted one after the other, then ``count`` with
    ``IN_FLIGHT`` in flight; each POST's milliseconds to its 202, and the replication waits the metrics count."""
    settings = stage.settings(redis_wait_replicas=redis_wait_replicas)
    runtime = Runtime.from_settings(settings)
    async with stage.service(settings):
        plp = await stage.plp(f"Bench replication {redis_wait_replicas}", ["sms"])
        await stage.members(runtime, plp, 1, series=8)
        sequential = [await _post(stage, plp) for _ in range(count)]
        free = asyncio.Semaphore(IN_FLIGHT)

        async def one() -> float:
            async with free:
                return await _post(stage, plp)

        concurrent = await asyncio.gather(*(one() for _ in range(count)))
        outcomes = await _waits(stage)
    return {"sequential": sequential, f"{IN_FLIGHT} in flight": list(concurrent)}, outcomes


async def _post(stage: Stage, plp: str) -> float:
    started = time.perf_counter()
    await stage.alert(plp)  # fails unless the answer is 202
    return 1000 * (time.perf_counter() - started)


async def _waits(stage: Stage) -> dict[str, float]:
    """``plp_replication_waits_total`` by outcome, as ``/metrics`` shows it."""
    assert stage.http is not None
    async with stage.http.get(stage.base + "/metrics") as response:
        response.raise_for_status()
        text = await response.text()
    return {outcome: float(value) for outcome, value in WAITS.findall(text)}
