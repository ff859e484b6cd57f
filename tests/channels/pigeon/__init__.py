"""Pigeon post: a vendor that exists only in the tests, added the way a real one is.

Its room is this package, as ``channels/twilio`` is Twilio's: the channel (``PigeonChannel``:
sending, what it needs configured, its provider's name, its rate, the form and contact point of
its messages) and its webhook (``PigeonInbound``: the ring check, the loft's news in the
dispatcher's words, the answer in its own format). One line serves it,
``channels.register(PigeonChannel)``, as each line of ``channels.registry.VENDORS`` does for the
real vendors; nothing in ``dispatcher/`` names it.

The loft (``LOFT``) stands for the vendor's service: it keeps every message a pigeon carried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import RootModel

from channels.base import Configurable, MessageForm, OutboundMessage, Rate, Receipt, ReceiptStatus
from channels.inbound import Answer, Body, Event, Hook, HookAnswer, Inbound, StatusReport, TextMessage, WebhookRequest
from config import Settings
from dispatcher.core.models import ChannelName, Contact, DeliveryStatus

#: The secret the loft's news carries on its leg (``X-Pigeon-Ring``).
RING = "coo-coo"


@dataclass
class Loft:
    """Where the pigeons go: every message one carried, in order."""

    carried: list[OutboundMessage] = field(default_factory=list)
    readied: int = 0  # times a channel readied its pigeons (``prepare``) before any flew


LOFT = Loft()


class LoftAnswer(RootModel[dict[str, str]]):
    """What the loft takes back: the words a pigeon carries to whoever wrote the note, if any."""


NEWS = Hook(
    name="pigeon_news",
    path="",
    summary="News from the loft (with its ring): a pigeon landed, a member's note came back",
    body=Body.JSON,
    answers={200: LoftAnswer},
    expects="the loft's news is a JSON object",
)


class PigeonInbound:
    """The loft's news: ``{"kind": "landed", "delivery", "pigeon"}`` or ``{"kind": "note", "note", "from", "text"}``."""

    vendor: ClassVar[str] = "pigeon"
    hooks: ClassVar[tuple[Hook, ...]] = (NEWS,)

    @classmethod
    def from_settings(cls, settings: Settings) -> PigeonInbound:
        return cls()

    def verify(self, hook: Hook, request: WebhookRequest) -> str | None:
        return None if request.headers.get("X-Pigeon-Ring") == RING else "no ring on the pigeon's leg"

    def parse(self, hook: Hook, request: WebhookRequest) -> Event | None:
        news: Any = request.json
        if not isinstance(news, dict):
            return None
        if news.get("kind") == "landed":
            pigeon = str(news.get("pigeon", ""))
            return StatusReport(
                delivery_id=str(news.get("delivery", "")),
                reported="landed",
                status=DeliveryStatus.DELIVERED,
                provider_id=pigeon,
                event_id=f"{pigeon}:landed",
            )
        if news.get("kind") == "note":
            return TextMessage(
                channel=ChannelName(PigeonChannel.name),
                sender=str(news.get("from", "")),
                text=str(news.get("text", "")),
                event_id=str(news.get("note", "")),
                answer_inline=True,  # the pigeon that brought the note takes the answer back
            )
        return None

    def answer(self, hook: Hook, request: WebhookRequest, answer: Answer | None) -> HookAnswer:
        return HookAnswer(200, {"reply": answer.text} if answer is not None and answer.text else {})


class PigeonChannel(Configurable):
    """Sends each message with a pigeon to the member's phone; the loft reports its landing."""

    name: ClassVar[str] = "pigeon"
    provider: ClassVar[str] = "pigeon-post"
    contact: ClassVar[Contact] = Contact.PHONE
    form: ClassVar[MessageForm] = MessageForm.TEXT
    takes_replies: ClassVar[bool] = True
    max_text_length: ClassVar[int | None] = 1600
    reports_delivery: ClassVar[bool] = True
    requires: ClassVar[tuple[tuple[str, ...], ...]] = ()  # a loft needs no credentials
    inbound: ClassVar[type[Inbound] | None] = PigeonInbound

    @classmethod
    def from_settings(cls, settings: Settings) -> PigeonChannel:
        return cls()

    @classmethod
    def rates(cls, settings: Settings, address: str) -> list[Rate]:
        return [Rate("pigeon-loft", 100.0, "pigeons leaving the loft")]

    async def prepare(self) -> None:
        LOFT.readied += 1

    async def send(self, message: OutboundMessage) -> Receipt:
        LOFT.carried.append(message)
        return Receipt(provider_id=f"pigeon-{len(LOFT.carried)}", status=ReceiptStatus.SENT)

    async def close(self) -> None:
        pass
