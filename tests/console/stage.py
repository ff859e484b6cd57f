"""The whole service for the browser tests: a real ``plp web`` process, real workers and clock, and the
vendor simulators (Twilio, SMTP, Telegram, the Nominatim geocoder) on loopback, with a neighbourhood to work on.

The simulators are asyncio servers: they run on an event loop of their own in a background
thread, so that the tests themselves can drive the browser with Playwright's synchronous API.
``Stage.run`` runs a coroutine on that loop (an API call, a member replying by SMS) and
returns its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from config import Settings
from dispatcher.core.models import ActorIn, Role
from dispatcher.people.accounts import create_actor
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.simulators.nominatim import NominatimSimulator
from tests.simulators.oidc import OidcProvider, Person
from tests.simulators.smtp import SmtpSimulator
from tests.simulators.telegram import TelegramSimulator
from tests.simulators.twilio import TwilioSimulator
from tests.support import Workers, free_port, settings_env, start_web
from tests.world import ACCOUNT, AUTH_TOKEN, BOT_TOKEN, SMS_FROM, WEBHOOK_SECRET, world_settings

T = TypeVar("T")

#: Every channel for urgent alerts; no quiet hours, so that nothing depends on the time the tests run.
CHARTER = {
    "urgent": {"channels": ["sms", "email", "telegram", "voice"], "ttl_seconds": 3600},
    "non_urgent": {"channels": ["email", "telegram", "sms"], "mode": "first_that_works", "ttl_seconds": 86400},
    "police_feedback": {"channels": ["email", "telegram"], "mode": "first_that_works", "ttl_seconds": 86400},
}
PEOPLE = {
    "anne": {"name": "Anne Dubois", "phone": "0470 11 11 11", "email": "anne@example.org", "language": "fr"},
    "piet": {"name": "Piet Janssens", "phone": "0470 22 22 22", "language": "nl"},
    "lea": {"name": "Lea Schmitz", "email": "lea@example.org", "language": "de"},
    "john": {"name": "John Smith", "phone": "+32 470 44 44 44", "email": "john@example.org", "language": "en"},
}
TELEGRAM_CHATS = {"piet": 1001, "john": 1002}
PHONES = {"anne": "+32470111111", "piet": "+32470222222", "john": "+32470444444"}


#: Where the Parc coordinator's console sign-in links go.
COORDINATOR_EMAIL = "martin@plp-parc.example"


class ApiFailed(AssertionError):
    pass


@dataclass
class Stage:
    base: str
    settings: Settings
    loop: asyncio.AbstractEventLoop
    twilio: TwilioSimulator
    smtp: SmtpSimulator
    telegram: TelegramSimulator
    session: aiohttp.ClientSession
    nominatim: NominatimSimulator | None = None
    idp: OidcProvider | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    actors: dict[str, dict[str, Any]] = field(default_factory=dict)
    plps: dict[str, str] = field(default_factory=dict)  # "parc", "gare" -> PLP id
    members: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def console(self) -> str:
        return f"{self.base}/console"

    def run(self, work: Coroutine[Any, Any, T], *, timeout: float = 30) -> T:
        """Run a coroutine on the simulators' loop and return its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def api(self, method: str, path: str, *, who: str = "admin", body: Any = None, expect: int = 200) -> Any:
        """Call the API as ``who``; fails the test unless it answers ``expect``."""
        return self.run(self._api(method, path, who=who, body=body, expect=expect))

    async def _api(self, method: str, path: str, *, who: str, body: Any, expect: int) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        async with self.session.request(method, f"{self.base}{path}", json=body, headers=headers) as response:
            text = await response.text()
            if response.status != expect:
                raise ApiFailed(f"{method} {path}: {response.status} {text}")
            return json.loads(text) if text else None

    def with_store(self, work: Callable[[Store], Awaitable[T]]) -> T:
        """Run ``work`` with a store on the stage's Redis (to seed what no API writes: a delivery history)."""
        return self.run(self._with_store(work))

    async def _with_store(self, work: Callable[[Store], Awaitable[T]]) -> T:
        runtime = Runtime.from_settings(self.settings)
        redis = runtime.async_redis()
        try:
            return await work(Store(redis, runtime.keys))
        finally:
            await redis.aclose()
            runtime.rq_connection.close()
            runtime.sync_redis.close()

    def member_texts(self, name: str, body: str) -> tuple[int, str]:
        """The member sends an SMS to the service's number (an acknowledgement "OK", or anything they saw)."""
        url = f"{self.base}/v1/webhooks/twilio/sms"
        return self.run(self.twilio.incoming_sms(url, PHONES[name], SMS_FROM, body))

    async def seed(self, runtime: Runtime) -> None:
        """Actors, two PLPs of police zone 5340 with a coordinator each, and four members of PLP Parc using
        every channel between them (PLP Gare starts empty: the tests that add members do it there)."""
        redis = runtime.async_redis()
        try:
            store = Store(redis, runtime.keys)
            admin, self.tokens["admin"] = await create_actor(store, ActorIn(name="Admin", role=Role.ADMIN))
            police, self.tokens["police"] = await create_actor(
                store, ActorIn(name="Inspecteur Lambert", role=Role.POLICE, police_zone="5340")
            )
            self.actors |= {"admin": admin.model_dump(), "police": police.model_dump()}
            for key, name, commune in (("parc", "PLP Parc", "Uccle"), ("gare", "PLP Gare", "Ixelles")):
                body = {"name": name, "commune": commune, "police_zone": "5340", "charter": CHARTER}
                plp = await self._api("POST", "/v1/plps", who="admin", body=body, expect=201)
                self.plps[key] = plp["id"]
            coordinator, self.tokens["coordinator"] = await create_actor(
                store,
                ActorIn(
                    name="Coordinatrice Martin",
                    role=Role.COORDINATOR,
                    plp_ids=[self.plps["parc"]],
                    email=COORDINATOR_EMAIL,
                ),
            )
            self.actors["coordinator"] = coordinator.model_dump()
            gare, self.tokens["coordinator_gare"] = await create_actor(
                store, ActorIn(name="Coordinateur Peeters", role=Role.COORDINATOR, plp_ids=[self.plps["gare"]])
            )
            self.actors["coordinator_gare"] = gare.model_dump()
        finally:
            await redis.aclose()
        for name, person in PEOPLE.items():
            await self._enroll(name, person)

    async def _enroll(self, name: str, person: dict[str, Any]) -> None:
        plp = self.plps["parc"]
        member = await self._api("POST", f"/v1/plps/{plp}/members", who="coordinator", body=person, expect=201)
        if name in TELEGRAM_CHATS:
            path = f"/v1/plps/{plp}/members/{member['id']}/telegram-link"
            link = await self._api("POST", path, who="coordinator", body=None, expect=201)
            url = f"{self.base}/v1/webhooks/telegram"
            status, _ = await self.telegram.member_sends(
                url, TELEGRAM_CHATS[name], link["start_command"], secret=WEBHOOK_SECRET
            )
            assert status == 200
        self.members[name] = member


