"""A worker asked to stop (SIGTERM) leaves at once when it has nothing to finish."""

from __future__ import annotations

import time

from rq import Worker

from dispatcher.storage.runtime import Runtime
from tests.support import Workers, until

#: Idle workers stopped at once, and how many times: one that missed the stop's wake-up waited up to a minute.
WORKERS, ROUNDS = 4, 2
#: Seconds an idle worker may take to leave after a SIGTERM (it says goodbye in Redis, then exits).
BOUND = 5.0


async def test_idle_workers_leave_within_seconds_of_a_sigterm(workers: Workers, runtime: Runtime) -> None:
    """Idle workers of both lanes SIGTERMed at once each exit cleanly within 5 s, round after round (RQ's
    command-listening thread could miss the stop and hold its worker for up to 60 s)."""
    for _ in range(ROUNDS):
        started = [workers.start("urgent" if n % 2 else "general") for n in range(WORKERS)]
        pids = {p.pid for p in started}
        await until(lambda: pids <= _listening(runtime), timeout=60, what="the workers to listen")  # noqa: B023
        asked = time.monotonic()
        for process in started:
            process.terminate()
        exits = [process.wait(timeout=BOUND + 60) for process in started]
        took = time.monotonic() - asked
        assert exits == [0] * WORKERS and took < BOUND, f"exit statuses {exits} after {took:.1f} s"


def _listening(runtime: Runtime) -> set[int | None]:
    """The pids of the workers RQ's registry lists: they wait on their queues."""
    return {worker.pid for worker in Worker.all(connection=runtime.rq_connection)}
