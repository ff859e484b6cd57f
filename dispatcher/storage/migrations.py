"""The format of the data in Redis (its *data version*), and the migrations that bring older data up to it.

Every record format this release writes is data version ``DATA_VERSION``, stamped in Redis under
``<prefix>data-version`` (a hash: ``version``, the release that stamped it ``by``, ``at`` when).
Every process checks it as it starts (``ensure_current``), before it reads or writes anything else:

- no stamp and no data of the service (an empty database): stamped with ``DATA_VERSION``;
- no stamp but data: written before data versions existed, i.e. version 0;
- older than ``DATA_VERSION``: the migrations after it run, in order; each stamps its version once done;
- newer: refused (``DataTooNew``), naming both versions. A release must not write records that a newer
  one reads differently, nor read records whose meaning it does not know.

Migrations are code (``MIGRATIONS``): each is one step from the version before it, and idempotent: it
looks at every record it may change and changes only those still in the old format, so that a step
interrupted (a process killed, Redis restarted) is simply run again. They run under a Redis lock
(``<prefix>data-version:lock``), so that processes starting at once migrate once: the others wait for
the lock, then find the data current. The lock runs out after ``LOCK_SECONDS`` if its holder dies; a
step longer than that may then run twice at once, which its idempotence makes harmless.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import cast

import redis
import structlog
from redis.exceptions import LockError

from dispatcher.storage.keys import Keys
from dispatcher.storage.store import now_ts

log = structlog.get_logger(__name__)

#: The data version this release writes (and the last of ``MIGRATIONS``).
DATA_VERSION = 2
#: Seconds the migration lock lives without its holder renewing it (it is renewed after each step).
LOCK_SECONDS = 600
#: Records read per round trip by the migrations.
_BATCH = 500

RELEASE = package_version("plp-dispatch")


class DataVersionError(Exception):
    """The data in Redis cannot be used by this release as it is."""


class DataTooNew(DataVersionError):
    """The data was written by a newer release (a higher data version) than this one."""

    def __init__(self, found: StoredVersion) -> None:
        self.found = found
        by = f" (stamped by plp-dispatch {found.by})" if found.by else ""
        super().__init__(
            f"the data in Redis is at data version {found.version}{by}, newer than this plp-dispatch "
            f"{RELEASE}, which reads data version {DATA_VERSION} at most: run the newer release here too, "
            "or point REDIS_URL at data of this version (a backup taken before the upgrade)"
        )


class DataVersionUnreadable(DataVersionError):
    """The version stamp is there but is not a data version (written by something else)."""


@dataclass(frozen=True)
class StoredVersion:
    """The stamp found in Redis."""

    version: int
    by: str | None  # the release that stamped it (absent for version 0: data from before the stamps)
    at: float | None


@dataclass(frozen=True)
class Migration:
    """One step: from data version ``version - 1`` to ``version``. ``run`` returns how many records it changed."""

    version: int
    summary: str
    run: Callable[[redis.Redis, Keys], int]


@dataclass(frozen=True)
class Migrated:
    """A step that ran, and the records it changed."""

    migration: Migration
    changed: int


def stored_version(r: redis.Redis, keys: Keys) -> StoredVersion | None:
    """The stamp in Redis; version 0 if there is none but the service has data there; None for an empty database.

    ``r`` decodes responses. Raises ``DataVersionUnreadable`` for a stamp that is not a version.
    """
    raw = cast(dict[str, str], r.hgetall(keys.data_version()))
    if not raw:
        return StoredVersion(version=0, by=None, at=None) if _has_data(r, keys) else None
    try:
        return StoredVersion(version=int(raw["version"]), by=raw.get("by"), at=float(raw.get("at") or 0) or None)
    except (KeyError, ValueError):
        raise DataVersionUnreadable(f"{keys.data_version()} holds {raw!r}, which is not a data version") from None


def pending(found: StoredVersion | None) -> list[Migration]:
    """The steps still to run on data at ``found`` (none for an empty database, which is simply stamped)."""
    if found is None or found.version >= DATA_VERSION:
        return []
    return list(MIGRATIONS[found.version :])


def ensure_current(r: redis.Redis, keys: Keys) -> list[Migrated]:
    """Make the data current for this release, or refuse it; return the steps run (none if it was current).

    Refuses data of a newer release (``DataTooNew``); stamps an empty database; migrates older data
    under the lock. Redis errors (``redis.ConnectionError``...) are the caller's to handle.
    """
    found = stored_version(r, keys)
    if found is not None and found.version == DATA_VERSION:
        return []
    if found is not None and found.version > DATA_VERSION:
        raise DataTooNew(found)
    return migrate(r, keys)


def migrate(r: redis.Redis, keys: Keys) -> list[Migrated]:
    """Run the steps the data still needs, under the lock (waiting for another process's migration first).

    The version is read again once the lock is held: a process that waited finds the data current.
    Raises ``DataTooNew`` for data of a newer release.
    """
    lock = r.lock(keys.data_version_lock(), timeout=LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        log.info("data.migration_waiting", lock=keys.data_version_lock())
        lock.acquire()  # released by its holder, or run out after LOCK_SECONDS if it died
    try:
        return _migrate_locked(r, keys, lock)
    finally:
        with suppress(LockError):  # ran out during a long step: nothing left to release
            lock.release()


def _migrate_locked(r: redis.Redis, keys: Keys, lock: redis.lock.Lock) -> list[Migrated]:
    found = stored_version(r, keys)
    if found is None:
        _stamp(r, keys, DATA_VERSION)
        log.info("data.stamped", version=DATA_VERSION, reason="empty database")
        return []
    if found.version > DATA_VERSION:
        raise DataTooNew(found)
    done = []
    for step in pending(found):
        log.info("data.migrating", to_version=step.version, summary=step.summary)
        changed = step.run(r, keys)
        _stamp(r, keys, step.version)
        lock.reacquire()
        log.info("data.migrated", version=step.version, changed=changed)
        done.append(Migrated(step, changed))
    return done


def _stamp(r: redis.Redis, keys: Keys, version: int) -> None:
    r.hset(keys.data_version(), mapping={"version": version, "by": RELEASE, "at": now_ts()})


def _has_data(r: redis.Redis, keys: Keys) -> bool:
    """Whether any key of the service is in Redis, other than the stamp and its lock (which say nothing)."""
    own = {keys.data_version(), keys.data_version_lock()}
    return any(key not in own for key in r.scan_iter(match=_pattern(keys, keys.prefix + "*"), count=1000))


def _pattern(keys: Keys, built: str) -> str:
    """A SCAN pattern from a key built with ``*`` in it: the prefix, which may hold glob characters, escaped."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", keys.prefix) + built[len(keys.prefix) :]


