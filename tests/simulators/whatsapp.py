"""The WhatsApp Business Cloud API on loopback (aiohttp), for tests driven by the real ``pywa`` client.

    async with WhatsAppSimulator(token="tok", phone_id="1001", app_secret="s3cret") as wa:
        settings = Settings(whatsapp_token="tok", whatsapp_phone_id="1001", whatsapp_api_base_url=wa.base_url)
        ...
        [sent] = wa.ledger
        status, _ = await wa.member_presses(webhook_url, sent, index=0)

It speaks what the channel uses: ``POST /v<version>/<phone id>/messages`` with a template
message (Bearer token, JSON), answered as the Cloud API does (``contacts`` and ``messages`` with
a ``wamid``), or with the Graph API's error object. Only the registered templates are accepted
(``templates``: (name, language); by default every one of ``channels.whatsapp.templates``);
another gets 132001. What a test wants to go wrong goes into ``failures`` (by number: HTTP status,
error code, and a Retry-After if any), ``throttle_once`` (number -> error code, once) or ``hold``
(numbers whose messages are taken and never answered). ``latency`` (seconds) delays every answer;
``limit`` enforces the business number's throughput and each user's pair limit on what arrives
(refused with 130429 and 131056, counted in ``refused_for_rate``); ``received`` notes the number and
arrival time of every request, refused ones included.

With ``webhook_url`` set, each accepted message's statuses (``progress``: by default "sent" then
"delivered") are posted back, signed with ``X-Hub-Signature-256`` under ``app_secret`` as Meta
signs them, as background tasks a test waits for with ``callbacks_done()``; ``post`` posts any
webhook body (``forge=True`` signs with the wrong key), and ``member_presses``, ``member_writes``
and ``status`` build the Cloud API's shapes for a member's button, text and a status.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

from channels.whatsapp.templates import registrations
from tests.simulators.meter import RateMeter

HOST = "127.0.0.1"


class Failure(NamedTuple):
    """How the simulator refuses a message to one number."""

    status: int  # HTTP status
    code: int  # the Graph API's error code
    message: str = "refused"
    retry_after: float | None = None  # a Retry-After header, if any


@dataclass(frozen=True, slots=True)
class Accepted:
    """A template message the simulator took."""

    wamid: str
    to: str  # digits, as the API receives them
    name: str  # the template's ("" for a plain text)
    language: str
    parameter: str  # the body's text parameter (a plain text's body)
    payloads: tuple[str, ...]  # the quick replies' payloads, by index
    tracker: str  # biz_opaque_callback_data
    body: dict[str, Any] = field(repr=False, default_factory=dict)
    received_at: float = 0.0  # Unix time the request arrived


class WhatsAppSimulator:
    """A Cloud API server on ``host`` (127.0.0.1) and a free port, for one business number, for one test."""

    def __init__(
        self,
        *,
        token: str = "wa-token",
        phone_id: str = "1001",
        app_secret: str = "app-secret",
        prefix: str = "plp",
        webhook_url: str | None = None,
        progress: Iterable[str] = ("sent", "delivered"),
        host: str = HOST,
        latency: float = 0.0,
    ) -> None:
        self.token, self.phone_id, self.app_secret = token, phone_id, app_secret
        self.host = host
        self.webhook_url = webhook_url
        self.progress = tuple(progress)
        self.latency = latency
        self.meter: RateMeter | None = None  # the business number's throughput, when enforced
        self.per_user: float | None = None  # each user's messages a second (the pair limit), when enforced
        self.user_meters: dict[str, RateMeter] = {}
        self.received: list[tuple[str, float]] = []  # (number, Unix time) of every request, refused ones too
        self.templates: set[tuple[str, str]] = {(t["name"], t["language"]) for t in registrations(prefix)}
        self.failures: dict[str, Failure] = {}
        self.throttle_once: dict[str, int] = {}
        self.hold: set[str] = set()  # numbers whose messages are taken and never answered (a read timeout)
        self.ledger: list[Accepted] = []
        self.refused: list[tuple[str, int]] = []  # (number, error code) of every refusal
        self.posted: list[tuple[int, dict[str, Any]]] = []  # (status answered, body) of every webhook posted
        self.base_url = ""
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WhatsAppSimulator:
        app = web.Application()
        app.router.add_post("/v{version}/{phone_id}/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.base_url = f"http://{self.host}:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def callbacks_done(self, timeout: float = 5.0) -> None:
        """Wait until every status webhook posted so far has been answered."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the messages endpoint -----------------------------------------------------------------

    def limit(self, *, per_second: float | None, per_user: float | None = None) -> None:
        """Enforce the Cloud API's rates from now on: the business number's, and each user's (None: none)."""
        self.meter = RateMeter(per_second) if per_second else None
        self.per_user = per_user
        self.user_meters.clear()

    @property
    def refused_for_rate(self) -> int:
        """Messages refused for the business number's throughput (130429) or a user's pair limit (131056)."""
        return (self.meter.refused if self.meter else 0) + sum(m.refused for m in self.user_meters.values())

    @property
    def refused_by_limit(self) -> dict[str, int]:
        """The refusals of ``refused_for_rate`` by the limit that refused: the business number's, or a user's."""
        return {
            "number": self.meter.refused if self.meter else 0,
            "pair": sum(m.refused for m in self.user_meters.values()),
        }

    def _over_rate(self, to: str, arrived: float) -> Failure | None:
        """The refusal of a message that arrived at ``arrived`` (Unix time, as it came in) beyond a rate; None."""
        if self.meter is not None and not self.meter.admit(arrived):
            return Failure(400, 130429, "Rate limit hit", 1.0)
        if self.per_user is None:
            return None
        meter = self.user_meters.get(to)
        if meter is None:
            meter = self.user_meters[to] = RateMeter(self.per_user, burst=1)
        return (
            None
            if meter.admit(arrived)
            else Failure(400, 131056, "(Business Account, Consumer Account) pair rate limit")
        )

    async def _messages(self, request: web.Request) -> web.Response:
        received_at = time.time()
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(Failure(401, 190, "Invalid OAuth access token"))
        if request.match_info["phone_id"] != self.phone_id:
            return _error(Failure(400, 100, "Unsupported post request: unknown phone number id"))
        body = await request.json()
        to = str(body.get("to", ""))
        self.received.append((to, received_at))
        template = body.get("template") or {}
        name, language = template.get("name", ""), (template.get("language") or {}).get("code", "")
        refusal = self.failures.get(to) or self._over_rate(to, received_at)
        if refusal is None and (code := self.throttle_once.pop(to, None)) is not None:
            refusal = Failure(429 if code == 130429 else 400, code, "rate limit hit", 2.0 if code == 130429 else None)
        if refusal is None and body.get("type") == "template" and (name, language) not in self.templates:
            refusal = Failure(404, 132001, f"Template name does not exist in the translation ({name}, {language})")
        if refusal is not None:
            self.refused.append((to, refusal.code))
            return _error(refusal)
        components = template.get("components") or []
        text = next(
            (c["parameters"][0]["text"] for c in components if c.get("type") == "body" and c.get("parameters")),
            (body.get("text") or {}).get("body", ""),  # a plain text message (a reply within the window)
        )
        payloads = tuple(c["parameters"][0]["payload"] for c in components if c.get("type") == "button")
        record = Accepted(
            wamid=f"wamid.SIM{next(self._ids):08d}",
            to=to,
            name=name,
            language=language,
            parameter=text,
            payloads=payloads,
            tracker=str(body.get("biz_opaque_callback_data", "")),
            body=body,
            received_at=received_at,
        )
        if self.latency:
            await asyncio.sleep(self.latency)  # the provider's own time to answer
        self.ledger.append(record)
        if to in self.hold:
            await self._closing.wait()  # taken, and no answer until the simulator stops
        if self.webhook_url is not None:
            self._spawn(self._report(record))
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": record.wamid, "message_status": "accepted"}],
        }
        return web.json_response(answer)

    async def _report(self, record: Accepted) -> None:
        assert self.webhook_url is not None
        for status in self.progress:
            await self.post(self.webhook_url, self.status(record, status))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- webhooks ------------------------------------------------------------------------------

    def sign(self, body: bytes, *, forge: bool = False) -> str:
        """The ``X-Hub-Signature-256`` of ``body`` under the app's secret (a wrong one with ``forge``)."""
        key = (self.app_secret + ("-forged" if forge else "")).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    async def post(
        self, url: str, update: dict[str, Any], *, forge: bool = False, signature: str | None = None
    ) -> tuple[int, str]:
        """Post a webhook, signed as Meta signs it (``signature`` overrides the header); its status and body."""
        assert self._session is not None
        body = json.dumps(update).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature or self.sign(body, forge=forge)}
        async with self._session.post(url, data=body, headers=headers) as response:
            text = await response.text()
            self.posted.append((response.status, update))
            return response.status, text

    def envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        """A webhook body carrying one change of the ``messages`` field."""
        value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": self.phone_id}} | value
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA-1", "changes": [{"field": "messages", "value": value}]}],
        }

    def status(self, record: Accepted, status: str, *, code: int | None = None) -> dict[str, Any]:
        """A status of an accepted message (``code``: a failure's error code)."""
        item: dict[str, Any] = {
            "id": record.wamid,
            "status": status,
            "timestamp": "1700000000",
            "recipient_id": record.to,
            "biz_opaque_callback_data": record.tracker,
        }
        if code is not None:
            item["errors"] = [{"code": code, "title": "failed", "error_data": {"details": f"error {code}"}}]
        return self.envelope({"statuses": [item]})

    def pressed(self, record: Accepted, index: int) -> dict[str, Any]:
        """The member pressing quick reply ``index`` of an accepted message."""
        message = {
            "from": record.to,
            "id": f"wamid.IN{next(self._ids):08d}",
            "timestamp": "1700000001",
            "type": "button",
            "context": {"from": self.phone_id, "id": record.wamid},
            "button": {"payload": record.payloads[index], "text": str(index)},
        }
        return self.envelope({"contacts": [{"wa_id": record.to}], "messages": [message]})

    def written(self, number: str, text: str) -> dict[str, Any]:
        """The member at ``number`` (digits) writing ``text``."""
        message = {
            "from": number,
            "id": f"wamid.IN{next(self._ids):08d}",
            "timestamp": "1700000002",
            "type": "text",
            "text": {"body": text},
        }
        return self.envelope({"contacts": [{"wa_id": number}], "messages": [message]})


def _error(failure: Failure) -> web.Response:
    error = {
        "error": {
            "message": failure.message,
            "type": "OAuthException",
            "code": failure.code,
            "error_data": {"messaging_product": "whatsapp", "details": failure.message},
            "fbtrace_id": "SIMTRACE",
        }
    }
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
    return web.json_response(error, status=failure.status, headers=headers)
