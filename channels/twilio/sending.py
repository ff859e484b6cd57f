"""Sending through Twilio: SMS and voice calls through one Twilio account.

``TwilioSmsChannel`` creates Message resources; ``TwilioVoiceChannel`` creates Call resources
that play the dispatcher's ``CallScript`` as TwiML (``channels.twilio.twiml``). Both only hand
the message over: the receipt says ``SENT`` and Twilio's signed status callbacks tell the rest
(``channels.twilio.inbound``), at the URLs each message gives it.

Every failure of the library, of aiohttp and of the clock is translated in ``_translate``::

    Twilio error 21211, 21610, 21614        PermanentError, with a reason of its own
    Twilio error 20003, HTTP 401            NotConfigured (the credentials are refused)
    Twilio error 20429, HTTP 429            RateLimited (Retry-After, else 1 s)
    any other HTTP 4xx                      PermanentError, with Twilio's words
    HTTP 5xx, timeouts, connection errors   TransientError

A transient failure may have created the message or the call (``may_have_sent``) when the
request had been handed to the connection whole and no answer came back (a reset, a
connection closed, our bound on the call), or when Twilio answered a server error after
which it may have acted (500, 502, 504; not 503, see ``server_may_have_acted``). No
connection, or no free connection in the pool before the bound: nothing was sent. Each call
notes how far it got (``_Exchange``) from aiohttp's request tracing.

The HTTP client is made on the first send, inside the event loop that sends (RQ runs each
job in a fresh loop), and closed by ``close``. The auth token stays a ``SecretStr`` until
the client is made, and appears in no repr.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from channels.base import (
    ChannelError,
    Configurable,
    MessageForm,
    NotConfigured,
    OutboundMessage,
    PermanentError,
    Rate,
    RateLimited,
    Receipt,
    ReceiptStatus,
    TransientError,
    server_may_have_acted,
)
from channels.inbound import Inbound
from channels.twilio import twiml
from channels.twilio.inbound import STATUS, VOICE, TwilioInbound, callback_url
from config import Settings
from dispatcher.core.models import Contact

#: Longest SMS body Twilio accepts; it splits it into segments on the way.
SMS_MAX_BODY = 1600
#: Call progress events asked for: without them Twilio only calls back when the call is over.
CALL_PROGRESS_EVENTS = ("initiated", "ringing", "answered", "completed")
#: Answering machine detection that waits for the end of the greeting, so a voicemail records the whole message.
MACHINE_DETECTION = "DetectMessageEnd"
#: Seconds to wait after a 429 that does not say how long.
DEFAULT_RETRY_AFTER = 1.0

# Twilio error codes (https://www.twilio.com/docs/api/errors) that say why a number will not work.
_UNREACHABLE = {
    21211: "number not valid",
    21610: "replied STOP to the operator",
    21614: "not a mobile number",
}
_AUTHENTICATION_FAILED = 20003
_TOO_MANY_REQUESTS = 20429
_VENDOR_ERRORS = (TwilioRestException, TwilioServiceException, TimeoutError, aiohttp.ClientError, ConnectionError)
# The library falls back to os.environ (TWILIO_EDGE, TWILIO_REGION rewrite the API host) when it is
# given no environment; configuration is read in config/ only, so it gets one that sets nothing.
_NO_ENVIRONMENT = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}


@dataclass
class _Exchange:
    """How far one API call got: its body handed to the connection, and a 429's Retry-After.

    TwilioRestException carries neither, so the HTTP client notes them here for ``_translate``.
    """

    written: bool = False
    retry_after: float | None = None


#: The exchange of the call running in this task (set by ``_TwilioChannel._create``); the context
#: variable keeps concurrent sends apart, and aiohttp's body-writing task sees the same object.
_exchange: ContextVar[_Exchange | None] = ContextVar("twilio_exchange", default=None)


async def _body_going_out(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
    """aiohttp's ``on_request_chunk_sent``: the request's body is being written, right after this returns."""
    if (exchange := _exchange.get()) is not None:
        exchange.written = True


def _write_tracing() -> aiohttp.TraceConfig:
    tracing = aiohttp.TraceConfig()
    tracing.on_request_chunk_sent.append(_body_going_out)
    return tracing


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    """The Twilio account the channels send through, and the bound on each API call (seconds)."""

    sid: str
    auth_token: SecretStr
    api_base_url: str = "https://api.twilio.com"
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioAccount:
        """The account in the settings. Raises ``NotConfigured`` when the SID or the token is missing."""
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise NotConfigured("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not both set")
        return cls(
            sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
            timeout=settings.provider_timeout,
        )


class _HttpClient(AsyncTwilioHttpClient):
    """The library's aiohttp client, sending credentials as a header, noting how far each call got."""

    def __init__(self) -> None:
        super().__init__(trace_configs=[_write_tracing()])

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        if auth is not None:
            # aiohttp 3.14 deprecates auth= and BasicAuth (gone in 4.0): send the same header ourselves.
            headers = {**(headers or {}), "Authorization": _basic_authorization(*auth)}
        response = await super().request(
            method, url, params=params, data=data, headers=headers, timeout=timeout, allow_redirects=allow_redirects
        )
        if response.status_code == 429 and (exchange := _exchange.get()) is not None:
            exchange.retry_after = _seconds(response.headers.get("Retry-After"))
        return response