@contextlib.contextmanager
def open_stage(redis_url: str, data_dir: Path) -> Any:
    """The stage, torn down afterwards (processes stopped, the Redis database flushed)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="simulators", daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()

    def run(work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, loop).result(60)

    async def open_vendors() -> tuple[
        TwilioSimulator, SmtpSimulator, TelegramSimulator, NominatimSimulator, OidcProvider, aiohttp.ClientSession
    ]:
        twilio = await stack.enter_async_context(TwilioSimulator(account_sid=ACCOUNT, auth_token=AUTH_TOKEN))
        smtp = await stack.enter_async_context(SmtpSimulator())
        telegram = await stack.enter_async_context(TelegramSimulator(token=BOT_TOKEN))
        nominatim = await stack.enter_async_context(NominatimSimulator())
        idp = await stack.enter_async_context(OidcProvider(person=Person(COORDINATOR_EMAIL)))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        return twilio, smtp, telegram, nominatim, idp, session

    twilio, smtp, telegram, nominatim, idp, session = run(open_vendors())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = world_settings(
        redis_url,
        data_dir,
        base,
        key_prefix="plpconsole:",
        queue_prefix="plpconsole",
        twilio_api_base_url=twilio.base_url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        telegram_api_base_url=telegram.base_url,
        geocoder_url=nominatim.base_url,
        geocoder_rate=50,
        session_cookie_secure=False,  # the stage's console is plain http on loopback
        oidc_issuer=idp.issuer,
        oidc_client_id=idp.client_id,
        oidc_client_secret=idp.client_secret,
        oidc_name="IRISbox",
    )
    runtime = Runtime.from_settings(settings)
    runtime.rq_connection.flushdb()
    web = _start_web(settings, port)  # answering when it returns
    workers = Workers(settings, python=sys.executable)
    try:
        for lane in ("urgent", "general", "clock"):
            workers.start(lane)
        stage = Stage(base, settings, loop, twilio, smtp, telegram, session, nominatim, idp)
        run(stage.seed(runtime))
        yield stage
    finally:
        workers.stop()
        web.terminate()
        web.wait(timeout=15)
        run(stack.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        runtime.rq_connection.flushdb()
        runtime.close()


def _start_web(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **settings_env(settings),
        "REDIS_URL": settings.redis_url or "",
        "PLP_LOG_FORMAT": "json",
        "PLP_LOG_LEVEL": "WARNING",
        "PLP_RATE_LIMIT_PER_TOKEN": "0",
        "PLP_RATE_LIMIT_PER_ADDRESS": "0",
    }
    process, _ = start_web(env, settings.data_dir / "web.log", port=port)
    return process
