"""A neighbourhood to break: the web app on a real port, the providers' simulators, real workers.

``open_world`` starts the Twilio, SMTP and Telegram simulators (with a latency, so that
sends are in flight long enough to be interrupted), the web app on a free port (where the
simulators post their callbacks and members their replies), and gives the test a
``Workers`` pool that starts ``plp worker`` and ``plp clock`` processes with the same
settings, passed through their environment. The test then breaks what it wants and reads
the outcome from the simulators' ledgers (``World.sent``) and from Redis.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import redis
import structlog
from aiohttp.test_utils import TestClient, TestServer
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from channels.inbound import ACK_PREFIX
from config import Settings
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.logging import configure_logging
from dispatcher.core.models import (
    ActorIn,
    Alert,
    Category,
    ChannelName,
    Language,
    Member,
    Relay,
    RelayState,
    Role,
    Urgency,
)
from dispatcher.people.accounts import create_actor
from dispatcher.pipeline import intake
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import new_id, split_delivery_id
from tests.simulators.apart import VendorLoop, VendorProcess
from tests.simulators.smtp import SmtpSimulator
from tests.simulators.telegram import TelegramSimulator
from tests.simulators.twilio import TwilioSimulator
from tests.support import Workers, free_port, get_json, member_rows, post_json, until, wait_for_alert

ACCOUNT, AUTH_TOKEN = "AC" + "5" * 32, "twilio-auth-token-faults"
BOT_TOKEN = "4343:bot-token-faults"
SMS_FROM = "+3225550101"
ZONE = "5340"
#: Statuses a delivery ends in, or is settled in (handed to the provider).
SETTLED = frozenset({"sent", "delivered", "failed", "expired", "cancelled"})
GONE_OUT = frozenset({"sent", "delivered"})
#: Seconds a send started just before the alert's TTL may take to reach the provider.
HOP = 0.5


def charter(
    *, urgent: list[str], non_urgent: list[str] | None = None, mode: str = "all", ttl: int = 3600
) -> dict[str, Any]:
    """A charter with the given channels, no quiet hours, and police messages relayed at once."""
    return {
        "urgent": {"channels": urgent, "mode": mode, "ttl_seconds": ttl},
        "non_urgent": {"channels": non_urgent or urgent, "mode": mode, "ttl_seconds": ttl},
        "relay": "auto",
    }


@dataclass(frozen=True, slots=True)
class Sent:
    """One message a provider took (a ledger entry), traced back to its delivery."""

    alert_id: str
    channel: str
    member_id: str
    received_at: float  # Unix time the provider received the request
    late: bool  # answered after the client's timeout

    @property
    def ref(self) -> str:
        return f"{self.channel}:{self.member_id}"


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    settings: Settings
    twilio: TwilioSimulator
    smtp: SmtpSimulator
    telegram: TelegramSimulator
    workers: Workers
    base: str
    tokens: dict[str, str]
    ids: dict[str, str]
    vendors: VendorLoop | VendorProcess  # where Twilio's and Telegram's simulators run: their coroutines go through
    # ``vendors.run``

    def auth(self, who: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    @property
    def redis(self) -> redis.Redis:
        """Synchronous decoding client (quick reads between awaits)."""
        return self.runtime.sync_redis

    # -- building the neighbourhood ----------------------------------------------------------

    async def plp(self, name: str, plan: dict[str, Any], *, zone: str = ZONE) -> str:
        body = {"name": name, "commune": "Ixelles", "police_zone": zone, "charter": plan}
        return str((await post_json(self.client, "/v1/plps", body, headers=self.auth(), expect=201))["id"])

    async def police_of(self, zone: str) -> str:
        """An officer of another police zone; returns the name to give ``alert``'s ``who``."""
        store = self.client.server.app[SERVICES].store
        _, token = await create_actor(store, ActorIn(name=f"Inspecteur {zone}", role=Role.POLICE, police_zone=zone))
        self.tokens[f"police-{zone}"] = token
        return f"police-{zone}"

    async def many_members(self, plp_id: str, count: int, *, start: int = 0) -> None:
        """``count`` SMS members stored in bulk (the importer's write, without its per-row checks): for sizes
        the import endpoint would take minutes to check."""
        store, now = self.client.server.app[SERVICES].store, datetime.now(UTC)
        members = [
            Member(
                id=new_id(),
                name=f"Member {n}",
                phone=f"+3247{n:07d}",
                language=Language.FR,
                channels=[ChannelName.SMS],
                consent_at=now,
                plp_ids=[plp_id],
                created_at=now,
                updated_at=now,
            )
            for n in range(start, start + count)
        ]
        for first in range(0, count, 5000):
            await store.add_new_members(members[first : first + 5000])

    async def members(self, plp_id: str, count: int, *, start: int = 0) -> list[dict[str, Any]]:
        """Import ``count`` members (phone and e-mail each); return them with their ids and E.164 phones."""
        rows = member_rows(count, start=start)
        report = await post_json(
            self.client, f"/v1/plps/{plp_id}/members/import", {"members": rows}, headers=self.auth(), expect=200
        )
        assert not report["rejected"], report["rejected"][:3]
        by_row = {item["row"]: item["member_id"] for item in report["imported"]}
        return [{**row, "id": by_row[i], "e164": row["phone"].replace(" ", "")} for i, row in enumerate(rows)]

    async def member(self, plp_id: str, member_id: str) -> dict[str, Any]:
        return dict(await get_json(self.client, f"/v1/plps/{plp_id}/members/{member_id}", headers=self.auth()))

    # -- alerts ------------------------------------------------------------------------------

    async def alert(self, plp_ids: list[str], text: str, *, urgency: str = "urgent", who: str = "police") -> str:
        """Post an alert through the API as the police (202); return its id."""
        body = {"urgency": urgency, "category": "burglary", "plp_ids": plp_ids, "texts": {"fr": text}}
        return str((await post_json(self.client, "/v1/alerts", body, headers=self.auth(who), expect=202))["id"])

    async def accept(self, plp_ids: list[str], text: str, *, ttl_seconds: int, urgency: Urgency) -> str:
        """Accept an alert with a time-to-live shorter than the API allows (60 s), through the same intake."""
        alert = Alert(
            id=new_id(),
            author_id=self.ids["police"],
            author_role=Role.POLICE,
            urgency=urgency,
            category=Category.BURGLARY,
            plp_ids=plp_ids,
            texts={Language.FR: text},
            ttl_seconds=ttl_seconds,
            created_at=datetime.now(UTC),
        )
        relays = [Relay(plp_id=p, state=RelayState.AUTO) for p in plp_ids]
        await asyncio.to_thread(intake.accept_alert, self.runtime, alert, relays)
        return alert.id

    async def opt_out_by_sms(self, e164: str) -> None:
        """The member texts STOP; returns once the service has recorded the opt-out."""
        status, twiml = await self.vendors.run(
            self.twilio.incoming_sms(f"{self.base}/v1/webhooks/twilio/sms", e164, SMS_FROM, "STOP")
        )
        assert status == 200, twiml

    async def link_telegram(self, plp_id: str, member_id: str, chat_id: int) -> None:
        """The coordinator issues the member's Telegram link; the member opens it (``/start <token>``)."""
        status, answer = await self.telegram_says(chat_id, await self.telegram_link_of(plp_id, member_id))
        assert status == 200, answer

    async def telegram_link_of(self, plp_id: str, member_id: str) -> str:
        """The coordinator issues the member's Telegram link; the command the member's app sends with it."""
        path = f"/v1/plps/{plp_id}/members/{member_id}/telegram-link"
        return str((await post_json(self.client, path, None, headers=self.auth(), expect=201))["start_command"])

    async def opt_out_by_telegram(self, chat_id: int) -> None:
        """The member writes /stop to the bot; returns once the service has answered the update."""
        status, answer = await self.telegram_says(chat_id, "/stop")
        assert status == 200, answer

    async def telegram_says(self, chat_id: int, text: str) -> tuple[int, Any]:
        secret = self.settings.telegram_webhook_secret
        assert secret is not None, "open the world with telegram_webhook_secret=..."
        url = f"{self.base}/v1/webhooks/telegram"
        return await self.vendors.run(self.telegram.member_sends(url, chat_id, text, secret=secret.get_secret_value()))

    async def cancel(self, alert_id: str) -> float:
        """The police cancel the alert through the API; returns the Unix time its answer (200) came back."""
        await post_json(self.client, f"/v1/alerts/{alert_id}/cancel", None, headers=self.auth("police"), expect=200)
        return time.time()

    # -- reading the outcome -----------------------------------------------------------------

    async def deliveries(self, alert_id: str) -> dict[str, dict[str, Any]]:
        """Every delivery of the alert as the API shows it, by ref (``<channel>:<member>``)."""
        found: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            query = f"?limit=500&cursor={cursor}" if cursor else "?limit=500"
            page = await get_json(self.client, f"/v1/alerts/{alert_id}/deliveries{query}", headers=self.auth())
            found |= {f"{d['channel']}:{d['member_id']}": d for d in page["items"]}
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    def records(self, alert_id: str) -> dict[str, dict[str, str]]:
        """Every delivery hash of the alert in Redis, by ref (fields the API does not show: failures, phase...)."""
        keys = self.runtime.keys
        refs = self.redis.zrange(keys.alert_deliveries(alert_id), 0, -1)
        with self.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.hgetall(keys.delivery(alert_id, ref))
            return dict(zip(refs, pipe.execute(), strict=True))  # type: ignore[arg-type]

    def counts(self, alert_id: str) -> dict[str, int]:
        raw = self.redis.hgetall(self.runtime.keys.alert_counts(alert_id))
        return {k: int(v) for k, v in raw.items()}  # type: ignore[union-attr]

    def status(self, alert_id: str) -> str:
        return str(self.redis.hget(self.runtime.keys.alert_state(alert_id), "status"))

    def expires_at(self, alert_id: str) -> float:
        return float(self.redis.hget(self.runtime.keys.alert_state(alert_id), "expires_at"))  # type: ignore[arg-type]

    def sent(self) -> list[Sent]:
        """Every message the providers took (SMS, calls, e-mails), traced to its delivery."""
        found = []
        for record in self.twilio.ledger:
            [delivery] = parse_qs(urlparse(record.status_callback or "").query)["d"]
            alert_id, channel, member_id = split_delivery_id(delivery)
            found.append(Sent(alert_id, channel, member_id, record.received_at, record.late))
        for mail in self.smtp.messages:
            alert_id, channel, member_id = mail.message_id.strip("<>").partition("@")[0].split(".")
            found.append(Sent(alert_id, channel, member_id, mail.received_at, mail.late))
        for call in self.telegram.calls("sendMessage"):
            if call.status == 200 and (delivery := _telegram_delivery(call.params)) is not None:
                alert_id, channel, member_id = split_delivery_id(delivery)
                found.append(Sent(alert_id, channel, member_id, call.received_at, call.late))
        return found

    def requests_after(self, moment: float) -> list[tuple[str, str, float]]:
        """(provider, recipient, Unix time) of every alert message the SMS and Telegram simulators received after
        ``moment``, whatever they answered (refused for the rate included). Not the answers to what members did
        (a link confirmed, a STOP confirmed: Telegram messages without the alert's button)."""
        return [
            *(("twilio", to, at) for to, at in self.twilio.received if at > moment),
            *(("telegram", chat, at) for chat, at in self.telegram.received_with_buttons if at > moment),
        ]

    def redispatched(self) -> dict[str, int]:
        """Deliveries the clock dispatched again so far, by cause (the counters behind ``plp_redispatched_total``)."""
        raw = self.redis.hgetall(self.runtime.keys.metrics())
        return {f.partition("|")[2]: int(n) for f, n in raw.items() if str(f).startswith("rd|")}  # type: ignore[union-attr]

    def duplicates_observed(self) -> int:
        return sum(self.twilio.duplicates().values()) + sum(self.smtp.duplicates().values())

    def in_flight_claims(self, alert_ids: list[str]) -> int:
        """Deliveries claimed by a worker and not recorded yet: the sends a crash now could leave uncertain."""
        total = 0
        for alert_id in alert_ids:
            refs = self.redis.zrange(self.runtime.keys.alert_deliveries_in(alert_id, "sending"), 0, -1)
            with self.redis.pipeline(transaction=False) as pipe:
                for ref in refs:
                    pipe.hget(self.runtime.keys.delivery(alert_id, ref), "phase")
                total += sum(1 for phase in pipe.execute() if phase == "in_flight")
        return total

    def leased(self, alert_ids: list[str]) -> list[tuple[str, str]]:
        """(alert, ref) of the unsettled deliveries someone works on now: held by a batch, or claimed."""
        wanted, keys = set(alert_ids), self.runtime.keys
        entries = {*self.redis.zrange(keys.leases(), 0, -1), *self.redis.zrange(keys.holds(), 0, -1)}
        held = sorted(
            (alert_id, ref)
            for alert_id, _, ref in (str(e).partition("|") for e in entries)
            if alert_id in wanted and not ref.startswith("fanout:")
        )
        with self.redis.pipeline(transaction=False) as pipe:
            for alert_id, ref in held:
                pipe.hget(keys.delivery(alert_id, ref), "status")
            statuses = pipe.execute()
        return [item for item, status in zip(held, statuses, strict=True) if status not in SETTLED]

    async def start_processes(self, *lanes: str) -> None:
        """Start a process per lane (``"urgent"``, ``"general"``, ``"clock"``); return once the workers listen."""
        for lane in lanes:
            self.workers.start(lane)
        wanted = sum(1 for lane in lanes if lane != "clock")
        connection = self.runtime.rq_connection
        await until(lambda: len(Worker.all(connection=connection)) >= wanted, timeout=30, what="the workers to start")

    async def finished(self, alert_id: str, *, timeout: float = 60) -> str:
        """Wait (on Redis events) until the alert is over; on timeout, fail saying what is stuck and why."""
        try:
            return await wait_for_alert(self.runtime, alert_id, timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"alert {alert_id} is not over after {timeout} s: {self.diagnose(alert_id)}") from None

    def diagnose(self, alert_id: str) -> str:
        """Where an alert that does not finish stands: its state, and the deliveries nobody will take up."""
        keys = self.runtime.keys
        stuck = {ref: r for ref, r in self.records(alert_id).items() if r["status"] not in SETTLED}
        leases = dict(self.redis.zrange(keys.leases(), 0, -1, withscores=True))  # type: ignore[arg-type]
        holds = set(self.redis.zrange(keys.holds(), 0, -1))
        # What the clock will dispatch again: a run-out lease; a run-out hold of a delivery still queued.
        orphans = sorted(
            ref
            for ref, record in stuck.items()
            if f"{alert_id}|{ref}" not in leases and (record["status"] != "queued" or f"{alert_id}|{ref}" not in holds)
        )
        fan_outs = {e: s for e, s in leases.items() if str(e).startswith(f"{alert_id}|fanout:")}
        every_queue = [*self.runtime.urgent_queues(), self.runtime.general_queue]
        queues = {q.name: q.count for q in every_queue}
        lost = {}  # jobs RQ holds as failed, started or taken, which nobody will run again
        for queue in every_queue:
            held = {
                "failed": queue.failed_job_registry.get_job_ids(),
                "started": queue.started_job_registry.get_job_ids(),
                "taken": [i.decode() for i in self.runtime.rq_connection.lrange(queue.intermediate_queue_key, 0, -1)],
            }
            for where, ids in held.items():
                for job in Job.fetch_many(ids, connection=self.runtime.rq_connection):
                    if job is not None and job.args and job.args[0] == alert_id:
                        lost[f"{where} {job.func_name}"] = lost.get(f"{where} {job.func_name}", 0) + 1
        return (
            f"state {self.redis.hgetall(keys.alert_state(alert_id))}; counts {self.counts(alert_id)}; "
            f"{len(stuck)} deliveries unsettled, {len(orphans)} of them that the clock will never dispatch again "
            f"(neither leased nor, while queued, held), e.g. {[(ref, stuck[ref]) for ref in orphans[:3]]}; "
            f"fan-out leases {fan_outs}; "
            f"fan-outs pending {self.redis.smembers(keys.alert_fanouts(alert_id))}; queued jobs {queues}; "
            f"its jobs RQ will not run again: {lost}"
        )

    def busy_workers(self) -> dict[int, str]:
        """pid -> name of the function each worker process is running now (RQ's own registry)."""
        busy = {}
        for worker in Worker.all(connection=self.runtime.rq_connection):
            try:
                job = worker.get_current_job()
            except NoSuchJobError:  # the job ended (and RQ deleted it) between the two reads: not busy
                continue
            if worker.pid is not None and job is not None:
                busy[worker.pid] = job.func_name
        return busy


