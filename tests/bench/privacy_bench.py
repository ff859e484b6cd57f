"""Measure the cost of members' data rights and of retention: export, erasure, and the purge.

Run with ``.venv/bin/python -m tests.bench.privacy_bench`` (a real Redis is needed; the
default is the tests' database, under the key prefix ``plpbench:``, removed afterwards).
It stores, the way the service stores them, one PLP of ``--members`` members (phone, e-mail,
Telegram) and ``--alerts`` alerts, one a day, each delivered to every member on SMS and
e-mail, a quarter of them acknowledged, and a reply from one member in ten; then it times:

- a member's export and erasure, which walk the alerts of the member's PLPs (there is no
  per-member index of deliveries: it would cost memory for every delivery);
- the retention purge of all those alerts, as if they were older than PLP_RETENTION_DAYS;

and reports the Redis memory the deliveries take and what the purge gives back. The
figures are measured, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime

import redis

from config import Settings
from dispatcher.core.models import Alert, Category, ChannelName, Language, Member, Role, Urgency
from dispatcher.people import retention
from dispatcher.people.export import export_member
from dispatcher.pipeline.receipts import Receipts
from dispatcher.storage.keys import Keys
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, delivery_id, delivery_ref, new_id
from tests.bench.harness import redis_data_bytes

PREFIX = "plpbench:"
DAY = 86400
CHANNELS = (ChannelName.SMS, ChannelName.EMAIL)


def _members(count: int, plp_id: str) -> list[Member]:
    now = datetime.now(UTC)
    return [
        Member(
            id=new_id(),
            name=f"Member {i}",
            phone=f"+3247{i:07d}",
            email=f"member{i}@example.org",
            telegram_chat_id=10_000_000 + i,
            language=Language.FR,
            channels=list(ChannelName),
            consent_at=now,
            plp_ids=[plp_id],
            created_at=now,
            updated_at=now,
        )
        for i in range(count)
    ]


def _alert(plp_id: str, created: float) -> Alert:
    return Alert(
        id=new_id(),
        author_id="officer",
        author_role=Role.POLICE,
        urgency=Urgency.URGENT,
        category=Category.BURGLARY,
        plp_ids=[plp_id],
        texts={Language.FR: "Cambriolage rue du Bailli"},
        ttl_seconds=3600,
        created_at=datetime.fromtimestamp(created, UTC),
    )


def _store_alert(client: redis.Redis, keys: Keys, alert: Alert, members: list[Member], plp_id: str) -> None:
    """The alert, its state and counts, and its deliveries, as fan-out and the send scripts leave them."""
    created = alert.created_at.timestamp()
    with client.pipeline(transaction=False) as pipe:
        pipe.set(keys.alert(alert.id), alert.model_dump_json())
        pipe.hset(keys.alert_state(alert.id), mapping={"status": "completed", "expires_at": created + 3600})
        pipe.zadd(keys.alerts(), {alert.id: created})
        pipe.zadd(keys.plp_alerts(plp_id), {alert.id: created})
        for n, member in enumerate(members):
            pipe.sadd(keys.alert_members(alert.id), member.id)
            for channel in CHANNELS:
                ref = delivery_ref(channel.value, member.id)
                fields = {"status": "delivered", "t_queued": created, "t_sending": created + 1}
                fields |= {"t_delivered": created + 2, "attempts": 1, "plp": plp_id, "provider_id": f"SM{new_id()}"}
                if n % 4 == 0 and channel is ChannelName.SMS:
                    fields |= {"ack_at": created + 60, "ack_channel": "sms"}
                pipe.hset(keys.delivery(alert.id, ref), mapping=fields)  # type: ignore[arg-type]
                pipe.zadd(keys.alert_deliveries(alert.id), {ref: 0})
                pipe.zadd(keys.alert_deliveries_in(alert.id, "delivered"), {ref: 0})
        pipe.hset(keys.alert_counts(alert.id), mapping={"planned": 2 * len(members), "s:delivered": 2 * len(members)})
        pipe.execute()


async def _replies(rt: Runtime, alerts: list[Alert], members: list[Member]) -> None:
    client = rt.async_redis()
    try:
        receipts = Receipts(Store(client, rt.keys))
        for alert in alerts:
            for member in members[::10]:
                did = delivery_id(alert.id, delivery_ref("sms", member.id))
                await receipts.feedback(member, "Une camionnette blanche", via=ChannelName.SMS, delivery=did)
    finally:
        await client.aclose()


async def _time_member_rights(rt: Runtime, member: Member) -> tuple[float, int, float]:
    client = rt.async_redis()
    try:
        store = Store(client, rt.keys)
        started = time.perf_counter()
        exported = await export_member(store, member, retention_days=400)
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        await store.remove_member(member, member.plp_ids[0])
        return export_s, len(exported.deliveries), time.perf_counter() - started
    finally:
        await client.aclose()


def _clear(client: redis.Redis) -> None:
    for batch in _batched(client.scan_iter(match=f"{PREFIX}*", count=5000), 5000):
        client.delete(*batch)


def _batched(items: object, size: int) -> list[list[bytes]]:
    out: list[list[bytes]] = [[]]
    for item in items:  # type: ignore[attr-defined]
        if len(out[-1]) == size:
            out.append([])
        out[-1].append(item)
    return out if out[0] else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("PLP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--alerts", type=int, default=365)
    args = parser.parse_args()
    settings = Settings(redis_url=args.redis_url, key_prefix=PREFIX, queue_prefix="plpbench", environment="development")
    rt = Runtime(settings, args.redis_url)
    client, keys = rt.sync_redis, rt.keys
    _clear(client)
    try:
        plp_id = new_id()
        client.zadd(keys.plps(), {plp_id: 0})
        members = _members(args.members, plp_id)
        with client.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.set(keys.member(member.id), member.model_dump_json())
                pipe.zadd(keys.plp_members(plp_id), {member.id: 0})
            pipe.execute()
        start = time.time() - (args.alerts + 450) * DAY  # all older than the retention period
        before = redis_data_bytes(client)
        alerts = [_alert(plp_id, start + day * DAY) for day in range(args.alerts)]
        for alert in alerts:
            _store_alert(client, keys, alert, members, plp_id)
        asyncio.run(_replies(rt, alerts, members))
        stored = redis_data_bytes(client) - before
        deliveries = args.alerts * args.members * len(CHANNELS)
        shape = f"{args.alerts} alerts x {args.members} members x {len(CHANNELS)} channels"
        print(f"stored: {shape}: {deliveries} deliveries")
        print(f"  Redis memory for them: {stored / 1e6:.1f} MB ({stored / deliveries:.0f} bytes a delivery)")

        export_s, exported, erase_s = asyncio.run(_time_member_rights(rt, members[0]))
        print(f"export of one member: {exported} deliveries found in {export_s * 1000:.0f} ms")
        print(f"erasure of one member: {erase_s * 1000:.0f} ms (walk, scrub, replies, record)")

        started = time.perf_counter()
        runs = purged = replies = 0
        while True:
            done = retention.purge(rt)
            runs, purged, replies = runs + 1, purged + done.deliveries, replies + done.feedback
            if done.done:
                break
        elapsed = time.perf_counter() - started
        freed = stored - (redis_data_bytes(client) - before)
        print(
            f"purge: {purged} deliveries and {replies} replies of {args.alerts} alerts in {elapsed:.2f} s "
            f"({runs} run(s), {purged / elapsed:,.0f} deliveries/s); {freed / 1e6:.1f} MB given back"
        )
    finally:
        _clear(client)


if __name__ == "__main__":
    main()
