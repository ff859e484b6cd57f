"""The job contract: every job named in one list, by a dotted path that stays valid for jobs already
queued, and enqueued the same way wherever it comes from (a caller's transaction, or a timer)."""

from __future__ import annotations

import inspect

import pytest
from rq.utils import import_attribute

import workers.jobs
from dispatcher.core.models import Urgency
from dispatcher.pipeline import clock, jobs
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import now_ts

#: The queue format: the path RQ stores for each job. A job queued by an earlier release names its function so.
PATHS = {
    jobs.FAN_OUT: "workers.jobs.fan_out",
    jobs.SEND_BATCH: "workers.jobs.send_batch",
    jobs.SEND_REPLY: "workers.jobs.send_reply",
    jobs.ESCALATE: "workers.jobs.escalate",
    jobs.CHECK_ACKNOWLEDGEMENTS: "workers.jobs.check_acknowledgements",
    jobs.PURGE: "workers.jobs.purge",
    jobs.LOCATE: "workers.jobs.locate_members",
}


@pytest.mark.parametrize(("job", "path"), PATHS.items())
def test_each_job_keeps_the_path_queued_jobs_name(job: str, path: str) -> None:
    """A job's name is the dotted path of its function, as jobs queued before a deploy stored it."""
    assert job == path
    assert inspect.isfunction(import_attribute(job))


def test_the_list_of_jobs_is_every_function_the_workers_run() -> None:
    """``jobs.JOBS`` names each public function of ``workers.jobs`` that RQ runs, and only those."""
    run = {
        f"workers.jobs.{name}"
        for name, value in vars(workers.jobs).items()
        if inspect.isfunction(value) and value.__module__ == "workers.jobs" and not name.startswith("_")
    }
    assert set(jobs.JOBS) == run == set(PATHS)


def _enqueued(runtime: Runtime, job: str, *args: object, lane: Urgency) -> tuple[int | None, str | None]:
    with runtime.rq_connection.pipeline(transaction=True) as pipe:
        pipe.multi()
        jobs.enqueue(runtime, pipe, job, *args, lane=lane)
        pipe.execute()
    [queued] = runtime.queue_for(lane).get_jobs()
    return queued.timeout, queued.description


def test_a_job_is_queued_on_its_lane_with_the_caller_s_transaction(runtime: Runtime) -> None:
    """Nothing is queued until the caller's transaction runs; then the job is on the lane asked for."""
    with runtime.rq_connection.pipeline(transaction=True) as pipe:
        pipe.multi()
        jobs.enqueue(runtime, pipe, jobs.ESCALATE, "a1", "p1", lane=Urgency.URGENT)
        assert runtime.urgent_queue.count == 0
        pipe.execute()
    assert [(j.func_name, j.args) for j in runtime.urgent_queue.get_jobs()] == [(jobs.ESCALATE, ("a1", "p1"))]
    assert runtime.general_queue.count == 0


def test_a_fan_out_a_timer_enqueues_is_the_fan_out_an_alert_enqueues(runtime: Runtime) -> None:
    """A job's timeout and description belong to the job: a fan-out held by quiet hours, enqueued by its
    timer, runs as long as one enqueued at once (``PLP_SEND_JOB_TIMEOUT``), and no job keeps a result."""
    at_once = _enqueued(runtime, jobs.FAN_OUT, "a1", ["p1"], lane=Urgency.NON_URGENT)
    runtime.general_queue.empty()
    jobs.schedule(runtime, now_ts() - 1, jobs.FAN_OUT, "a1", ["p1"], urgent=False)
    assert clock.tick(runtime).timers == 1
    [timed] = runtime.general_queue.get_jobs()
    assert at_once == (timed.timeout, timed.description) == (runtime.settings.send_job_timeout, at_once[1])
    assert at_once[1] == "fan out alert a1 to 1 PLP(s)"
    assert timed.result_ttl == 0


def test_a_fan_out_is_leased_as_it_is_enqueued(runtime: Runtime) -> None:
    """The fan-out's lease is written in the same transaction, for as long as the job may wait on its lane."""
    now = now_ts()
    with runtime.rq_connection.pipeline(transaction=True) as pipe:
        pipe.multi()
        jobs.enqueue_fan_out(runtime, pipe, "a1", ["p1", "p2"], lane=Urgency.URGENT, now=now)
        pipe.execute()
    leases = dict(runtime.sync_redis.zrange(runtime.keys.leases(), 0, -1, withscores=True))
    horizon = now + runtime.horizon(Urgency.URGENT)
    assert leases == {jobs.fanout_lease("a1", "p1"): pytest.approx(horizon), "a1|fanout:p2": pytest.approx(horizon)}
    assert [j.args for j in runtime.urgent_queue.get_jobs()] == [("a1", ["p1", "p2"])]
    assert [jobs.leased_fanout(ref) for ref in ("fanout:p1", "sms:m1")] == ["p1", None]
