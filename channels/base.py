"""What every channel is: one small class that sends one delivery through one vendor.

A channel only talks to its vendor. It never retries, never falls back, never
decides who gets what: it sends, returns a ``Receipt``, or raises one of the
errors below, which say whose fault a failure is::

    ChannelError
    ├── TransientError        try again later (5xx, timeouts, resets); retry_after, may_have_sent
    │   └── RateLimited       refused before processing; retry after exactly retry_after
    ├── PermanentError        this contact point will not work; reason is for a coordinator
    └── NotConfigured         the channel has no credentials here

What a vendor channel is, beyond sending, is data on its class (``VendorChannel``): the
provider behind it, the member's contact point it reaches, the form of message it carries,
the settings it needs (``Configurable``), the rates it must keep, and the vendor's webhooks
(``channels.inbound``). The dispatcher reads these; it never names a vendor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Protocol

from config import Settings
from config.settings import environment_variable
from dispatcher.core.models import ChannelName, Contact, Language, Urgency

if TYPE_CHECKING:
    from channels.inbound import Inbound


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


class MessageForm(StrEnum):
    """The form of message a channel carries, which the dispatcher composes for it."""

    TEXT = "text"  # a short text billed by the segment (SMS): the acknowledgement hint only if it adds none
    CALL = "call"  # a call that speaks the message (``CallScript``) and takes a key to acknowledge
    MAIL = "mail"  # an e-mail: text and HTML parts, links to the receipt, unsubscribe and export pages
    CHAT = "chat"  # a chat message with a "received" button (``ack_label``, ``ack_data``)


class Purpose(StrEnum):
    """What a message is for, as a channel that must send a template registered per kind of message reads it
    (WhatsApp, outside the 24-hour window): the dispatcher says it on every alert's message."""

    URGENT = "urgent"
    NON_URGENT = "non_urgent"
    POLICE_FEEDBACK = "police_feedback"  # the police's feedback about an alert
    FOLLOW_UP = "follow_up"  # an update or an all-clear of an alert
    DRILL = "drill"  # an exercise


@dataclass(frozen=True, slots=True)
class CallScript:
    """What an alert call says, in the message's language: the channel only puts it in its vendor's format."""

    intro: str  # said before the message, the first time
    text: str  # the message, said twice
    prompt: str  # how to acknowledge: press 1
    goodbye: str  # said when no key was pressed


@dataclass(frozen=True, slots=True)
class Rate:
    """A provider's rate that sends must keep: ``per_second`` at most, counted on the meter ``name``, which
    every process shares (an account's, a sender's, one chat's). ``detail`` says what it is, for ``plp status``."""

    name: str
    per_second: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Departed:
    """A send's departure under the shared provider limits (``dispatcher.storage.limits``): the moment it left,
    on this process's monotonic clock, and how to depart again (waiting for a free moment under the limits)."""

    at: float
    again: Callable[[], Awaitable[object]]


#: The departure of the send this task is making: set by the dispatcher around ``Channel.send``, read by
#: ``WriteSpacing`` as the request is written.
departed: ContextVar[Departed | None] = ContextVar("departed", default=None)


@contextmanager
def departing(again: Callable[[], Awaitable[object]]) -> Iterator[None]:
    """In this block, the send this task makes has just departed under the shared limits (``departed``);
    ``again`` departs once more."""
    token = departed.set(Departed(time.monotonic(), again))
    try:
        yield
    finally:
        departed.reset(token)


#: How late, in intervals of the paced rate, a request may be written after its departure before it departs
#: again: a provider that allows one request at once beyond its rate (a bucket of two) refuses a request
#: written less than 0.9 interval after a neighbour that departed on time (the departures' own tolerance
#: takes the other tenth); a quarter of an interval is left for the way to the provider.
LATE_WRITE = 0.65
#: How late, in intervals of the paced rate, a request may be written after the moment it was due and still keep
#: the pace (the next one due an interval after that moment, not after this one): the event loop wakes a sleeper
#: a millisecond late, which, counted from each write, added a third of a second to 600 Telegram messages.
WRITE_CATCH_UP = 0.05


