"""The clock hands back work whose time has come: due retries, fallbacks, the work of dead workers.

The deliveries go through the real Twilio and SMTP client libraries to simulators (without
status callbacks: an SMS accepted by Twilio is "sent"); jobs run in this process
(``run_queued``) and the clock by single sweeps (``tick``). Making a lease due means
rewriting its time in Redis, the way time passing would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from dispatcher.core.models import ChannelName, DeliveryMode, DeliveryStatus, Plp
from dispatcher.operations import metrics
from dispatcher.operations.metrics import render
from dispatcher.pipeline import clock, jobs
from dispatcher.pipeline.receipts import Receipts
from dispatcher.pipeline.retries import UNCERTAIN_WAIT
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, now_ts
from tests.dispatcher.helpers import accept, add_member, add_plp, charter, new_alert, open_store
from tests.simulators.faults import Fault, FaultPlan
from tests.simulators.smtp import SmtpSimulator
from tests.simulators.twilio import TwilioSimulator
from tests.support import empty_urgent_lane, queued_jobs, run_queued

ACCOUNT, TOKEN = "AC" + "3" * 32, "clock-test-token"
PHONE = "+32470123456"
SMS, EMAIL = ChannelName.SMS, ChannelName.EMAIL


@dataclass
class Scene:
    rt: Runtime
    store: Store
    twilio: TwilioSimulator
    smtp: SmtpSimulator
    plp: Plp

    async def delivery(self, alert_id: str, channel: ChannelName, member_id: str) -> dict[str, str]:
        return dict(await self.store.redis.hgetall(self.rt.keys.delivery(alert_id, f"{channel.value}:{member_id}")))

    async def lease(self, alert_id: str, ref: str) -> float | None:
        return await self.store.redis.zscore(self.rt.keys.leases(), f"{alert_id}|{ref}")

    async def make_due(self, entry: str, *, zset: str = "leases") -> None:
        key = self.rt.keys.leases() if zset == "leases" else self.rt.keys.holds()
        await self.store.redis.zadd(key, {entry: now_ts() - 1}, xx=True)


@pytest.fixture
async def scene(redis_url: str, tmp_path: Path) -> AsyncIterator[Scene]:
    async with (
        TwilioSimulator(account_sid=ACCOUNT, auth_token=TOKEN, callbacks=False) as twilio,
        SmtpSimulator() as smtp,
    ):
        settings = Settings(
            redis_url=redis_url,
            key_prefix="plptest:",
            queue_prefix="plptest",
            data_dir=tmp_path,
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=TOKEN,
            twilio_api_base_url=twilio.base_url,
            twilio_sms_from=("+3225550001",),
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security="none",
            smtp_from="alerts@plp.example",
            limit_sms_per_second=1000,
        )
        rt = Runtime.from_settings(settings)
        rt.rq_connection.flushdb()
        async with open_store(rt) as store:
            plp = await add_plp(store, charter=charter([SMS, EMAIL], mode=DeliveryMode.FIRST_THAT_WORKS))
            yield Scene(rt, store, twilio, smtp, plp)
        rt.rq_connection.flushdb()
        rt.close()


def _possible_duplicates(scene: Scene) -> dict[tuple[str, str], float]:
    """``plp_possible_duplicates_total`` as /metrics shows it, by (channel, cause)."""
    families = text_string_to_metric_families(metrics.render(scene.rt).decode())
    [family] = [f for f in families if f.name == "plp_possible_duplicates"]
    return {(s.labels["channel"], s.labels["cause"]): s.value for s in family.samples if s.name.endswith("_total")}


async def _sent_once(scene: Scene, **alert_fields: object) -> tuple[str, str]:
    member = await add_member(scene.store, [scene.plp], phone=PHONE)
    alert = new_alert([scene.plp], **alert_fields)  # type: ignore[arg-type]
    await accept(scene.rt, alert)
    await run_queued(scene.rt)
    return alert.id, member.id


async def test_a_transient_failure_is_retried_when_its_time_comes(scene: Scene) -> None:
    """A 503 leaves the delivery waiting, leased until its next attempt; the clock then sends it again."""
    scene.twilio.failures[PHONE] = (503, None, "Service unavailable")
    alert_id, member_id = await _sent_once(scene)
    waiting = await scene.delivery(alert_id, SMS, member_id)
    assert (waiting["status"], waiting["phase"], waiting["failures"]) == ("sending", "waiting", "1")
    assert waiting["last_error"] == "Twilio answered HTTP 503"
    assert await scene.lease(alert_id, f"sms:{member_id}") == pytest.approx(float(waiting["next_attempt_at"]))

    del scene.twilio.failures[PHONE]
    await scene.make_due(f"{alert_id}|sms:{member_id}")
    assert clock.tick(scene.rt).redispatched == 1
    await run_queued(scene.rt)
    done = await scene.delivery(alert_id, SMS, member_id)
    assert (done["status"], done["attempts"], done["failures"]) == ("sent", "2", "1")
    assert await scene.lease(alert_id, f"sms:{member_id}") is None
    assert len(scene.twilio.messages) == 1


async def test_a_rate_limited_send_waits_as_asked_without_using_an_attempt(scene: Scene) -> None:
    """Twilio's 429 with Retry-After 7: the next attempt is 7 s later and no failure is counted."""
    scene.twilio.failures[PHONE] = (429, 20429, "Too many requests", "7")
    before = now_ts()
    alert_id, member_id = await _sent_once(scene)
    waiting = await scene.delivery(alert_id, SMS, member_id)
    assert waiting.get("failures", "0") == "0"
    assert before + 7 <= float(waiting["next_attempt_at"]) <= now_ts() + 7


