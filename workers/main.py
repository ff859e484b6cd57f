"""Worker processes: the urgent lane serves urgent work only; the general lane serves urgent first.

An urgent alert therefore always has a process of its own, whatever the non-urgent
backlog, and the general workers help with urgent work whenever they are free.

A worker rides out a Redis outage instead of exiting: RQ's work loop quits on a Redis error
raised outside its own reconnect loop (a heartbeat after a job, the suspension check, a job's
result being written), so ``run_worker`` waits for Redis to answer again, with backoff, and
starts the work loop again under the same name. The outage is logged once when it starts and
once when it ends; the batches still sending on the process loop carry on meanwhile (their
holds and leases keep their work safe whatever happens).

A worker beats every few seconds from a thread of its own (``dispatcher.operations.heartbeats``): in Redis,
for ``plp status`` and the metrics, in a file for ``plp probe worker``, and to systemd's watchdog.
"""

from __future__ import annotations

import signal
import time
import uuid
from enum import StrEnum
from typing import Any

import redis
import structlog
from redis.client import PubSub
from rq import SimpleWorker, Worker

from channels import announce_channels, describe_channels
from config import Settings, WorkerKind
from dispatcher.operations.heartbeats import Heartbeat, Role
from dispatcher.storage.runtime import Runtime
from workers.loop import drain_process_loop

log = structlog.get_logger(__name__)

WORKER_TTL = 60  # seconds; RQ renews its key every 45 s while idle (liveness is our heartbeat: operations.heartbeats)
#: Waits between two attempts to reach Redis again after an outage: doubled each time up to the last.
RECONNECT_BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0)
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


class Lane(StrEnum):
    URGENT = "urgent"
    GENERAL = "general"


class _StopAware:
    """Remembers that a stop was asked (SIGTERM, SIGINT), which RQ does not record when it is idle; and stops
    RQ's command-listening thread at once."""

    stop_asked = False
    pubsub: PubSub | None
    pubsub_thread: Any  # a PubSubWorkerThread once subscribed (RQ declares it as None)

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_asked = True
        super().request_stop(signum, frame)  # type: ignore[misc]

    def unsubscribe(self) -> None:
        """End the thread listening for RQ's commands: told to stop first, then woken by the unsubscription.

        RQ unsubscribes first: the thread may read Redis's answer before it is told to stop, then wait up to
        a minute (RQ's ``sleep_time``) for a new subscription, and redis-py's ``stop()`` (8.2 on) waits for it.
        An idle worker then took up to 60 s to leave after a SIGTERM: longer than supervisors wait before a
        SIGKILL (Docker: 10 s), which left its heartbeat to go stale instead of saying goodbye.
        """
        if self.pubsub_thread is None or self.pubsub is None:
            return
        self.pubsub_thread.stop(timeout=0)  # only trips the flag it checks after each message
        self.pubsub.unsubscribe()  # Redis's answer is that message
        self.pubsub_thread.join(timeout=1)
        self.pubsub.close()


class PlpWorker(_StopAware, Worker):
    """RQ's forking worker that remembers a stop request."""


class PlpSimpleWorker(_StopAware, SimpleWorker):
    """RQ's in-process worker that remembers a stop request."""


def run_worker(settings: Settings, lane: Lane, *, burst: bool = False) -> bool:
    """Run a worker for a lane until stopped (or, with ``burst``, until its queues are empty).

    A Redis outage does not stop it: it waits for Redis and goes on (see the module's docstring).
    Returns whether it did any job.
    """
    rt = Runtime.from_settings(settings)
    queues = [rt.urgent_queue] if lane is Lane.URGENT else [rt.urgent_queue, rt.general_queue]
    worker_class = PlpSimpleWorker if settings.worker_kind is WorkerKind.SIMPLE else PlpWorker
    log.info(
        "worker.starting",
        lane=lane.value,
        queues=[q.name for q in queues],
        kind=settings.worker_kind.value,
        channels=describe_channels(settings),
    )
    announce_channels(settings)
    # The same name across outages (the same worker again, not a new one beside a ghost), and for its heartbeat.
    worked, name = False, uuid.uuid4().hex
    heartbeat = Heartbeat(rt, Role(lane.value), name)
    # A stop before RQ's work loop installs its handlers (a supervisor stopping a worker as it starts) ends the
    # process cleanly too, its heartbeat withdrawn, rather than by SIGTERM's default action.
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    try:
        heartbeat.run_in_thread()  # whether a worker lives is its own beat's business, not RQ's key's (see heartbeats)
        while True:
            _wait_for_redis(rt.rq_connection)
            try:
                worker = worker_class(queues, connection=rt.rq_connection, name=name, worker_ttl=WORKER_TTL)
            except REDIS_DOWN:  # gone again between the ping and the worker's first command (its address)
                continue
            try:
                worked = worker.work(burst=burst, with_scheduler=False, logging_level="WARNING") or worked
            except REDIS_DOWN:  # RQ's teardown could not record the worker's death: Redis is gone
                pass
            if burst or worker.stop_asked:
                return worked
            log.warning("worker.redis_lost", worker=name, lane=lane.value)
            # RQ's handlers need Redis to stop; until the next work loop installs them again, a stop is plain.
            signal.signal(signal.SIGTERM, _exit)
            signal.signal(signal.SIGINT, _exit)
            _forget(worker)
    finally:
        drain_process_loop()  # the batches still sending end before the process does
        heartbeat.leave()


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _wait_for_redis(connection: redis.Redis) -> None:
    """Return once Redis answers; wait with backoff meanwhile, logging the outage's end once."""
    started, attempt = time.monotonic(), 0
    while True:
        try:
            connection.ping()
        except REDIS_DOWN:
            time.sleep(RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)])  # backoff, not a wait on an event
            attempt += 1
            continue
        if attempt:
            log.warning("worker.redis_back", outage_s=round(time.monotonic() - started, 1))
        return


def _forget(worker: Worker | SimpleWorker) -> None:
    """Record the previous work loop's end, so that its name can be registered again."""
    for _ in range(2):
        _wait_for_redis(worker.connection)
        try:
            worker.register_death()
            return
        except REDIS_DOWN:
            continue
