"""Sending through the WhatsApp Business Cloud API (``pywa``'s async client): one template message per delivery.

Every alert goes out as an approved template (``channels.whatsapp.templates``), chosen by the
message's purpose, its language and the number of answer options, with the message as its one
parameter and the buttons' payloads set per message. The delivery id rides along as the
message's ``biz_opaque_callback_data`` (pywa's ``tracker``), which every status webhook of that
message carries back (``channels.whatsapp.inbound``): sent, delivered, read, failed.

The Cloud API's answers become the channel errors in one place, ``translate``. Whether a failed
call may still have sent the message follows from the step it failed at, as httpx says it: no
connection (refused, timed out, no free connection) sent nothing; a write or a read that failed
or timed out leaves it in doubt; an answer says (a 5xx after which Meta may have acted, see
``server_may_have_acted``; never a 4xx).

The member's number is in every request's body and pywa logs bodies at DEBUG: its loggers are
kept at WARNING (``quiet_library_logs``), whose records name no number.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import anyio
import httpx
from pydantic import SecretStr
from pywa import errors as wa_errors
from pywa.types.templates import TemplateLanguage
from pywa_async import WhatsApp

from channels.base import (
    ChannelError,
    Configurable,
    MessageForm,
    NotConfigured,
    OutboundMessage,
    PermanentError,
    Purpose,
    Rate,
    RateLimited,
    Receipt,
    ReceiptStatus,
    TransientError,
    WriteSpacing,
    server_may_have_acted,
)
from channels.inbound import Inbound
from channels.whatsapp.inbound import WhatsAppInbound
from channels.whatsapp.templates import MAX_PARAMETER_LENGTH, parameter, template_name
from config import Settings
from dispatcher.core.models import Contact

#: HTTP connections to the Graph API per channel instance (as Telegram's: see ``channels.telegram.POOL_SIZE``).
POOL_SIZE = 16
#: The loggers of pywa, which print request bodies (numbers) at DEBUG.
_LIBRARY_LOGGERS = ("pywa", "pywa_async")
#: How long to wait after an app-level throttle (codes 4, 80007) or a spam limit (131048) with no Retry-After.
_THROTTLED_WAIT = 60.0
#: After the Cloud API's throughput limit (130429) with no Retry-After.
_THROUGHPUT_WAIT = 1.0

#: What a refusal means for a coordinator, by the Cloud API's error code (permanent for this member's number).
REASONS: dict[int, str] = {
    131026: "not reachable on WhatsApp (no account on this number, an old app, or the terms not accepted)",
    131030: "this number is not in the test number's allowed list",
    131047: "more than 24 hours since the member last wrote: only a template can reach them",
    131050: "the member stopped messages from this business on WhatsApp",
    131049: "WhatsApp held the message back to keep the member's engagement healthy",
    131051: "WhatsApp does not take this kind of message",
    132000: "the template's parameters do not match the registered template",
    132001: "the template is not registered (or not approved) in this language: see the README",
    132005: "the template's text is too long once filled in",
    132007: "the template breaks WhatsApp's policy",
    132012: "the template's parameter is not in the format the template expects",
    132015: "the template is paused by Meta for low quality",
    132016: "the template is disabled by Meta for low quality",
    133010: "the business number is not registered with the Cloud API",
}
#: Codes that say "later, not now" with no throttle: Meta's generic and service errors.
_TRANSIENT = frozenset({1, 2, 131000, 131016, 133004})


class WhatsAppChannel(Configurable):
    """Sends template messages from the business number ``WHATSAPP_PHONE_ID`` with the token ``WHATSAPP_TOKEN``."""

    name: ClassVar[str] = "whatsapp"
    provider: ClassVar[str] = "whatsapp"
    contact: ClassVar[Contact] = Contact.WHATSAPP
    form: ClassVar[MessageForm] = MessageForm.CHAT
    takes_replies: ClassVar[bool] = True
    max_text_length: ClassVar[int | None] = MAX_PARAMETER_LENGTH
    reports_delivery: ClassVar[bool] = True  # sent, delivered, read, failed come back on the webhook
    requires: ClassVar[tuple[tuple[str, ...], ...]] = (("whatsapp_token",), ("whatsapp_phone_id",))
    inbound: ClassVar[type[Inbound] | None] = WhatsAppInbound

    def __init__(
        self,
        *,
        token: SecretStr,
        phone_id: str,
        api_base_url: str,
        api_version: str,
        template_prefix: str,
        timeout: float,
        pair_wait: float = 6.0,
        pool_size: int = POOL_SIZE,
        spacing: WriteSpacing | None = None,
    ) -> None:
        self._token = token
        self._spacing = spacing
        self._phone_id = phone_id
        self._api_base_url = api_base_url.rstrip("/")
        self._api_version = api_version
        self._prefix = template_prefix
        self._timeout = timeout
        self._pair_wait = pair_wait
        self._pool_size = pool_size
        # Our own bound on calls in flight, one per connection (as Telegram's channel has): a send waits here, not in
        # httpcore's pool, whose queue of waiting requests is scanned again at every request and every answer (a
        # batch's hundred sends on 16 connections spent most of the channel's CPU in that scan).
        self._slots = asyncio.Semaphore(pool_size)
        self._client: WhatsApp | None = None
        self._session: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"WhatsAppChannel(api_base_url={self._api_base_url!r}, pool_size={self._pool_size})"

    @classmethod
    def from_settings(cls, settings: Settings) -> WhatsAppChannel:
        """A channel for the configured business number; opens no connection. Raises ``NotConfigured``."""
        if not cls.configured(settings) or settings.whatsapp_token is None or settings.whatsapp_phone_id is None:
            raise cls.not_configured(settings)
        return cls(
            token=settings.whatsapp_token,
            phone_id=settings.whatsapp_phone_id,
            api_base_url=settings.whatsapp_api_base_url,
            api_version=settings.whatsapp_api_version,
            template_prefix=settings.whatsapp_template_prefix,
            timeout=settings.provider_timeout,
            pair_wait=settings.limit_whatsapp_per_user_seconds,
            spacing=WriteSpacing.under(settings.limit_whatsapp_per_second, margin=settings.limit_margin),
        )

    @classmethod
    def rates(cls, settings: Settings, address: str) -> list[Rate]:
        """The business number's throughput, and the pair limit of one member's number."""
        return [
            Rate("whatsapp", settings.limit_whatsapp_per_second, "messages from the business number"),
            Rate(
                f"whatsapp-user:{address}",
                1 / settings.limit_whatsapp_per_user_seconds,
                "messages to one WhatsApp user",
            ),
        ]

    def template_for(self, message: OutboundMessage) -> str:
        """The name of the template an alert's message goes out with."""
        purpose = message.purpose or Purpose(message.urgency.value)
        return template_name(self._prefix, purpose, len(message.buttons))

    async def send(self, message: OutboundMessage) -> Receipt:
        """Send the message's template to the member's number, its "received" and answer buttons carrying the
        dispatcher's data; a reply of the service (no ``purpose``), which follows a message of the member's,
        goes as a plain text within the 24-hour window that message opened.

        Returns a ``SENT`` receipt whose id is the message's ``wamid``. Raises ``PermanentError`` (not on
        WhatsApp, template refused...), ``RateLimited``, ``TransientError`` or ``NotConfigured`` (token refused).
        """
        components: list[dict[str, object]] = [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": parameter(message.text, tuple(label for label, _ in message.buttons))}
                ],
            }
        ]
        payloads = ([message.ack_data] if message.ack_data else []) + [data for _, data in message.buttons]
        components += [
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": str(index),
                "parameters": [{"type": "payload", "payload": data}],
            }
            for index, data in enumerate(payloads)
        ]
        client = self._open()
        to = _recipient(message.address)
        try:
            async with self._slots:
                if message.purpose is None:  # a reply of the service to a member who just wrote: inside the window
                    sent = await client.send_message(to=to, text=message.text[:4096], tracker=message.delivery_id)
                else:
                    sent = await client.send_template(
                        to=to,
                        name=self.template_for(message),
                        language=TemplateLanguage(message.language.value),
                        params=components,
                        tracker=message.delivery_id,
                    )
        except (wa_errors.WhatsAppError, httpx.HTTPError, TimeoutError) as exc:
            raise translate(exc, pair_wait=self._pair_wait) from exc
        return Receipt(provider_id=sent.id, status=ReceiptStatus.SENT)

    async def prepare(self) -> None:
        """Build the client and its HTTP session now, not on the first send (see ``Channel.prepare``); and load
        anyio's asyncio backend, which httpcore loads on its first request (as Telegram's channel does)."""
        self._open()
        anyio.Event()

    async def close(self) -> None:
        """Close the HTTP connections."""
        session, self._session, self._client = self._session, None, None
        if session is not None:
            await session.aclose()

    def _open(self) -> WhatsApp:
        # Built on first use, inside the running loop; pywa makes no request when built without a webhook server.
        if self._client is None:
            quiet_library_logs()
            limits = httpx.Limits(max_connections=self._pool_size, max_keepalive_connections=self._pool_size)
            # pool=None: waiting for a free connection is never counted against the provider's timeout
            timeout = httpx.Timeout(self._timeout, pool=None)
            hooks = {"request": [self._spaced]} if self._spacing is not None else {}
            self._session = httpx.AsyncClient(limits=limits, timeout=timeout, event_hooks=hooks)
            self._client = WhatsApp(
                phone_id=self._phone_id,
                token=self._token.get_secret_value(),
                session=self._session,
                api_version=self._api_version,
                filter_updates=False,
            )
            # pywa points its session at graph.facebook.com; the base URL is ours to set (a simulator, a proxy)
            self._session.base_url = f"{self._api_base_url}/v{self._api_version}"
        return self._client

    async def _spaced(self, request: httpx.Request) -> None:
        """An httpx request hook: each message (a POST) takes its turn in this process as its headers go out
        (``WriteSpacing``), through httpcore's ``trace`` extension."""
        if request.method == "POST":
            request.extensions["trace"] = self._trace

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith(".send_request_headers.started") and self._spacing is not None:
            await self._spacing.turn()


