"""6. National scale: what one Redis carries, and how worker processes scale (issue 15, item 4).

The country (``Country``): ``plps`` PLPs in ``zones`` police zones, ``members`` members with the
channels a country's members give (of every twenty: 8 SMS and e-mail, 6 e-mail alone, 3 SMS
alone, 2 Telegram and e-mail, 1 Telegram alone), SMS over five senders. The first zone is a large
one whose PLPs hold ``zone_members`` members: the zone-wide urgent alert's audience. PLPs are
created through the API, members written by the importer's own bulk path
(``Store.add_new_members``), Telegram chats linked by the write a ``/start`` link makes
(``Store.save_member``).

The day, compressed into ``day_seconds``: ``urgent_alerts`` urgent alerts, each to one PLP and
posted by its zone's police, evenly spread; ``advice`` non-urgent advice, each to every PLP of
one zone (first channel that works: e-mail, Telegram, SMS); the zone-wide urgent alert to the
large zone a third of the way in. Urgent alerts go out on every channel a member accepts. The
Twilio simulator posts its signed status callbacks (sent, delivered) for every SMS, and members
answer a fifth of the messages through the real paths, a few seconds after they arrive: the
e-mail's receipt link (the page, then its button), Telegram's "received" button, an SMS "OK";
one answer in ten is a written reply instead (the Telegram one is answered by the bot, through
a worker).

The same day runs with each number of worker processes in ``Country.workers``. A worker process
is one ``plp worker`` process: RQ's in-process worker, which runs its send jobs' batches on one
event loop (``workers.loop``). One process: ``plp worker general`` alone (it takes urgent work
first); two: ``plp worker urgent`` and ``plp worker general`` (the Procfile's); more: one urgent
and the rest general. Beside them, always one ``plp web`` and one ``plp clock``.

Providers' limits are out of the way: the service's limits at a million a second (the limiter
still runs its script for each send) and the simulators enforcing none, so the figures measure
the service and Redis, not the providers' rates.

Measured over the day (from the first POST until every alert has completed, every callback and
answer was posted): sends per second; each urgent alert's first provider request after its POST
(p50 and p99, outside and during the zone-wide alert's sending; baseline: the same on the idle
service first); Redis CPU (``INFO cpu``, the main process) and what share of one core it is;
Redis memory (``used_memory_dataset``: per member after the import, per delivery after the day); Redis
commands per delivery (``INFO stats`` and ``commandstats`` deltas over the deliveries); the load
average meanwhile (the machine is shared).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis
from twilio.request_validator import RequestValidator

from dispatcher.core.models import ActorIn, ChannelName, Language, Member, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, new_id
from tests.bench import vendors
from tests.bench.harness import SMS_SENDERS, Service, Stage
from tests.bench.scenarios import Country, Figure, Size, cpu_seconds, figure, percentile
from tests.support import FINISHED

T = TypeVar("T")

SCENARIO = "6. national"
SENDERS = (*SMS_SENDERS, "+3225550104", "+3225550105")
SMS, EMAIL, TELEGRAM = ChannelName.SMS, ChannelName.EMAIL, ChannelName.TELEGRAM
#: Twenty members in a row: the channels each gives and accepts (SMS 55 %, e-mail 80 %, Telegram 15 %).
PROFILES: tuple[tuple[ChannelName, ...], ...] = (
    *[(SMS, EMAIL)] * 8,
    *[(EMAIL,)] * 6,
    *[(SMS,)] * 3,
    *[(TELEGRAM, EMAIL)] * 2,
    (TELEGRAM,),
)
#: Twenty members in a row: the language each reads (Belgium: Dutch, French, a little German).
TONGUES = (*[Language.NL] * 11, *[Language.FR] * 8, Language.DE)
CHAT_BASE = 600_000_000  # Telegram chat ids: CHAT_BASE + the member's number
URGENT_PLAN = {"channels": ["sms", "telegram", "email"], "mode": "all", "ttl_seconds": 3600}
ADVICE_PLAN = {"channels": ["email", "telegram", "sms"], "mode": "first_that_works", "ttl_seconds": 3600}
#: A message's mark, in its text: I (idle round), U (urgent to one PLP), A (advice), Z (zone-wide).
MARK = r"\[([IUAZ]\d{4})\]"
EVERY = 5  # members answer every fifth message
REPLY_EVERY = 10  # of those answers, every tenth is a written reply
IN_FLIGHT = 16  # requests the scenario's clients have in flight at once (set-up, answers)


def lanes(workers: int) -> tuple[int, int]:
    """The urgent and general ``plp worker`` processes of a run with ``workers`` worker processes."""
    return (0, 1) if workers == 1 else (1, workers - 1)


def lanes_text(workers: int) -> str:
    urgent, general = lanes(workers)
    return " + ".join(part for part in ("urgent" * urgent, f"{general} general".removeprefix("1 ")) if part)


# -- the country --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Population:
    """Who is where: each PLP's zone and its members (member ``i`` of PLP ``p`` is numbered
    ``first[p] + i``), drawn once from a fixed seed."""

    zones: tuple[str, ...]
    plp_zone: tuple[int, ...]
    plp_members: tuple[int, ...]

    @classmethod
    def of(cls, country: Country) -> Population:
        rng = random.Random(15)
        large = max(1, round(country.plps * country.zone_members / country.members))
        others = country.plps - large
        zone_plps = [large, *_split(others, country.zones - 1, rng, least=1)]
        members = [
            *_split(country.zone_members, large, rng, least=5),
            *_split(country.members - country.zone_members, others, rng, least=5),
        ]
        zones = tuple(str(5300 + z) for z in range(country.zones))
        plp_zone = tuple(z for z, count in enumerate(zone_plps) for _ in range(count))
        return cls(zones=zones, plp_zone=plp_zone, plp_members=tuple(members))

    def first(self, plp: int) -> int:
        return sum(self.plp_members[:plp])

    def plps_of(self, zone: int) -> tuple[int, ...]:
        return tuple(p for p, z in enumerate(self.plp_zone) if z == zone)

    def deliveries(self, plps: Iterable[int], *, urgent: bool) -> int:
        """The deliveries an alert to ``plps`` makes: every channel of each member if urgent, else one."""
        total = 0
        for plp in plps:
            start = self.first(plp)
            numbers = range(start, start + self.plp_members[plp])
            total += sum(len(PROFILES[i % 20]) for i in numbers) if urgent else len(numbers)
        return total


def _split(total: int, parts: int, rng: random.Random, *, least: int) -> list[int]:
    """``parts`` numbers of at least ``least``, uneven, adding up to ``total``."""
    weights = [rng.uniform(0.4, 1.6) for _ in range(parts)]
    spare, scale = total - least * parts, sum(weights)
    if spare < 0:
        raise ValueError(f"{total} cannot be split into {parts} parts of at least {least}")
    sizes = [least + math.floor(spare * w / scale) for w in weights]
    for i in range(total - sum(sizes)):
        sizes[i % parts] += 1
    return sizes


def _member(number: int, plp_id: str, now: datetime) -> Member:
    channels = PROFILES[number % 20]
    return Member(
        id=new_id(),
        name=f"Member {number}",
        phone=f"+3247{number:07d}" if SMS in channels else None,
        email=f"m{number}@country.bench.example" if EMAIL in channels else None,
        language=TONGUES[(number // 20) % 20],
        channels=list(channels),
        consent_at=now,
        plp_ids=[plp_id],
        created_at=now,
        updated_at=now,
    )


async def _bounded(limit: int, work: Iterable[Awaitable[T]]) -> list[T]:
    """Await ``work`` with at most ``limit`` at once; the results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: Awaitable[T]) -> T:
        async with gate:
            return await item

    return await asyncio.gather(*(one(item) for item in work))


