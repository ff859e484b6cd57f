"""The data version in Redis: an empty database stamped, older data migrated step by step, newer data refused.

Each migration is run on records written exactly as the release before it wrote them (the
formats are those of the commits named in each test), and run twice: the second run changes
nothing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.core.models import ActorIn, DeliveryStatus, Role, Urgency
from dispatcher.operations import metrics
from dispatcher.people.accounts import create_actor
from dispatcher.storage.migrations import (
    DATA_VERSION,
    MIGRATIONS,
    RELEASE,
    DataTooNew,
    DataVersionUnreadable,
    ensure_current,
    index_legacy_tokens,
    migrate,
    stamp_alert_urgency,
    stored_version,
)
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import TokenRefused, hash_token, now_ts
from tests.dispatcher.helpers import SMS, Scripted, add_member, add_plp, charter, deliveries, fanned_out, open_store
from tests.support import until


@pytest.fixture
def r(runtime: Runtime) -> Iterator[redis.Redis]:
    """A decoding synchronous client, as the processes use to check the version at start-up."""
    yield runtime.sync_redis


def _stamp(r: redis.Redis, runtime: Runtime) -> dict[str, str]:
    return dict(r.hgetall(runtime.keys.data_version()))  # type: ignore[arg-type]


def test_an_empty_database_is_stamped_with_this_releases_version(r: redis.Redis, runtime: Runtime) -> None:
    """No data and no stamp: nothing to migrate, and the database is stamped with this release's version."""
    assert stored_version(r, runtime.keys) is None
    assert ensure_current(r, runtime.keys) == []
    stamp = _stamp(r, runtime)
    assert (int(stamp["version"]), stamp["by"]) == (DATA_VERSION, RELEASE)
    assert abs(float(stamp["at"]) - now_ts()) < 60


async def test_data_without_a_stamp_is_version_0_and_every_step_runs_once(r: redis.Redis, runtime: Runtime) -> None:
    """Data written before data versions: version 0; every step runs in order, then the data is current."""
    async with open_store(runtime) as store:
        await add_plp(store)
    assert stored_version(r, runtime.keys).version == 0  # type: ignore[union-attr]
    done = ensure_current(r, runtime.keys)
    assert [step.migration.version for step in done] == list(range(1, DATA_VERSION + 1))
    assert int(_stamp(r, runtime)["version"]) == DATA_VERSION
    assert ensure_current(r, runtime.keys) == []


def test_data_of_a_newer_release_is_refused_naming_both_versions(r: redis.Redis, runtime: Runtime) -> None:
    """A stamp above this release's version: refused, the message naming both versions and the newer release."""
    newer = DATA_VERSION + 1
    r.hset(runtime.keys.data_version(), mapping={"version": newer, "by": "9.0.0", "at": now_ts()})
    for run in (ensure_current, migrate):
        with pytest.raises(DataTooNew) as refused:
            run(r, runtime.keys)
        message = str(refused.value)
        assert f"data version {newer} (stamped by plp-dispatch 9.0.0)" in message
        assert f"plp-dispatch {RELEASE}, which reads data version {DATA_VERSION} at most" in message
    assert int(_stamp(r, runtime)["version"]) == newer


def test_a_stamp_that_is_not_a_version_is_refused(r: redis.Redis, runtime: Runtime) -> None:
    """A stamp without a readable version: refused, saying what it holds, rather than read as version 0."""
    r.hset(runtime.keys.data_version(), "version", "two")
    with pytest.raises(DataVersionUnreadable, match="'two'"):
        ensure_current(r, runtime.keys)


async def test_tokens_issued_before_token_ids_get_an_id_and_are_listed_as_expired(
    r: redis.Redis, runtime: Runtime
) -> None:
    """Version 1, on tokens as issued before 57e9b6f (a hash of actor_id and issued_at): each gets a stable
    public id, is listed and can be revoked, and is still refused as expired; a current token is left as it is."""
    async with open_store(runtime) as store:
        actor, current_secret = await create_actor(store, ActorIn(name="Admin", role=Role.ADMIN))
        issued = now_ts() - 86400
        old_key = runtime.keys.token(hash_token("plp_an-old-token"))
        r.hset(old_key, mapping={"actor_id": actor.id, "issued_at": issued})  # the old issue_token's record
        current = dict(r.hgetall(runtime.keys.token(hash_token(current_secret))))

        assert index_legacy_tokens(r, runtime.keys) == 1
        token_id = r.hget(old_key, "token_id")
        assert str(token_id).startswith("tok_") and len(str(token_id)) == 14
        listed = {t.id: t for t in await store.list_tokens(actor_id=actor.id, limit=10)}
        assert listed[str(token_id)].issued_at.timestamp() == pytest.approx(issued)
        assert listed[str(token_id)].refusal(now_ts()) == "expired"
        assert {t.id for t in await store.list_tokens(actor_id=None, limit=10)} == set(listed)
        with pytest.raises(TokenRefused, match="expired"):
            await store.actor_for_token("plp_an-old-token")
        assert dict(r.hgetall(runtime.keys.token(hash_token(current_secret)))) == current

        assert index_legacy_tokens(r, runtime.keys) == 0
        assert r.hget(old_key, "token_id") == token_id
        revoked = await store.revoke_token(str(token_id))
        assert revoked is not None and revoked.refusal(now_ts()) == "revoked"