async def test_a_number_that_fails_for_good_falls_back_to_the_next_channel(scene: Scene) -> None:
    """An invalid number: SMS fails in plain words, the number is marked unusable, and e-mail goes instead."""
    scene.twilio.failures[PHONE] = (400, 21211, "The 'To' number is not a valid phone number.")
    alert_id, member_id = await _sent_once(scene)
    sms = await scene.delivery(alert_id, SMS, member_id)
    assert (sms["status"], sms["last_error"]) == ("failed", "number not valid")
    member = await scene.store.get_member(member_id)
    assert member is not None and member.unusable == {SMS: "number not valid"}

    assert clock.tick(scene.rt).redispatched == 1  # the fallback is due at once
    await run_queued(scene.rt)
    assert (await scene.delivery(alert_id, EMAIL, member_id))["status"] == "sent"
    assert [m.message["To"] for m in await scene.smtp.wait_for(1)] == [member.email]
    progress = await scene.store.get_progress(alert_id)
    assert progress.status.value == "completed"
    assert (progress.counts["planned"], progress.counts["s:failed"], progress.counts["s:sent"]) == (2, 1, 1)

    again = new_alert([scene.plp])  # later alerts skip the unusable number
    await accept(scene.rt, again)
    await run_queued(scene.rt)
    assert await scene.delivery(again.id, SMS, member_id) == {}
    assert (await scene.delivery(again.id, EMAIL, member_id))["status"] == "sent"


async def test_the_fallback_follows_the_members_own_order(scene: Scene) -> None:
    """The charter says SMS then e-mail, first that works; the member put e-mail first on their page: e-mail is
    tried first and, when the address is gone for good, SMS comes next."""
    member = await add_member(scene.store, [scene.plp], phone=PHONE)
    ordered = member.model_copy(update={"channel_order": [EMAIL, SMS]})
    await scene.store.save_member(ordered, previous=member)
    assert ordered.email is not None
    scene.smtp.reject[ordered.email] = (550, "5.1.1 No such user")
    alert = new_alert([scene.plp])
    await accept(scene.rt, alert)
    await run_queued(scene.rt)
    assert (await scene.delivery(alert.id, EMAIL, member.id))["status"] == "failed"
    assert clock.tick(scene.rt).redispatched == 1  # the fallback is due at once
    await run_queued(scene.rt)
    assert (await scene.delivery(alert.id, SMS, member.id))["status"] == "sent"
    assert [m.to for m in scene.twilio.messages] == [PHONE]


