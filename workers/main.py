"""Worker processes: the urgent lane serves urgent work only; the general lane serves urgent first.

An urgent alert therefore always has a process of its own, whatever the non-urgent
backlog, and the general workers help with urgent work whenever they are free.
"""

from __future__ import annotations

from enum import StrEnum

import structlog
from rq import SimpleWorker, Worker

from channels import announce_channels, describe_channels
from config import Settings, WorkerKind
from dispatcher.runtime import Runtime
from workers.loop import drain_process_loop

log = structlog.get_logger(__name__)

WORKER_TTL = 60  # seconds; RQ renews it every 45 s while idle, and covers each job's timeout while busy


class Lane(StrEnum):
    URGENT = "urgent"
    GENERAL = "general"


def run_worker(settings: Settings, lane: Lane, *, burst: bool = False) -> bool:
    """Run a worker for a lane until stopped (or, with ``burst``, until its queues are empty)."""
    rt = Runtime.from_settings(settings)
    queues = [rt.urgent_queue] if lane is Lane.URGENT else [rt.urgent_queue, rt.general_queue]
    worker_class = SimpleWorker if settings.worker_kind is WorkerKind.SIMPLE else Worker
    # A worker's key lives WORKER_TTL seconds past its last heartbeat: a killed worker stops counting
    # as alive (readiness, ``plp status``) within a minute instead of RQ's default eight.
    worker = worker_class(queues, connection=rt.rq_connection, name=None, worker_ttl=WORKER_TTL)
    log.info(
        "worker.starting",
        lane=lane.value,
        queues=[q.name for q in queues],
        kind=settings.worker_kind.value,
        channels=describe_channels(settings),
    )
    announce_channels(settings)
    try:
        return worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    finally:
        drain_process_loop()  # the batches still sending end before the process does