async def populate(stage: Stage, runtime: Runtime, population: Population) -> list[str]:
    """The zones' police officers, the PLPs (through the API) and their members; returns the PLPs' ids."""
    store = Store(runtime.async_redis(), runtime.keys)
    try:
        for zone in population.zones:
            _, token = await create_actor(store, ActorIn(name=f"Police {zone}", role=Role.POLICE, police_zone=zone))
            stage.tokens[f"police-{zone}"] = token
        created = await _bounded(
            IN_FLIGHT,
            (
                stage.api("POST", "/v1/plps", _plp_body(population, plp), who="admin", expect=201)
                for plp in range(len(population.plp_zone))
            ),
        )
        plp_ids = [str(plp["id"]) for plp in created]
        await _import(store, population, plp_ids)
    finally:
        await store.redis.aclose()
    return plp_ids


def _plp_body(population: Population, plp: int) -> dict[str, Any]:
    zone = population.zones[population.plp_zone[plp]]
    charter = {"urgent": URGENT_PLAN, "non_urgent": ADVICE_PLAN, "relay": "auto"}
    return {"name": f"PLP {zone}-{plp}", "commune": f"Commune {zone}", "police_zone": zone, "charter": charter}


async def _import(store: Store, population: Population, plp_ids: list[str]) -> None:
    """Members in bulk (the importer's write), then each Telegram member's chat linked (a ``/start``'s write)."""
    now = datetime.now(UTC)
    members = [
        _member(population.first(plp) + i, plp_id, now)
        for plp, plp_id in enumerate(plp_ids)
        for i in range(population.plp_members[plp])
    ]
    for start in range(0, len(members), 5000):
        await store.add_new_members(members[start : start + 5000])
    chats = [(n, m) for n, m in enumerate(members) if TELEGRAM in m.channels]
    await _bounded(
        IN_FLIGHT,
        (store.save_member(m.model_copy(update={"telegram_chat_id": CHAT_BASE + n}), previous=m) for n, m in chats),
    )


