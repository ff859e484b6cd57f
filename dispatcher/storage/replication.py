"""An accepted alert held by replicas before its 202: Redis' ``WAIT``.

Replication is asynchronous: a write the primary acknowledged can be lost if the primary dies
before a replica has it, and Sentinel then promotes that replica. With
``PLP_REDIS_WAIT_REPLICAS`` above 0, the intake of an alert waits until that many replicas
acknowledged it, ``PLP_REDIS_WAIT_TIMEOUT`` seconds at most.

``WAIT`` waits for what its own connection wrote, and the alert's transaction gave its connection
back to the pool: so the wait writes a marker (``keys.replicated()``) and waits on the connection
that wrote it, in one round trip. The marker follows the alert in the primary's replication
stream, so a replica that acknowledged the marker holds the alert.

When the replicas do not confirm in time, ``PLP_REDIS_WAIT_MISSED`` decides: ``accept`` answers
202 (the alert goes out from the primary; only its death in the next moments would lose it),
``refuse`` raises ``ReplicasBehind``, a ``redis.ConnectionError`` that the API answers 503 with
Retry-After: the client sends again with its Idempotency-Key and is answered the same alert. Each
wait is counted in the metrics hash (``plp_replication_waits_total`` by outcome).
"""

from __future__ import annotations

import redis
import structlog
from redis.asyncio import Redis as AsyncRedis

from config import Settings
from dispatcher.storage.keys import Keys

log = structlog.get_logger(__name__)


class ReplicasBehind(redis.ConnectionError):
    """Fewer replicas than PLP_REDIS_WAIT_REPLICAS confirmed a write in time, and PLP_REDIS_WAIT_MISSED is refuse."""


async def confirm_replicas(client: AsyncRedis, keys: Keys, settings: Settings) -> int | None:
    """Wait until PLP_REDIS_WAIT_REPLICAS replicas hold everything written so far; how many did (None: no wait).

    On the asyncio client: a wait that runs to its timeout holds a pooled connection, never one of the
    threads the web's blocking calls share (six on two cores: beyond six missed waits at once, every other
    intake would wait for a thread as long again). Raises ``ReplicasBehind`` when fewer did in time and
    PLP_REDIS_WAIT_MISSED is ``refuse``.
    """
    wanted = settings.redis_wait_replicas
    if wanted == 0:
        return None
    async with client.pipeline(transaction=False) as pipe:  # one connection: the marker, then the wait for it
        pipe.incr(keys.replicated())
        pipe.wait(wanted, round(settings.redis_wait_timeout * 1000))
        _, acknowledged = await pipe.execute()
    outcome = "confirmed" if acknowledged >= wanted else "missed"
    await client.hincrby(keys.metrics(), f"rw|{outcome}", 1)
    if outcome == "missed":
        log.warning(
            "intake.replicas_behind",
            wanted=wanted,
            acknowledged=acknowledged,
            timeout_s=settings.redis_wait_timeout,
            then=settings.redis_wait_missed,
        )
        if settings.redis_wait_missed == "refuse":
            raise ReplicasBehind(f"{acknowledged} of {wanted} replicas confirmed the write in time")
    return int(acknowledged)
