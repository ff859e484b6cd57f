"""Retention: deliveries, receipts and replies older than ``PLP_RETENTION_DAYS`` are purged.

The default, 400 days (about 13 months), keeps the whole last year for a PLP's annual
evaluation. For each alert created before the cutoff, the purge deletes its delivery
records (acknowledgements are kept on them), the delivery indexes, the sets of members
planned, acknowledged or unreachable, their entries in the leases and holds, and the
replies to it with their index entries. The alert itself, its state, its relays and its
counts (anonymous aggregates: deliveries per status and channel, acknowledgements,
replies) stay, and each target PLP's figures of the alert (members reached, acknowledged...)
are kept before its deliveries go (``dispatcher.reports.keep_alert_figures``), so a PLP's figures stay right.
Replies tied to no alert go once older than
the cutoff. ``purged_until`` records how far the purge has come: the next run starts
there, and the walks through a member's deliveries (export, erasure) skip what it passed.

The purge runs as the job ``workers.jobs.purge``: the clock enqueues it (first as it starts,
see ``dispatcher.pipeline.jobs.RECURRING``), and each run schedules the next (daily; in a
minute when a run stopped at its bound with more to do).
``plp purge`` runs it once from a terminal (or from cron, without the clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import redis
import structlog

from dispatcher import reports
from dispatcher.core.models import DeliveryStatus
from dispatcher.pipeline import jobs
from dispatcher.storage.erasure import drop_feedback
from dispatcher.storage.keys import Keys
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import now_ts

log = structlog.get_logger(__name__)

DAY = 86400
#: Alerts purged by one run at most: a run stays short, and the next one comes a minute later.
MAX_ALERTS = 1000
#: Keys, refs or replies per pipeline.
CHUNK = 500
#: Seconds before the next run, after one that stopped at its bound with more to do.
AGAIN_SOON = 60


@dataclass(frozen=True)
class Purge:
    """What one run purged, and whether anything older than the cutoff is left."""

    cutoff: float
    alerts: int
    deliveries: int
    feedback: int
    done: bool


def purge(rt: Runtime, *, now: float | None = None, max_alerts: int = MAX_ALERTS) -> Purge:
    """Purge what is older than the retention period at ``now``: at most ``max_alerts`` alerts."""
    client, keys = rt.sync_redis, rt.keys
    cutoff = (now_ts() if now is None else now) - rt.settings.retention_days * DAY
    since = client.get(keys.purged_until())
    due = cast(
        list[tuple[str, float]],
        client.zrange(
            keys.alerts(), since or "-inf", cutoff, byscore=True, offset=0, num=max_alerts + 1, withscores=True
        ),
    )
    deliveries = feedback = 0
    alerts = rt.reader.get_alerts(alert_id for alert_id, _ in due[:max_alerts])
    for alert_id, alert in alerts.items():
        purged = _purge_alert(client, keys, alert_id, alert.plp_ids if alert is not None else [])
        deliveries, feedback = deliveries + purged[0], feedback + purged[1]
    done = len(due) <= max_alerts
    if done:
        feedback += _purge_old_feedback(client, keys, cutoff)
    # Alerts created before this are purged; one created at the same time as the next due one
    # may not be, so the next run starts there again (purging twice deletes nothing more).
    client.set(keys.purged_until(), repr(cutoff if done else due[max_alerts][1]))
    result = Purge(cutoff=cutoff, alerts=min(len(due), max_alerts), deliveries=deliveries, feedback=feedback, done=done)
    log.info("retention.purged", **result.__dict__)
    return result


def run_scheduled(rt: Runtime, *, max_alerts: int = MAX_ALERTS) -> Purge:
    """The daily job: schedule the next run, then purge (a run that stops at its bound is followed soon)."""
    jobs.schedule(rt, now_ts() + DAY, jobs.PURGE, urgent=False)  # first, so that a crash does not end the chain
    result = purge(rt, max_alerts=max_alerts)
    if not result.done:
        jobs.schedule(rt, now_ts() + AGAIN_SOON, jobs.PURGE, urgent=False)
    return result


def _purge_alert(client: redis.Redis, keys: Keys, alert_id: str, plp_ids: list[str]) -> tuple[int, int]:
    """Delete one alert's deliveries and replies (its target PLPs': ``plp_ids``); keep the alert, its state,
    relays and counts, and each PLP's figures of it (for the annual evaluation), taken first."""
    reports.keep_alert_figures(client, keys, alert_id, plp_ids)
    deliveries = _purge_deliveries(client, keys, alert_id)
    replies = cast(list[str], client.zrange(keys.alert_feedback(alert_id), 0, -1))
    _drop_feedback(client, keys, replies)
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(
            keys.alert_deliveries(alert_id),
            *(keys.alert_deliveries_in(alert_id, status.value) for status in DeliveryStatus),
            keys.alert_members(alert_id),
            *(keys.alert_plp_members(alert_id, plp_id) for plp_id in plp_ids),
            keys.alert_acks(alert_id),
            keys.alert_answers(alert_id),
            keys.alert_answer_log(alert_id),
            keys.alert_unreachable(alert_id),
            keys.alert_fanouts(alert_id),
            keys.alert_feedback(alert_id),
        )
        for lease in (jobs.fanout_lease(alert_id, plp_id) for plp_id in plp_ids):
            pipe.zrem(keys.leases(), lease)
        pipe.hset(keys.alert_state(alert_id), "purged_at", now_ts())
        pipe.execute()
    return deliveries, len(replies)


def _purge_deliveries(client: redis.Redis, keys: Keys, alert_id: str) -> int:
    index, count = keys.alert_deliveries(alert_id), 0
    for start in range(0, cast(int, client.zcard(index)), CHUNK):
        refs = cast(list[str], client.zrange(index, start, start + CHUNK - 1))  # the index is deleted last
        entries = [f"{alert_id}|{ref}" for ref in refs]
        with client.pipeline(transaction=False) as pipe:
            pipe.delete(*(keys.delivery(alert_id, ref) for ref in refs))
            pipe.zrem(keys.leases(), *entries)
            pipe.zrem(keys.holds(), *entries)
            pipe.zrem(keys.handed(), *entries)
            pipe.execute()
        count += len(refs)
    return count


def _purge_old_feedback(client: redis.Redis, keys: Keys, cutoff: float) -> int:
    """Replies received before the cutoff that no purged alert took with it (replies to no alert)."""
    count = 0
    for start in range(0, cast(int, client.zcard(keys.plps())), CHUNK):
        plp_ids = cast(list[str], client.zrange(keys.plps(), start, start + CHUNK - 1))
        for plp_id in plp_ids:
            while ids := cast(
                list[str],
                client.zrange(keys.plp_feedback(plp_id), "-inf", cutoff, byscore=True, offset=0, num=CHUNK),
            ):
                _drop_feedback(client, keys, ids)
                client.zrem(keys.plp_feedback(plp_id), *ids)  # also entries whose reply had gone already
                count += len(ids)
    return count


def _drop_feedback(client: redis.Redis, keys: Keys, ids: list[str]) -> None:
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        raws = cast(list[str | None], client.mget([keys.feedback(i) for i in part]))
        with client.pipeline(transaction=False) as pipe:
            for feedback_id, raw in zip(part, raws, strict=True):
                drop_feedback(pipe, keys, feedback_id, raw)
            pipe.execute()
