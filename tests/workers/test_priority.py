"""Urgent first on the processors: a general lane's worker gives way to the urgent one on a busy host."""

from __future__ import annotations

import os
from pathlib import Path

from rq import Worker
from rq.job import Job, JobStatus

from dispatcher.storage.runtime import Runtime
from tests.support import Workers, until


def _niceness(pid: int) -> set[int]:
    """The niceness of each of the process's threads (on Linux, a thread's own)."""
    return {os.getpriority(os.PRIO_PROCESS, int(task)) for task in os.listdir(Path("/proc", str(pid), "task"))}


async def test_a_general_worker_runs_every_thread_at_a_lower_priority_and_an_urgent_one_does_not(
    workers: Workers, runtime: Runtime
) -> None:
    """With the default ``PLP_GENERAL_WORKER_NICE`` (10), every thread of a general worker (its jobs, its event
    loop, its heartbeat) runs 10 nicer than it was started; an urgent worker keeps the priority it was given."""
    started = os.getpriority(os.PRIO_PROCESS, 0)
    general, urgent = workers.start("general"), workers.start("urgent")
    pids = {general.pid, urgent.pid}
    await until(
        lambda: pids <= {w.pid for w in Worker.all(connection=runtime.rq_connection)}, timeout=60, what="workers"
    )

    assert _niceness(general.pid) == {min(started + 10, 19)}
    assert _niceness(urgent.pid) == {started}


async def _running(runtime: Runtime, *pids: int) -> None:
    await until(
        lambda: set(pids) <= {w.pid for w in Worker.all(connection=runtime.rq_connection)}, timeout=60, what="workers"
    )


async def _ran_by(job: Job) -> int:
    """The pid of the worker that ran ``job`` (``os.getpid``)."""
    await until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, timeout=60, what=f"job {job.id} to run")
    return int(job.return_value())


async def test_urgent_jobs_go_to_the_urgent_worker_not_the_general_one_that_runs_nicer(
    workers: Workers, runtime: Runtime
) -> None:
    """Both lanes idle: each urgent job, in the urgent lane's queue or an alert's, is taken by the urgent worker
    as it comes. On a host loaded by other work, the general worker's lower priority would hold it up."""
    alert = runtime.alert_queue("5340", "alert")
    first = alert.enqueue("os.getpid")  # an alert's queue both workers know of, as a fan-out's sends make it
    urgent = workers.start("urgent")
    assert await _ran_by(first) == urgent.pid
    general = workers.start("general")
    await _running(runtime, general.pid, urgent.pid)

    ran_by = []
    for queue in [runtime.urgent_queue, alert] * 3:  # one at a time: both workers idle each time
        ran_by.append(await _ran_by(queue.enqueue("os.getpid")))

    assert ran_by == [urgent.pid] * 6


async def test_a_general_worker_helps_with_an_urgent_job_once_it_has_waited(workers: Workers, runtime: Runtime) -> None:
    """No urgent worker free for it (gone, or its batches full): a general worker takes the job once it has waited
    ``PLP_URGENT_HELP_AFTER`` seconds in its queue, not before."""
    general = workers.start("general", PLP_URGENT_HELP_AFTER="1")
    await _running(runtime, general.pid)

    job = runtime.alert_queue("5340", "alert").enqueue("os.getpid")

    assert await _ran_by(job) == general.pid
    job.refresh()
    assert job.started_at is not None and job.enqueued_at is not None
    assert (job.started_at - job.enqueued_at).total_seconds() >= 1.0