async def test_attempts_run_out_then_the_next_channel_is_tried(scene: Scene) -> None:
    """After PLP_MAX_ATTEMPTS transient failures the SMS fails ("gave up") and e-mail takes over."""
    scene.twilio.failures[PHONE] = (500, None, "boom")
    alert_id, member_id = await _sent_once(scene)
    ref = f"sms:{member_id}"
    for _ in range(scene.rt.settings.max_attempts - 1):
        await scene.make_due(f"{alert_id}|{ref}")
        clock.tick(scene.rt)
        await run_queued(scene.rt)
    sms = await scene.delivery(alert_id, SMS, member_id)
    assert sms["status"] == "failed" and sms["last_error"].startswith("gave up after 4 attempts")
    assert (await scene.delivery(alert_id, EMAIL, member_id))["status"] == "queued"


async def test_a_retry_that_would_come_after_the_time_to_live_expires_the_delivery(scene: Scene) -> None:
    """A 429 asking for more time than the alert has left: expired, never sent late."""
    scene.twilio.failures[PHONE] = (429, 20429, "Too many requests", "600")
    alert_id, member_id = await _sent_once(scene, ttl_seconds=60)
    sms = await scene.delivery(alert_id, SMS, member_id)
    assert (sms["status"], sms["cause"]) == ("expired", "time-to-live passed while retrying")


async def test_the_work_of_a_dead_worker_is_taken_up_and_counted_as_a_possible_duplicate(scene: Scene) -> None:
    """A delivery claimed by a worker that died mid-send is sent again once its lease runs out, and counted."""
    member = await add_member(scene.store, [scene.plp], phone=PHONE)
    alert = new_alert([scene.plp])
    await accept(scene.rt, alert)
    await run_queued(scene.rt, limit=1)  # the fan-out; the send job is left queued
    ref = f"sms:{member.id}"
    claimed = await scene.store.scripts.claim(  # a worker takes it... and dies
        keys=[*scene.rt.keys.delivery_move(alert.id, ref), scene.rt.keys.optouts()],
        args=[alert.id, ref, "sms", member.id, now_ts(), now_ts() + 30],
    )
    assert claimed == "claimed"
    scene.rt.general_queue.empty()
    empty_urgent_lane(scene.rt)  # its job is gone with it
    assert clock.tick(scene.rt).redispatched == 0  # still leased
    await scene.make_due(f"{alert.id}|{ref}")
    assert clock.tick(scene.rt).redispatched == 1
    await run_queued(scene.rt)
    done = await scene.delivery(alert.id, SMS, member.id)
    assert (done["status"], done["attempts"], done["possible_duplicates"]) == ("sent", "2", "1")
    progress = await scene.store.get_progress(alert.id)
    assert progress.counts["possible_duplicates"] == 1
    assert _possible_duplicates(scene) == {("sms", "taken_over"): 1.0}


async def test_a_send_in_doubt_is_counted_as_a_possible_duplicate_when_it_goes_again(scene: Scene) -> None:
    """A 503 (Twilio took nothing) is retried with nothing counted; then Twilio takes the SMS and answers 500: the
    delivery waits for Twilio's report (20 s), still with nothing counted; no report comes, so the clock sends it
    again, and that resend is the one possible duplicate counted."""
    scene.twilio.faults = FaultPlan(seed=1, script={PHONE: [Fault.SERVER_ERROR, Fault.TAKEN_THEN_ERROR]})
    alert_id, member_id = await _sent_once(scene)
    ref = f"sms:{member_id}"
    phases = [(await scene.delivery(alert_id, SMS, member_id))["phase"]]
    await scene.make_due(f"{alert_id}|{ref}")
    clock.tick(scene.rt)
    before = now_ts()
    await run_queued(scene.rt)
    waiting = await scene.delivery(alert_id, SMS, member_id)
    phases.append(waiting["phase"])
    assert phases == ["waiting", "uncertain"] and waiting.get("possible_duplicates") is None
    assert float(waiting["next_attempt_at"]) >= before + UNCERTAIN_WAIT
    assert (await scene.store.get_progress(alert_id)).counts.get("possible_duplicates", 0) == 0

    await scene.make_due(f"{alert_id}|{ref}")
    assert clock.tick(scene.rt).redispatched == 1
    await run_queued(scene.rt)
    done = await scene.delivery(alert_id, SMS, member_id)
    assert (done["status"], done["attempts"], done["possible_duplicates"]) == ("sent", "3", "1")
    assert (await scene.store.get_progress(alert_id)).counts["possible_duplicates"] == 1
    assert sum(scene.twilio.duplicates().values()) == 1  # the member did get it twice
    assert _possible_duplicates(scene) == {("sms", "in_doubt"): 1.0}


