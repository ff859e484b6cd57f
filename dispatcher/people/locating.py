"""Where members live: their address and position kept together, and the geocoder asked in the background.

A member's position is given (by the coordinator: the console, the API, an import's ``lat`` and
``lon`` columns) or found from their address by the geocoder (``dispatcher.geo.geocoder``). The
geocoder is never asked inside a request: a member whose address has no position yet waits in the
``locate`` queue, and a job of the general lane (``workers.jobs.locate_members``, started by the
clock and by each new address) asks for them one by one, at ``PLP_GEOCODER_RATE`` shared by every
process. Each member's ``locating`` says where the search stands, with the reason in plain words
when they could not be located (shown in the member list): not found, ambiguous, no address, no
geocoder configured, or the geocoder out of service (they are asked for again later).

An alert's circle may be around an address ("500 m around rue du Parc 12"): the address is looked
up the same way, in the background, before the alert can be accepted (``find_place``). The first
preview or send queues it and is answered that it is being located; the job asks the geocoder for
it before any member, and the answer is kept 30 days (``place:<digest>``), so the next preview a
few seconds later finds it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import structlog

from dispatcher.core.models import Member
from dispatcher.core.places import (
    Address,
    Coordinates,
    Locating,
    LocatingState,
    Location,
    LocationSource,
    place_key,
)
from dispatcher.geo.geocoder import (
    Ambiguous,
    Found,
    Geocoder,
    GeocoderBusy,
    GeocoderDown,
    GeocoderError,
    GeocoderRefused,
)
from dispatcher.pipeline import jobs
from dispatcher.storage.limits import Limit, ProviderLimits
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, now_ts

log = structlog.get_logger(__name__)

#: The geocoder's limit name (``limit:geocoder``), shared by every process.
LIMIT = "geocoder"
#: Seconds between the runs the clock starts (each new address also starts one at once).
EVERY = 300.0
#: Seconds before a member is asked for again after the geocoder failed (5xx, timeout).
AFTER_FAILURE = 120.0
#: Seconds before the queue is taken up again after the geocoder refused our requests (400, 403).
AFTER_REFUSAL = 3600.0

_NO_GEOCODER = "no geocoder is configured (PLP_GEOCODER_URL): give the member's coordinates"
#: How long an alert's address, once located (or not), is kept for the next alerts.
PLACE_TTL = 30 * 86400
#: The geocoder's calls are counted as a provider's are (the ``pf``, ``pfk``, ``pft`` and ``pok`` fields of the
#: metrics hash, ``dispatcher.storage.scripts``), so that ``plp status``, ``/v1/status`` and ``/metrics`` say
#: when it keeps failing.
PROVIDER_LABELS = "geocoder|nominatim"


@dataclass(frozen=True)
class Run:
    """What one run of the geocoding job did."""

    asked: int = 0
    located: int = 0
    not_located: int = 0
    left: int = 0  # still waiting in the queue when the run ended
    places: int = 0  # alerts' addresses asked for (before the members)


@dataclass(frozen=True)
class Place:
    """Where an alert's address stands: located (``lat``, ``lon``), waiting for the geocoder, or not found."""

    state: LocatingState
    lat: float | None = None
    lon: float | None = None
    reason: str | None = None


def placed(member: Member, changes: dict[str, Any], *, geocoder: bool) -> dict[str, Any]:
    """The fields of ``member`` that ``changes`` (its ``address`` and ``coordinates``, when given) set:
    ``address``, ``location`` and ``locating``. A new address drops a position the geocoder found for
    the old one; given coordinates are the member's position until changed or removed."""
    address = Address.model_validate(changes["address"]) if changes.get("address") else None
    if "address" not in changes:
        address = member.address
    location = member.location
    if "address" in changes and address != member.address and location and location.source is LocationSource.GEOCODER:
        location = None
    if "coordinates" in changes:
        point = changes["coordinates"]
        location = _given(Coordinates.model_validate(point)) if point else None
    return {"address": address, "location": location, "locating": _state(address, location, geocoder=geocoder)}


def _given(point: Coordinates) -> Location:
    return Location(lat=point.lat, lon=point.lon, source=LocationSource.GIVEN, at=datetime.now(UTC))


def _state(address: Address | None, location: Location | None, *, geocoder: bool) -> Locating:
    at = datetime.now(UTC)
    if location is not None:
        return Locating(state=LocatingState.LOCATED, at=at)
    if address is None:
        return Locating(state=LocatingState.NO_ADDRESS, reason="no address or position is known", at=at)
    if not geocoder:
        return Locating(state=LocatingState.NO_GEOCODER, reason=_NO_GEOCODER, at=at)
    return Locating(state=LocatingState.PENDING, reason="waiting for the geocoder", at=at)


def waiting(members: list[Member]) -> list[str]:
    """The ids of those members who wait for the geocoder."""
    return [m.id for m in members if m.locating is not None and m.locating.state is LocatingState.PENDING]


