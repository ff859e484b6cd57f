"""The PLP communication plan as data: PLPs and their charters, members, actors, alerts.

These models are what the API accepts and returns and what Redis stores. Input models
(``*In``) refuse unknown fields; stored models are built only by the service.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from dispatcher.core.channel_names import ChannelName, Contact
from dispatcher.core.contacts import normalise_email
from dispatcher.core.places import Address, AreaIn, Coordinates, Locating, Location


class Language(StrEnum):
    FR = "fr"
    NL = "nl"
    DE = "de"
    EN = "en"


class Urgency(StrEnum):
    URGENT = "urgent"
    NON_URGENT = "non_urgent"


class MessageClass(StrEnum):
    """The message classes a charter plans for."""

    URGENT = "urgent"
    NON_URGENT = "non_urgent"
    POLICE_FEEDBACK = "police_feedback"


class Category(StrEnum):
    BURGLARY = "burglary"
    SUSPECT_VEHICLE = "suspect_vehicle"
    SUSPECT_PERSON = "suspect_person"
    INCIVILITY = "incivility"
    PREVENTION_ADVICE = "prevention_advice"
    OTHER = "other"


class FollowUpKind(StrEnum):
    """What a follow-up of an alert tells the members it reached."""

    UPDATE = "update"  # more about the same event; the alert goes on
    ALL_CLEAR = "all_clear"  # the danger has passed: the alert's escalations and retries end


class PlpKind(StrEnum):
    RESIDENTIAL = "residential"
    INDEPENDENTS = "independents"  # a PLP-I, for shopkeepers


class DeliveryMode(StrEnum):
    ALL = "all"  # every channel of the member that the plan lists
    FIRST_THAT_WORKS = "first_that_works"  # the first one; the next only if it fails


class RelayMode(StrEnum):
    AUTO = "auto"  # non-urgent police messages go out at once
    COORDINATOR = "coordinator"  # they wait for a coordinator's approval


class Role(StrEnum):
    ADMIN = "admin"
    POLICE = "police"
    COORDINATOR = "coordinator"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    OPTED_OUT = "opted_out"


class ConsentSource(StrEnum):
    """Where a member's consent was given: a sheet imported, the console's member form, the API, the member, the
    PLP's join page."""

    IMPORT = "import"
    CONSOLE = "console"
    API = "api"
    SELF_SERVICE = "self-service"
    JOIN_PAGE = "join-page"  # the resident asked on the PLP's join page, and a coordinator approved


class Consent(BaseModel):
    """A member's consent to a channel that needs one (WhatsApp): when it was given, and how."""

    at: datetime
    source: ConsentSource


class AlertStatus(StrEnum):
    AWAITING_RELAY = "awaiting_relay"
    ACCEPTED = "accepted"
    FANNING_OUT = "fanning_out"
    SENDING = "sending"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    DECLINED = "declined"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    OUTBOX = "outbox"  # kept in the local outbox (no credentials): final, and no provider ever had it
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class RelayState(StrEnum):
    AWAITING = "awaiting"
    APPROVED = "approved"
    DECLINED = "declined"
    AUTO = "auto"
    EXPIRED = "expired"  # the alert's time-to-live passed before anyone decided


#: Rank of each delivery status: a delivery only moves to a higher rank.
DELIVERY_RANK: dict[DeliveryStatus, int] = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.OUTBOX: 3,
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.EXPIRED: 3,
    DeliveryStatus.CANCELLED: 3,
}
FINAL_DELIVERY = frozenset(s for s, rank in DELIVERY_RANK.items() if rank == 3)

#: Rank of each alert status: an alert only moves to a higher rank.
ALERT_RANK: dict[AlertStatus, int] = {
    AlertStatus.AWAITING_RELAY: 0,
    AlertStatus.ACCEPTED: 1,
    AlertStatus.FANNING_OUT: 2,
    AlertStatus.SENDING: 3,
    AlertStatus.COMPLETED: 4,
    AlertStatus.EXPIRED: 4,
    AlertStatus.CANCELLED: 4,
    AlertStatus.DECLINED: 4,
}
FINAL_ALERT = frozenset(s for s, rank in ALERT_RANK.items() if rank == 4)

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
AlertText = Annotated[str, Field(min_length=1, max_length=1600)]