# -- the day ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """One alert of the day: posted ``at`` seconds in, by ``zone``'s police, to ``plps``."""

    at: float
    mark: str
    zone: int
    plps: tuple[int, ...]
    urgent: bool


def day_plan(country: Country, population: Population) -> list[Post]:
    rng = random.Random(16)
    day, posts = country.day_seconds, []
    for n in range(country.urgent_alerts):
        plp = rng.randrange(len(population.plp_zone))
        at = (n + 0.5) * day / country.urgent_alerts
        posts.append(Post(at=at, mark=f"U{n:04d}", zone=population.plp_zone[plp], plps=(plp,), urgent=True))
    for n in range(country.advice):
        zone = 1 + n % (country.zones - 1)
        at = n * day / country.advice
        posts.append(Post(at=at, mark=f"A{n:04d}", zone=zone, plps=population.plps_of(zone), urgent=False))
    posts.append(Post(at=day / 3, mark="Z0000", zone=0, plps=population.plps_of(0), urgent=True))
    return sorted(posts, key=lambda post: post.at)


def _texts(post: Post) -> dict[str, str]:
    mark = f"[{post.mark}]"
    if post.urgent:
        return {
            "fr": f"{mark} Cambriolage en cours rue du Parc, voiture grise 1-ABC-123. Appelez le 101.",
            "nl": f"{mark} Inbraak bezig in de Parkstraat, grijze wagen 1-ABC-123. Bel 101.",
            "de": f"{mark} Einbruch in der Parkstraße, grauer Wagen 1-ABC-123. Rufen Sie 101 an.",
        }
    return {
        "fr": f"{mark} Conseil de prévention : fermez portes et fenêtres, même pour une courte absence.",
        "nl": f"{mark} Preventietip: sluit deuren en ramen, ook als u maar even weg bent.",
        "de": f"{mark} Präventionstipp: Schließen Sie Türen und Fenster, auch bei kurzer Abwesenheit.",
    }


@dataclass
class Posted:
    post: Post
    alert_id: str
    at: float  # Unix time the POST left
    answered: float  # seconds until its 202


async def post_alert(stage: Stage, population: Population, plp_ids: list[str], post: Post) -> Posted:
    body = {
        "urgency": "urgent" if post.urgent else "non_urgent",
        "category": "burglary" if post.urgent else "prevention_advice",
        "plp_ids": [plp_ids[p] for p in post.plps],
        "texts": _texts(post),
    }
    at = time.time()
    created = await stage.api("POST", "/v1/alerts", body, who=f"police-{population.zones[post.zone]}", expect=202)
    return Posted(post=post, alert_id=str(created["id"]), at=at, answered=time.time() - at)


class Finishing:
    """Alerts' final statuses, from the events Redis publishes to the service's followers (one subscription)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.final: dict[str, str] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Finishing:
        redis_client = self.runtime.async_redis()
        self._pubsub = redis_client.pubsub()
        self._client = redis_client
        await self._pubsub.subscribe(self.runtime.keys.events())
        self._task = asyncio.create_task(self._listen())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._pubsub.aclose()
        await self._client.aclose()

    async def _listen(self) -> None:
        async for message in self._pubsub.listen():
            if message["type"] == "message":
                event = json.loads(message["data"])
                if event.get("status") in FINISHED:
                    self.final[event["alert_id"]] = event["status"]
                    self._changed.set()

    async def wait(self, alert_ids: list[str], *, timeout: float) -> None:
        """Return once every alert has finished; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not all(a in self.final for a in alert_ids):
                self._changed.clear()
                await self._changed.wait()
        unfinished = {a: s for a, s in self.final.items() if a in alert_ids and s != "completed"}
        if unfinished:
            raise RuntimeError(f"alerts ended otherwise than completed: {unfinished}")


