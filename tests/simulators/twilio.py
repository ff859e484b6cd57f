"""Twilio's REST API on loopback, for tests driven by the real ``twilio`` library.

It speaks the subset the channels use: creating Messages and Calls (form-encoded, HTTP
basic auth with the account SID and auth token, Twilio-shaped JSON answers and errors).
What it accepts goes into ``ledger``; what a test wants to go wrong goes into
``failures`` (by "To" number), ``drop``, ``latency``, ``undelivered``, ``answered_by`` and
``call_outcomes``, and faults at random rates into ``faults`` (a ``FaultPlan``, keyed by
the message: "To" plus body or TwiML; what it did is in ``injected``; see
``tests.simulators.faults`` for what each kind does). ``duplicates()``
counts messages accepted more than once, ``in_flight`` the requests being answered.
After accepting a message or a call it posts Twilio's status callbacks, signed with
``X-Twilio-Signature`` as Twilio signs them, as background tasks a test waits for with
``callbacks_done()``. A webhook URL's connection overrides (``#rc=5&rp=all``) are honoured
as Twilio documents them: ``rc`` retries (0 to 5) of an answer that ``rp`` names (``4xx``,
``5xx``, ``ct``: no connection, ``rt``: no answer, or ``all``), each retry carrying the same
``I-Twilio-Idempotency-Token``; without them nothing is retried here. ``incoming_sms`` and
``press_digits`` post signed inbound traffic (``forge=True`` signs with the wrong key)::

    async with TwilioSimulator(account_sid=ACCOUNT, auth_token=TOKEN) as sim:
        settings = Settings(twilio_api_base_url=sim.base_url, ...)
        ...
        await sim.callbacks_done()
        assert [(r.kind, r.to) for r in sim.ledger] == [("sms", "+32470123456")]
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import secrets
import time
from collections import Counter
from collections.abc import Coroutine, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from types import TracebackType
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.simulators.faults import Fault, FaultPlan, Injected, duplicates
from tests.simulators.meter import RateMeter

API_VERSION = "2010-04-01"
#: The StatusCallbackEvent that asks for each call status; every other status ends the call ("completed").
_EVENT_OF = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}

Kind = Literal["sms", "call"]


class Failure(NamedTuple):
    """How the simulator refuses a request for one "To" number (a plain 3-tuple works too)."""

    status: int  # HTTP status
    code: int | None  # Twilio error code, in the JSON body
    message: str
    retry_after: str | None = None  # Retry-After header, if any


@dataclass(slots=True)
class Callback:
    """One status callback the simulator posted, and the HTTP status the application answered."""

    url: str
    params: dict[str, str]
    answered: int | None = None  # None: no answer (connection refused or reset)
    tries: list[int | None] = field(default_factory=list)  # every answer, retries included


#: Seconds between two tries of a webhook that its connection overrides retry.
RETRY_PAUSE = 0.5


def _retries(url: str) -> tuple[int, frozenset[str]]:
    """The retry count and the failures retried that a URL's connection overrides (its fragment) ask for."""
    overrides = parse_qs(urlsplit(url).fragment)
    count = min(5, int(overrides.get("rc", ["0"])[0]))
    policy = frozenset(",".join(overrides.get("rp", ["ct"])).split(","))
    return count, frozenset({"4xx", "5xx", "ct", "rt"}) if "all" in policy else policy


def _failure(answered: int | None) -> str | None:
    """The class of failure of an answer, as a retry policy names it (None: a success)."""
    if answered is None:
        return "ct"
    return f"{answered // 100}xx" if answered >= 400 else None


@dataclass(slots=True)
class Accepted:
    """One request the simulator accepted (answered 201), as the library sent it."""

    kind: Kind
    sid: str
    to: str
    from_: str | None
    body: str | None  # SMS
    twiml: str | None  # call
    status_callback: str | None
    messaging_service_sid: str | None
    params: dict[str, list[str]]  # every parameter as posted; repeated names keep each value
    at: datetime
    callbacks: list[Callback] = field(default_factory=list)
    received_at: float = 0.0  # Unix time the request arrived (``at`` is when it was accepted)
    late: bool = False  # accepted, but answered after the client's timeout (a TIMEOUT fault)

    @property
    def message_key(self) -> tuple[str, str, str]:
        """What makes two accepted requests the same message to a person: kind, "To", body or TwiML."""
        return (self.kind, self.to, (self.body if self.kind == "sms" else self.twiml) or "")