#: An e-mail address in its one written form (``contacts.normalise_email``); look-alike addresses refused.
EmailAddress = Annotated[
    str,
    Field(max_length=254, json_schema_extra={"format": "email"}),
    AfterValidator(normalise_email),
]

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Strict(BaseModel):
    """Input model: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class QuietHours(Strict):
    """Local hours during which non-urgent messages are held (may span midnight)."""

    start: str = Field(examples=["21:00"], description="HH:MM, PLP local time")
    end: str = Field(examples=["08:00"], description="HH:MM, PLP local time")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be a time written HH:MM, from 00:00 to 23:59")
        return value

    def contains(self, moment: time) -> bool:
        """Whether a local time of day falls within the quiet hours."""
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        if start <= end:
            return start <= moment < end
        return moment >= start or moment < end

    def release_at(self, moment: datetime, timezone: str) -> datetime | None:
        """When a message arriving at ``moment`` may go out: the end of the quiet hours it falls in
        (in the zone ``timezone``), or None when it falls outside them."""
        local = moment.astimezone(ZoneInfo(timezone))
        if not self.contains(local.time()):
            return None
        end = time.fromisoformat(self.end)
        day = local.date() if local.time() < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, tzinfo=local.tzinfo)


class ClassPlan(Strict):
    """How one message class reaches members: channels in order, and how many of them."""

    channels: list[ChannelName] = Field(min_length=1, max_length=4)
    mode: DeliveryMode = DeliveryMode.ALL
    ttl_seconds: int = Field(ge=60, le=30 * 86400, description="Nothing is sent after this.")
    quiet_hours: QuietHours | None = None
    escalate_after_seconds: int | None = Field(
        default=None,
        ge=30,
        description="Urgent only: a member who has not acknowledged this long after the alert is reached once "
        "more, on escalate_to.",
    )
    escalate_to: ChannelName = Field(default=ChannelName.VOICE, description="Urgent only: the escalation's channel.")
    ack_check_after_seconds: int | None = Field(
        default=None,
        ge=30,
        le=30 * 86400,
        description="Urgent only: when to check the share of members who acknowledged (with ack_threshold).",
    )
    ack_threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Urgent only: below this share of members acknowledging, the coordinators and the alert's "
        "author are told.",
    )

    @field_validator("channels")
    @classmethod
    def _distinct(cls, value: list[ChannelName]) -> list[ChannelName]:
        if len(set(value)) != len(value):
            raise ValueError("each channel may appear once")
        return value

    @model_validator(mode="after")
    def _follow_ups_fit(self) -> ClassPlan:
        if (self.ack_check_after_seconds is None) != (self.ack_threshold is None):
            raise ValueError("ack_check_after_seconds and ack_threshold go together: set both or neither")
        if self.escalate_after_seconds is not None and self.escalate_after_seconds >= self.ttl_seconds:
            raise ValueError("escalate_after_seconds must be shorter than ttl_seconds: nothing is sent after it")
        return self

    @property
    def follow_ups(self) -> list[str]:
        """The follow-ups of unacknowledged messages this plan sets (urgent plans only may)."""
        fields = ("escalate_after_seconds", "ack_check_after_seconds", "ack_threshold")
        return [name for name in fields if getattr(self, name) is not None]


def _default_urgent() -> ClassPlan:
    channels = [ChannelName.SMS, ChannelName.TELEGRAM, ChannelName.EMAIL, ChannelName.VOICE]
    return ClassPlan(channels=channels, mode=DeliveryMode.ALL, ttl_seconds=2 * 3600)


def _default_non_urgent() -> ClassPlan:
    return ClassPlan(
        channels=[ChannelName.EMAIL, ChannelName.TELEGRAM, ChannelName.SMS],
        mode=DeliveryMode.FIRST_THAT_WORKS,
        ttl_seconds=3 * 86400,
        quiet_hours=QuietHours(start="21:00", end="08:00"),
    )


def _default_feedback() -> ClassPlan:
    return ClassPlan(
        channels=[ChannelName.EMAIL, ChannelName.TELEGRAM],
        mode=DeliveryMode.FIRST_THAT_WORKS,
        ttl_seconds=7 * 86400,
        quiet_hours=QuietHours(start="21:00", end="08:00"),
    )


class Charter(Strict):
    """The PLP's communication plan, as agreed in its charter."""

    urgent: ClassPlan = Field(default_factory=_default_urgent)
    non_urgent: ClassPlan = Field(default_factory=_default_non_urgent)
    police_feedback: ClassPlan = Field(default_factory=_default_feedback)
    relay: RelayMode = Field(
        default=RelayMode.COORDINATOR,
        description="How non-urgent police messages reach members: at once, or after a coordinator approves.",
    )
    area_reaches_unlocated: bool = Field(
        default=True,
        strict=True,
        description="Whether an alert to part of the PLP (sectors, a circle, streets) reaches the members whose "
        "place is not known (counted apart); false: only those known to be inside.",
    )

    @model_validator(mode="after")
    def _urgent_rules(self) -> Charter:
        if self.urgent.quiet_hours is not None:
            raise ValueError("urgent.quiet_hours: urgent messages are never held, leave it out")
        for name in (MessageClass.NON_URGENT, MessageClass.POLICE_FEEDBACK):
            if fields := self.plan_of(name).follow_ups:
                raise ValueError(f"{name.value}.{fields[0]}: only urgent alerts are escalated or checked, leave it out")
        return self

    def plan_for(self, urgency: Urgency) -> ClassPlan:
        """The plan of the message class an alert of this urgency belongs to."""
        return self.urgent if urgency is Urgency.URGENT else self.non_urgent

    def plan_of(self, message_class: MessageClass) -> ClassPlan:
        """The plan of a message class."""
        plan: ClassPlan = getattr(self, message_class.value)
        return plan


