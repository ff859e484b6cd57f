"""The benchmark's scenarios. Each returns figures compared with a baseline measured in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from channels.telegram import POOL_SIZE as TELEGRAM_POOL_SIZE
from channels.whatsapp import POOL_SIZE as WHATSAPP_POOL_SIZE
from dispatcher.core.models import ChannelName
from dispatcher.storage.runtime import Runtime
from tests.bench import baselines, vendors
from tests.bench.harness import ROOT, SMS_SENDERS, Service, Stage, peak_rss_mb
from tests.support import free_port


@dataclass(frozen=True)
class Country:
    """The national scenario's country and its day (``tests.bench.national``)."""

    plps: int = 1_100
    members: int = 100_000
    zones: int = 185  # police zones; the first is a large one
    zone_members: int = 20_000  # members of the large zone's PLPs: the zone-wide urgent alert's audience
    urgent_alerts: int = 200  # urgent alerts to one PLP each, spread evenly over the day
    advice: int = 30  # non-urgent advice, each to every PLP of one zone
    day_seconds: float = 400.0  # the day, compressed: every alert is posted within it
    idle_alerts: int = 10  # urgent alerts to one PLP on the idle service, one a second: the latency baseline
    workers: tuple[int, ...] = (1, 2, 4)  # worker processes of each run


@dataclass(frozen=True)
class Size:
    """How much work each scenario does (``FULL``: the issue's figures; ``TINY``: a smoke check)."""

    members: int = 10_000  # fan-out: members of each PLP (three channels each in the mix)
    naive_jobs: int = 300  # one-job-per-delivery sends measured
    backlog: int = 50_000  # urgent latency: deliveries of the non-urgent alert being sent
    urgent_members: int = 100
    urgent_alerts: int = 60  # one a second
    limited_seconds: float = 20.0  # provider limits: each channel's share of the lower bound
    webhook_messages: int = 30_000  # webhook intake: three callbacks each
    memory_members: tuple[int, int] = (10_000, 100_000)
    national: Country = Country()
    area_members: int = 20_000  # area planning: the zone's members (``tests.bench.area_bench``)
    area_plps: int = 20
    replication_alerts: int = 300  # replication wait: alerts of each round (``tests.bench.replication_bench``)
    replication_missed: int = 20  # the same, the replica stopped: each waits for the timeout


FULL = Size()
TINY = Size(
    members=30,
    naive_jobs=3,
    backlog=300,
    urgent_members=10,
    urgent_alerts=2,
    limited_seconds=1.0,
    webhook_messages=30,
    memory_members=(30, 90),
    area_members=60,
    area_plps=3,
    replication_alerts=8,
    replication_missed=3,
    national=Country(
        plps=9,
        members=120,
        zones=3,
        zone_members=40,
        urgent_alerts=4,
        advice=2,
        day_seconds=1.5,
        idle_alerts=2,
        workers=(1, 2),
    ),
)


@dataclass
class Figure:
    scenario: str
    measure: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    ratio: float
    target: str
    met: bool
    detail: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def figure(
    scenario: str,
    measure: str,
    value: float,
    unit: str,
    baseline: str,
    baseline_value: float,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    value_at_least: float | None = None,
    value_at_most: float | None = None,
    also: bool = True,
    **detail: Any,
) -> Figure:
    """A measure against its baseline; the target is on the ratio, on the value itself, or on both (a bound on
    the value and one on the ratio).

    ``also``: a further condition the target needs (e.g. no request refused), told in ``detail``.
    """
    ratio = value / baseline_value if baseline_value else float("inf")
    targets: list[tuple[str, bool]] = []
    if value_at_least is not None:
        targets.append((f"≥ {value_at_least:g} {unit}", value >= value_at_least))
    if value_at_most is not None:
        targets.append((f"≤ {value_at_most:g} {unit}", value <= value_at_most))
    if at_least is not None:
        targets.append((f"ratio ≥ {at_least:g}", ratio >= at_least))
    if at_most is not None:
        targets.append((f"ratio ≤ {at_most:g}", ratio <= at_most))
    if not targets:
        raise ValueError("a figure needs a target")
    target, met = " and ".join(t for t, _ in targets), all(m for _, m in targets)
    return Figure(scenario, measure, value, unit, baseline, baseline_value, ratio, target, met and also, detail or None)


