"""Worker processes: the urgent lane serves urgent work only; the general lane serves urgent first.

An urgent alert therefore always has a process of its own, whatever the non-urgent
backlog, and the general workers help with urgent work the urgent lane has left waiting.

Alerts in turn: each urgent alert's send jobs wait in a queue of their own, named after its
police zone (``Runtime.alert_queue``). A worker looks at the urgent lane's shared queue first
(fan-outs, answers, escalations: short jobs that start an alert), then at the alerts' queues in
turn, starting after the one it last took a job from (RQ's round-robin order, over a list of
queues read again before each look, so an alert's queue that appears is seen within
``ZONE_LOOK_SECONDS``), and the general queue last. A queue whose batches fill this process's
admission (``workers.loop``) is left out until one ends, the worker looking again every
``SATURATED_LOOK_SECONDS`` meanwhile: a worker never sits on one alert's job while another
alert waits. So a zone-wide alert of tens of thousands of sends delays another urgent alert, in
another zone or its own, by no more than its turn in the providers' limits. (A ``fork`` worker
runs each job to its end: the alerts then take turns one job at a time.)

Urgent first on the processors too: a general lane's worker lowers its CPU priority as it starts
(``PLP_GENERAL_WORKER_NICE``), so that on a busy host a non-urgent backlog's sends give way to the urgent
worker, the web process and Redis whenever they have work. So it takes an urgent job only once the job has
waited ``PLP_URGENT_HELP_AFTER`` seconds in its queue (the urgent worker is busy with it, or gone): on a
host loaded by other work, a process run nicer gets a sliver of the processors, and an urgent alert whose
sends it took waited a minute behind a neighbour's while the urgent worker had turns to spare.

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

import os
import signal
import time
import uuid
from datetime import UTC
from enum import StrEnum
from typing import Any

import redis
import structlog
from redis.client import PubSub
from rq import Queue, SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.job import Job
from rq.utils import import_attribute, str_to_date

from channels import announce_channels, describe_channels
from config import Settings, WorkerKind
from dispatcher.operations.heap import freeze_start_up_heap
from dispatcher.operations.heartbeats import Heartbeat, Role
from dispatcher.pipeline.jobs import JOBS
from dispatcher.storage.runtime import Runtime
from workers.loop import drain_process_loop, process_loop, running_loop

log = structlog.get_logger(__name__)

WORKER_TTL = 60  # seconds; RQ renews its key every 45 s while idle (liveness is our heartbeat: operations.heartbeats)
#: Waits between two attempts to reach Redis again after an outage: doubled each time up to the last.
RECONNECT_BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0)
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
#: Seconds an idle worker waits on its queues before it reads the list of urgent alerts' queues again.
ZONE_LOOK_SECONDS = 2
#: Seconds it waits on the others while a queue's batches fill its admission, before it looks at that queue again.
SATURATED_LOOK_SECONDS = 0.2


#: KEYS: queues. ARGV: RQ's job key prefix. Returns, for each queue, when its first job was enqueued (RQ's
#: ``enqueued_at``, UTC), or '' for an empty queue.
FIRST_ENQUEUED = """
local enqueued = {}
for i, queue in ipairs(KEYS) do
  local id = redis.call('LINDEX', queue, 0)
  enqueued[i] = id and (redis.call('HGET', ARGV[1] .. id, 'enqueued_at') or '') or ''
end
return enqueued
"""


def _unix(enqueued_at: bytes | str) -> float:
    return str_to_date(enqueued_at).replace(tzinfo=UTC).timestamp()


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


class _RedisLost(StopRequested):
    """Redis went away as a worker read its queues: RQ's work loop ends, ``run_worker`` rides out the outage."""


