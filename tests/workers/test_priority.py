"""Urgent first on the processors: a general lane's worker gives way to the urgent one on a busy host."""

from __future__ import annotations

import os
from pathlib import Path

from rq import Worker

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