# -- 1. fan-out throughput ----------------------------------------------------------------------

TWILIO_POOL_SIZE = 100  # connections of twilio's aiohttp client (aiohttp's default connector limit)
CHANNEL_SETS = {
    "sms": ["sms"],
    "telegram": ["telegram"],
    "email": ["email"],
    "whatsapp": ["whatsapp"],
    "mix": list(baselines.MIX),
}


async def fanout(stage: Stage, size: Size) -> list[Figure]:
    """One urgent alert per PLP of ``size.members``: each channel alone, then SMS, Telegram and e-mail together."""
    settings = stage.settings()
    runtime = Runtime.from_settings(settings)
    workers = 2  # the Procfile's: one urgent lane, one general lane (which also serves urgent work)
    concurrency = {  # what the service can have in flight: each channel's pool bounds it per process
        "sms": workers * min(TWILIO_POOL_SIZE, settings.worker_batches * settings.send_concurrency),
        "telegram": workers * min(settings.send_concurrency, TELEGRAM_POOL_SIZE),
        "email": workers * min(settings.send_concurrency, settings.smtp_pool_size),
        "whatsapp": workers * min(settings.send_concurrency, WHATSAPP_POOL_SIZE),
    }
    service: dict[str, float] = {}
    cpu_per_send: dict[str, float] = {}  # the workers' CPU seconds per send, each channel set's alert alone
    async with stage.service(settings) as running:
        plps = {}
        for series, (name, channels) in enumerate(CHANNEL_SETS.items(), start=1):
            plps[name] = await stage.plp(f"Bench {name}", channels)
            await stage.members(runtime, plps[name], size.members, series=series, whatsapp=name == "whatsapp")
        cpu_before = _workers_cpu(running.processes)
        for name, channels in CHANNEL_SETS.items():
            sends = size.members * len(channels)
            before = await stage.vendor("GET", "/stats")
            alert_id, posted = await stage.alert(plps[name])
            done = await stage.finished(runtime, alert_id, timeout=60 + sends / 50)
            after = await stage.vendor("GET", "/stats")
            requests = sum(after[c]["requests"] - before[c]["requests"] for c in channels)
            if requests != sends:
                raise RuntimeError(f"fan-out {name}: {requests} provider requests for {sends} deliveries")
            service[name] = sends / (done - posted)
            worker_cpu = _workers_cpu(running.processes)
            cpu_per_send[name] = (worker_cpu - cpu_before) / sends
            cpu_before = worker_cpu
            print(f"   service {name}: {sends} sends in {done - posted:.2f} s", file=sys.stderr, flush=True)
            print(f"   workers' CPU per send, {name}: {1000 * cpu_per_send[name]:.2f} ms", file=sys.stderr, flush=True)
    ceiling: dict[str, float] = {}
    bare_cpu: dict[str, float] = {}  # the bare library's CPU seconds per send (this process's, alone meanwhile)
    for name in baselines.CEILINGS:
        cpu = time.process_time()
        ceiling[name] = size.members / await baselines.CEILINGS[name](stage.addresses, size.members, concurrency[name])
        bare_cpu[name] = (time.process_time() - cpu) / size.members
        print(f"   bare library's CPU per send, {name}: {1000 * bare_cpu[name]:.2f} ms", file=sys.stderr, flush=True)
    cpu = time.process_time()
    ceiling["mix"] = 3 * size.members / await baselines.mix_ceiling(stage.addresses, size.members, concurrency)
    bare_cpu["mix"] = (time.process_time() - cpu) / (3 * size.members)
    naive_seconds = baselines.naive(
        stage.redis.url, stage.addresses, size.naive_jobs, workers=workers, folder=str(stage.folder)
    )
    naive = size.naive_jobs / naive_seconds
    mix_in_flight = sum(concurrency[c] for c in baselines.MIX)
    figures = [
        figure(
            "1. fan-out",
            f"{name}: sends/s, POST to completed",
            service[name],
            "sends/s",
            f"ceiling: bare library, {concurrency[name] if name != 'mix' else mix_in_flight} in flight",
            ceiling[name],
            at_least=0.7,
            workers_cpu_ms_per_send=round(1000 * cpu_per_send[name], 2),
            bare_cpu_ms_per_send=round(1000 * bare_cpu[name], 2),
        )
        for name in CHANNEL_SETS
    ]
    figures.append(
        figure(
            "1. fan-out",
            "mix: sends/s, POST to completed",
            service["mix"],
            "sends/s",
            f"naive: one RQ job per delivery, {workers} forking workers",
            naive,
            at_least=100,
            ceiling_over_naive=ceiling["mix"] / naive,  # what even the bare libraries manage against it
            sms_over_naive=service["sms"] / naive,
        )
    )
    return figures