async def test_a_send_in_doubt_settled_by_the_providers_report_is_neither_sent_again_nor_counted(
    scene: Scene,
) -> None:
    """Twilio's report that the SMS taken before its 500 was delivered settles the delivery: its retry is called
    off, and no duplicate is counted."""
    scene.twilio.faults = FaultPlan(seed=1, script={PHONE: [Fault.TAKEN_THEN_ERROR]})
    alert_id, member_id = await _sent_once(scene)
    [taken] = scene.twilio.messages
    delivery = f"{alert_id}:sms:{member_id}"
    await Receipts(scene.store).provider_status(delivery, DeliveryStatus.DELIVERED, provider_id=taken.sid)
    assert await scene.lease(alert_id, f"sms:{member_id}") is None
    assert clock.tick(scene.rt).redispatched == 0
    await run_queued(scene.rt)
    done = await scene.delivery(alert_id, SMS, member_id)
    assert (done["status"], done["attempts"], done.get("possible_duplicates")) == ("delivered", "1", None)
    assert len(scene.twilio.messages) == 1


async def test_a_fan_out_whose_worker_died_is_run_again(scene: Scene) -> None:
    """A fan-out lease that runs out puts the fan-out back on its lane; it resumes where it stopped."""
    await add_member(scene.store, [scene.plp], phone=PHONE)
    alert = new_alert([scene.plp])
    await accept(scene.rt, alert)
    scene.rt.urgent_queue.empty()  # the worker took the fan-out job, then died
    lease = jobs.fanout_lease(alert.id, scene.plp.id)
    await scene.store.redis.zadd(scene.rt.keys.leases(), {lease: now_ts() - 1})
    assert clock.tick(scene.rt).fan_outs == 1
    await run_queued(scene.rt)
    progress = await scene.store.get_progress(alert.id)
    assert progress.status.value == "completed" and progress.counts["s:sent"] == 1


async def _clock_dies_after_taking_due_leases(scene: Scene) -> None:
    """A sweep that takes the run-out leases, then dies (or loses Redis) before it enqueues anything."""
    clock.take_due_leases(scene.rt, now_ts())


async def test_a_delivery_whose_lease_a_dying_clock_took_is_still_dispatched_again(scene: Scene) -> None:
    """A run-out lease taken by a clock that dies before re-enqueueing leaves a hold: a later sweep sends it."""
    member = await add_member(scene.store, [scene.plp], phone=PHONE)
    alert = new_alert([scene.plp])
    await accept(scene.rt, alert)
    await run_queued(scene.rt, limit=1)  # the fan-out; the send job is left queued
    ref = f"sms:{member.id}"
    claimed = await scene.store.scripts.claim(  # a worker's batch takes it... and dies mid-send
        keys=[*scene.rt.keys.delivery_move(alert.id, ref), scene.rt.keys.optouts()],
        args=[alert.id, ref, "sms", member.id, now_ts(), now_ts() + 30],
    )
    assert claimed == "claimed"
    scene.rt.general_queue.empty()
    empty_urgent_lane(scene.rt)
    await scene.store.redis.delete(scene.rt.keys.dispatches())  # the batch had taken its job over,
    await scene.store.redis.delete(scene.rt.keys.holds())  # and dropped its holds as it failed: only the lease is left
    await scene.make_due(f"{alert.id}|{ref}")
    await _clock_dies_after_taking_due_leases(scene)
    assert await scene.store.redis.zscore(scene.rt.keys.leases(), f"{alert.id}|{ref}") is None
    assert await scene.store.redis.zscore(scene.rt.keys.holds(), f"{alert.id}|{ref}") is not None  # taken, held
    assert clock.tick(scene.rt).redispatched == 0  # held: its time has not come
    await scene.make_due(f"{alert.id}|{ref}", zset="holds")
    assert clock.tick(scene.rt).redispatched == 1
    await run_queued(scene.rt)
    done = await scene.delivery(alert.id, SMS, member.id)
    assert done["status"] == "sent"


