"""Sending e-mail through an SMTP server, over a small pool of reused connections.

One message per delivery, sent with ``aiosmtplib``. Connections are opened on
first use inside the running event loop, at most ``smtp_pool_size`` of them, and
each carries many messages: opening a session (TCP, TLS, EHLO, AUTH) costs more
than the message itself. A connection the server closed (a ``421``, an idle
timeout) is opened again on its next use.

Headers go on the wire as ``channels.email.mime`` writes them (``MAIL_POLICY``). An e-mail to a server
that takes 8-bit data (``8BITMIME``) goes out as ``wire`` makes it, from a frame built once per subject
and language (``mime.MailFrame``): the bytes the ``email`` package would make, without building the
message again for every member; to any other server, the package builds it.

The mail server's answers become the channel errors in one place, ``translate``:
a recipient refused with ``5xx`` is permanent, ``4xx`` transient; a server that
cannot be reached or does not answer in time is transient; a refused login is a
configuration problem (``NotConfigured``).

Whether a failed message may still have been delivered follows from the step of the
transaction it failed at (RFC 5321, 4.1.1.4 and 6.1; RFC 1047). Once the message's DATA has
gone out, the server may have taken it: a connection lost or a reply that does not come
from then on leaves it in doubt (``may_have_sent``). Before that (connecting, MAIL, RCPT),
or when the server replies to the data, it did not take it. ``aiosmtplib`` sends the DATA
command and the message in one call, so the round trip that asks for the ``354`` is counted
with the data: a doubt too many there is on the safe side.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiosmtplib
import structlog
from pydantic import SecretStr

from channels.base import (
    ChannelError,
    Configurable,
    MessageForm,
    NotConfigured,
    OutboundMessage,
    PermanentError,
    Rate,
    Receipt,
    ReceiptStatus,
    TransientError,
)
from channels.email.mime import build_mail, frame_for
from channels.inbound import Inbound
from config import Settings, SmtpSecurity
from dispatcher.core.models import Contact

log = structlog.get_logger(__name__)

#: A pooled connection idle for longer than this (seconds) is checked with a NOOP before it
#: carries a message. Servers drop idle sessions, and we may not have noticed yet; during a
#: burst connections are reused within milliseconds and never pay for the check.
PROBE_IDLE_AFTER = 5.0


class SmtpChannel(Configurable):
    """Sends e-mails through one SMTP server (``SMTP_*`` settings)."""

    name: ClassVar[str] = "email"
    provider: ClassVar[str] = "smtp"
    contact: ClassVar[Contact] = Contact.EMAIL
    form: ClassVar[MessageForm] = MessageForm.MAIL
    takes_replies: ClassVar[bool] = False  # replies go to the PLP's coordinators (Reply-To)
    max_text_length: ClassVar[int | None] = None
    reports_delivery: ClassVar[bool] = False  # no delivery reports over SMTP
    requires: ClassVar[tuple[tuple[str, ...], ...]] = (("smtp_host",), ("smtp_from",))
    inbound: ClassVar[type[Inbound] | None] = None  # the receipt and unsubscribe links lead to the service's own pages

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: SmtpSecurity,
        sender: str,
        username: str | None = None,
        password: SecretStr | None = None,
        pool_size: int = 4,
        timeout: float = 10.0,
        probe_idle_after: float = PROBE_IDLE_AFTER,
        ehlo_name: str = "localhost",
    ) -> None:
        envelope_from = parseaddr(sender)[1]
        if "@" not in envelope_from:
            raise NotConfigured("SMTP_FROM holds no e-mail address")
        self._host, self._port, self._security = host, port, security
        self._sender, self._envelope_from = sender, envelope_from
        self._domain = envelope_from.rpartition("@")[2]
        self._username, self._password = username, password
        self._pool_size, self._timeout, self._probe_idle_after = pool_size, timeout, probe_idle_after
        self._ehlo_name = ehlo_name
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[tuple[_Session, float]] = []  # (client, loop time it was last released)
        self._clients: list[_Session] = []

    def __repr__(self) -> str:
        return (
            f"SmtpChannel(host={self._host!r}, port={self._port}, security={self._security.value!r}, "
            f"username={self._username!r}, pool_size={self._pool_size})"
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpChannel:
        """A channel for the configured server; opens no connection. Raises ``NotConfigured``."""
        if not (settings.smtp_host and settings.smtp_from):
            raise cls.not_configured(settings)
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            pool_size=settings.smtp_pool_size,
            timeout=settings.provider_timeout,
            ehlo_name=ehlo_name(settings),
        )

    @classmethod
    def rates(cls, settings: Settings, address: str) -> list[Rate]:
        """The relay's rate (set per minute)."""
        per_minute = settings.limit_email_per_minute
        return [Rate("smtp", per_minute / 60, f"{per_minute:g}/min for the relay")]

    def message_id(self, delivery_id: str) -> str:
        """The Message-ID of a delivery's e-mail: the same on every attempt, so duplicates can be told apart."""
        return f"<{delivery_id.replace(':', '.')}@{self._domain}>"

    def compose(self, message: OutboundMessage, *, date: str | None = None) -> EmailMessage:
        """The e-mail for one delivery as the ``email`` package builds it (``mime.build_mail``): text part,
        optional HTML alternative, reply and unsubscribe headers. ``date``: the Date header (default: now)."""
        return build_mail(
            sender=self._sender,
            address=message.address,
            subject=message.subject,
            date=date or format_datetime(datetime.now(UTC)),
            message_id=self.message_id(message.delivery_id),
            language=message.language.value,
            text=message.text,
            html=message.html,
            reply_to=message.reply_to,
            unsubscribe_url=message.unsubscribe_url,
        )

    def wire(self, message: OutboundMessage, *, date: str | None = None, boundary: str | None = None) -> bytes:
        """The bytes aiosmtplib sends for ``compose(message)`` to a server that takes 8-bit data, made from the
        frame of every e-mail with the same subject and language (``mime.MailFrame``): the same bytes, but
        for the multipart boundary, random unless given. Raises ``ValueError`` where ``compose`` would."""
        frame = frame_for(
            sender=self._sender,
            subject=message.subject,
            language=message.language.value,
            reply_to=message.reply_to,
            html=bool(message.html),
            unsubscribe=bool(message.unsubscribe_url),
        )
        values = {
            "To": message.address,
            "Date": date or format_datetime(datetime.now(UTC)),
            "Message-ID": self.message_id(message.delivery_id),
            "List-Unsubscribe": f"<{message.unsubscribe_url}>",
        }
        bodies = (message.text, message.html) if message.html else (message.text,)
        return frame.fill(values=values, bodies=bodies, boundary=boundary)

    async def send(self, message: OutboundMessage) -> Receipt:
        """Send one e-mail; the receipt's id is its Message-ID, the status ``SENT``.

        Raises ``PermanentError`` (address refused with 5xx), ``TransientError`` (4xx,
        server unreachable or slower than the provider timeout) or ``NotConfigured``.
        """
        data = self.wire(message)
        client: _Session | None = None
        try:
            async with self._connection() as client:
                client.data_started = False
                async with asyncio.timeout(self._timeout):
                    await self._transmit(client, message, data)
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:  # TimeoutError is an OSError
            raise translate(exc, data_started=client is not None and client.data_started) from exc
        return Receipt(provider_id=self.message_id(message.delivery_id), status=ReceiptStatus.SENT)

    async def _transmit(self, client: _Session, message: OutboundMessage, data: bytes) -> None:
        # ``data`` is what aiosmtplib's ``send_message`` would flatten for an 8BITMIME server and an ASCII
        # envelope; any other server or address gets the message the email package builds, as before.
        if client.supports_extension("8bitmime") and f"{self._envelope_from}{message.address}".isascii():
            await client.sendmail(self._envelope_from, [message.address], data, mail_options=["BODY=8BITMIME"])
        else:
            await client.send_message(self.compose(message), sender=self._envelope_from, recipients=[message.address])

    async def close(self) -> None:
        """Say QUIT on every open connection (each bounded by the provider timeout)."""
        clients, self._clients, self._idle = self._clients, [], []
        await asyncio.gather(*(self._quit(client) for client in clients))

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Session]:
        # Waiting for a free connection is not the provider's time: only the calls are bounded.
        async with self._slots:
            client, idle_since = self._idle.pop() if self._idle else (self._new_client(), None)
            try:
                async with asyncio.timeout(self._timeout):
                    await self._ready(client, idle_since)
                yield client
            except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
                raise  # the server answered and aiosmtplib reset the envelope: the session is usable
            except BaseException:
                client.close()  # a timeout or a broken pipe leaves the session out of step
                raise
            finally:
                self._idle.append((client, asyncio.get_running_loop().time()))

    def _new_client(self) -> _Session:
        login = self._username is not None and self._password is not None
        client = _Session(
            hostname=self._host,
            port=self._port,
            username=self._username if login else None,
            password=self._password.get_secret_value() if login and self._password else None,
            use_tls=self._security is SmtpSecurity.TLS,
            start_tls=self._security is SmtpSecurity.STARTTLS,
            timeout=self._timeout,
            local_hostname=self._ehlo_name,  # else aiosmtplib asks the resolver (in a thread) on every connect
        )
        self._clients.append(client)
        return client

    async def _ready(self, client: _Session, idle_since: float | None) -> None:
        idle = asyncio.get_running_loop().time() - idle_since if idle_since is not None else 0.0
        if client.is_connected and idle > self._probe_idle_after:
            try:
                await client.noop()
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException):
                client.close()
        if not client.is_connected:
            await client.connect()
            await client.greet()
            log.info("email.connected", host=self._host, port=self._port, security=self._security.value)

    async def _quit(self, client: _Session) -> None:
        if not client.is_connected:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()