# -- the steps ----------------------------------------------------------------------------------


def index_legacy_tokens(r: redis.Redis, keys: Keys) -> int:
    """Version 1. Tokens issued before tokens had a public id and an expiry (a hash of ``actor_id`` and
    ``issued_at`` only) get an id, an expiry equal to their issue (they were never valid for ever: the
    service refuses them as expired), and the indexes ``plp token list`` and ``plp token revoke`` read.

    The id is taken from the token's hash, so a step run again gives the same one.
    """
    changed = 0
    for key in r.scan_iter(match=_pattern(keys, keys.token("*")), count=_BATCH):
        if r.type(key) != "hash":
            continue
        raw = cast(dict[str, str], r.hgetall(key))
        if "token_id" in raw or "actor_id" not in raw or "issued_at" not in raw:
            continue
        digest = key[len(keys.token("")) :]
        token_id = _claim_token_id(r, keys, digest)
        with r.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"token_id": token_id, "expires_at": raw.get("expires_at", raw["issued_at"])})
            pipe.sadd(keys.actor_tokens(raw["actor_id"]), token_id)
            pipe.zadd(keys.tokens(), {token_id: float(raw["issued_at"])})
            pipe.execute()
        changed += 1
    return changed


def _claim_token_id(r: redis.Redis, keys: Keys, digest: str) -> str:
    """A public id for the token of ``digest``, from its own hash (``tok_`` and 10 hex digits, as issued ones)."""
    derived = hashlib.sha256(f"token-id:{digest}".encode()).hexdigest()
    for start in range(0, len(derived) - 10, 10):
        token_id = f"tok_{derived[start : start + 10]}"
        if r.set(keys.token_id(token_id), digest, nx=True) or r.get(keys.token_id(token_id)) == digest:
            return token_id
    raise DataVersionError(f"no free public id for the token {digest[:8]}...")  # 6 clashes of 40 random bits


def stamp_alert_urgency(r: redis.Redis, keys: Keys) -> int:
    """Version 2. Alerts stored before their state carried their urgency (the metrics counted them as
    ``urgency="unknown"``) get it in their state, from the alert itself."""
    changed = 0
    for alert_ids in _batches(alert_id for alert_id, _ in r.zscan_iter(keys.alerts(), count=_BATCH)):
        with r.pipeline(transaction=False) as pipe:
            for alert_id in alert_ids:
                pipe.hexists(keys.alert_state(alert_id), "status")
                pipe.hexists(keys.alert_state(alert_id), "urgency")
                pipe.get(keys.alert(alert_id))
            found = pipe.execute()
        with r.pipeline(transaction=False) as pipe:
            for i, alert_id in enumerate(alert_ids):
                has_state, has_urgency, alert = found[3 * i : 3 * i + 3]
                urgency = json.loads(alert).get("urgency") if alert else None
                if has_state and not has_urgency and urgency:
                    pipe.hsetnx(keys.alert_state(alert_id), "urgency", urgency)
                    changed += 1
            pipe.execute()
    return changed


def _batches(items: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


#: Every step, in order: ``MIGRATIONS[n]`` takes data from version n to n + 1.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tokens issued before token ids and expiry get an id, and are listed as expired", index_legacy_tokens),
    Migration(2, "alerts stored before the metrics get their urgency in their state", stamp_alert_urgency),
)
assert [m.version for m in MIGRATIONS] == list(range(1, DATA_VERSION + 1)), "one step per version, in order"