class _AlertsInTurn:
    """Looks at the urgent lane's shared queue, then at the urgent alerts' send queues in turn, then at the general
    queue (see the module's docstring). RQ reads ``_ordered_queues`` before each look and calls
    ``reorder_queues`` with the queue it took a job from."""

    runtime: Runtime
    lane: Lane
    queues: list[Queue]
    _burst = False
    _last_zone = ""
    _zones: tuple[Queue, ...] = ()
    _soon = False  # an urgent job a general worker will help with soon, not yet

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        try:
            super().heartbeat(timeout, pipeline)  # type: ignore[misc]
        except REDIS_DOWN as exc:  # RQ's dequeue loop would retry it silently for us: leave it, as for any outage
            raise _RedisLost from exc

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        self._burst = timeout is None  # RQ's burst mode looks once, without waiting
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)  # type: ignore[misc]

    @property
    def _ordered_queues(self) -> list[Queue]:
        rt = self.runtime
        try:
            zones = rt.alert_queues()
        except REDIS_DOWN as exc:  # RQ would retry in its own loop, silently for us: leave it, as for any outage
            raise _RedisLost from exc
        self._zones = tuple(zones)
        after = [q for q in zones if q.name > self._last_zone]
        in_turn = after + [q for q in zones if q.name <= self._last_zone]
        if not self._burst:  # a burst worker ends when it finds nothing: it waits for its admission instead
            in_turn = [q for q in in_turn if not self._saturated(q)]
        general = [rt.general_queue] if self.lane is Lane.GENERAL else []
        self.queues = [rt.urgent_queue, *zones, *general]  # what RQ's upkeep goes over (registries)
        urgent = [rt.urgent_queue, *in_turn]
        if general and not self._burst and rt.settings.urgent_help_after > 0:
            urgent = self._left_waiting(urgent, rt.settings.urgent_help_after)
        return [*urgent, *general]

    @_ordered_queues.setter
    def _ordered_queues(self, _value: list[Queue]) -> None:
        pass  # RQ sets it as it starts: the order is made afresh for each look

    def _left_waiting(self, queues: list[Queue], after: float) -> list[Queue]:
        """The urgent queues whose first job has waited ``after`` seconds or more: a general worker helps with them."""
        try:
            enqueued = self.runtime.rq_connection.eval(
                FIRST_ENQUEUED, len(queues), *(q.key for q in queues), Job.redis_job_namespace_prefix
            )
        except REDIS_DOWN as exc:
            raise _RedisLost from exc
        now = time.time()
        waited = [(q, now - _unix(at)) for q, at in zip(queues, enqueued, strict=True) if at]
        self._soon = any(age < after for _, age in waited)
        return [q for q, age in waited if age >= after]

    def reorder_queues(self, reference_queue: Queue) -> None:
        if self.runtime.is_urgent(reference_queue.name) and reference_queue.name != self.runtime.urgent_queue.name:
            self._last_zone = reference_queue.name

    @property
    def dequeue_timeout(self) -> int:
        """How long the next look waits: short while a queue is left out (its batch that ends lets it back in, or its
        job will soon have waited long enough for a general worker)."""
        skipping = self._soon or any(self._saturated(q) for q in self._zones)
        look = SATURATED_LOOK_SECONDS if skipping else ZONE_LOOK_SECONDS
        # RQ reads this in its __init__ too (for its socket timeout), before ``run_worker`` sets the lane
        if getattr(self, "lane", None) is Lane.GENERAL and (after := self.runtime.settings.urgent_help_after) > 0:
            look = min(look, after)  # an urgent job it does not wait on is seen within that long of falling due
        # RQ types it as whole seconds, but hands it to BLPOP, which takes fractions (Redis 6 on)
        return look  # type: ignore[return-value]

    @staticmethod
    def _saturated(queue: Queue) -> bool:
        loop = running_loop()
        return loop is not None and loop.saturated(queue.name)


class PlpWorker(_AlertsInTurn, _StopAware, Worker):
    """RQ's forking worker that remembers a stop request and takes the urgent alerts in turn."""


class PlpSimpleWorker(_AlertsInTurn, _StopAware, SimpleWorker):
    """RQ's in-process worker that remembers a stop request and takes the urgent alerts in turn."""


def run_worker(settings: Settings, lane: Lane, *, burst: bool = False) -> bool:
    """Run a worker for a lane until stopped (or, with ``burst``, until its queues are empty).

    A Redis outage does not stop it: it waits for Redis and goes on (see the module's docstring).
    Returns whether it did any job.
    """
    if lane is Lane.GENERAL:
        yield_the_processors(settings.general_worker_nice)
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
    ready_to_send(rt)
    log.info("worker.heap_frozen", objects=freeze_start_up_heap())  # its full collections skip all of that
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
                worker.runtime, worker.lane = rt, lane
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


def yield_the_processors(niceness: int) -> None:
    """Lower this process's CPU priority by ``niceness`` (a general lane's worker, as it starts): before it starts a
    thread, which takes the priority of the thread that starts it (on Linux, a priority is a thread's)."""
    if niceness:
        os.nice(niceness)


def ready_to_send(rt: Runtime) -> None:
    """Do before the first job what it would otherwise do on an urgent alert's path: resolve each job function
    as RQ does by its path at a job's start (importing ``workers.jobs`` imports the vendor libraries, numpy and
    shapely: a third of a second here); an in-process worker also opens its loop's connections, each channel
    prepared (``Channel.prepare``). A forking worker's connections belong to each work horse."""
    for path in JOBS:
        import_attribute(path)
    if rt.settings.worker_kind is WorkerKind.SIMPLE:
        loop = process_loop(rt.settings.worker_batches)
        loop.run(lambda: loop.connections(rt))


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