class WriteSpacing:
    """One process's requests to a provider, kept apart at the moment each is written.

    Sends depart under the shared limits (``dispatcher.storage.limits``) one emission interval apart, but
    between a departure and its request's first byte come the vendor library and a busy event loop.
    Measured on a loaded worker sending Telegram at the Bot API's 30 a second, in two runs: 9 and 18 ms at
    the median, 0.3 and 1.9 s at the 99th percentile; sends held up together were then written within a
    millisecond of each other, three in a row, which the provider refuses. A request awaits ``turn`` just
    before it is written (its first byte follows in the same step of the loop, give or take one yield):
    it goes a full interval of the paced rate after the previous request this process wrote, at the
    earliest (after the moment that one was due, if it was written at most ``WRITE_CATCH_UP`` late: a
    millisecond's lateness of each does not add up), so that what a busy loop bunched leaves at the rate
    again. It never delays a request the loop did not hold up, and costs no round trip; the shared limits
    keep the rate across processes.

    Across processes, a request written more than ``LATE_WRITE`` of an interval after its departure
    (``departed``) would reach the provider next to a neighbour another process wrote on time: two worker
    processes answering members at once had requests arrive 0.1 ms apart, one of them refused. Such a
    request departs again under the provider's own rate before it is written (the dispatcher's ``again``,
    ``dispatcher.pipeline.pacing.shared_rate``); it costs one round trip to Redis and one unused turn, only
    for a request that would otherwise have been refused.
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._last = float("-inf")  # the moment the last request written counts at (its due moment, kept on pace)

    @classmethod
    def under(cls, per_second: float, *, margin: float) -> WriteSpacing:
        """The interval of a provider rate ``per_second`` paced ``margin`` below it (``PLP_LIMIT_MARGIN``)."""
        return cls(1 / (per_second * (1 - margin)))

    async def turn(self) -> None:
        """Wait until a request may be written, and count it as written now; depart again first if it is late
        (once: a second departure is moments old)."""
        departure = departed.get()
        while True:
            while (wait := self.due - self._clock()) > 0:
                await asyncio.sleep(wait)
            if departure is None or self._clock() - departure.at <= self.seconds * LATE_WRITE:
                break
            await departure.again()
            departure = None
        now = self._clock()
        # written at most WRITE_CATCH_UP late after its due moment: the pace holds; later (nothing held it up): now
        self._last = self.due if now <= self.due + self.seconds * WRITE_CATCH_UP else now

    @property
    def due(self) -> float:
        """The earliest moment the next request may be written (``clock``'s time)."""
        return self._last + self.seconds


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
    call: CallScript | None = None  # a call: what it says
    reply_to: tuple[str, ...] = ()  # e-mail: where replies go (the PLP's coordinators)
    unsubscribe_url: str | None = None  # e-mail: List-Unsubscribe target, one-click (RFC 8058)
    ack_label: str | None = None  # chat: label of the "received" button
    ack_data: str | None = None  # chat: data of that button, ``channels.inbound.ACK_PREFIX`` + delivery id
    #: chat: the answer buttons below it, (label, data) each, one row each (``channels.inbound.ANSWER_PREFIX``)
    buttons: tuple[tuple[str, str], ...] = ()
    purpose: Purpose | None = None  # what the message is for (an alert's); None: a reply of the service
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
    #: Who carries the messages, for the metrics' ``provider`` label (``twilio``, ``smtp``...).
    provider: ClassVar[str]
    #: Longest text the channel carries in one message, if it has a limit.
    max_text_length: ClassVar[int | None]
    #: Whether the provider calls back with each message's fate: a send in doubt is then settled by
    #: its report, if the message went, before any retry (see ``dispatcher.pipeline.retries``).
    reports_delivery: ClassVar[bool]

    async def prepare(self) -> None:
        """Build, in the running loop and without a round trip, what the first send would build (the vendor
        library's client, its HTTP session and SSL context): a send departs under its provider's limit just
        before its request, and a first send that then spent a quarter of a second building its client
        reached the provider on top of the next one, which the provider refused."""
        ...

    async def send(self, message: OutboundMessage) -> Receipt:
        """Send one message. Raises a ``ChannelError`` subclass when it does not go."""
        ...

    async def close(self) -> None:
        """Release connections; the channel is not used afterwards."""
        ...


class Configurable:
    """What a vendor channel needs from the settings, said once, in ``requires``: each entry a tuple of
    settings fields of which one is enough. Whether it is ``configured``, what is ``missing`` and the
    words of its ``NotConfigured`` all follow from it."""

    name: ClassVar[str]
    requires: ClassVar[tuple[tuple[str, ...], ...]] = ()

    @classmethod
    def missing(cls, settings: Settings) -> list[str]:
        """The variables still to set (alternatives joined by "or"); none when configured."""
        return [
            " or ".join(environment_variable(field) for field in fields)
            for fields in cls.requires
            if not any(getattr(settings, field) for field in fields)
        ]

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        """Whether the settings hold everything ``requires`` names."""
        return not cls.missing(settings)

    @classmethod
    def not_configured(cls, settings: Settings) -> NotConfigured:
        """The error of building this channel from settings that miss something: it names what to set."""
        return NotConfigured(f"{cls.name} is not configured: set {', '.join(cls.missing(settings))}")

    @classmethod
    def rates(cls, settings: Settings, address: str) -> list[Rate]:
        """The provider's rates a send to ``address`` must keep (none unless the vendor says)."""
        return []

    async def prepare(self) -> None:
        """Nothing to build ahead unless the vendor's class says (see ``Channel.prepare``)."""


class VendorChannel(Channel, Protocol):
    """A channel backed by a vendor account, built from the settings when they hold its credentials.

    The class says, as data, what the dispatcher needs to know of it: the member's contact point it
    sends to (``contact``), the form of its messages (``form``), whether members answer its messages
    on it with no reference to the message (``takes_replies``: the answer is matched to the last one),
    what it needs configured (``requires``, see ``Configurable``), and the vendor's webhooks
    (``inbound``, see ``channels.inbound``; None when the vendor calls nothing back).
    """

    contact: ClassVar[Contact]
    form: ClassVar[MessageForm]
    takes_replies: ClassVar[bool]
    requires: ClassVar[tuple[tuple[str, ...], ...]]
    inbound: ClassVar[type[Inbound] | None]

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        """Whether the settings hold what this channel needs (credentials, sender)."""
        ...

    @classmethod
    def missing(cls, settings: Settings) -> list[str]:
        """The variables to set for the channel to be configured (alternatives joined by "or")."""
        ...

    @classmethod
    def rates(cls, settings: Settings, address: str) -> list[Rate]:
        """The provider's rates a send to ``address`` must keep, when configured."""
        ...

    @classmethod
    def from_settings(cls, settings: Settings) -> VendorChannel:
        """A channel ready to send; opens no connection before the first send. Raises ``NotConfigured``."""
        ...