async def request(rt: Runtime, store: Store, members: list[Member]) -> int:
    """Queue those of ``members`` who wait for the geocoder, and have the clock start a run at once.
    Returns how many were queued. Nothing is asked of the geocoder here."""
    ids = waiting(members)
    if not ids:
        return 0
    now = now_ts()
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.zadd(store.keys.locate(), dict.fromkeys(ids, now), nx=True)  # one postponed stays postponed
        jobs.schedule(rt, now, jobs.LOCATE, urgent=False, pipe=pipe)
        await pipe.execute()
    return len(ids)


def _place_digest(address: Address) -> str:
    return hashlib.sha256(place_key(address).encode()).hexdigest()[:32]


async def find_place(rt: Runtime, store: Store, address: Address) -> Place:
    """Where an alert's address is, as the geocoder found it; PENDING when it has not answered yet, and the
    address is then queued for the background job (the geocoder is never asked here)."""
    key = store.keys.place(_place_digest(address))
    raw = cast(dict[str, str], await store.redis.hgetall(key))
    if raw and raw.get("state") != LocatingState.PENDING:
        lat, lon = raw.get("lat"), raw.get("lon")
        state = LocatingState(raw["state"])
        return Place(state, float(lat) if lat else None, float(lon) if lon else None, raw.get("reason"))
    if rt.settings.geocoder_url is None:
        return Place(LocatingState.NO_GEOCODER, reason="no geocoder is configured (PLP_GEOCODER_URL): give the center")
    if not raw:
        now = now_ts()
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"state": LocatingState.PENDING.value, "address": address.model_dump_json()})
            pipe.expire(key, PLACE_TTL)
            pipe.zadd(store.keys.locate_places(), {_place_digest(address): now}, nx=True)
            jobs.schedule(rt, now, jobs.LOCATE, urgent=False, pipe=pipe)
            await pipe.execute()
    reason = raw.get("reason") if raw else None
    return Place(LocatingState.PENDING, reason=reason or "the geocoder is looking it up in the background")


async def run_scheduled(rt: Runtime) -> Run:
    """The job: schedule the next run first (a crash does not end the chain), then locate who is due."""
    jobs.schedule(rt, now_ts() + EVERY, jobs.LOCATE, urgent=False)
    redis = rt.async_redis()
    try:
        done = await run(rt, Store(redis, rt.keys))
    finally:
        await redis.aclose()
    due = await _next_due(rt)
    if due is not None and due < now_ts() + EVERY:  # the next batch, or a member postponed: when it is due
        jobs.schedule(rt, max(due, now_ts() + 1), jobs.LOCATE, urgent=False)
    return done


async def _next_due(rt: Runtime) -> float | None:
    """When the first member or address waiting for the geocoder is due (None: nothing waits)."""
    client = rt.sync_redis
    firsts = [client.zrange(key, 0, 0, withscores=True) for key in (rt.keys.locate(), rt.keys.locate_places())]
    scores = [float(found[0][1]) for found in firsts if found]
    return min(scores) if scores else None


async def run(rt: Runtime, store: Store) -> Run:
    """Ask the geocoder for the alerts' addresses that wait, then for up to ``PLP_GEOCODER_BATCH`` members whose
    turn has come, one at a time at the geocoder's rate, and write each answer. Stops at the first sign that the
    geocoder cannot answer now (rate limit, failure, refusal): the rest stays queued for later."""
    settings = rt.settings
    if settings.geocoder_url is None:
        return Run(left=await store.redis.zcard(store.keys.locate()))
    due = cast(
        list[str],
        await store.redis.zrange(
            store.keys.locate(), "-inf", now_ts(), byscore=True, offset=0, num=settings.geocoder_batch
        ),
    )
    limits, limit = ProviderLimits(store.redis, store.keys), Limit(LIMIT, settings.geocoder_rate)
    asked = located = 0
    geocoder = Geocoder(
        settings.geocoder_url,
        user_agent=settings.geocoder_user_agent,
        timeout=settings.geocoder_timeout,
        countries=settings.geocoder_countries,
    )
    async with geocoder:
        places, stopped = await _places(store, geocoder, limits, limit)
        for member_id in due if not stopped else ():
            member = await store.get_member(member_id)
            if member is None or member.address is None or member.location is not None:
                await store.redis.zrem(store.keys.locate(), member_id)
                continue
            await limits.wait_turn([limit], urgent=False)
            await limits.depart([limit])
            asked += 1
            try:
                answer = await geocoder.locate(member.address)
            except (GeocoderBusy, GeocoderDown, GeocoderRefused) as exc:
                await _count_call(store, exc)
                await _postpone(store, member, exc)
                break
            await _count_call(store, None)
            located += await _settle(store, member, member.address, answer)
    left = int(await store.redis.zcard(store.keys.locate()))
    done = Run(asked=asked, located=located, not_located=asked - located, left=left, places=places)
    log.info("locating.run", **done.__dict__)
    return done