def _telegram_delivery(params: dict[str, Any]) -> str | None:
    """The delivery a Telegram message carries, from its "received" button's callback data."""
    rows = (params.get("reply_markup") or {}).get("inline_keyboard") or []
    data = [button.get("callback_data", "") for row in rows for button in row]
    return next((d.removeprefix(ACK_PREFIX) for d in data if d.startswith(ACK_PREFIX)), None)


def settled_at(record: dict[str, str]) -> float | None:
    """When a delivery was handed over or ended (its first settled status), Unix time; None if not yet."""
    times = [float(record[f"t_{status}"]) for status in SETTLED if f"t_{status}" in record]
    return min(times) if times else None


@asynccontextmanager
async def open_world(
    redis_url: str, data_dir: Path, *, latency: float = 0.05, own_process: bool = False, **overrides: Any
) -> AsyncIterator[World]:
    """The simulators (``latency`` on SMS and e-mail), the web app on a free port, actors; ``overrides``
    change the settings (the workers get them through their environment). ``own_process``: Twilio's and
    Telegram's simulators run in a process of their own (``VendorProcess``: read them, set their attributes
    and call their methods; never mutate a value read, it is a copy)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    # The HTTP providers' clocks run apart from the web app's loop, as a provider's do; in a process of their own
    # when a test counts their refusals at the real rates.
    apart = VendorProcess() if own_process else VendorLoop()
    async with (
        apart as vendors,
        vendors.serving(TwilioSimulator, account_sid=ACCOUNT, auth_token=AUTH_TOKEN, latency=latency) as twilio,
        SmtpSimulator() as smtp,  # aiosmtpd serves from a thread of its own already
        vendors.serving(TelegramSimulator, token=BOT_TOKEN, latency=latency) as telegram,
    ):
        smtp.latency = latency
        settings = Settings(
            **{
                "redis_url": redis_url,
                "key_prefix": "plpfault:",
                "queue_prefix": "plpfault",
                "data_dir": data_dir,
                "public_base_url": base,
                "secret_key": "fault-suite-signing-key",
                "log_level": "WARNING",
                "log_format": "json",
                "twilio_account_sid": ACCOUNT,
                "twilio_auth_token": AUTH_TOKEN,
                "twilio_api_base_url": twilio.base_url,
                "twilio_sms_from": (SMS_FROM,),
                "smtp_host": smtp.host,
                "smtp_port": smtp.port,
                "smtp_security": "none",
                "smtp_from": "PLP alerts <alerts@plp.example>",
                "smtp_pool_size": 10,
                "telegram_bot_token": BOT_TOKEN,
                "telegram_api_base_url": telegram.base_url,
                # Recovery in seconds rather than minutes: a dead worker's leases run out after 3 s.
                "lease_seconds": 3,
                "clock_interval": 0.2,
                "max_attempts": 3,
                "retry_base_urgent": 0.2,
                "retry_base": 0.2,
                "provider_timeout": 5.0,  # no spurious timeouts on a loaded machine; tests of timeouts lower it
                "limit_sms_per_second": 500,
                "limit_email_per_minute": 60_000,
                **overrides,
            }
        )
        runtime = Runtime.from_settings(settings)
        runtime.rq_connection.flushdb()
        workers = Workers(settings, python=sys.executable)
        restore_logging = _quiet_logging(settings)
        try:
            async with TestServer(create_app(runtime), port=port) as server, TestClient(server) as client:
                tokens, ids = await _actors(client)
                world = World(client, runtime, settings, twilio, smtp, telegram, workers, base, tokens, ids, vendors)
                try:
                    yield world
                finally:
                    workers.stop()
        finally:
            workers.stop()
            restore_logging()
            try:
                runtime.rq_connection.flushdb()
            except redis.ConnectionError:
                pass  # a test that stopped its Redis for good
            runtime.close()


def _quiet_logging(settings: Settings) -> Callable[[], None]:
    """Log the web app's warnings only, as JSON; return what puts the process's logging back.

    The default console renderer draws every exception with its local variables: during a Redis
    outage, hundreds of failing webhooks would hold this process's event loop for seconds.
    """
    config, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging(settings)

    def restore() -> None:
        structlog.configure(**config)
        root.handlers[:], root.level = handlers, level

    return restore


async def _actors(client: TestClient) -> tuple[dict[str, str], dict[str, str]]:
    store = client.server.app[SERVICES].store
    admin, admin_token = await create_actor(store, ActorIn(name="Admin", role=Role.ADMIN))
    police, police_token = await create_actor(store, ActorIn(name="Inspecteur", role=Role.POLICE, police_zone=ZONE))
    return {"admin": admin_token, "police": police_token}, {"admin": admin.id, "police": police.id}