def _workers_cpu(processes: dict[str, subprocess.Popen[bytes]]) -> float:
    return sum(cpu_seconds(p.pid) for name, p in processes.items() if name.startswith(("urgent", "general")))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a multi-process ``plp web``)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-share * len(ordered) // 1)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def now() -> float:
    return time.time()


# -- 2. urgent latency under a non-urgent backlog -----------------------------------------------

# The urgent PLP's charter sends SMS. With every channel, a 100-member alert a second is 300 to 400 sends
# a second for a minute: more than the vendor libraries themselves manage on two cores (see the mix
# ceiling of scenario 1), which would measure saturation instead of the lanes' independence.
URGENT_CHANNELS = ["sms"]


#: The hops of an urgent alert's path, in order, each from the moment the previous one ended (``_where_time_went``).
HOPS = ("intake", "to_fan_out", "to_first_claim", "to_provider")


async def _urgent_round(
    stage: Stage, runtime: Runtime, plp_id: str, count: int
) -> tuple[list[float], list[float], list[dict[str, float]]]:
    """Post ``count`` urgent alerts one a second (whether or not the previous one is done); return each one's
    POST-to-first-provider-request and POST-to-completed, in seconds, and where its time went
    (``_where_time_went``)."""

    async def one(n: int) -> tuple[float, float, dict[str, float]]:
        mark = f"Alerte {n}:"
        alert_id, posted = await stage.alert(plp_id, text=f"{mark} cambriolage rue du Parc, voiture grise.")
        done = await stage.finished(runtime, alert_id, timeout=300)
        arrivals = []
        for channel in URGENT_CHANNELS:
            rows = await stage.vendor("GET", "/received", channel=channel, since=posted, text=mark)
            arrivals += [at for _, at in rows]
        return min(arrivals) - posted, done - posted, _where_time_went(runtime, alert_id, posted, min(arrivals), done)

    started = time.monotonic()
    tasks = []
    for n in range(count):
        tasks.append(asyncio.create_task(one(n)))
        pause = started + n + 1 - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)  # the scenario's pace: one alert a second
    results = await asyncio.gather(*tasks)
    return [first for first, _, _ in results], [done for _, done, _ in results], [hops for _, _, hops in results]


#: What an urgent alert's completion is made of (``_where_time_went``).
COMPLETION = ("to_last_claim", "send_median", "send_longest", "last_answer_to_completed")