class Members:
    """Members answering what they received, through the webhooks and links the service gives them."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.positions = {"sms": 0, "telegram": 0, "email": 0}
        self.posted: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.validator = RequestValidator(vendors.AUTH_TOKEN)
        self.updates = 0

    async def answer(self, stop: asyncio.Event) -> None:
        """Answer what arrives, every second, until ``stop`` is set; then answer what is left and return."""
        while True:
            stopping = stop.is_set()
            found = await self.stage.vendor("GET", "/handles", every=EVERY, **self.positions)
            self.positions = found.pop("next")
            await _bounded(IN_FLIGHT, (self._one(channel, item) for channel, items in found.items() for item in items))
            if stopping:
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)  # the members' pace: a look every second
            except TimeoutError:
                pass

    async def _one(self, channel: str, item: Any) -> None:
        self.updates += 1
        written = self.updates % REPLY_EVERY == 0
        kind = f"{channel} {'reply' if written else 'ack'}"
        if channel == "sms":
            ok = await self._sms(item[0], item[1], "Vu une voiture grise rue du Parc" if written else "OK")
        elif channel == "telegram":
            ok = await self._telegram(int(item[0]), item[1], written=written)
        else:
            ok = await self._email(item, written=written)
        self.posted[kind] += 1
        if not ok:
            self.refused[kind] += 1

    async def _sms(self, member: str, sender: str, body: str) -> bool:
        url = f"{self.stage.base}/v1/webhooks/twilio/sms"
        form = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": vendors.ACCOUNT,
            "From": member,
            "To": sender,
            "Body": body,
            "NumMedia": "0",
        }
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, form)}
        return await self._post(url, data=form, headers=headers)

    async def _telegram(self, chat: int, data: str, *, written: bool) -> bool:
        person = {"id": chat, "is_bot": False, "first_name": "Member", "language_code": "nl"}
        chat_of = {"id": chat, "type": "private"}
        update: dict[str, Any] = {"update_id": self.updates}
        if written:
            text = "Vu une voiture grise rue du Parc"
            update["message"] = {"message_id": self.updates, "from": person, "chat": chat_of, "date": 0, "text": text}
        else:
            message = {"message_id": 1, "chat": chat_of, "date": 0}
            update["callback_query"] = {"id": str(self.updates), "from": person, "message": message, "data": data}
        headers = {"X-Telegram-Bot-Api-Secret-Token": "bench-webhook-secret"}
        return await self._post(f"{self.stage.base}/v1/webhooks/telegram", json=update, headers=headers)

    async def _email(self, link: str | None, *, written: bool) -> bool:
        if link is None:
            return False
        assert self.stage.http is not None
        async with self.stage.http.get(link) as page:
            await page.read()
            if page.status != 200:
                return False
        form = {"action": "feedback", "text": "Vu une voiture grise rue du Parc"} if written else {"action": "ack"}
        return await self._post(link, data=form)

    async def _post(self, url: str, **kwargs: Any) -> bool:
        assert self.stage.http is not None
        async with self.stage.http.post(url, **kwargs) as response:
            await response.read()
            return 200 <= response.status < 300


# -- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisReading:
    at: float  # monotonic
    cpu: float  # seconds, used_cpu_sys + used_cpu_user of the server's main process (its threads included)
    cpu_children: float  # seconds, of its children (an append-only file rewrite)
    commands: int
    calls: dict[str, int]
    memory: int

    @classmethod
    def now(cls, url: str) -> RedisReading:
        client = redis.Redis.from_url(url)
        try:
            cpu, stats = client.info("cpu"), client.info("stats")
            commands, memory = client.info("commandstats"), client.info("memory")
        finally:
            client.close()
        return cls(
            at=time.monotonic(),
            cpu=float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
            cpu_children=float(cpu["used_cpu_sys_children"]) + float(cpu["used_cpu_user_children"]),
            commands=int(stats["total_commands_processed"]),
            calls={name.removeprefix("cmdstat_"): int(c["calls"]) for name, c in commands.items()},
            memory=int(memory["used_memory_dataset"]),
        )


async def _load_average(samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(os.getloadavg()[0])
        try:
            await asyncio.wait_for(stop.wait(), timeout=5.0)  # a sample every five seconds
        except TimeoutError:
            pass


@dataclass
class Day:
    """What one run of the day measured."""

    workers: int
    deliveries: int
    sends: int  # provider requests of the alerts' messages
    seconds: float  # first POST to the last alert completed
    idle_firsts: list[float]  # urgent alerts to one PLP on the idle service: POST to first provider request
    outside_firsts: list[float]  # the same during the day, posted outside the zone-wide alert's sending
    during_firsts: list[float]  # ...posted while it was sending
    zone_deliveries: int
    zone_first: float  # the zone-wide alert: POST to first provider request
    zone_seconds: float  # the zone-wide alert: POST to completed
    answered_p99: float  # seconds from POST to 202, p99 over the day's alerts
    window: float  # seconds measured: from before the first POST until every answer was in
    redis_cpu: float  # seconds of CPU over the window, the server's main process
    redis_cpu_children: float  # the same, of its children (append-only file rewrites)
    commands: int
    calls: dict[str, int]
    members: int
    memory_empty: int  # used_memory_dataset, bytes: before the import
    memory_imported: int  # ...after it
    memory_before: int  # ...when the day starts (after the idle round)
    memory_end: int  # ...after the day
    process_cpu: dict[str, float]  # seconds of CPU over the window, per service process
    answers: dict[str, int]  # members' answers posted, by channel and kind
    acknowledged: int  # deliveries acknowledged, as the alerts count them
    callbacks: int  # Twilio status callbacks posted
    duplicates: int  # provider requests beyond the deliveries
    load: list[float]  # load average (1 min), every five seconds

    @property
    def lanes(self) -> str:
        return lanes_text(self.workers)

    @property
    def rate(self) -> float:
        return self.sends / self.seconds

    @property
    def redis_share(self) -> float:
        """Redis's CPU over the window, as a share of one core."""
        return self.redis_cpu / self.window

    @property
    def redis_ceiling(self) -> float:
        """The sends a second at which Redis's main thread would use a whole core, if its CPU grows with them."""
        return self.rate / self.redis_share

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "lanes": self.lanes,
            "sends_per_second": self.rate,
            "redis_core_share": self.redis_share,
            "redis_ceiling_sends_per_second": self.redis_ceiling,
        }