def translate(exc: BaseException, *, pair_wait: float = 6.0) -> ChannelError:
    """The channel error for what the Cloud API (or the network) answered; the only such mapping.

    ``pair_wait``: the seconds between two messages to one user, waited after the pair rate limit (131056).
    """
    match exc:
        case wa_errors.WhatsAppError():
            return _refused(exc, pair_wait)
        case httpx.ConnectError() | httpx.ConnectTimeout() | httpx.PoolTimeout() | httpx.UnsupportedProtocol():
            return TransientError(f"WhatsApp unreachable: {type(exc).__name__}; nothing was sent")
        case httpx.TransportError() | TimeoutError():  # the request went out (or was going): no answer came
            return TransientError(
                f"no answer from WhatsApp ({type(exc).__name__}); the message may have gone out", may_have_sent=True
            )
        case _:
            return TransientError(f"WhatsApp error: {type(exc).__name__}")


def _refused(exc: wa_errors.WhatsAppError, pair_wait: float) -> ChannelError:
    status = exc.status_code
    code = exc.code
    if code == 130429:
        return RateLimited("WhatsApp throughput reached", retry_after=_retry_after(exc, _THROUGHPUT_WAIT))
    if code == 131056:
        return RateLimited("WhatsApp pair rate limit for this member", retry_after=_retry_after(exc, pair_wait))
    if code in (4, 80007, 131048) or status == 429:
        return RateLimited(f"WhatsApp throttled the business ({code})", retry_after=_retry_after(exc, _THROTTLED_WAIT))
    if isinstance(exc, wa_errors.AuthorizationError) or code == 190 or status == 401:
        return NotConfigured("WhatsApp refused the access token")
    if code in REASONS:
        return PermanentError(REASONS[code])
    if code in _TRANSIENT or exc.is_transient or (status is not None and status >= 500):
        acted = status is not None and server_may_have_acted(status)
        gone = "; the message may have gone out" if acted else ""
        return TransientError(f"WhatsApp answered HTTP {status} ({code}){gone}", may_have_sent=acted)
    return PermanentError(f"WhatsApp refused the message ({code}): {exc.message[:100]}")


def _retry_after(exc: wa_errors.WhatsAppError, default: float) -> float:
    header = exc.raw_response.headers.get("Retry-After") if exc.raw_response is not None else None
    try:
        return max(float(header), 0.0) if header is not None else default
    except ValueError:
        return default


def _recipient(address: str) -> str:
    digits = address.removeprefix("+")
    if not digits.isdigit():
        raise PermanentError("the address is not a phone number in international form")
    return digits


def quiet_library_logs() -> None:
    """Keep pywa's loggers at WARNING: at DEBUG they print request bodies, with the member's number."""
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


__all__ = ["POOL_SIZE", "REASONS", "WhatsAppChannel", "quiet_library_logs", "translate"]