async def _places(store: Store, geocoder: Geocoder, limits: ProviderLimits, limit: Limit) -> tuple[int, bool]:
    """Ask for the alerts' addresses that wait (the police wait for them); how many, and whether the geocoder
    could not answer (the run stops: the rest waits)."""
    queue, asked = store.keys.locate_places(), 0
    for digest in cast(list[str], await store.redis.zrange(queue, "-inf", now_ts(), byscore=True)):
        raw = await store.redis.hget(store.keys.place(digest), "address")
        if raw is None:  # expired meanwhile
            await store.redis.zrem(queue, digest)
            continue
        await limits.wait_turn([limit], urgent=True)
        await limits.depart([limit])
        asked += 1
        try:
            answer = await geocoder.locate(Address.model_validate_json(raw))
        except (GeocoderBusy, GeocoderDown, GeocoderRefused) as exc:
            await _count_call(store, exc)
            later = exc.retry_after if isinstance(exc, GeocoderBusy) else AFTER_FAILURE
            await store.redis.hset(store.keys.place(digest), "reason", f"{exc.reason}; asked again later")
            await store.redis.zadd(queue, {digest: now_ts() + later})
            log.warning("locating.place_postponed", error=type(exc).__name__, after=later)
            return asked, True
        await _count_call(store, None)
        fields: dict[str, str]
        if isinstance(answer, Found):
            fields = {
                "state": LocatingState.LOCATED.value,
                "lat": repr(answer.lat),
                "lon": repr(answer.lon),
                "reason": "",
            }
        else:
            state = LocatingState.AMBIGUOUS if isinstance(answer, Ambiguous) else LocatingState.NOT_FOUND
            fields = {"state": state.value, "reason": answer.reason}
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.hset(store.keys.place(digest), mapping=fields)  # type: ignore[arg-type]  # (redis-py: invariant keys)
            pipe.hdel(store.keys.place(digest), "address")
            pipe.zrem(queue, digest)
            await pipe.execute()
    return asked, False


async def _count_call(store: Store, failure: GeocoderError | None) -> None:
    """Count one call to the geocoder: an answer resets its failures in a row; its rate limit is no failure."""
    now, metrics = repr(now_ts()), store.keys.metrics()
    if failure is None:
        await store.redis.hset(metrics, mapping={f"pf|{PROVIDER_LABELS}": 0, f"pok|{PROVIDER_LABELS}": now})
    elif not isinstance(failure, GeocoderBusy):
        kind = "not_configured" if isinstance(failure, GeocoderRefused) else "transient"
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(metrics, f"pf|{PROVIDER_LABELS}", 1)
            pipe.hset(metrics, mapping={f"pfk|{PROVIDER_LABELS}": kind, f"pft|{PROVIDER_LABELS}": now})
            await pipe.execute()


async def _settle(store: Store, member: Member, address: Address, answer: Found | Any) -> int:
    """Write the answer on the member; 1 if they were located."""
    at = datetime.now(UTC)
    if isinstance(answer, Found):
        location = Location(lat=answer.lat, lon=answer.lon, source=LocationSource.GEOCODER, at=at)
        update = {"location": location, "locating": Locating(state=LocatingState.LOCATED, at=at)}
    else:
        state = LocatingState.AMBIGUOUS if isinstance(answer, Ambiguous) else LocatingState.NOT_FOUND
        update = {"locating": Locating(state=state, reason=answer.reason, at=at)}
    await store.settle_place(member.id, address, update)
    return int(isinstance(answer, Found))


async def _postpone(store: Store, member: Member, exc: GeocoderBusy | GeocoderDown | GeocoderRefused) -> None:
    """The geocoder cannot answer now: the member waits (their ``locating`` says why), and so do the others."""
    if isinstance(exc, GeocoderBusy):
        later = exc.retry_after
    else:
        later = AFTER_REFUSAL if isinstance(exc, GeocoderRefused) else AFTER_FAILURE
    reason = f"{exc.reason}; asked again later"
    level = log.error if isinstance(exc, GeocoderRefused) else log.warning
    level("locating.postponed", member_id=member.id, error=type(exc).__name__, after=later)
    update = {"locating": Locating(state=LocatingState.PENDING, reason=reason, at=datetime.now(UTC))}
    if member.address is not None:
        await store.settle_place(member.id, member.address, update)
    # The others due wait as long: the provider cannot answer them either
    others = {m: now_ts() + later for m in await _due(store)}
    await store.redis.zadd(store.keys.locate(), {**others, member.id: now_ts() + later})


async def _due(store: Store) -> list[str]:
    return cast(list[str], await store.redis.zrange(store.keys.locate(), "-inf", now_ts(), byscore=True))
