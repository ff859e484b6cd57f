"""Helpers shared by the tests: real worker processes, and waiting on alert events with a bound."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Iterable
from typing import Any

from aiohttp.test_utils import TestClient

from config import Settings
from dispatcher import fanout, sending
from dispatcher.models import AlertStatus
from dispatcher.runtime import Runtime

FINISHED = frozenset({AlertStatus.COMPLETED, AlertStatus.EXPIRED, AlertStatus.CANCELLED, AlertStatus.DECLINED})


class Workers:
    """``plp worker`` processes started with the test's settings."""

    def __init__(self, settings: Settings, *, python: str) -> None:
        self.settings, self.python = settings, python
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, lane: str, **extra_env: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "REDIS_URL": self.settings.redis_url or "",
            "PLP_KEY_PREFIX": self.settings.key_prefix,
            "PLP_QUEUE_PREFIX": self.settings.queue_prefix,
            "PLP_DATA_DIR": str(self.settings.data_dir),
            "PLP_LOG_FORMAT": "json",
            "PLP_LOG_LEVEL": "WARNING",
            **extra_env,
        }
        with (self.settings.data_dir / f"worker-{lane}-{len(self.processes)}.log").open("wb") as log:
            process = subprocess.Popen(
                [self.python, "-m", "dispatcher.cli", "worker", lane], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_for_alert(
    runtime: Runtime, alert_id: str, statuses: Iterable[AlertStatus] = FINISHED, *, timeout: float = 60
) -> AlertStatus:
    """Wait until the alert reaches one of ``statuses`` (its events are published by Redis); return it."""
    wanted = {AlertStatus(s) for s in statuses}
    redis = runtime.async_redis()
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(runtime.keys.events())
        current = await redis.hget(runtime.keys.alert_state(alert_id), "status")
        if current and AlertStatus(current) in wanted:
            return AlertStatus(current)
        async with asyncio.timeout(timeout):
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                event = json.loads(message["data"])
                if event["alert_id"] == alert_id and AlertStatus(event["status"]) in wanted:
                    return AlertStatus(event["status"])
        raise AssertionError("unreachable")
    finally:
        await pubsub.aclose()
        await redis.aclose()


async def post_json(client: TestClient, path: str, body: Any, *, headers: dict[str, str], expect: int) -> Any:
    """POST JSON and check the status; return the decoded body."""
    response = await client.post(path, json=body, headers=headers)
    text = await response.text()
    assert response.status == expect, f"{path}: {response.status} {text}"
    return json.loads(text) if text else None


async def get_json(client: TestClient, path: str, *, headers: dict[str, str], expect: int = 200) -> Any:
    response = await client.get(path, headers=headers)
    text = await response.text()
    assert response.status == expect, f"{path}: {response.status} {text}"
    return json.loads(text)


def member_rows(count: int, *, start: int = 0, **fields: Any) -> list[dict[str, Any]]:
    """``count`` distinct members with Belgian mobile numbers and e-mail addresses."""
    return [
        {
            "name": f"Member {i}",
            "phone": f"+32 470 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d}",
            "email": f"member{i}@example.org",
            **fields,
        }
        for i in range(start, start + count)
    ]


async def run_queued(runtime: Runtime, *, limit: int | None = None) -> None:
    """Run what the queues hold in this process, the way the workers would: fan-outs, then their sends
    (at most ``limit`` jobs: ``limit=1`` after posting an alert runs its fan-out only)."""
    for queue in (runtime.urgent_queue, runtime.general_queue):
        while limit != 0 and (found := queue.dequeue_any([queue], timeout=None, connection=runtime.rq_connection)):
            limit = None if limit is None else limit - 1
            job, _ = found
            if job.func_name.endswith("fan_out"):
                await asyncio.to_thread(fanout.fan_out, runtime, *job.args)
            else:
                await sending.send_batch(runtime, *job.args)