def _ms(values: list[float], share: float) -> float:
    return 1000 * percentile(values, share) if values else math.nan


async def run_day(stage: Stage, country: Country, population: Population, workers: int) -> Day:
    """The whole day on a fresh Redis with ``workers`` worker processes."""
    urgent, general = lanes(workers)
    settings = stage.settings(twilio_sms_from=SENDERS)
    runtime = Runtime.from_settings(settings)
    await stage.vendor("POST", "/config", {"callbacks": True})
    try:
        async with stage.service(settings, urgent=urgent, general=general) as running, Finishing(runtime) as finishing:
            empty = RedisReading.now(stage.redis.url).memory
            plp_ids = await populate(stage, runtime, population)
            imported = RedisReading.now(stage.redis.url).memory
            print(f"   {workers} worker(s): {country.members:,} members imported", file=sys.stderr, flush=True)
            idle = await _idle_round(stage, country, population, plp_ids, finishing)
            day = _Run(stage, population, plp_ids, finishing, running)
            measured = await day.measure(day_plan(country, population), workers)
    finally:
        await stage.vendor("POST", "/config", {"callbacks": False})
    return Day(
        workers=workers,
        idle_firsts=idle,
        members=country.members,
        memory_empty=empty,
        memory_imported=imported,
        **measured,
    )


async def _idle_round(
    stage: Stage, country: Country, population: Population, plp_ids: list[str], finishing: Finishing
) -> list[float]:
    """Urgent alerts to one PLP of a small zone, one a second, nothing else running: each one's first send."""
    small = [p for p, z in enumerate(population.plp_zone) if z != 0]
    posts = [
        Post(at=n, mark=f"I{n:04d}", zone=population.plp_zone[p], plps=(p,), urgent=True)
        for n, p in enumerate(random.Random(17).sample(small, min(len(small), country.idle_alerts)))
    ]
    posted = await _post_all(stage, population, plp_ids, posts)
    await finishing.wait([p.alert_id for p in posted], timeout=120)
    await stage.vendor("POST", "/callbacks_done")
    firsts = await stage.vendor("GET", "/firsts", pattern=MARK)
    return [firsts[p.post.mark] - p.at for p in posted]


async def _post_all(stage: Stage, population: Population, plp_ids: list[str], posts: list[Post]) -> list[Posted]:
    """Post each alert at its time (whether or not the earlier ones are answered)."""
    started, tasks = time.monotonic(), []
    for post in posts:
        pause = started + post.at - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)  # the day's pace
        tasks.append(asyncio.create_task(post_alert(stage, population, plp_ids, post)))
    return list(await asyncio.gather(*tasks))


