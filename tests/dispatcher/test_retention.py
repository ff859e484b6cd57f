"""Retention: what is older than PLP_RETENTION_DAYS goes, daily; the alerts and their counts stay.

Alerts are accepted with a creation time in the past (the way time passing would leave
them), sent and acknowledged through the delivery scripts at that time, then purged.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from config import Settings
from dispatcher.core.models import Alert, DeliveryStatus, Member, Plp
from dispatcher.people import retention
from dispatcher.pipeline import clock, jobs
from dispatcher.pipeline.receipts import Receipts
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, delivery_id, now_ts
from tests.dispatcher.helpers import (
    EMAIL,
    SMS,
    Scripted,
    add_member,
    add_plp,
    charter,
    deliveries,
    fanned_out,
    open_store,
    ref_of,
)

DAY = 86400


@pytest.fixture
async def store(runtime: Runtime) -> AsyncIterator[Store]:
    async with open_store(runtime) as opened:
        yield opened


async def a_plp_of_two(store: Store) -> tuple[Plp, list[Member]]:
    plp = await add_plp(store, charter=charter([SMS, EMAIL]))
    return plp, [await add_member(store, [plp]), await add_member(store, [plp])]


async def sent_alert(rt: Runtime, store: Store, plp: Plp, members: list[Member], *, days_ago: float) -> Alert:
    """An alert created ``days_ago``, delivered then, acknowledged and answered by the first member,
    with the stale lease and hold of a worker that died."""
    created = datetime.now(UTC) - timedelta(days=days_ago)
    alert = await fanned_out(rt, [plp], created_at=created)
    script, at = Scripted(store, alert, plp), created.timestamp() + 5
    for record in await deliveries(store, alert.id):
        assert await script.claim(ref_of(record), at=at) == "claimed"
        await script.record(ref_of(record), DeliveryStatus.DELIVERED, at=at + 1)
    first = f"sms:{members[0].id}"
    await store.acknowledge(alert.id, first, via="sms")
    # its answer and answer log go too; its tally stays
    await store.answer(alert.id, first, answer_id="saw", via="sms", at=at)
    await Receipts(store).feedback(
        members[0], "Un homme regardait les boîtes aux lettres", via=SMS, delivery=delivery_id(alert.id, first)
    )
    entry = {f"{alert.id}|{first}": at}
    await store.redis.zadd(rt.keys.leases(), entry)  # type: ignore[arg-type]
    await store.redis.zadd(rt.keys.holds(), entry)  # type: ignore[arg-type]
    return alert


async def alert_keys(store: Store, alert_id: str) -> list[str]:
    keys = store.keys
    found = [k async for k in store.redis.scan_iter(match=f"{keys.prefix}*{alert_id}*")]
    return sorted(found)


async def figures(store: Store, alert_id: str) -> tuple[dict[str, str], dict[str, str], str | None]:
    keys = store.keys
    return (
        await store.redis.hgetall(keys.alert_counts(alert_id)),
        await store.redis.hgetall(keys.alert_relays(alert_id)),
        await store.redis.get(keys.alert(alert_id)),
    )


async def test_deliveries_receipts_and_replies_older_than_the_period_go_and_the_figures_stay(
    runtime: Runtime, store: Store
) -> None:
    """An alert of 401 days ago loses its deliveries, indexes, member sets, answers, leases, holds and replies;
    it keeps itself, its state, relays and counts (its tally of answers among them). An alert of 399 days ago
    keeps everything."""
    plp, members = await a_plp_of_two(store)
    old = await sent_alert(runtime, store, plp, members, days_ago=401)
    recent = await sent_alert(runtime, store, plp, members, days_ago=399)
    kept_before, recent_before = await figures(store, old.id), await alert_keys(store, recent.id)

    result = retention.purge(runtime)

    assert (result.alerts, result.deliveries, result.feedback, result.done) == (1, 4, 1, True)
    keys = runtime.keys
    assert await alert_keys(store, old.id) == sorted(
        [keys.alert(old.id), keys.alert_state(old.id), keys.alert_relays(old.id), keys.alert_counts(old.id)]
    )
    assert await figures(store, old.id) == kept_before
    assert kept_before[0]["acknowledged"] == kept_before[0]["feedback"] == kept_before[0]["answer:saw"] == "1"
    state = await store.redis.hgetall(keys.alert_state(old.id))
    assert state["status"] == "completed" and float(state["purged_at"]) > now_ts() - 60
    assert await store.redis.zcard(keys.leases()) == await store.redis.zcard(keys.holds()) == 1  # the recent one's
    assert await store.redis.zcard(keys.plp_feedback(plp.id)) == 1
    assert await store.redis.zcard(keys.member_feedback(members[0].id)) == 1
    assert await alert_keys(store, recent.id) == recent_before
    assert float(await store.redis.get(keys.purged_until())) == pytest.approx(now_ts() - 400 * DAY, abs=60)


async def test_a_members_export_no_longer_finds_purged_deliveries(runtime: Runtime, store: Store) -> None:
    """After a purge, a member's deliveries are those of the alerts kept."""
    plp, members = await a_plp_of_two(store)
    await sent_alert(runtime, store, plp, members, days_ago=401)
    recent = await sent_alert(runtime, store, plp, members, days_ago=30)
    assert len(await store.member_deliveries(members[0].id, [plp.id])) == 4
    retention.purge(runtime)
    assert {d.alert_id for d in await store.member_deliveries(members[0].id, [plp.id])} == {recent.id}