async def test_a_fan_out_whose_lease_a_dying_clock_took_is_still_run_again(scene: Scene) -> None:
    """A fan-out lease taken by a clock that dies before re-enqueueing is held: a later sweep runs the fan-out."""
    await add_member(scene.store, [scene.plp], phone=PHONE)
    alert = new_alert([scene.plp])
    await accept(scene.rt, alert)
    scene.rt.urgent_queue.empty()  # the worker took the fan-out job, then died
    lease = jobs.fanout_lease(alert.id, scene.plp.id)
    await scene.store.redis.zadd(scene.rt.keys.leases(), {lease: now_ts() - 1})
    await _clock_dies_after_taking_due_leases(scene)
    assert await scene.store.redis.zscore(scene.rt.keys.holds(), lease) is not None  # taken, held
    await scene.make_due(lease, zset="holds")
    assert clock.tick(scene.rt).fan_outs == 1
    assert await scene.store.redis.zscore(scene.rt.keys.holds(), lease) is None
    await run_queued(scene.rt)
    progress = await scene.store.get_progress(alert.id)
    assert progress.status.value == "completed" and progress.counts["s:sent"] == 1


async def test_a_timer_is_enqueued_once_when_due(scene: Scene) -> None:
    """A job scheduled for a past time is enqueued on its lane by the next sweep, and only once."""
    jobs.schedule(scene.rt, now_ts() - 1, jobs.FAN_OUT, "nope", [], urgent=True)
    jobs.schedule(scene.rt, now_ts() + 3600, jobs.FAN_OUT, "later", [], urgent=False)
    assert clock.tick(scene.rt).timers == 1
    assert clock.tick(scene.rt).timers == 0
    assert [job.args for job in scene.rt.urgent_queue.jobs] == [("nope", [])]
    assert scene.rt.general_queue.count == 0


async def test_cancelling_stops_a_waiting_retry(scene: Scene) -> None:
    """A delivery waiting for its retry is cancelled, not sent, once the alert is cancelled."""
    scene.twilio.failures[PHONE] = (503, None, "Service unavailable")
    alert_id, member_id = await _sent_once(scene)
    del scene.twilio.failures[PHONE]
    assert await scene.store.cancel_alert(alert_id)
    await scene.make_due(f"{alert_id}|sms:{member_id}")
    clock.tick(scene.rt)
    await run_queued(scene.rt)
    sms = await scene.delivery(alert_id, SMS, member_id)
    assert (sms["status"], sms["cause"]) == (DeliveryStatus.CANCELLED.value, "alert cancelled")
    assert scene.twilio.messages == []


async def test_deliveries_a_dead_batch_held_but_never_claimed_are_dispatched_again(scene: Scene) -> None:
    """A batch holds its deliveries while it works; if its worker dies first, they go out once the hold runs out."""
    member = await add_member(scene.store, [scene.plp], phone=PHONE)
    alert = new_alert([scene.plp])
    await accept(scene.rt, alert)
    await run_queued(scene.rt, limit=1)  # the fan-out
    entry = f"{alert.id}|sms:{member.id}"
    await scene.store.redis.zadd(scene.rt.keys.holds(), {entry: now_ts() + 30})  # a batch took it... and died
    empty_urgent_lane(scene.rt)
    assert clock.tick(scene.rt).redispatched == 0
    await scene.make_due(entry, zset="holds")
    assert clock.tick(scene.rt).redispatched == 1
    await run_queued(scene.rt)
    done = await scene.delivery(alert.id, SMS, member.id)
    assert (done["status"], done["attempts"]) == ("sent", "1")
    assert done.get("possible_duplicates") is None  # never claimed: nothing was in flight
    assert await scene.store.redis.zscore(scene.rt.keys.holds(), entry) is None
    assert await _redispatched(scene) == {"hold": 1}
    assert 'plp_redispatched_total{cause="hold"} 1.0' in render(scene.rt).decode()