@dataclass
class _Run:
    """The day on a populated service: posted, answered, waited for, measured."""

    stage: Stage
    population: Population
    plp_ids: list[str]
    finishing: Finishing
    running: Service

    async def measure(self, plan: list[Post], workers: int) -> dict[str, Any]:
        stage = self.stage
        members, stop, load = Members(stage), asyncio.Event(), list[float]()
        before, stats_before = RedisReading.now(stage.redis.url), await stage.vendor("GET", "/stats")
        cpu_before = {name: cpu_seconds(p.pid) for name, p in self.running.processes.items()}
        answering = asyncio.create_task(members.answer(stop))
        sampling = asyncio.create_task(_load_average(load, stop))
        print(f"   {workers} worker(s): the day starts ({len(plan)} alerts)", file=sys.stderr, flush=True)
        posted = await _post_all(stage, self.population, self.plp_ids, plan)
        expected = sum(self.population.deliveries(p.plps, urgent=p.urgent) for p in plan)
        await self.finishing.wait([p.alert_id for p in posted], timeout=120 + expected / 20)
        stop.set()
        await answering
        await sampling
        await stage.vendor("POST", "/callbacks_done")
        await _bot_answers(stage, stats_before, members.posted["telegram reply"])
        after, stats_after = RedisReading.now(stage.redis.url), await stage.vendor("GET", "/stats")
        cpu = {name: cpu_seconds(p.pid) - cpu_before[name] for name, p in self.running.processes.items()}
        if sum(members.refused.values()):
            raise RuntimeError(f"national: answers refused: {dict(members.refused)} of {dict(members.posted)}")
        views = await _bounded(
            8, (stage.api("GET", f"/v1/alerts/{p.alert_id}", who="admin", expect=200) for p in posted)
        )
        deliveries = _check(posted, views, self.population)
        firsts = await stage.vendor("GET", "/firsts", pattern=MARK)
        sends = _alert_sends(stats_before, stats_after)
        sms = stats_after["sms"]["requests"] - stats_before["sms"]["requests"]
        return _timings(posted, views, firsts) | {
            "deliveries": deliveries,
            "sends": sends,
            "duplicates": max(0, sends - deliveries),
            "window": after.at - before.at,
            "redis_cpu": after.cpu - before.cpu,
            "redis_cpu_children": after.cpu_children - before.cpu_children,
            "commands": after.commands - before.commands,
            "calls": {name: n - before.calls.get(name, 0) for name, n in after.calls.items()},
            "memory_before": before.memory,
            "memory_end": after.memory,
            "process_cpu": cpu,
            "answers": dict(members.posted),
            "acknowledged": sum(int(v["counts"].get("acknowledged", 0)) for v in views),
            "callbacks": 2 * sms,  # the simulator's "sent" and "delivered" for each SMS
            "load": load,
        }


def _alert_sends(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Provider requests of the alerts' messages between two readings (the bot's answers to replies left out)."""

    def sends(stats: dict[str, Any]) -> int:
        return int(stats["sms"]["requests"] + stats["email"]["requests"] + stats["telegram_with_buttons"])

    return sends(after) - sends(before)


def _timings(posted: list[Posted], views: list[dict[str, Any]], firsts: dict[str, float]) -> dict[str, Any]:
    """The day's latencies and spans, from the POSTs' times, the alerts' completion and the first arrivals."""
    completed = {
        p.post.mark: datetime.fromisoformat(v["status_times"]["completed"]).timestamp()
        for p, v in zip(posted, views, strict=True)
    }
    zone = next(p for p in posted if p.post.mark.startswith("Z"))
    zone_view = next(v for p, v in zip(posted, views, strict=True) if p is zone)
    urgent = [p for p in posted if p.post.mark.startswith("U")]
    during = [p for p in urgent if zone.at <= p.at <= completed[zone.post.mark]]
    outside = [p for p in urgent if p not in during]
    return {
        "seconds": max(completed.values()) - min(p.at for p in posted),
        "outside_firsts": [firsts[p.post.mark] - p.at for p in outside],
        "during_firsts": [firsts[p.post.mark] - p.at for p in during],
        "zone_deliveries": int(zone_view["counts"]["total"]),
        "zone_first": firsts[zone.post.mark] - zone.at,
        "zone_seconds": completed[zone.post.mark] - zone.at,
        "answered_p99": percentile([p.answered for p in posted], 0.99),
    }


async def _bot_answers(stage: Stage, before: dict[str, Any], replies: int, *, timeout: float = 60) -> None:
    """Wait until the bot has answered the members' written Telegram replies (a worker sends each answer)."""

    def answers(stats: dict[str, Any]) -> int:
        return int(stats["telegram"]["requests"] - stats["telegram_with_buttons"])

    deadline = time.monotonic() + timeout
    while answers(await stage.vendor("GET", "/stats")) - answers(before) < replies:
        if time.monotonic() > deadline:
            raise RuntimeError(f"national: the bot did not answer {replies} written Telegram replies in {timeout} s")
        await asyncio.sleep(0.2)  # the worker's sends are in another process: poll their effect, bounded


def _check(posted: list[Posted], views: list[dict[str, Any]], population: Population) -> int:
    """Each alert made the deliveries its audience calls for, and handed every one over; their count."""
    total = 0
    for p, view in zip(posted, views, strict=True):
        counts, wanted = view["counts"], population.deliveries(p.post.plps, urgent=p.post.urgent)
        unsettled = {s: n for s, n in counts["by_status"].items() if s not in ("sent", "delivered") and n}
        if counts["total"] != wanted or unsettled:
            raise RuntimeError(f"national: alert {p.post.mark} made {counts} for {wanted} deliveries")
        total += wanted
    return total


# -- the scenario -------------------------------------------------------------------------------