def _where_time_went(runtime: Runtime, alert_id: str, posted: float, arrived: float, done: float) -> dict[str, float]:
    """Where an urgent alert's time went, in milliseconds, from the service's own timestamps (every clock is this
    host's), read in one pass over its deliveries.

    To its first provider request (``HOPS``): ``intake`` to the alert's acceptance (its ``created_at``),
    ``to_fan_out`` to its fan-out job starting (``t_fanning_out``), ``to_first_claim`` to its first delivery
    claimed (the earliest ``t_sending``), ``to_provider`` to the provider's receipt of the request. To its
    completion (``COMPLETION``): ``to_last_claim``, to its last delivery claimed; ``send_median`` and
    ``send_longest``, from a delivery's claim to its provider's answer recorded (``t_sent``);
    ``last_answer_to_completed``, from the last answer recorded to the alert marked completed.
    """
    redis, keys = runtime.sync_redis, runtime.keys
    state = redis.hgetall(keys.alert_state(alert_id))
    refs = [str(ref) for ref in redis.zrange(keys.alert_deliveries(alert_id), 0, -1)]
    with redis.pipeline(transaction=False) as pipe:
        for ref in refs:
            pipe.hmget(keys.delivery(alert_id, ref), "t_sending", "t_sent")
        sends = [(float(claimed), float(sent)) for claimed, sent in pipe.execute() if claimed and sent]
    claims = [claimed for claimed, _ in sends]
    moments = [posted, float(state["t_accepted"]), float(state["t_fanning_out"]), min(claims), arrived]
    took = [sent - claimed for claimed, sent in sends]
    return {hop: 1000 * (moments[i + 1] - moments[i]) for i, hop in enumerate(HOPS)} | {
        "to_last_claim": 1000 * (max(claims) - posted),
        "send_median": 1000 * median(took),
        "send_longest": 1000 * max(took),
        "last_answer_to_completed": 1000 * (done - max(sent for _, sent in sends)),
    }


def _parts(hops: list[dict[str, float]], summary: Callable[[list[float]], float]) -> dict[str, float]:
    """A round's ``COMPLETION`` parts, each summed up over its alerts by ``summary`` (a median, a p99)."""
    return {part: round(summary([h[part] for h in hops]), 1) for part in COMPLETION}


def _hop_figures(hops: list[dict[str, float]], firsts: list[float]) -> dict[str, Any]:
    """Each hop's median and p99 over a round, and the hops of its slowest alert (what its p99 is made of)."""
    slowest = hops[max(range(len(firsts)), key=firsts.__getitem__)]
    return {
        "hops_median_ms": {hop: round(median([h[hop] for h in hops]), 1) for hop in HOPS},
        "hops_p99_ms": {hop: round(percentile([h[hop] for h in hops], 0.99), 1) for hop in HOPS},
        "slowest_alert_hops_ms": {hop: round(slowest[hop], 1) for hop in HOPS},
    }


class _Cores:
    """The cores each process on the stage used between two looks: the service's (a web process with its
    children), Redis, the vendors' simulators and this load generator, in CPU seconds per second."""

    def __init__(self, stage: Stage, running: Service) -> None:
        assert stage.redis.process is not None and stage.vendors is not None
        self._pids = {name: p.pid for name, p in running.processes.items()}
        self._pids |= {"redis": stage.redis.process.pid, "vendors": stage.vendors.pid}
        self._last, self._at = self._used(), time.monotonic()

    def _used(self) -> dict[str, float]:
        used = {name: sum(cpu_seconds(p) for p in (pid, *children(pid))) for name, pid in self._pids.items()}
        return used | {"load": cpu_seconds(os.getpid())}  # its own only: every other process here is its child

    def since_last(self) -> dict[str, float]:
        used, at = self._used(), time.monotonic()
        cores = {name: round((used[name] - self._last[name]) / (at - self._at), 2) for name in used}
        self._last, self._at = used, at
        return cores