async def test_a_hold_left_on_a_settled_delivery_is_dropped(scene: Scene) -> None:
    """A hold whose delivery is already sent is not dispatched again, and leaves the holds."""
    alert_id, member_id = await _sent_once(scene)
    entry = f"{alert_id}|sms:{member_id}"
    await scene.store.redis.zadd(scene.rt.keys.holds(), {entry: now_ts() - 1})
    assert clock.tick(scene.rt).redispatched == 0
    assert await scene.store.redis.zscore(scene.rt.keys.holds(), entry) is None


# -- work dispatched again only when its owner is gone -----------------------------------------


async def _make_all_due(scene: Scene) -> None:
    """Time passes: every hold, lease and queued job's record of the test is due for the clock."""
    for key in (scene.rt.keys.holds(), scene.rt.keys.leases(), scene.rt.keys.dispatches()):
        entries = await scene.store.redis.zrange(key, 0, -1)
        if entries:
            await scene.store.redis.zadd(key, dict.fromkeys(entries, now_ts() - 1))


async def _redispatched(scene: Scene) -> dict[str, int]:
    raw = await scene.store.redis.hgetall(scene.rt.keys.metrics())
    return {field.partition("|")[2]: int(n) for field, n in raw.items() if field.startswith("rd|")}


async def _queued_fan_out(scene: Scene, members: int = 3) -> str:
    for n in range(members):
        await add_member(scene.store, [scene.plp], phone=f"+3247012{n:04d}")
    alert = new_alert([scene.plp])
    await accept(scene.rt, alert)
    await run_queued(scene.rt, limit=1)  # the fan-out; its send job waits in the queue
    return alert.id


async def test_a_send_job_waiting_in_its_queue_is_never_dispatched_again(scene: Scene) -> None:
    """However long a send job waits in its queue (a backlog under a provider's rate), the clock leaves its
    deliveries alone: the queue still holds them, nothing is enqueued twice."""
    alert_id = await _queued_fan_out(scene)
    for _ in range(3):  # three leases go by
        await _make_all_due(scene)
        assert clock.tick(scene.rt).redispatched == 0
    assert len(queued_jobs(scene.rt)) == 1
    assert await _redispatched(scene) == {}
    await run_queued(scene.rt)
    assert (await scene.store.get_progress(alert_id)).counts["s:sent"] == 3  # SMS first (e-mail only if it fails)


async def test_a_send_job_a_worker_took_and_never_started_is_dispatched_again_at_the_second_look(
    scene: Scene,
) -> None:
    """A job gone from its queue but never started (its worker died as it took it) is lost: the next look gives
    a live worker time to start it, the one after dispatches its deliveries again, counted as "job"."""
    alert_id = await _queued_fan_out(scene)
    empty_urgent_lane(scene.rt)  # a worker took the job... and died
    await _make_all_due(scene)
    assert clock.tick(scene.rt).redispatched == 0  # perhaps being started
    await _make_all_due(scene)
    assert clock.tick(scene.rt).redispatched == 3
    assert await _redispatched(scene) == {"job": 3}
    await _make_all_due(scene)
    assert clock.tick(scene.rt).redispatched == 0  # the new job waits in the queue: left alone
    await run_queued(scene.rt)
    counts = (await scene.store.get_progress(alert_id)).counts
    assert counts["s:sent"] == 3 and counts.get("possible_duplicates", 0) == 0


async def test_a_batch_takes_its_job_over_as_it_starts(scene: Scene) -> None:
    """Once a batch runs, its job's record is gone (its worker holds the deliveries): nothing is left for the
    clock to look at, and once it ends, nothing is held."""
    await _queued_fan_out(scene)
    assert await scene.store.redis.zcard(scene.rt.keys.dispatches()) == 1
    await run_queued(scene.rt)
    assert await scene.store.redis.zcard(scene.rt.keys.dispatches()) == 0
    assert await scene.store.redis.keys(scene.rt.keys.dispatch("*")) == []
    assert await scene.store.redis.zcard(scene.rt.keys.holds()) == 0
    await _make_all_due(scene)
    assert clock.tick(scene.rt).redispatched == 0