#: The target of urgent latency, as in scenario 2: an urgent alert's first send within 250 ms of its POST.
URGENT_P99_MS = 250
#: Redis's headroom wanted: one core should serve at least this many times the rate the workers reached.
HEADROOM = 2.0
MEMBER_BUDGET = 2048  # bytes of Redis per member: BE-Alert's 1.2 million addresses in 2.4 GB
DELIVERY_BUDGET = 1024  # bytes of Redis per delivery, as in scenario 5


async def national(stage: Stage, size: Size) -> list[Figure]:
    """The day with each number of worker processes, then the naive design's Redis commands per delivery."""
    country = size.national
    population = Population.of(country)
    days = []
    for workers in country.workers:
        days.append(await run_day(stage, country, population, workers))
        day = days[-1]
        line = f"   {workers} worker(s): {day.sends:,} sends in {day.seconds:.1f} s, {day.rate:,.0f}/s; "
        line += f"Redis {100 * day.redis_share:.0f} % of a core; load {max(day.load, default=0):.1f}"
        print(line, file=sys.stderr, flush=True)
    naive = await asyncio.to_thread(_naive_commands, stage, size.naive_jobs)
    return _figures(days, naive)


def _naive_commands(stage: Stage, jobs: int) -> float:
    """Redis commands per delivery of the naive design: one RQ job per delivery on RQ's forking workers."""
    from tests.bench import baselines

    before = RedisReading.now(stage.redis.url).commands
    baselines.naive(stage.redis.url, stage.addresses, jobs, workers=2, folder=str(stage.folder))
    return (RedisReading.now(stage.redis.url).commands - before) / jobs


def _figures(days: list[Day], naive: float) -> list[Figure]:
    one = days[0]
    figures = []
    for day in days:
        who = f"{_processes(day.workers)} ({day.lanes})"
        idle = _ms(day.idle_firsts, 0.99)
        rounds = (("outside", day.outside_firsts), ("during", day.during_firsts))
        for when, firsts in rounds:
            if firsts:  # a tiny day may post none while the zone-wide alert sends
                figures.append(
                    figure(
                        SCENARIO,
                        f"{who}: urgent first send p99, {when} the zone-wide alert's sending",
                        _ms(firsts, 0.99),
                        "ms",
                        "same, idle service (p99)",
                        idle,
                        value_at_most=URGENT_P99_MS,
                        median_ms=_ms(firsts, 0.5),
                        alerts=len(firsts),
                        day=day.as_dict() if when == "outside" else None,
                    )
                )
        if day.workers > one.workers:
            scaling = day.rate / one.rate
            figures.append(
                figure(
                    SCENARIO,
                    f"{who}: sends/s, first POST to last alert completed",
                    day.rate,
                    "sends/s",
                    f"{one.workers} worker process, same day",
                    one.rate,
                    at_least=1.0,
                    per_added_process=(scaling - 1) / (day.workers - one.workers),
                )
            )
    best = max(days, key=lambda d: d.rate)
    figures += [
        figure(
            SCENARIO,
            f"Redis: sends/s at which one core saturates (extrapolated, {best.workers} workers)",
            best.redis_ceiling,
            "sends/s",
            "sends/s the workers reached",
            best.rate,
            at_least=HEADROOM,
            redis_core_share=best.redis_share,
        ),
        figure(
            SCENARIO,
            f"Redis memory per member, {best.members:,} members imported",
            (best.memory_imported - best.memory_empty) / best.members,
            "B",
            "budget: 2 KB per member",
            MEMBER_BUDGET,
            at_most=1.0,
        ),
        figure(
            SCENARIO,
            f"Redis memory per delivery, after the day ({best.deliveries:,})",
            (best.memory_end - best.memory_before) / best.deliveries,
            "B",
            "budget: 1 KB per delivery",
            DELIVERY_BUDGET,
            at_most=1.0,
        ),
        figure(
            SCENARIO,
            "Redis commands per delivery (callbacks, answers and the scripts' own included)",
            best.commands / best.deliveries,
            "commands",
            "naive: RQ's own commands for one job per delivery",
            naive,
            at_most=1.0,
            top=_top_calls(best.calls, best.deliveries),
        ),
    ]
    return figures


def _processes(workers: int) -> str:
    return f"{workers} worker process{'es' if workers > 1 else ''}"


def _top_calls(calls: dict[str, int], deliveries: int, count: int = 10) -> dict[str, float]:
    """The commands Redis ran most over the day (those its scripts ran included), per delivery."""
    ranked = sorted(calls.items(), key=lambda item: -item[1])[:count]
    return {name: round(n / deliveries, 2) for name, n in ranked}


# -- the table ----------------------------------------------------------------------------------