async def urgent_latency(stage: Stage, size: Size) -> list[Figure]:
    settings = stage.settings()
    runtime = Runtime.from_settings(settings)
    async with stage.service(settings) as running:
        backlog_plp = await stage.plp("Bench backlog", ["sms"], urgency="non_urgent")
        urgent_plp = await stage.plp("Bench urgent", URGENT_CHANNELS)
        await stage.members(runtime, backlog_plp, size.backlog, series=1)
        await stage.members(runtime, urgent_plp, size.urgent_members, series=2)
        cores = _Cores(stage, running)
        quiet_firsts, quiet_done, quiet_hops = await _urgent_round(stage, runtime, urgent_plp, size.urgent_alerts)
        quiet_cores = cores.since_last()
        backlog_id, _ = await stage.alert(backlog_plp, urgency="non_urgent")
        await until_sending(stage, "sms", "+32471")
        cores.since_last()
        loaded_firsts, loaded_done, loaded_hops = await _urgent_round(stage, runtime, urgent_plp, size.urgent_alerts)
        loaded_cores = cores.since_last()
        backlog = await stage.api("GET", f"/v1/alerts/{backlog_id}", who="admin", expect=200)
    still_sending = backlog["status"] != "completed"
    detail = {"backlog_still_sending_at_the_end": still_sending, "backlog_counts": backlog["counts"]["by_status"]}
    p99, quiet_p99 = percentile(loaded_firsts, 0.99), percentile(quiet_firsts, 0.99)
    return [
        figure(
            "2. urgent under load",
            "POST to first provider request, p99, idle service",
            1000 * quiet_p99,
            "ms",
            "same, median",
            1000 * median(quiet_firsts),
            value_at_most=50,
            **_hop_figures(quiet_hops, quiet_firsts),
        ),
        figure(
            "2. urgent under load",
            f"POST to first provider request, p99, during a {size.backlog:,}-SMS non-urgent backlog",
            1000 * p99,
            "ms",
            "same, idle service (p99)",
            1000 * quiet_p99,
            value_at_most=100,
            at_most=1.2,
            also=still_sending,
            median_ms=1000 * median(loaded_firsts),
            median_no_backlog_ms=1000 * median(quiet_firsts),
            **detail,
            **_hop_figures(loaded_hops, loaded_firsts),
        ),
        figure(
            "2. urgent under load",
            "POST to completed, p99, during the backlog",
            percentile(loaded_done, 0.99),
            "s",
            "same, idle service (p99)",
            percentile(quiet_done, 0.99),
            at_most=1.1,
            also=still_sending,
            median_s=median(loaded_done),
            median_no_backlog_s=median(quiet_done),
            completion_idle_median_ms=_parts(quiet_hops, median),
            completion_backlog_median_ms=_parts(loaded_hops, median),
            completion_idle_p99_ms=_parts(quiet_hops, lambda values: percentile(values, 0.99)),
            completion_backlog_p99_ms=_parts(loaded_hops, lambda values: percentile(values, 0.99)),
            cores_idle=quiet_cores,
            cores_backlog=loaded_cores,
        ),
    ]


async def until_sending(stage: Stage, channel: str, mark: str, *, timeout: float = 60) -> None:
    """Wait until the vendors have seen a request to a contact point containing ``mark``."""
    deadline = time.monotonic() + timeout
    while not await stage.vendor("GET", "/received", channel=channel, since=0, contains=mark):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {channel} request to {mark}... in {timeout} s")
        await asyncio.sleep(0.05)  # another process does the work: poll its effect, bounded


# -- 3. provider limits -------------------------------------------------------------------------

SMS_PER_SENDER, TELEGRAM_PER_SECOND, CALLS_PER_SECOND = 10.0, 30.0, 1.0


@dataclass(frozen=True)
class LimitedRun:
    """One alert sent under the providers' limits: how long it took, what the vendors saw."""

    members: int
    calls: int
    took: float  # seconds, POST to completed
    stats: dict[str, Any]
    posted: float = 0.0  # Unix time the POST left

    def where_the_time_went(self, rates: dict[str, tuple[float, int]]) -> dict[str, dict[str, float]]:
        """Per channel, in seconds: the POST to the provider's first request; the first request to the last,
        against the limit's own spacing of as many requests over its senders (``rates``: the rate per sender and
        the senders; (n / senders - 1) / rate); and the last request to the alert completed (the provider's
        answer, then the record)."""
        out: dict[str, dict[str, float]] = {}
        for channel, (rate, senders) in rates.items():
            seen = self.stats[channel]
            if not seen["requests"]:
                continue
            out[channel] = {
                "to_first_request": round(seen["first"] - self.posted, 3),
                "first_to_last": round(seen["last"] - seen["first"], 3),
                "limit_spacing": round((math.ceil(seen["requests"] / senders) - 1) / rate, 3),
                "last_to_completed": round(self.posted + self.took - seen["last"], 3),
            }
        return out

    @property
    def refused(self) -> int:
        return sum(self.stats["refused_for_rate"].values())

    @property
    def telegram_per_second(self) -> float:
        """Telegram messages taken per second, from the first to the last one's arrival."""
        seen = self.stats["telegram"]
        taken = seen["requests"] - self.stats["refused_for_rate"]["telegram"]
        return (taken - 1) / (seen["last"] - seen["first"]) if taken > 1 else 0.0