class PlpIn(Strict):
    name: ShortText
    commune: ShortText
    police_zone: Annotated[str, Field(min_length=1, max_length=64, examples=["5340"])]
    kind: PlpKind = PlpKind.RESIDENTIAL
    default_language: Language = Language.FR
    timezone: str = "Europe/Brussels"
    charter: Charter = Field(default_factory=Charter)
    reply_to: list[EmailAddress] = Field(
        default_factory=list, max_length=10, description="Where members' e-mail replies go: the coordinators."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Brussels") from None
        return value


class Plp(PlpIn):
    model_config = ConfigDict(extra="ignore")

    id: str
    created_at: datetime


class MemberIn(Strict):
    """A member as a coordinator writes it: at least one contact point."""

    name: ShortText
    phone: str | None = Field(
        default=None, max_length=32, examples=["0470 12 34 56", "+32470123456"], description="Mobile number."
    )
    email: EmailAddress | None = None
    language: Language = Language.FR
    channels: list[ChannelName] = Field(
        default_factory=lambda: list(ChannelName), description="The channels the member accepts."
    )
    consent_at: datetime | None = Field(default=None, description="When the member consented; default: now.")
    whatsapp: StrictBool = Field(
        default=False, description="The member consents to be reached on WhatsApp, on their mobile number."
    )
    address: Address | None = Field(default=None, description="Where the member lives (personal data).")
    coordinates: Coordinates | None = Field(
        default=None, description="The member's position, if known; otherwise it is looked up from the address."
    )

    @model_validator(mode="after")
    def _reachable(self) -> MemberIn:
        if not self.phone and not self.email:
            raise ValueError("a member needs a mobile phone or an e-mail address")
        return self


class MemberPatch(Strict):
    """Fields a coordinator may change; absent fields stay as they are."""

    name: ShortText | None = None
    phone: str | None = Field(default=None, max_length=32)
    email: EmailAddress | None = None
    language: Language | None = None
    channels: list[ChannelName] | None = None
    status: MemberStatus | None = None
    whatsapp: StrictBool | None = Field(
        default=None, description="true: the member consents to WhatsApp (now); false: they withdraw that consent"
    )
    address: Address | None = Field(default=None, description="null: forget the address (and a position found from it)")
    coordinates: Coordinates | None = Field(default=None, description="null: forget the position")
    sector_id: str | None = Field(
        default=None,
        max_length=64,
        description="The member's sector in this PLP, set by hand; null: follow their place",
    )


class Member(BaseModel):
    """A person, member of one or more PLPs."""

    id: str
    name: str
    phone: str | None = Field(default=None, description="E.164")
    email: str | None = None
    telegram_chat_id: int | None = None
    language: Language
    channels: list[ChannelName]
    consent_at: datetime
    consent_source: ConsentSource | None = Field(
        default=None, description="Where the member consented to joining (none: added before this was recorded)"
    )
    status: MemberStatus = MemberStatus.ACTIVE
    opted_out_at: datetime | None = None
    whatsapp_consent: Consent | None = Field(
        default=None, description="The member's consent to WhatsApp; without it WhatsApp does not reach them"
    )
    unusable: dict[ChannelName, str] = Field(
        default_factory=dict, description="Channels whose contact point failed for good, and why, in plain words"
    )
    plp_ids: list[str]
    created_at: datetime
    updated_at: datetime
    address: Address | None = None
    location: Location | None = None
    locating: Locating | None = Field(default=None, description="Whether the member could be located, or why not")
    sector_ids: dict[str, str] = Field(default_factory=dict, description="PLP id -> sector set by hand")
    non_urgent: bool = Field(
        default=True,
        description="Whether non-urgent messages (advice, police feedback) reach the member; urgent ones always do",
    )
    channel_order: list[ChannelName] = Field(
        default_factory=list,
        description="The order the member wants their channels tried in, first first (chosen on their own page); "
        "the charter still decides which channels a message may take. Empty: the charter's order",
    )
    quiet_hours: QuietHours | None = Field(
        default=None,
        description="The member's own quiet hours, in their PLP's time zone: non-urgent messages wait for their end; "
        "urgent ones never do",
    )

    def accepts(self, message_class: MessageClass) -> bool:
        """Whether the member takes messages of this class at all (their own choice, on their page)."""
        return self.non_urgent or message_class is MessageClass.URGENT

    def address_for(self, channel: ChannelName) -> str | None:
        """The member's contact point for a channel, or None if they have none."""
        if channel.contact is Contact.PHONE:
            return self.phone
        if channel.contact is Contact.EMAIL:
            return self.email
        if channel.contact is Contact.WHATSAPP:
            return self.phone if self.whatsapp_consent is not None else None
        return str(self.telegram_chat_id) if self.telegram_chat_id is not None else None

    def preferred(self, channels: list[ChannelName]) -> list[ChannelName]:
        """These channels (a plan's, in its order) in the member's order: those the member ranked, in their order,
        then the others in the order given. The member orders; the plan decides which channels there are."""
        rank = {c: i for i, c in enumerate(self.channel_order)}
        return sorted(channels, key=lambda c: rank.get(c, len(rank)))  # stable: the plan's order among the unranked

    def reachable_channels(self, plan: ClassPlan) -> list[ChannelName]:
        """The plan's channels, in the member's order (``preferred``), that this member accepts and can be reached
        on; for a plan "first that works", the first of them."""
        chosen = [
            c
            for c in self.preferred(plan.channels)
            if c in self.channels and c not in self.unusable and self.address_for(c)
        ]
        if plan.mode is DeliveryMode.FIRST_THAT_WORKS:
            return chosen[:1]
        return chosen


class Actor(BaseModel):
    """Someone who uses the API: an admin, a police officer, or a coordinator."""

    id: str
    name: str
    role: Role
    police_zone: str | None = None
    plp_ids: list[str] = Field(default_factory=list)
    #: where their console sign-in links go; None: they sign in with a bearer token only
    email: str | None = None

    @model_validator(mode="after")
    def _bound(self) -> Actor:
        if self.role is Role.POLICE and not self.police_zone:
            raise ValueError("a police officer is bound to a police zone")
        if self.role is Role.COORDINATOR and not self.plp_ids:
            raise ValueError("a coordinator is bound to at least one PLP")
        return self


class ActorIn(Strict):
    name: ShortText
    role: Role
    police_zone: str | None = Field(default=None, max_length=64)
    plp_ids: list[Identifier] = Field(default_factory=list, max_length=100)
    email: EmailAddress | None = Field(default=None, description="Where console sign-in links go (optional)")


#: The most answer options an alert offers (SMS digits 1-4, one Telegram button row each, voice keys 2-5).
MAX_ANSWERS = 4
AnswerId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
AnswerText = Annotated[str, Field(min_length=1, max_length=40)]


class AnswerOption(Strict):
    """One answer a member can give to an alert: its id, its words per language, and whether choosing it
    asks the member's consent to be contacted by the police."""

    id: AnswerId
    texts: dict[Language, AnswerText] = Field(min_length=1)
    consent: bool = Field(default=False, description="Choosing it consents to the police contacting the member")

    def text_for(self, language: Language) -> str:
        """The option's words in ``language``, else French, Dutch, German, English, else any."""
        for candidate in (language, Language.FR, Language.NL, Language.DE, Language.EN):
            if candidate in self.texts:
                return self.texts[candidate]
        return next(iter(self.texts.values()))


class AlertIn(Strict):
    urgency: Urgency
    category: Category
    plp_ids: list[Identifier] = Field(min_length=1, max_length=500)
    texts: dict[Language, AlertText] = Field(
        min_length=1, description="The message per language; members get theirs, else the PLP's default."
    )
    ttl_seconds: int | None = Field(
        default=None, ge=60, le=30 * 86400, description="Default: the shortest of the target charters'."
    )
    about_alert_id: Identifier | None = Field(
        default=None,
        description="Police feedback: the earlier alert this message tells the PLP about (non-urgent only).",
    )
    area: AreaIn | None = Field(
        default=None, description="Only part of the PLPs: some sectors, a circle, or streets. Default: all of them."
    )
    exercise: StrictBool = Field(
        default=False,
        description="A drill: every channel marks it in the member's language, counted apart in reports and metrics.",
    )
    answers: list[AnswerOption] | None = Field(
        default=None,
        max_length=MAX_ANSWERS,
        description="The answers members can give (at most four). Default: the category's; [] for none.",
    )

    @field_validator("answers")
    @classmethod
    def _distinct_answers(cls, value: list[AnswerOption] | None) -> list[AnswerOption] | None:
        if value is not None and len({a.id for a in value}) != len(value):
            raise ValueError("each answer id may appear once")
        return value

    @model_validator(mode="after")
    def _feedback_is_not_urgent(self) -> AlertIn:
        if self.about_alert_id is not None and self.urgency is Urgency.URGENT:
            raise ValueError("police feedback about an earlier alert is sent as non_urgent")
        return self

    @field_validator("plp_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each PLP may appear once")
        return value


class FollowUpIn(Strict):
    kind: FollowUpKind = Field(description="update: more about the same event; all_clear: the danger has passed")
    texts: dict[Language, AlertText] = Field(
        min_length=1,
        description="The message per language; each member reached gets theirs, else the PLP's default.",
    )


class Relay(BaseModel):
    """How a non-urgent police message reaches one PLP: at once, or through its coordinator."""

    plp_id: str
    state: RelayState
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    texts: dict[Language, str] | None = Field(default=None, description="The coordinator's edited texts.")


class Alert(BaseModel):
    """What was asked to be sent; its progress lives beside it (see ``AlertView``)."""

    id: str
    author_id: str
    author_role: Role
    urgency: Urgency
    category: Category
    plp_ids: list[str]
    texts: dict[Language, str]
    ttl_seconds: int
    created_at: datetime
    about_alert_id: str | None = Field(default=None, description="Police feedback: the earlier alert it is about")
    area: AreaIn | None = Field(default=None, description="The part of its PLPs it goes to; None: all of them")
    follows: str | None = Field(
        default=None, description="A follow-up: the alert whose reached members it goes to (see ``kind``)"
    )
    kind: FollowUpKind | None = Field(default=None, description="A follow-up: an update or an all-clear")
    exercise: bool = Field(default=False, description="A drill: marked as an exercise on every channel")
    answers: list[AnswerOption] = Field(default_factory=list, description="The answers members can give")

    def answer(self, answer_id: str) -> AnswerOption | None:
        """The answer option with this id, if the alert offers it."""
        return next((a for a in self.answers if a.id == answer_id), None)

    @property
    def message_class(self) -> MessageClass:
        """Urgent, non-urgent, or police feedback about an earlier alert."""
        if self.about_alert_id is not None:
            return MessageClass.POLICE_FEEDBACK
        return MessageClass.URGENT if self.urgency is Urgency.URGENT else MessageClass.NON_URGENT

    def text_for(self, language: Language, relay: Relay | None, fallback: Language) -> str:
        """The text for a member's language: the relay's edit first, then the alert's, then any."""
        texts = {**self.texts, **(relay.texts or {})} if relay else self.texts
        return texts[self.language_for(language, relay, fallback)]

    def language_for(self, language: Language, relay: Relay | None, fallback: Language) -> Language:
        """The language of the text a member of ``language`` gets: theirs if there is a text in it, else
        ``fallback`` (the PLP's), else French, Dutch, German, English, else the first."""
        texts = {**self.texts, **(relay.texts or {})} if relay else self.texts
        for candidate in (language, fallback, Language.FR, Language.NL, Language.DE, Language.EN):
            if candidate in texts:
                return candidate
        return next(iter(texts))


class RelayDecision(Strict):
    texts: dict[Language, AlertText] | None = Field(
        default=None, description="Texts replacing or adding to the police's, per language."
    )


class RelayDecline(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-ready dict of a model."""
    return model.model_dump(mode="json")