def table(figures: list[Figure]) -> str | None:
    """The national scenario's own table (a column per number of worker processes), or None if it did not run."""
    days = [f.detail["day"] for f in figures if f.scenario == SCENARIO and f.detail and f.detail.get("day")]
    if not days:
        return None
    one = days[0]
    rows: list[tuple[str, ...]] = [("measure", *(_processes(d["workers"]) for d in days))]

    def row(name: str, value: Any) -> None:
        rows.append((name, *(value(d) for d in days)))

    def pair(values: list[float]) -> str:
        return f"{_ms(values, 0.5):,.0f} / {_ms(values, 0.99):,.0f}" if values else "-"

    row("processes: plp worker ...", lambda d: d["lanes"])
    row("deliveries (provider requests)", lambda d: f"{d['deliveries']:,} ({d['sends']:,})")
    row("sends/s, first POST to last alert completed", lambda d: f"{d['sends_per_second']:,.0f}")
    row("  × the first column", lambda d: f"{d['sends_per_second'] / one['sends_per_second']:.2f}")
    row(
        "  gain per added process",
        lambda d: (
            "-"
            if d["workers"] == one["workers"]
            else f"{(d['sends_per_second'] / one['sends_per_second'] - 1) / (d['workers'] - one['workers']):+.2f}"
        ),
    )
    row("urgent first send p50 / p99, idle (ms)", lambda d: pair(d["idle_firsts"]))
    row("  same, the day, outside the zone-wide (ms)", lambda d: pair(d["outside_firsts"]))
    row("  same, during the zone-wide alert (ms)", lambda d: pair(d["during_firsts"]))
    row("zone-wide alert: deliveries", lambda d: f"{d['zone_deliveries']:,}")
    row("  first send; POST to completed", lambda d: f"{1000 * d['zone_first']:,.0f} ms; {d['zone_seconds']:,.1f} s")
    row("POST to 202, p99 (ms)", lambda d: f"{1000 * d['answered_p99']:,.0f}")
    row("Redis CPU, share of one core", lambda d: f"{100 * d['redis_core_share']:.1f} %")
    row("  ms of Redis CPU per 1,000 sends", lambda d: f"{1e6 * d['redis_cpu'] / d['sends']:,.0f}")
    row("  one core saturates near (sends/s)", lambda d: f"{d['redis_ceiling_sends_per_second']:,.0f}")
    row(
        "Redis data (used_memory_dataset): imported; end (MB)",
        lambda d: f"{d['memory_imported'] / 1e6:,.0f}; {d['memory_end'] / 1e6:,.0f}",
    )
    row("  per member; per delivery (B)", lambda d: _memory(d))
    row("Redis commands per delivery (scripts' own in)", lambda d: f"{d['commands'] / d['deliveries']:.1f}")
    row("  scripts (EVALSHA) per delivery", lambda d: f"{d['calls'].get('evalsha', 0) / d['deliveries']:.1f}")
    row("CPU s: web; workers; clock", lambda d: _cpu(d))
    row("  workers' CPU per send (ms)", lambda d: f"{1000 * _workers_cpu(d) / d['sends']:.1f}")
    row("  web's CPU per callback or answer (ms)", lambda d: f"{1000 * d['process_cpu']['web'] / _web_requests(d):.1f}")
    row("answers posted; acknowledged", lambda d: f"{sum(d['answers'].values()):,}; {d['acknowledged']:,}")
    row("Twilio status callbacks", lambda d: f"{d['callbacks']:,}")
    row("load average (1 min): mean; max", lambda d: _load(d["load"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    for d in days:
        top = ", ".join(f"{name} {n:.1f}" for name, n in _top_calls(d["calls"], d["deliveries"]).items())
        lines.append(f"Redis commands per delivery, {_processes(d['workers'])}: {top}")
    return "\n".join(lines)


def _memory(day: dict[str, Any]) -> str:
    member = (day["memory_imported"] - day["memory_empty"]) / day["members"]
    delivery = (day["memory_end"] - day["memory_before"]) / day["deliveries"]
    return f"{member:,.0f}; {delivery:,.0f}"


def _workers_cpu(day: dict[str, Any]) -> float:
    return sum(v for k, v in day["process_cpu"].items() if k.startswith(("urgent", "general")))


def _web_requests(day: dict[str, Any]) -> int:
    """Requests the members and Twilio made to the web over the day (an e-mail answer is a page and its form)."""
    answers = day["answers"]
    emails = sum(n for kind, n in answers.items() if kind.startswith("email"))
    return int(day["callbacks"] + sum(answers.values()) + emails)


def _cpu(day: dict[str, Any]) -> str:
    cpu = day["process_cpu"]
    return f"{cpu.get('web', 0):,.0f}; {_workers_cpu(day):,.0f}; {cpu.get('clock', 0):,.0f}"


def _load(samples: list[float]) -> str:
    return f"{sum(samples) / len(samples):.1f}; {max(samples):.1f}" if samples else "-"
