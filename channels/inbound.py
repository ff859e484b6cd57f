"""What comes back from a vendor, in the dispatcher's words: the small inbound protocol.

A vendor that calls back has one ``Inbound`` class, named by its channels (``VendorChannel.inbound``).
Each of its ``hooks`` is a route of the API, ``POST /v1/webhooks/<vendor>[/<hook>]``
(``hook_path``); the API hands each request there, as received (``WebhookRequest``), to the vendor:

1. ``verify``: is it genuine (a signature, a secret header)? Nothing is read from it before;
2. ``parse``: what does it say, as one event the dispatcher reads (or a list of them, from a vendor
   that batches them: WhatsApp): a ``StatusReport`` on a
   delivery, a ``TextMessage`` someone wrote, a ``ChatLink`` opened, ``CallKeys`` pressed during
   an alert call, a ``ButtonPress`` under a chat message; or None, nothing for us;
3. ``answer``: the HTTP answer in the vendor's format (TwiML, a Bot API method, nothing), from
   what the dispatcher says back (``Answer``).

The dispatcher applies the event (``dispatcher.api.webhooks``): it never sees a vendor's fields,
and the vendor decides nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from config import Settings
from dispatcher.core.models import ChannelName, DeliveryStatus, Language

#: Where the API takes the vendors' webhooks.
WEBHOOKS = "/v1/webhooks"
#: The query parameter of a callback URL that names the delivery it is about.
DELIVERY_PARAMETER = "d"
#: The data of a chat message's "received" button: ``ack:<delivery id>``.
ACK_PREFIX = "ack:"
#: The data of a chat message's answer buttons: ``ans:<option number, from 1>:<delivery id>``.
ANSWER_PREFIX = "ans:"
#: Causes a voice provider gives a call that no person answered (its answering machine detection):
#: keys pressed in such a call are a machine's tones, not an acknowledgement.
VOICEMAIL = "left on voicemail"
FAX = "answered by a fax machine"
NOBODY_ANSWERED = frozenset({VOICEMAIL, FAX})


def hook_path(vendor: str, hook: str = "") -> str:
    """The path of a vendor's webhook: ``/v1/webhooks/<vendor>[/<hook>]``."""
    return f"{WEBHOOKS}/{vendor}/{hook}" if hook else f"{WEBHOOKS}/{vendor}"


class Body(StrEnum):
    """How a vendor posts a hook's body."""

    FORM = "application/x-www-form-urlencoded"
    JSON = "application/json"


@dataclass(frozen=True)
class Hook:
    """One webhook of a vendor, as the API routes and documents it."""

    name: str  # the operation's name in the API's document (``twilio_status``)
    path: str  # below the vendor's root (``status``), or "" for the root itself
    summary: str
    body: Body
    #: the answers documented, by status: a model, a media type (TwiML), or None (no content)
    answers: Mapping[int, type[BaseModel] | str | None]
    #: what a body the vendor would not send is told (a form's media type, a JSON value)
    expects: str


@dataclass(frozen=True)
class WebhookRequest:
    """One webhook request as the API received it: nothing in it is trusted before ``verify``."""

    url: str  # the public URL it was sent to: PLP_PUBLIC_BASE_URL, the path and the query
    headers: Mapping[str, str]
    query: Mapping[str, str]
    form: Mapping[str, str] = field(default_factory=dict)  # a form's fields (read before ``verify``)
    json: Any = None  # a JSON body's value (read once verified)
    body: bytes = b""  # a JSON body's bytes, as received (a signature over them is checked before it is read)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The provider's word on how far one message or call got."""

    delivery_id: str  # from the callback URL: checked by the dispatcher
    reported: str  # the provider's own word, for the log
    status: DeliveryStatus | None  # where it moves the delivery; None: a step that moves nothing
    provider_id: str
    event_id: str  # the same for the provider's retries of this report
    error: str = ""
    cause: str = ""


@dataclass(frozen=True, slots=True)
class TextMessage:
    """Someone wrote on a channel members answer on: an acknowledgement, a stop word, feedback."""

    channel: ChannelName
    sender: str  # the address it came from, written as the channel's contact point is stored
    text: str
    event_id: str
    #: whether the answer goes back in the webhook's answer (the provider sends it, and queues it on
    #: its side); if not, the dispatcher sends it as a reply of its own, under the provider's limits
    answer_inline: bool
    language: str | None = None  # the sender's language, as their app reports it
    own_chat: bool = True  # written in the sender's own (private) chat, not in a group where anyone writes


@dataclass(frozen=True, slots=True)
class ChatLink:
    """Someone opened their personal link in a chat: it binds the chat to the membership its token names."""

    channel: ChannelName
    sender: str  # the chat
    token: str  # "" when the link carried none
    event_id: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class CallKeys:
    """Keys pressed during an alert call."""

    channel: ChannelName
    delivery_id: str  # from the callback URL: checked by the dispatcher
    keys: str
    event_id: str
    #: whether a person is on the line, as answering machine detection says; None: it said nothing
    by_person: bool | None = None
    answered_by: str = ""  # the provider's word for who answered, for the log


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """Someone pressed a button under a chat message (the "received" button: ``ACK_PREFIX``; an answer:
    ``ANSWER_PREFIX``)."""

    channel: ChannelName
    sender: str  # the chat the message is in
    data: str  # the button's data
    event_id: str
    own_chat: bool  # pressed by the person whose private chat it is


Event = StatusReport | TextMessage | ChatLink | CallKeys | ButtonPress


@dataclass(frozen=True, slots=True)
class Answer:
    """What the dispatcher says back in the webhook's answer: words for the person, in their language, or none."""

    text: str | None = None
    language: Language | None = None


@dataclass(frozen=True, slots=True)
class HookAnswer:
    """The HTTP answer to a webhook, in the vendor's format."""

    status: int
    body: str | dict[str, Any] | None = None
    media_type: str = "application/json"


class Inbound(Protocol):
    """A vendor's webhooks: checked, parsed into events, answered in its format."""

    #: the vendor's name in the webhooks' paths and in the log events (``twilio``)
    vendor: ClassVar[str]
    hooks: ClassVar[tuple[Hook, ...]]

    @classmethod
    def from_settings(cls, settings: Settings) -> Inbound:
        """The checks and parsers for this deployment (its secrets); opens nothing."""
        ...

    def verify(self, hook: Hook, request: WebhookRequest) -> str | None:
        """None when the request is genuine; else the words of its refusal (a 403)."""
        ...

    def parse(self, hook: Hook, request: WebhookRequest) -> Event | list[Event] | None:
        """The event a verified request carries (a list, from a vendor that batches them), or None when it is
        nothing for the dispatcher."""
        ...

    def answer(self, hook: Hook, request: WebhookRequest, answer: Answer | None) -> HookAnswer:
        """The HTTP answer, from what the dispatcher says back (None: nothing, such as for a replay)."""
        ...