async def provider_limits(stage: Stage, size: Size) -> list[Figure]:
    """SMS 10/s per sender (3 senders), Telegram 30/s and 1/s per chat, calls 1/s: each channel's share takes
    the same time. Run with the default margin, then with none (its cost), then the bare Telegram client."""
    paced = await _limited_run(stage, size, series=3, margin=None)
    unpaced = await _limited_run(stage, size, series=4, margin=0.0)
    bare = await _bare_telegram(stage, paced.members)
    bound = max(paced.members / (SMS_PER_SENDER * len(SMS_SENDERS)), paced.members / TELEGRAM_PER_SECOND)
    bound = max(bound, paced.calls / CALLS_PER_SECOND)
    what = f"{paced.members} SMS, {paced.members} Telegram, {paced.calls} calls"
    rates = {
        "sms": (SMS_PER_SENDER, len(SMS_SENDERS)),
        "telegram": (TELEGRAM_PER_SECOND, 1),
        "voice": (CALLS_PER_SECOND, 1),
    }
    return [
        figure(
            "3. provider limits",
            f"POST to completed: {what}",
            paced.took,
            "s",
            "arithmetic lower bound of the limits",
            bound,
            at_most=1.02,
            also=paced.refused == 0,
            refused_for_rate=paced.stats["refused_for_rate"],
            where_the_time_went=paced.where_the_time_went(rates),
            where_without_margin=unpaced.where_the_time_went(rates),
        ),
        figure(
            "3. provider limits",
            "cost of the limiter margin: POST to completed",
            paced.took,
            "s",
            "same, PLP_LIMIT_MARGIN=0",
            unpaced.took,
            at_most=1.02,
            refused_with_margin=paced.refused,
            refused_without_margin=unpaced.stats["refused_for_rate"],
        ),
        figure(
            "3. provider limits",
            "Telegram messages per second, in the alert",
            paced.telegram_per_second,
            "/s",
            f"the bot's limit ({TELEGRAM_PER_SECOND:g}/s)",
            TELEGRAM_PER_SECOND,
            at_least=0.95,
            bare_client_per_second=round(bare, 2),
            against_bare_client=round(paced.telegram_per_second / bare, 3) if bare else None,
        ),
    ]


async def _limited_run(stage: Stage, size: Size, *, series: int, margin: float | None) -> LimitedRun:
    extra = {} if margin is None else {"limit_margin": margin}
    settings = stage.settings(
        limit_sms_per_second=SMS_PER_SENDER,
        limit_telegram_per_second=TELEGRAM_PER_SECOND,
        limit_telegram_per_chat_per_second=1.0,
        limit_voice_per_second=CALLS_PER_SECOND,
        **extra,
    )
    runtime = Runtime.from_settings(settings)
    seconds = size.limited_seconds
    sms_rate = SMS_PER_SENDER * len(settings.twilio_sms_from)
    members, calls = round(sms_rate * seconds), round(CALLS_PER_SECOND * seconds)
    rates = {
        "sms_per_sender": SMS_PER_SENDER,
        "calls_per_second": CALLS_PER_SECOND,
        "telegram_per_second": TELEGRAM_PER_SECOND,
        "telegram_per_chat": 1.0,
    }
    await stage.vendor("POST", "/config", rates)
    await stage.vendor("POST", "/reset")
    try:
        async with stage.service(settings):
            plp = await stage.plp(f"Bench limits {series}", ["sms", "telegram", "voice"])
            await stage.members(
                runtime,
                plp,
                members,
                series=series,
                channels=lambda i: [ChannelName.SMS, ChannelName.TELEGRAM] + ([ChannelName.VOICE] if i < calls else []),
            )
            alert_id, posted = await stage.alert(plp)
            done = await stage.finished(runtime, alert_id, timeout=10 * seconds + 30)
            stats = await stage.vendor("GET", "/stats")
    finally:
        await stage.vendor("POST", "/config", dict.fromkeys(rates))
    return LimitedRun(members=members, calls=calls, took=done - posted, stats=stats, posted=posted)


