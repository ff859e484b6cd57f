"""A backup taken while an alert is being sent, restored into a fresh Redis: the service completes the alert.

The backup and the restore are the ones docs/deploying.md gives an operator: ``BGSAVE``, wait for
it to end, copy ``dump.rdb``; then a fresh ``redis-server`` (an empty folder, the copy alone)
started with ``appendonly no`` so that it loads the copy, and the append-only file switched on
from it (``CONFIG SET appendonly yes``) before the service starts. Between the two, the host is
lost: Redis and every process of the service killed. Promise under test: a 202 means it will be
sent, even from a backup: every delivery of the alert ends sent, nothing lost.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher.core.models import AlertStatus
from dispatcher.storage.migrations import DATA_VERSION
from tests.faults.world import GONE_OUT, SETTLED, World, charter, open_world
from tests.support import RedisServer, until

pytestmark = pytest.mark.faults

MEMBERS = 150
PERSISTENT = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
#: How the fresh Redis starts on the copy: with the append-only file on, Redis would start empty and ignore it.
LOADS_THE_COPY = ["--appendonly", "no", "--save", ""]


async def test_a_copy_taken_mid_alert_restored_into_a_fresh_redis_lets_the_service_complete_the_alert(
    tmp_path: Path, figures: dict[str, Any]
) -> None:
    """A copy (BGSAVE, dump.rdb) taken while an alert to 150 members (SMS and e-mail) is half sent; Redis and
    every process killed; a fresh redis-server started from the copy and the service started on it: the copy
    holds the alert mid-way and its data version, and the alert completes, every delivery sent, none lost."""
    original = RedisServer(tmp_path / "redis", args=PERSISTENT)
    original.start()
    restored = RedisServer(tmp_path / "restored", args=LOADS_THE_COPY, port=original.port)
    try:
        async with open_world(original.url, tmp_path / "data", fanout_chunk=10, send_batch_size=20) as world:
            plp = await world.plp("PLP Parc", charter(urgent=["sms", "email"]))
            await world.members(plp, MEMBERS)
            await world.start_processes("urgent", "general", "clock")
            alert_id = await world.alert([plp], "Cambriolage rue du Parc, voiture grise 1-ABC-123.")
            await until(lambda: _ledger(world) >= MEMBERS // 2, timeout=30, what="the alert to be half sent")

            backup = await _backup(original, tmp_path / "backup")
            sent_before_copy = _ledger(world)
            # The service goes on sending after the copy: sends the copy knows nothing of, which are made again.
            await until(lambda: _ledger(world) >= sent_before_copy + 20, timeout=30, what="sends after the copy")
            for process in world.workers.alive():
                world.workers.kill(process)
            original.kill()  # the host is lost
            sent_before_loss = _ledger(world)

            await _restore(backup, restored)
            copy = world.records(alert_id)
            settled_in_copy = sum(1 for r in copy.values() if r["status"] in SETTLED)
            assert 0 < settled_in_copy < 2 * MEMBERS, "the copy holds the alert mid-way"
            assert world.redis.hget(world.runtime.keys.data_version(), "version") == str(DATA_VERSION)

            started = time.monotonic()
            await world.start_processes("urgent", "general", "clock")
            assert await world.finished(alert_id, timeout=60) is AlertStatus.COMPLETED
            completed_after = time.monotonic() - started
            await world.vendors.run(world.twilio.callbacks_done(timeout=10))

            records = world.records(alert_id)
            per_delivery = Counter(s.ref for s in world.sent() if s.alert_id == alert_id)
            figures.update(
                deliveries=len(records),
                sent_before_copy=sent_before_copy,
                sent_before_loss=sent_before_loss,
                settled_in_copy=settled_in_copy,
                completed_after_restore_s=round(completed_after, 2),
                sent_again=sum(n - 1 for n in per_delivery.values()),
            )
            assert len(records) == 2 * MEMBERS
            for ref, record in records.items():
                assert record["status"] in GONE_OUT, (ref, record)
                assert per_delivery[ref] >= 1, (ref, record)
    finally:
        original.stop()
        restored.stop()


async def _backup(server: RedisServer, folder: Path) -> Path:
    """The documented backup: BGSAVE (scheduled after a rewrite under way), wait for it to end, copy dump.rdb."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        saves = int(client.info("persistence")["rdb_saves"])
        client.bgsave(schedule=True)

        def saved() -> bool:
            found = client.info("persistence")
            return int(found["rdb_saves"]) > saves and not int(found["rdb_bgsave_in_progress"])

        await until(saved, timeout=30, what="BGSAVE to end")
        assert client.info("persistence")["rdb_last_bgsave_status"] == "ok"
    finally:
        client.close()
    folder.mkdir(parents=True)
    return Path(shutil.copy2(server.folder / "dump.rdb", folder / "dump.rdb"))


async def _restore(backup: Path, server: RedisServer) -> None:
    """The documented restore: the copy alone in a fresh folder, Redis started on it with the append-only file off
    (it loads dump.rdb), then the append-only file switched on from the data loaded, once its rewrite has ended."""
    server.folder.mkdir(parents=True)
    shutil.copy2(backup, server.folder / "dump.rdb")
    await asyncio.to_thread(server.start)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        client.config_set("appendonly", "yes")
        client.config_set("appendfsync", "always")

        def rewritten() -> bool:
            found = client.info("persistence")
            return not int(found["aof_rewrite_in_progress"]) and not int(found["aof_rewrite_scheduled"])

        await until(rewritten, timeout=30, what="the append-only file to be written from the copy")
        assert client.info("persistence")["aof_last_bgrewrite_status"] == "ok"
    finally:
        client.close()


def _ledger(world: World) -> int:
    return len(world.twilio.ledger) + len(world.smtp.messages)