def ehlo_name(settings: Settings) -> str:
    """The name given in EHLO: ``SMTP_EHLO_NAME``, else the host of the public base URL (an IP address as an
    address literal, RFC 5321 4.1.3), known without asking the resolver."""
    if settings.smtp_ehlo_name:
        return settings.smtp_ehlo_name
    host = urlsplit(settings.public_base_url).hostname or "localhost"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return f"[IPv6:{host}]" if ":" in host else f"[{host}]"


class _Session(aiosmtplib.SMTP):
    """An ``aiosmtplib`` connection that notes when a message's DATA starts (see the module docstring)."""

    data_started = False

    async def greet(self) -> None:
        """EHLO (HELO if the server refuses it) unless done, as ``send_message`` would: its extensions decide
        how the message goes out."""
        if self.is_ehlo_or_helo_needed:
            try:
                await self.ehlo()
            except aiosmtplib.SMTPHeloError:
                await self.helo()

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(*args, **kwargs)


def translate(exc: BaseException, *, data_started: bool = False) -> ChannelError:
    """The channel error for what the mail server (or the network) answered; the only such mapping.

    ``data_started``: the failure came once the message's DATA had started; a lost connection or a
    missing reply then leaves the message possibly delivered (``may_have_sent``).
    """
    match exc:
        case aiosmtplib.SMTPAuthenticationError():
            return NotConfigured(f"the mail server refused the login: {exc.code}")
        case aiosmtplib.SMTPRecipientsRefused(recipients=[first, *_]):
            return _refused("address refused by the mail server", first.code)
        case aiosmtplib.SMTPRecipientRefused():
            return _refused("address refused by the mail server", exc.code)
        case aiosmtplib.SMTPSenderRefused() if exc.code >= 500:
            return NotConfigured(f"the mail server refused the sender address: {exc.code}")
        case TimeoutError() if data_started:
            return TransientError(
                "the mail server did not answer the message in time; it may have taken it", may_have_sent=True
            )
        case OSError() if data_started:  # the connection broke while the server had the message
            return TransientError(
                f"the connection to the mail server broke during the message ({type(exc).__name__}); "
                "it may have taken it",
                may_have_sent=True,
            )
        case TimeoutError():
            return TransientError("the mail server did not answer in time; the message was not sent")
        case OSError():  # refused, reset, disconnected, TLS failures
            return TransientError(f"mail server unreachable: {type(exc).__name__}")
        case aiosmtplib.SMTPResponseException():
            return _refused("message refused by the mail server", exc.code)
        case aiosmtplib.SMTPNotSupported() if "SMTPUTF8" in str(exc):
            return PermanentError("the address needs SMTPUTF8, which the mail server does not offer")
        case aiosmtplib.SMTPException():  # no AUTH or STARTTLS where the settings ask for them
            return NotConfigured(f"the mail server does not fit the settings: {exc}")
        case ValueError():  # aiosmtplib refuses an address it cannot put in an envelope
            return PermanentError("the address cannot be used for e-mail")
        case _:
            return TransientError(f"mail server error: {type(exc).__name__}")


def _refused(what: str, code: int) -> ChannelError:
    if 500 <= code < 600:
        return PermanentError(f"{what}: {code}")
    return TransientError(f"{what}: {code}")