async def test_old_replies_to_no_alert_go_too(runtime: Runtime, store: Store) -> None:
    """A reply that answered no alert goes once it was received before the cutoff; its count stays."""
    plp, members = await a_plp_of_two(store)
    receipts = Receipts(store)
    old = await receipts.feedback(members[0], "Rien à signaler", via=SMS, delivery=None)
    fresh = await receipts.feedback(members[1], "Une voiture suspecte", via=SMS, delivery=None)
    long_ago = now_ts() - 401 * DAY
    for index in (runtime.keys.plp_feedback(plp.id), runtime.keys.member_feedback(members[0].id)):
        await store.redis.zadd(index, {old.id: long_ago}, xx=True)

    assert retention.purge(runtime).feedback == 1

    assert await store.redis.exists(runtime.keys.feedback(old.id)) == 0
    assert await store.redis.zrange(runtime.keys.plp_feedback(plp.id), 0, -1) == [fresh.id]
    assert await store.redis.zcard(runtime.keys.member_feedback(members[0].id)) == 0
    assert sum((await receipts.feedback_counts(plp.id)).values()) == 2


async def test_a_run_stops_at_its_bound_and_the_next_goes_on_from_there(runtime: Runtime, store: Store) -> None:
    """With more old alerts than a run takes, it says it is not done, and the next run purges the rest."""
    plp, members = await a_plp_of_two(store)
    olds = [await sent_alert(runtime, store, plp, members, days_ago=500 - i) for i in range(3)]

    first = retention.purge(runtime, max_alerts=2)
    assert (first.alerts, first.done) == (2, False)
    assert await store.redis.exists(runtime.keys.alert_deliveries(olds[2].id)) == 1
    second = retention.purge(runtime, max_alerts=2)
    assert (second.alerts, second.done) == (1, True)
    for alert in olds:
        assert await store.redis.exists(runtime.keys.alert_deliveries(alert.id)) == 0
    assert retention.purge(runtime).alerts == 0  # nothing new is older than the cutoff


def purge_timer(rt: Runtime) -> float | None:
    spec = json.dumps({"job": jobs.PURGE, "args": [], "urgent": False}, sort_keys=True)
    return rt.sync_redis.zscore(rt.keys.timers(), spec)


async def test_the_purge_schedules_its_next_run_a_day_later(runtime: Runtime, store: Store) -> None:
    """The clock's start-up has it run in a minute; each run schedules the next for tomorrow, or for a
    minute later when it stopped at its bound."""
    plp, members = await a_plp_of_two(store)
    for days in (401, 402):
        await sent_alert(runtime, store, plp, members, days_ago=days)
    jobs.schedule_recurring(runtime)
    assert purge_timer(runtime) == pytest.approx(now_ts() + jobs.RECURRING[jobs.PURGE], abs=5)
    assert not (await asyncio.to_thread(retention.run_scheduled, runtime, max_alerts=1)).done
    assert purge_timer(runtime) == pytest.approx(now_ts() + retention.AGAIN_SOON, abs=5)
    assert (await asyncio.to_thread(retention.run_scheduled, runtime, max_alerts=1)).done
    assert purge_timer(runtime) == pytest.approx(now_ts() + DAY, abs=5)


async def test_the_clock_hands_the_due_purge_to_the_general_lane(runtime: Runtime) -> None:
    """Once due, the clock enqueues ``workers.jobs.purge`` on the non-urgent lane, once."""
    jobs.schedule(runtime, now_ts() - 1, jobs.PURGE, urgent=False)
    assert clock.tick(runtime).timers == 1
    [job] = runtime.general_queue.get_jobs()
    assert job.func_name == jobs.PURGE and runtime.urgent_queue.count == 0
    assert clock.tick(runtime).timers == 0


def test_plp_purge_runs_it_once_from_a_terminal(runtime: Runtime, settings: Settings) -> None:
    """``plp purge`` purges now and says what; a cron line can run it without the clock."""
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": settings.redis_url or "",
        "PLP_KEY_PREFIX": settings.key_prefix,
        "PLP_QUEUE_PREFIX": settings.queue_prefix,
        "PLP_DATA_DIR": str(settings.data_dir),
        "PLP_SECRET_KEY": "a-cron-line-has-the-production-variables",
        "PLP_LOG_LEVEL": "WARNING",
        "PLP_RETENTION_DAYS": "30",
    }
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", "purge"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "purged 0 deliveries and 0 replies of 0 alerts older than 30 days"
    assert float(runtime.sync_redis.get(runtime.keys.purged_until()) or 0) == pytest.approx(now_ts() - 30 * DAY, abs=60)
