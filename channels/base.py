"""What every channel is: one small class that sends one delivery through one vendor.

A channel only talks to its vendor. It never retries, never falls back, never
decides who gets what: it sends, returns a ``Receipt``, or raises one of the
errors below, which say whose fault a failure is::

    ChannelError
    ├── TransientError        try again later (5xx, timeouts, resets); retry_after, may_have_sent
    │   └── RateLimited       refused before processing; retry after exactly retry_after
    ├── PermanentError        this contact point will not work; reason is for a coordinator
    └── NotConfigured         the channel has no credentials here
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Protocol

from config import Settings
from dispatcher.core.models import ChannelName, Language, Urgency


class ChannelError(Exception):
    """Root of every error a channel raises."""


class TransientError(ChannelError):
    """The send did not go through this time; it may on another attempt.

    ``may_have_sent``: the provider may have taken the message, so sending it again may
    deliver it twice. Each channel decides it from the protocol step the failure came at:
    the request (an SMTP message's DATA) had started going out and no answer came back, or
    the answer was a server error after which the provider may have acted
    (``server_may_have_acted``). A failure before the request went out (a refused or
    timed-out connection, no free connection) or an answer that refuses it (4xx, 429,
    503) leaves it False. In doubt between two steps, a channel says True: a duplicate
    counted that did not happen is the safe side of a duplicate that went uncounted.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, may_have_sent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.may_have_sent = may_have_sent


def server_may_have_acted(status: int) -> bool:
    """Whether an HTTP server error leaves open that the provider acted on the request (RFC 9110, 15.6).

    A 500 may come after the work was done, a gateway's 502 or 504 after the request was passed
    on; a 503 says the service was not available to take it. Below 500, the server says
    what it did (or that it refused), so it is never in doubt.
    """
    return status >= 500 and status != 503


class RateLimited(TransientError):
    """The provider refused the send before processing it; safe to retry after ``retry_after``."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


class PermanentError(ChannelError):
    """The contact point cannot be reached on this channel; ``reason`` is plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotConfigured(ChannelError):
    """The channel has no credentials in this deployment."""


class ReceiptStatus(StrEnum):
    SENT = "sent"  # handed to the provider; its callbacks tell the rest
    DELIVERED = "delivered"  # the channel itself is the end of the road
    OUTBOX = "outbox"  # kept in the local outbox file: no provider had it, nobody was reached


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One delivery, ready to go: who, where, and the content composed for its channel.

    The dispatcher composes everything (texts in the member's language, links, hints);
    a channel only puts the fields its vendor needs on the wire.
    """

    delivery_id: str
    alert_id: str
    member_id: str
    channel: ChannelName
    address: str  # E.164 phone, e-mail address, or Telegram chat id
    language: Language
    urgency: Urgency
    subject: str
    text: str  # as the member reads it: the sender's words and our hints (SMS, Telegram, e-mail text part)
    html: str | None = None  # e-mail: the HTML part
    twiml: str | None = None  # voice: the TwiML the call plays
    reply_to: tuple[str, ...] = ()  # e-mail: where replies go (the PLP's coordinators)
    unsubscribe_url: str | None = None  # e-mail: List-Unsubscribe target, one-click (RFC 8058)
    ack_label: str | None = None  # Telegram: label of the "received" button
    ack_data: str | None = None  # Telegram: callback data of that button (at most 64 bytes)
    status_callback: str | None = None  # Twilio: where status callbacks for this message go
    slot: int | None = None  # the send's number among the departures under its provider limit (SMS: picks the sender)

    def __repr__(self) -> str:  # the address is personal data: keep it out of reprs
        return f"OutboundMessage(delivery_id={self.delivery_id!r}, channel={self.channel.value!r})"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the provider answered: its id for the message, and how far it got."""

    provider_id: str
    status: ReceiptStatus


class Channel(Protocol):
    """A way to reach members, through one vendor."""

    name: ClassVar[str]
    #: Longest text the channel carries in one message, if it has a limit.
    max_text_length: ClassVar[int | None]
    #: Whether the provider calls back with each message's fate: a send in doubt is then settled by
    #: its report, if the message went, before any retry (see ``dispatcher.pipeline.retries``).
    reports_delivery: ClassVar[bool]

    async def send(self, message: OutboundMessage) -> Receipt:
        """Send one message. Raises a ``ChannelError`` subclass when it does not go."""
        ...

    async def close(self) -> None:
        """Release connections; the channel is not used afterwards."""
        ...


class VendorChannel(Channel, Protocol):
    """A channel backed by a vendor account, built from the settings when they hold its credentials."""

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        """Whether the settings hold what this channel needs (credentials, sender)."""
        ...

    @classmethod
    def from_settings(cls, settings: Settings) -> VendorChannel:
        """A channel ready to send; opens no connection before the first send."""
        ...