async def _bare_telegram(stage: Stage, messages: int) -> float:
    """The bare client: python-telegram-bot sending ``messages`` to distinct chats, one every 1/30 s (asyncio
    tasks, no Redis, no service), to the same simulator under the same limits; messages taken per second."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    await stage.vendor("POST", "/config", {"telegram_per_second": TELEGRAM_PER_SECOND, "telegram_per_chat": 1.0})
    await stage.vendor("POST", "/reset")
    request = HTTPXRequest(connection_pool_size=64)
    bot = Bot(vendors.BOT_TOKEN, base_url=f"{stage.addresses['telegram']}/bot", request=request)
    started = time.monotonic()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, started + i / TELEGRAM_PER_SECOND - time.monotonic()))  # the pacing itself
        with contextlib.suppress(Exception):  # a refusal is counted by the simulator
            await bot.send_message(chat_id=900_000_000 + i, text="Bench: bare client")

    try:
        await asyncio.gather(*(one(i) for i in range(messages)))
        stats = await stage.vendor("GET", "/stats")
    finally:
        await request.shutdown()
        await stage.vendor("POST", "/config", {"telegram_per_second": None, "telegram_per_chat": None})
    return LimitedRun(members=messages, calls=0, took=0.0, stats=stats).telegram_per_second


# -- 4. webhook intake --------------------------------------------------------------------------


async def webhook_intake(stage: Stage, size: Size) -> list[Figure]:
    """Three signed status callbacks for each of ``size.webhook_messages`` SMS, posted as fast as possible."""
    from twilio.request_validator import RequestValidator

    settings = stage.settings(web_processes=WEB_PROCESSES)
    runtime = Runtime.from_settings(settings)
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else "")
    count = size.webhook_messages
    await stage.vendor("POST", "/config", {"latency": 0})
    try:
        async with stage.service(settings) as running:
            plp = await stage.plp("Bench webhooks", ["sms"])
            await stage.members(runtime, plp, count, series=4)
            alert_id, _ = await stage.alert(plp)
            await stage.finished(runtime, alert_id, timeout=60 + count / 100)
            accepted = await stage.vendor("GET", "/accepted")
            undelivered = {sid for sid, _, _ in accepted[::10]}
            messages = [_callbacks(validator, sid, to, url, sid in undelivered) for sid, to, url in accepted]
            webs = [running.pid("web"), *children(running.pid("web"))]
            cpu_before = sum(cpu_seconds(pid) for pid in webs)
            service = await _load(stage, messages)
            web_cpu = sum(cpu_seconds(pid) for pid in webs) - cpu_before
            final = await stage.api("GET", f"/v1/alerts/{alert_id}", who="admin", expect=200)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "tests.bench.bare", str(bare_port)], cwd=ROOT)
        try:
            await wait_port(bare_port)
            rewritten = [[[f"http://127.0.0.1:{bare_port}/x", form, sig] for _, form, sig in m] for m in messages]
            baseline = await _load(stage, rewritten)
        finally:
            bare.terminate()
            bare.wait()
    finally:
        await stage.vendor("POST", "/config", {"latency": stage.latency})
    by_status = final["counts"]["by_status"]
    if not _all_ok(service["statuses"]):
        raise RuntimeError(f"webhook intake: some callbacks were refused: {service['statuses']}")
    if by_status.get("delivered", 0) != count - len(undelivered) or final["counts"]["total"] != count:
        raise RuntimeError(
            f"webhook intake: wrong final statuses {by_status} for {count} SMS, {len(undelivered)} undelivered"
        )
    return [
        figure(
            "4. webhook intake",
            f"signed status callbacks/s ({3 * count} for {count} SMS)",
            service["rate"],
            "callbacks/s",
            "bare aiohttp answering 204, same load generator",
            baseline["rate"],
            value_at_least=2000,
            final_statuses=by_status,
            answers=service["statuses"],
            web_cpu_ms_per_callback=1000 * web_cpu / (3 * count),
        )
    ]


def _all_ok(statuses: dict[str, int]) -> bool:
    return all(200 <= int(code) < 300 for code in statuses)


def _callbacks(validator: Any, sid: str, to: str, url: str, undelivered: bool) -> list[list[Any]]:
    common = {"MessageSid": sid, "SmsSid": sid, "AccountSid": vendors.ACCOUNT, "To": to, "ApiVersion": "2010-04-01"}
    steps = []
    for status in ("queued", "sent", "undelivered" if undelivered else "delivered"):
        form = {**common, "MessageStatus": status, "SmsStatus": status}
        if status == "undelivered":
            form["ErrorCode"] = "30005"
        steps.append([url, form, validator.compute_signature(url, form)])
    return steps


LOAD_PROCESSES, LOAD_CONCURRENCY = 2, 64
WEB_PROCESSES = 2  # `plp web` on both cores (PLP_WEB_PROCESSES), as for heavy webhook traffic


async def _load(stage: Stage, messages: list[list[list[Any]]]) -> dict[str, Any]:
    """Post the callbacks from ``LOAD_PROCESSES`` generator processes at once; the combined rate."""
    files = []
    for n in range(LOAD_PROCESSES):
        path = stage.folder / f"callbacks-{n}.json"
        path.write_text(json.dumps(messages[n::LOAD_PROCESSES]), encoding="utf-8")
        files.append(path)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.loadgen",
            str(path),
            "--concurrency",
            str(LOAD_CONCURRENCY),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for path in files
    ]
    results = [json.loads((await p.communicate())[0]) for p in procs]
    statuses: dict[str, int] = {}
    for result in results:
        for code, n in result["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    posted = sum(r["posted"] for r in results)
    return {"rate": posted / max(r["seconds"] for r in results), "statuses": statuses}


async def wait_port(port: int, *, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)  # a process starting up: nothing to await


# -- 5. memory ----------------------------------------------------------------------------------


async def memory(stage: Stage, size: Size) -> list[Figure]:
    """Peak memory of each worker and Redis memory per delivery, for a small and a large alert."""
    runs: list[dict[str, Any]] = []
    await stage.vendor("POST", "/config", {"latency": 0.0})
    try:
        for series, members in enumerate(size.memory_members, start=5):
            settings = stage.settings()
            runtime = Runtime.from_settings(settings)
            async with stage.service(settings) as running:
                plp = await stage.plp(f"Bench memory {members}", ["sms"])
                await stage.members(runtime, plp, members, series=series)
                before = stage.redis_memory()
                alert_id, _ = await stage.alert(plp)
                await stage.finished(runtime, alert_id, timeout=60 + members / 100)
                after = stage.redis_memory()
                peaks = {
                    name: peak_rss_mb(p.pid)
                    for name, p in running.processes.items()
                    if "urgent" in name or "general" in name
                }
            runs.append({"members": members, "peaks": peaks, "bytes_per_delivery": (after - before) / members})
    finally:
        await stage.vendor("POST", "/config", {"latency": stage.latency})
    small, large = runs
    figures = [
        figure(
            "5. memory",
            f"worker {name}: peak RSS, {large['members']:,}-member alert",
            large["peaks"][name],
            "MiB",
            f"same, {small['members']:,}-member alert",
            small["peaks"][name],
            at_most=1.2,
        )
        for name in sorted(large["peaks"])
    ]
    figures.append(
        figure(
            "5. memory",
            f"Redis memory per delivery, {large['members']:,}-member alert",
            large["bytes_per_delivery"],
            "B",
            "budget: 1 KB per delivery",
            1024,
            at_most=1.0,
            small_alert_bytes_per_delivery=small["bytes_per_delivery"],
        )
    )
    return figures
