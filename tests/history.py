"""A seeded delivery history for the members' health: alerts written straight into Redis the way the
fan-out and the status scripts leave them (planned members, deliveries by status, acknowledgements), at
chosen times in the past."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dispatcher.storage.store import Store, delivery_ref, new_id


@dataclass(frozen=True)
class Sent:
    """One member's part of a seeded alert: reached on SMS or not, acknowledged or not."""

    member_id: str
    reached: bool = True
    acknowledged: bool = False


async def seed_alert(store: Store, plp_id: str, *, days_ago: float, members: list[Sent]) -> str:
    """An alert of the PLP created ``days_ago`` days ago, with these members' deliveries; returns its id."""
    keys, alert_id = store.keys, new_id()
    at = (datetime.now(UTC) - timedelta(days=days_ago)).timestamp()
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.zadd(keys.plp_alerts(plp_id), {alert_id: at})
        for sent in members:
            pipe.sadd(keys.alert_plp_members(alert_id, plp_id), sent.member_id)
            status = "delivered" if sent.reached else "failed"
            pipe.zadd(keys.alert_deliveries_in(alert_id, status), {delivery_ref("sms", sent.member_id): at})
            if sent.acknowledged:
                pipe.sadd(keys.alert_acks(alert_id), sent.member_id)
        await pipe.execute()
    return alert_id


async def seed_health_history(store: Store, plp_id: str, ids: dict[str, str]) -> None:
    """The story the members' health tests read, for members named in ``ids``:

    - ``steady``: reached by every alert, acknowledged the latest;
    - ``silent``: reached by four alerts, acknowledged none (never acknowledges);
    - ``lost``: reached 200 days ago, then planned 60 and 10 days ago and reached by neither (not reachable);
    - ``newcomer``: planned once, yesterday, and not reached (one failure is not months: not flagged);
    - ``mute``: no channel with a contact point (no working channel).
    """
    steady, silent, lost = ids["steady"], ids["silent"], ids["lost"]
    await seed_alert(store, plp_id, days_ago=200, members=[Sent(steady), Sent(silent), Sent(lost, acknowledged=True)])
    await seed_alert(store, plp_id, days_ago=120, members=[Sent(steady), Sent(silent)])
    await seed_alert(store, plp_id, days_ago=60, members=[Sent(steady), Sent(silent), Sent(lost, reached=False)])
    await seed_alert(
        store,
        plp_id,
        days_ago=10,
        members=[Sent(steady, acknowledged=True), Sent(silent), Sent(lost, reached=False)],
    )
    await seed_alert(store, plp_id, days_ago=1, members=[Sent(ids["newcomer"], reached=False)])