def _basic_authorization(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds; the HTTP-date form, which Twilio is not known to send, counts as absent."""
    try:
        return max(0.0, float(retry_after)) if retry_after else None
    except ValueError:
        return None


def _translate(exc: Exception, *, written: bool = False, retry_after: float | None = None) -> ChannelError:
    """The channel error that says whose fault ``exc`` is (see the table in the module docstring).

    ``written``: the request's body had been handed to the connection; ``retry_after``: what a 429 asked.
    """
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status, code = exc.status, exc.code
        if code in _UNREACHABLE:
            return PermanentError(_UNREACHABLE[code])
        if code == _AUTHENTICATION_FAILED or status == 401:
            return NotConfigured("Twilio refused the credentials")
        if code == _TOO_MANY_REQUESTS or status == 429:
            # Refused before processing: safe to send again once the delay is over.
            delay = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
            return RateLimited("Twilio is rate limiting the account", retry_after=delay)
        if 400 <= status < 500:
            return PermanentError(_plain_words(exc))
        if server_may_have_acted(status):
            return TransientError(f"Twilio answered HTTP {status}; the message may have gone out", may_have_sent=True)
        return TransientError(f"Twilio answered HTTP {status}")
    if not written:  # no connection, or none free before the bound: the request never left
        if isinstance(exc, TimeoutError):
            return TransientError("Twilio could not be reached in time; nothing was sent")
        return TransientError(f"could not connect to Twilio ({type(exc).__name__}); nothing was sent")
    # No answer to a request that went out: Twilio may have accepted it, so the message may have
    # gone, and sending again may deliver it twice.
    if isinstance(exc, TimeoutError):
        return TransientError("Twilio did not answer in time; the message may have gone out", may_have_sent=True)
    return TransientError(
        f"the connection to Twilio broke ({type(exc).__name__}); the message may have gone out", may_have_sent=True
    )


def _plain_words(exc: TwilioRestException | TwilioServiceException) -> str:
    """Twilio's own message for a refusal, without the library's prefix, short enough for a coordinator."""
    if isinstance(exc, TwilioServiceException):
        words = exc.detail or exc.title
    else:
        words = str(exc.msg).removeprefix("Unable to create record: ")
    return f"refused by Twilio (error {exc.code}): {words}"[:200]


def _round_robin(numbers: tuple[str, ...]) -> Iterator[str]:
    """Cycle through the numbers from a random one, so that short jobs do not all start on the first."""
    start = random.randrange(len(numbers)) if numbers else 0
    return itertools.cycle(numbers[start:] + numbers[:start])


#: The account-wide settings both channels need, before their own sender.
_ACCOUNT = (("twilio_account_sid",), ("twilio_auth_token",))


class _TwilioChannel(Configurable):
    """What both Twilio channels share: the account, the client made on first send, the bound on each call,
    and where Twilio calls back (``public_base_url``: the service's, as Twilio reaches it)."""

    name: ClassVar[str]
    provider: ClassVar[str] = "twilio"
    contact: ClassVar[Contact] = Contact.PHONE
    max_text_length: ClassVar[int | None]
    reports_delivery: ClassVar[bool] = True  # the status callbacks of each message and call
    inbound: ClassVar[type[Inbound] | None] = TwilioInbound

    def __init__(self, account: TwilioAccount, *, public_base_url: str) -> None:
        self._account = account
        self._public_base_url = public_base_url
        self._http: _HttpClient | None = None
        self._client: Any = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account_sid={self._account.sid!r}, api_base_url={self._account.api_base_url!r})"

    async def prepare(self) -> None:
        """Build the library's client and its session now, not on the first send (see ``Channel.prepare``)."""
        self._twilio()

    async def close(self) -> None:
        """Close the HTTP session if a send opened one; closing twice, or before any send, is harmless."""
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()

    def _twilio(self) -> Any:
        """The library's client, made on first use: aiohttp needs the running event loop."""
        if self._client is None:
            self._http = _HttpClient()
            token = self._account.auth_token.get_secret_value()
            self._client = Client(self._account.sid, token, http_client=self._http, environment=_NO_ENVIRONMENT)
            self._client.api.base_url = self._account.api_base_url
        return self._client

    async def _create(self, create: Callable[..., Awaitable[Any]], **params: Any) -> Receipt:
        """Create one resource through the library, bounded in time; its SID is the provider id."""
        exchange = _Exchange()
        _exchange.set(exchange)
        try:
            # The library's HTTP client applies no timeout: without this bound a hung provider hangs the send.
            async with asyncio.timeout(self._account.timeout):
                resource = await create(**params)
        except _VENDOR_ERRORS as exc:
            raise _translate(exc, written=exchange.written, retry_after=exchange.retry_after) from exc
        return Receipt(provider_id=resource.sid, status=ReceiptStatus.SENT)


class TwilioSmsChannel(_TwilioChannel):
    """SMS through Twilio's Messages resource, from a Messaging Service or spread over sender numbers."""

    name: ClassVar[str] = "sms"
    form: ClassVar[MessageForm] = MessageForm.TEXT
    takes_replies: ClassVar[bool] = True
    max_text_length: ClassVar[int | None] = SMS_MAX_BODY
    requires: ClassVar[tuple[tuple[str, ...], ...]] = (*_ACCOUNT, ("twilio_sms_from", "twilio_messaging_service_sid"))

    def __init__(
        self,
        account: TwilioAccount,
        *,
        public_base_url: str,
        senders: tuple[str, ...] = (),
        messaging_service_sid: str | None = None,
    ) -> None:
        if not (senders or messaging_service_sid):
            raise ValueError("an SMS channel needs sender numbers or a Messaging Service")
        super().__init__(account, public_base_url=public_base_url)
        self._messaging_service_sid = messaging_service_sid
        self._numbers = senders
        self._senders = _round_robin(senders)

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioSmsChannel:
        """A channel ready to send; opens no connection yet. Raises ``NotConfigured`` if not ``configured``."""
        if not cls.configured(settings):
            raise cls.not_configured(settings)
        return cls(
            TwilioAccount.from_settings(settings),
            public_base_url=settings.public_base_url,
            senders=settings.twilio_sms_from,
            messaging_service_sid=settings.twilio_messaging_service_sid,
        )

    @classmethod
    def rates(cls, settings: Settings, address: str) -> list[Rate]:
        """One account-wide rate: the per-sender rate times the senders (a Messaging Service counts as one)."""
        senders = max(1, len(settings.twilio_sms_from))
        detail = f"{settings.limit_sms_per_second:g}/s per sender × {senders} sender(s)"
        return [Rate("twilio-sms", settings.limit_sms_per_second * senders, detail)]

    async def send(self, message: OutboundMessage) -> Receipt:
        """Create the Message; the receipt holds its MessageSid. Raises a ``ChannelError`` subclass."""
        return await self._create(
            self._twilio().messages.create_async,
            to=message.address,
            body=message.text,
            status_callback=callback_url(self._public_base_url, STATUS, message.delivery_id),
            **self._sender(message.slot),
        )

    def _sender(self, slot: int | None) -> dict[str, str]:
        """A Messaging Service picks the sender from its own pool; otherwise the load goes round our numbers.

        A send paced under the account's SMS limit carries its departure's number: departures
        leave one emission interval apart, so consecutive ones go to consecutive numbers and each
        number keeps its own rate, however many workers share the account.
        """
        if self._messaging_service_sid:
            return {"messaging_service_sid": self._messaging_service_sid}
        if slot is not None:
            return {"from_": self._numbers[slot % len(self._numbers)]}
        return {"from_": next(self._senders)}


class TwilioVoiceChannel(_TwilioChannel):
    """Voice calls through Twilio's Calls resource, playing the message's script, with machine detection."""

    name: ClassVar[str] = "voice"
    form: ClassVar[MessageForm] = MessageForm.CALL
    takes_replies: ClassVar[bool] = False
    max_text_length: ClassVar[int | None] = None
    requires: ClassVar[tuple[tuple[str, ...], ...]] = (*_ACCOUNT, ("twilio_voice_from",))

    def __init__(self, account: TwilioAccount, *, public_base_url: str, caller_id: str) -> None:
        super().__init__(account, public_base_url=public_base_url)
        self._caller_id = caller_id

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioVoiceChannel:
        """A channel ready to call; opens no connection yet. Raises ``NotConfigured`` if not ``configured``."""
        if not cls.configured(settings) or settings.twilio_voice_from is None:
            raise cls.not_configured(settings)
        return cls(
            TwilioAccount.from_settings(settings),
            public_base_url=settings.public_base_url,
            caller_id=settings.twilio_voice_from,
        )

    @classmethod
    def rates(cls, settings: Settings, address: str) -> list[Rate]:
        """One rate for the account's calls."""
        return [Rate("twilio-voice", settings.limit_voice_per_second, "calls for the account")]

    async def send(self, message: OutboundMessage) -> Receipt:
        """Create the Call; the receipt holds its CallSid.

        Raises ``ValueError`` when the message has no call script (a defect of the caller), else a
        ``ChannelError`` subclass when the call is not placed.
        """
        if message.call is None:
            raise ValueError(f"voice message {message.delivery_id} has no call script")
        keys_url = callback_url(self._public_base_url, VOICE, message.delivery_id)
        return await self._create(
            self._twilio().calls.create_async,
            to=message.address,
            from_=self._caller_id,
            twiml=twiml.call(message.call, message.language, keys_url),
            status_callback=callback_url(self._public_base_url, STATUS, message.delivery_id),
            status_callback_event=list(CALL_PROGRESS_EVENTS),
            machine_detection=MACHINE_DETECTION,
        )