class TwilioSimulator:
    """A Twilio API server on ``host`` (127.0.0.1) and ``port`` (0: a free one), used as an async context manager."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        latency: float = 0.0,
        callbacks: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.host, self.port = host, port
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.latency = latency  # seconds before answering a create request
        self.callbacks = callbacks  # post status callbacks after accepting
        self.failures: dict[str, Failure | tuple[Any, ...]] = {}  # "To" number -> Failure(...) or its tuple
        self.drop: set[str] = set()  # numbers whose request is read, then the connection closed unanswered
        self.undelivered: set[str] = set()  # SMS: "sent" then "undelivered" (ErrorCode 30005)
        self.answered_by: dict[str, str] = {}  # call: AnsweredBy per number (default "human")
        self.call_outcomes: dict[str, str] = {}  # call: "no-answer", "busy" or "failed" per number
        self.call_duration = 12  # seconds, in the "completed" callback
        self.faults: FaultPlan | None = None  # random faults by rate (see tests.simulators.faults)
        self.injected: list[Injected] = []  # every fault acted out, in order
        self.in_flight = 0  # create requests received and not answered yet
        self.received: list[tuple[str, float]] = []  # ("To", Unix time) of every create request, whatever its answer
        self.ledger: list[Accepted] = []
        self.meters: dict[str, RateMeter] = {}  # the rates enforced (see ``limit``), by sender or "calls"
        self._sms_rate: float | None = None
        self._call_rate: float | None = None
        self.base_url = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors: list[BaseException] = []
        self._closing = asyncio.Event()
        self._accepted = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"TwilioSimulator(base_url={self.base_url!r}, accepted={len(self.ledger)})"

    async def __aenter__(self) -> TwilioSimulator:
        app = web.Application()
        accounts = f"/{API_VERSION}/Accounts/{{account_sid}}"
        app.router.add_post(f"{accounts}/Messages.json", self._create_message)
        app.router.add_post(f"{accounts}/Calls.json", self._create_call)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.base_url = f"http://{self.host}:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._closing.set()  # releases requests still held by the latency
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def messages(self) -> list[Accepted]:
        return [record for record in self.ledger if record.kind == "sms"]

    @property
    def calls(self) -> list[Accepted]:
        return [record for record in self.ledger if record.kind == "call"]

    def duplicates(self) -> Counter[Hashable]:
        """Messages accepted more than once (same kind, "To" and body or TwiML), with the count of extras."""
        return duplicates(record.message_key for record in self.ledger)

    async def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[Accepted]:
        """The SMS accepted once there are at least ``count``; ``TimeoutError`` after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            while True:
                self._accepted.clear()
                if len(self.messages) >= count:
                    return self.messages
                await self._accepted.wait()

    async def callbacks_done(self, timeout: float = 5.0) -> None:
        """Wait until every status callback started so far has been posted and answered.

        Raises ``TimeoutError`` after ``timeout`` seconds, and re-raises a failure of the simulator itself.
        """
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*self._tasks)
        if self._errors:
            raise self._errors[0]

    async def incoming_sms(self, url: str, from_: str, to: str, body: str, *, forge: bool = False) -> tuple[int, str]:
        """Post an inbound SMS to ``url`` as Twilio does; returns the HTTP status and text answered."""
        params = {
            "MessageSid": _sid("SM"),
            "AccountSid": self.account_sid,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
        }
        return await self.post_signed(url, params, forge=forge)

    async def press_digits(
        self,
        url: str,
        call_sid: str,
        digits: str,
        from_: str,
        to: str,
        *,
        answered_by: str | None = None,
        forge: bool = False,
    ) -> tuple[int, str]:
        """Post the digits pressed in a call (a <Gather> action) to ``url``; returns status and text answered.

        ``answered_by``: the call's ``AnsweredBy`` (answering machine detection), sent along if given.
        """
        params = {"CallSid": call_sid, "Digits": digits, "From": from_, "To": to, "AccountSid": self.account_sid}
        if answered_by is not None:
            params["AnsweredBy"] = answered_by
        return await self.post_signed(url, params, forge=forge)

    async def post_signed(
        self, url: str, params: dict[str, str], *, forge: bool = False, token: str | None = None
    ) -> tuple[int, str]:
        """Post form data signed as Twilio signs it (with a wrong key if ``forge``; the whole URL as given, its
        fragment included, while the fragment itself is never sent), with the idempotency ``token`` Twilio gives
        each webhook and its retries, if given; returns status and text."""
        key = f"not-{self.auth_token}" if forge else self.auth_token
        headers = {
            "X-Twilio-Signature": RequestValidator(key).compute_signature(url, params),
            "User-Agent": "TwilioProxy/1.1",
        } | ({"I-Twilio-Idempotency-Token": token} if token else {})
        assert self._session is not None, "use the simulator as an async context manager"
        async with self._session.post(url, data=params, headers=headers) as response:
            return response.status, await response.text()

    # -- the REST API ----------------------------------------------------------------------

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "sms")

    async def _create_call(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "call")

    async def _create(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        received_at = time.time()
        if not hmac.compare_digest(
            request.headers.get("Authorization", ""), _basic_authorization(self.account_sid, self.auth_token)
        ):
            return _error(Failure(401, 20003, "Authenticate"))
        if request.match_info["account_sid"] != self.account_sid:
            return _error(Failure(404, 20404, "The requested resource was not found"))
        form = await request.post()
        params = {name: [str(value) for value in form.getall(name)] for name in dict.fromkeys(form.keys())}
        self.in_flight += 1
        try:
            return await self._answer(request, kind, params, received_at)
        finally:
            self.in_flight -= 1

    async def _answer(
        self, request: web.Request, kind: Kind, params: dict[str, list[str]], received_at: float
    ) -> web.StreamResponse:
        to = _first(params, "To") or ""
        self.received.append((to, received_at))
        # A number set to fail for good fails the same way every time, whatever the random faults.
        fault = None if to in self.failures else self._draw_fault(kind, to, params)
        if fault is Fault.THROTTLE:  # refused at the door, before any latency: never processed
            assert self.faults is not None
            return _error(Failure(429, 20429, "Too Many Requests", str(self.faults.retry_after)))
        if not self._within_rate(kind, params, received_at):
            return _error(Failure(429, 20429, "Too Many Requests", "1"))
        if self.latency and not await self._held(self.latency):
            return _error(Failure(503, None, "Service unavailable"))
        if (to in self.drop or fault is Fault.RESET) and request.transport is not None:
            # Read, then gone: the client cannot know whether the request was processed.
            request.transport.close()
            return web.Response(status=500)  # never reaches the client
        if fault is Fault.SERVER_ERROR:
            return _error(Failure(503, 20503, "Service unavailable"))
        if to in self.failures:
            return _error(Failure(*self.failures[to]))
        refusal = _refusal(kind, params)
        if refusal is not None:
            return _error(refusal)
        record = self._accept(kind, params, received_at=received_at, late=fault is Fault.TIMEOUT)
        if fault is Fault.TIMEOUT:
            assert self.faults is not None
            await self._held(self.faults.hold)  # the message is on its way; the answer comes too late
        if fault is Fault.TAKEN_THEN_RESET and request.transport is not None:
            request.transport.close()  # the message is on its way; the answer never comes
            return web.Response(status=500)  # never reaches the client
        if fault is Fault.TAKEN_THEN_ERROR:
            return _error(Failure(500, 20500, "Internal server error"))  # the message is on its way all the same
        return web.json_response(_resource(record, self.account_sid), status=201)

    def limit(self, *, sms_per_sender: float | None = None, calls: float | None = None) -> None:
        """Enforce Twilio's rates from now on: SMS per sender number ("From"), calls per account."""
        self._sms_rate, self._call_rate = sms_per_sender, calls
        self.meters.clear()

    @property
    def refused_for_rate(self) -> int:
        return sum(meter.refused for meter in self.meters.values())

    def _within_rate(self, kind: Kind, params: dict[str, list[str]], arrived: float) -> bool:
        """Whether a request that arrived at ``arrived`` (Unix time, as it came in) is within its rate."""
        rate = self._sms_rate if kind == "sms" else self._call_rate
        if rate is None:
            return True
        name = f"sms:{_first(params, 'From') or _first(params, 'MessagingServiceSid')}" if kind == "sms" else "calls"
        meter = self.meters.get(name)
        if meter is None:
            meter = self.meters[name] = RateMeter(rate)
        return meter.admit(arrived)

    def _draw_fault(self, kind: Kind, to: str, params: dict[str, list[str]]) -> Fault | None:
        if self.faults is None:
            return None
        key = (kind, to, (_first(params, "Body") if kind == "sms" else _first(params, "Twiml")) or "")
        fault = self.faults.draw(key, destination=to)
        if fault is not None:
            self.injected.append(Injected(fault, key, time.time()))
        return fault

    async def _held(self, seconds: float) -> bool:
        """Hold a request for ``seconds``; False if the simulator closes first."""
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            return True
        return False

    def _accept(
        self, kind: Kind, params: dict[str, list[str]], *, received_at: float = 0.0, late: bool = False
    ) -> Accepted:
        record = Accepted(
            kind=kind,
            sid=_sid("SM" if kind == "sms" else "CA"),
            to=_first(params, "To") or "",
            from_=_first(params, "From"),
            body=_first(params, "Body"),
            twiml=_first(params, "Twiml"),
            status_callback=_first(params, "StatusCallback"),
            messaging_service_sid=_first(params, "MessagingServiceSid"),
            params=params,
            at=datetime.now(UTC),
            received_at=received_at,
            late=late,
        )
        self.ledger.append(record)
        self._accepted.set()
        if self.callbacks and record.status_callback:
            progress = self._message_progress(record) if kind == "sms" else self._call_progress(record)
            self._spawn(self._call_back(record, progress))
        return record

    # -- status callbacks --------------------------------------------------------------------

    def _message_progress(self, record: Accepted) -> list[dict[str, str]]:
        common = {
            "MessageSid": record.sid,
            "SmsSid": record.sid,
            "AccountSid": self.account_sid,
            "To": record.to,
            "ApiVersion": API_VERSION,
        }
        if record.from_:
            common["From"] = record.from_
        if record.messaging_service_sid:
            common["MessagingServiceSid"] = record.messaging_service_sid
        end = "undelivered" if record.to in self.undelivered else "delivered"
        sent = {**common, "MessageStatus": "sent", "SmsStatus": "sent"}
        last = {**common, "MessageStatus": end, "SmsStatus": end}
        if end == "undelivered":
            last["ErrorCode"] = "30005"  # unknown destination handset
        return [sent, last]

    def _call_progress(self, record: Accepted) -> list[dict[str, str]]:
        common = {
            "CallSid": record.sid,
            "AccountSid": self.account_sid,
            "From": record.from_ or "",
            "To": record.to,
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
            "CallbackSource": "call-progress-events",
        }
        outcome = self.call_outcomes.get(record.to, "completed")
        steps = [{"CallStatus": "initiated"}, {"CallStatus": "ringing"}]
        if outcome == "completed":
            answered_by = {"AnsweredBy": self.answered_by.get(record.to, "human")}
            steps.append({"CallStatus": "in-progress", **answered_by})
            steps.append({"CallStatus": "completed", "CallDuration": str(self.call_duration), **answered_by})
        else:
            steps.append({"CallStatus": outcome, "CallDuration": "0"})
        # Twilio calls back only the events asked for, and the end of the call in any case.
        wanted = {*record.params.get("StatusCallbackEvent", []), "completed"}
        steps = [step for step in steps if _EVENT_OF.get(step["CallStatus"], "completed") in wanted]
        return [{**common, **step, "SequenceNumber": str(n)} for n, step in enumerate(steps)]

    async def _call_back(self, record: Accepted, progress: list[dict[str, str]]) -> None:
        assert record.status_callback is not None
        for params in progress:
            callback = Callback(url=record.status_callback, params=params)
            record.callbacks.append(callback)
            await self.deliver(callback)

    async def deliver(self, callback: Callback) -> None:
        """Post a webhook, and retry it as its URL's connection overrides say, with one idempotency token."""
        count, policy = _retries(callback.url)
        token = secrets.token_hex(16)
        for attempt in range(count + 1):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE)  # Twilio's pause between tries
            try:
                callback.answered, _ = await self.post_signed(callback.url, callback.params, token=token)
            except aiohttp.ClientError:
                callback.answered = None
            callback.tries.append(callback.answered)
            if _failure(callback.answered) not in policy:
                return

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self._errors.append(error)


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _basic_authorization(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _refusal(kind: Kind, params: dict[str, list[str]]) -> Failure | None:
    """Twilio's answer to a create request missing what it needs, or None."""
    if not _first(params, "To"):
        return Failure(400, 21604, "A 'To' phone number is required.")
    if kind == "sms" and not (_first(params, "From") or _first(params, "MessagingServiceSid")):
        return Failure(400, 21603, "A 'From' phone number is required.")
    if kind == "sms" and not (_first(params, "Body") or _first(params, "MediaUrl")):
        return Failure(400, 21602, "Message body is required.")
    if kind == "call" and not _first(params, "From"):
        return Failure(400, 21213, "Caller phone number is required")
    if kind == "call" and not (_first(params, "Twiml") or _first(params, "Url")):
        return Failure(400, 21205, "Url parameter is required.")
    return None


def _error(failure: Failure) -> web.Response:
    body: dict[str, Any] = {"message": failure.message, "status": failure.status}
    if failure.code is not None:
        body |= {"code": failure.code, "more_info": f"https://www.twilio.com/docs/errors/{failure.code}"}
    headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
    return web.json_response(body, status=failure.status, headers=headers)


def _resource(record: Accepted, account_sid: str) -> dict[str, Any]:
    """The JSON Twilio answers for a newly created Message or Call."""
    created = format_datetime(record.at)
    folder = "Messages" if record.kind == "sms" else "Calls"
    common = {
        "sid": record.sid,
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "to": record.to,
        "from": record.from_,
        "status": "queued",
        "direction": "outbound-api",
        "date_created": created,
        "date_updated": created,
        "price": None,
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/{folder}/{record.sid}.json",
    }
    if record.kind == "sms":
        return common | {
            "body": record.body,
            "messaging_service_sid": record.messaging_service_sid,
            "num_segments": "1",
            "num_media": "0",
            "date_sent": None,
            "error_code": None,
            "error_message": None,
        }
    return common | {"start_time": None, "end_time": None, "duration": None, "answered_by": None, "queue_time": "0"}