def test_a_token_step_interrupted_after_taking_its_id_takes_the_same_id_again(r: redis.Redis, runtime: Runtime) -> None:
    """A step killed between reserving a token's id and writing the token: the step run again takes the same id."""
    old_key = runtime.keys.token(hash_token("plp_interrupted"))
    r.hset(old_key, mapping={"actor_id": "someone", "issued_at": now_ts()})
    assert index_legacy_tokens(r, runtime.keys) == 1
    token_id = str(r.hget(old_key, "token_id"))
    r.hdel(old_key, "token_id", "expires_at")  # as if the step had stopped after reserving the id
    assert index_legacy_tokens(r, runtime.keys) == 1
    assert r.hget(old_key, "token_id") == token_id
    assert r.zcard(runtime.keys.tokens()) == 1


async def test_alerts_stored_before_the_metrics_get_their_urgency_and_are_counted_under_it(
    r: redis.Redis, runtime: Runtime
) -> None:
    """Version 2, on alerts stored before 69f0e38 (no urgency in their state): each gets its alert's urgency, and
    the alert finishing afterwards is counted under it, not as "unknown"; a current alert is left as it is."""
    async with open_store(runtime) as store:
        plp = await add_plp(store, charter=charter([SMS]))
        await add_member(store, [plp], email=None)
        old = await fanned_out(runtime, [plp])
        other = await fanned_out(runtime, [plp], urgency=Urgency.NON_URGENT)
        r.hdel(runtime.keys.alert_state(old.id), "urgency")  # the state as intake wrote it then

        assert stamp_alert_urgency(r, runtime.keys) == 1
        assert r.hget(runtime.keys.alert_state(old.id), "urgency") == "urgent"
        assert r.hget(runtime.keys.alert_state(other.id), "urgency") == "non_urgent"
        assert stamp_alert_urgency(r, runtime.keys) == 0

        scripted = Scripted(store, old, plp)
        for record in await deliveries(store, old.id):
            ref = f"{record.channel.value}:{record.member_id}"
            assert await scripted.claim(ref) == "claimed"
            await scripted.record(ref, DeliveryStatus.DELIVERED)
    finished = _samples(runtime, "plp_alerts_finished_total")
    assert finished == {(("status", "completed"), ("urgency", "urgent")): 1.0}


def _samples(runtime: Runtime, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    families = text_string_to_metric_families(metrics.render(runtime).decode())
    return {tuple(sorted(s.labels.items())): s.value for f in families for s in f.samples if s.name == name}


def test_processes_starting_at_once_migrate_once(r: redis.Redis, runtime: Runtime) -> None:
    """Four processes check unstamped data at the same moment: one runs the steps, the others find it current."""
    r.set(runtime.keys.purged_until(), 0)  # some data, unstamped: version 0
    start, results = threading.Barrier(4), []

    def start_up() -> None:
        client = redis.Redis.from_url(runtime.redis_url, decode_responses=True)
        try:
            start.wait()
            results.append(ensure_current(client, runtime.keys))
        finally:
            client.close()

    threads = [threading.Thread(target=start_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(len(done) for done in results) == [0, 0, 0, len(MIGRATIONS)]
    assert int(_stamp(r, runtime)["version"]) == DATA_VERSION


async def test_a_process_waits_for_the_migration_under_way_then_finds_the_data_current(
    r: redis.Redis, runtime: Runtime
) -> None:
    """While another process holds the migration lock, a starting one waits for it; once the other has migrated
    and let go, it runs nothing."""
    r.set(runtime.keys.purged_until(), 0)
    held = r.lock(runtime.keys.data_version_lock(), timeout=60)
    assert held.acquire(blocking=False)
    result: list[Any] = []
    waiting = threading.Thread(target=lambda: result.append(migrate(runtime.sync_redis, runtime.keys)))
    waiting.start()
    await until(lambda: _in_lock_acquire(waiting), timeout=10, what="the process to wait for the lock")
    assert not result
    r.hset(runtime.keys.data_version(), mapping={"version": DATA_VERSION, "by": RELEASE})  # the other migrated
    held.release()
    await asyncio.to_thread(waiting.join, 30)
    assert result == [[]]


def _in_lock_acquire(thread: threading.Thread) -> bool:
    """Whether the thread is inside redis-py's blocking ``Lock.acquire`` (its frames, as the interpreter has them)."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "acquire" and frame.f_code.co_filename.endswith(os.path.join("redis", "lock.py")):
            return True
        frame = frame.f_back
    return False
