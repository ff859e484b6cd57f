"""What the API returns: response models built from the stored domain."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from config import Settings
from dispatcher.core.models import (
    Actor,
    Alert,
    AlertStatus,
    ChannelName,
    DeliveryStatus,
    Language,
    Member,
    Plp,
    Relay,
)
from dispatcher.storage.counters import sector_counts
from dispatcher.storage.records import AlertProgress, DeliveryRecord

Limit = Annotated[int, Field(ge=1, le=1000)]


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageQuery(Query):
    cursor: str | None = Field(default=None, max_length=200, description="next_cursor of the previous page")
    limit: Limit = 100


class MemberQuery(PageQuery):
    sector: str | None = Field(
        default=None,
        pattern=r"^([0-9a-f]{16}|none)$",
        description="Only the members of this sector (its id), or `none`: those in no sector",
    )
    located: bool | None = Field(
        default=None, description="false: only the members without a known position (with the reason); true: the others"
    )


class PlpListQuery(Query):
    q: str | None = Field(default=None, max_length=100, description="Part of the name or commune")


class DeliveryQuery(PageQuery):
    status: DeliveryStatus | None = None
    channel: ChannelName | None = None


class AlertListQuery(Query):
    limit: Limit = 50
    before: float | None = Field(
        default=None, allow_inf_nan=False, description="List alerts created before this Unix time"
    )


class PlpView(Plp):
    """A PLP and its charter."""


class PlpList(BaseModel):
    """PLPs within the caller's part."""

    items: list[PlpView]


class MemberView(Member):
    """A member, with their PLP memberships limited to the caller's PLPs, and how they can be reached."""

    working_channels: list[ChannelName] = Field(
        default_factory=list,
        description="Channels the member accepts, has a contact point for, and that have not failed for good "
        "(none once they opted out)",
    )
    last_acknowledged_at: datetime | None = Field(
        default=None, description="When they last acknowledged an alert of this PLP (of its latest 200)"
    )
    last_acknowledged_via: ChannelName | None = None
    sector_id: str | None = Field(
        default=None, description="The member's sector in this PLP: set by hand, else by position, else by street"
    )


class MemberPage(BaseModel):
    """One page of a PLP's members."""

    items: list[MemberView]
    next_cursor: str | None


class ImportedRow(BaseModel):
    row: int
    member_id: str | None = Field(description="The member's id; none in a dry run for a person not known yet")
    existing: bool = Field(description="True if the person was already a member elsewhere and was linked")


class RejectedRow(BaseModel):
    row: int
    errors: list[dict[str, str]]


class ImportSource(BaseModel):
    """How an uploaded sheet was read, so that a wrong guess shows."""

    format: Literal["csv", "xlsx"]
    header_row: int = Field(description="The sheet's row holding the column names; rows count from 1 as in the sheet")
    encoding: str | None = Field(default=None, description="CSV: the text encoding the file was read in")
    delimiter: str | None = Field(default=None, description="CSV: the column separator found")
    sheet: str | None = Field(default=None, description="Workbook: the sheet (tab) read")
    sheets: list[str] = Field(default_factory=list, description="Workbook: its visible sheets, to pick another")


class ImportReport(BaseModel):
    """Which rows were imported and which were rejected, and why."""

    imported: list[ImportedRow]
    rejected: list[RejectedRow]
    dry_run: bool = Field(default=False, description="True if nothing was written: the report of an import to come")
    source: ImportSource | None = Field(default=None, description="How an uploaded sheet was read (none for JSON)")


class StatusCounts(BaseModel):
    queued: int = 0
    sending: int = 0
    sent: int = 0
    delivered: int = 0
    outbox: int = Field(
        default=0, description="Kept in the local outbox file (no credentials for the channel): reached nobody"
    )
    failed: int = 0
    expired: int = 0
    cancelled: int = 0


class SectorCount(BaseModel):
    """How many members an alert reaches (or would reach) in one sector of a PLP: a count, never who."""

    plp_id: str
    sector_id: str
    members: int


class AlertCounts(BaseModel):
    total: int = Field(description="Deliveries planned")
    by_status: StatusCounts
    by_channel: dict[ChannelName, StatusCounts]
    acknowledged: int
    members_unreachable: int = Field(description="Members with no channel of the plan they can be reached on")
    members_opted_out: int = Field(description="Members skipped because they opted out")
    escalated: int = Field(
        default=0, description="Deliveries added to reach members who had not acknowledged an urgent alert in time"
    )
    possible_duplicates: int = Field(
        default=0,
        description="Sends made again after one that may have reached the provider (no answer once it went out, "
        "or its worker died during it): members may have received these messages twice",
    )
    members_unlocated: int = Field(
        default=0,
        description="An alert to part of its PLPs: members planned whose place is unknown (their charter reaches "
        "them), among those planned",
    )
    by_sector: list[SectorCount] = Field(
        default_factory=list, description="Members planned per sector, in the PLPs that have sectors"
    )


class AlertCost(BaseModel):
    """What the alert's planned SMS and calls cost the PLP, at the configured prices."""

    sms_segments: int
    voice_minutes: int
    estimated: Decimal
    currency: str


class AnswerCount(BaseModel):
    id: str = Field(description="The answer option")
    members: int = Field(description="Members whose answer (their latest) it is")


class ConsentingMember(BaseModel):
    """A member whose answer to this alert consents to being contacted by the police about it."""

    member_id: str
    name: str
    phone: str | None
    answer: str
    answered_at: datetime


class AlertView(Alert):
    """An alert, where it stands, and its delivery counts."""

    expires_at: datetime
    status: AlertStatus
    status_times: dict[str, datetime]
    relays: list[Relay]
    counts: AlertCounts
    cost: AlertCost
    held_until: datetime | None = Field(
        default=None,
        description="Non-urgent: the end of the quiet hours its sending was held until (the latest, over its PLPs)",
    )
    follow_ups: list[str] = Field(
        default_factory=list, description="Ids of its follow-ups (updates, all-clear), oldest first"
    )
    answer_tally: list[AnswerCount] = Field(
        default_factory=list, description="Per answer option, in the alert's order, the members who gave it (last)"
    )
    consenting: list[ConsentingMember] = Field(
        default_factory=list,
        description="Members whose answer consents to be contacted by the police about this alert: their name "
        "and phone, shown to the police for this alert only",
    )

    @classmethod
    def build(cls, alert: Alert, progress: AlertProgress, settings: Settings) -> AlertView:
        sms, voice = progress.counts.get("sms_segments", 0), progress.counts.get("voice_minutes", 0)
        return cls(
            **alert.model_dump(),
            expires_at=progress.expires_at,
            status=progress.status,
            status_times=progress.times,
            relays=sorted(progress.relays, key=lambda r: alert.plp_ids.index(r.plp_id)),
            counts=_counts(progress.counts),
            cost=AlertCost(
                sms_segments=sms,
                voice_minutes=voice,
                estimated=settings.price_sms_segment * sms + settings.price_voice_minute * voice,
                currency=settings.currency,
            ),
            held_until=progress.held_until,
            follow_ups=list(progress.follow_ups),
            answer_tally=[
                AnswerCount(id=a.id, members=progress.counts.get(f"answer:{a.id}", 0)) for a in alert.answers
            ],
        )


class SmsTextView(BaseModel):
    language: Language
    text: str = Field(description="The SMS as members of this language get it, hint included")
    encoding: str = Field(description="gsm7 (160 a segment) or ucs2 (70 a segment)")
    segments: int


class AlertPreview(BaseModel):
    """What an alert would do, before it is sent: the SMS per language, who it reaches, what it costs."""

    sms: list[SmsTextView]
    members_reached: int
    by_channel: dict[ChannelName, int]
    members_unreachable: int
    members_opted_out: int
    members_declined_non_urgent: int = Field(
        default=0,
        description="Members left out because they chose, on their own page, to receive no non-urgent messages "
        "(a non-urgent alert or police feedback; urgent alerts reach them), counted apart from those opted out",
    )
    cost: AlertCost
    by_plp: dict[str, int] = Field(
        default_factory=dict, description="Members reached through each PLP (a person in two PLPs counts in the first)"
    )
    by_sector: list[SectorCount] = Field(default_factory=list, description="Members reached per sector")
    members_unlocated: int = Field(
        default=0,
        description="Of those reached, the members whose place is unknown (an area alert; their charter reaches them)",
    )
    members_unlocated_left_out: int = Field(
        default=0,
        description="Members whose place is unknown, not reached because their PLP's charter says area alerts do not "
        "reach them",
    )


class AlertList(BaseModel):
    """Alerts visible to the caller, newest first."""

    items: list[AlertView]


def _counts(raw: dict[str, int]) -> AlertCounts:
    by_channel: dict[ChannelName, StatusCounts] = {}
    for key, value in raw.items():
        if key.startswith("c:") and value:
            _, channel, status = key.split(":")
            counts = by_channel.setdefault(ChannelName(channel), StatusCounts())
            setattr(counts, status, value)
    return AlertCounts(
        total=raw.get("planned", 0),
        by_status=StatusCounts(**{s.value: raw.get(f"s:{s.value}", 0) for s in DeliveryStatus}),
        by_channel=by_channel,
        acknowledged=raw.get("acknowledged", 0),
        members_unreachable=raw.get("unreachable", 0),
        members_opted_out=raw.get("opted_out", 0),
        escalated=raw.get("escalated", 0),
        possible_duplicates=raw.get("possible_duplicates", 0),
        members_unlocated=raw.get("unlocated", 0),
        by_sector=[
            SectorCount(plp_id=plp_id, sector_id=sector_id, members=n)
            for (plp_id, sector_id), n in sorted(sector_counts(raw).items())
        ],
    )


class DeliveryView(BaseModel):
    """One delivery: an alert, to a member, on a channel."""

    id: str
    alert_id: str
    member_id: str
    channel: ChannelName
    status: DeliveryStatus
    status_times: dict[str, datetime]
    attempts: int = Field(description="Sends tried, those refused by a provider's rate limit included")
    failures: int = Field(description="Transient failures, the ones PLP_MAX_ATTEMPTS bounds")
    possible_duplicates: int = Field(
        default=0,
        description="Times it was sent again after a send that may have reached the provider: the member may "
        "have received it that many times more",
    )
    provider_id: str | None
    last_error: str | None
    cause: str | None
    acknowledged_at: datetime | None
    acknowledged_via: str | None

    @classmethod
    def build(cls, record: DeliveryRecord) -> DeliveryView:
        return cls(
            id=record.id,
            alert_id=record.alert_id,
            member_id=record.member_id,
            channel=record.channel,
            status=record.status,
            status_times=record.times,
            attempts=record.attempts,
            failures=record.failures,
            possible_duplicates=record.possible_duplicates,
            provider_id=record.provider_id,
            last_error=record.last_error,
            cause=record.cause,
            acknowledged_at=record.acknowledged_at,
            acknowledged_via=record.acknowledged_by,
        )


class DeliveryPage(BaseModel):
    """One page of an alert's deliveries."""

    items: list[DeliveryView]
    next_cursor: str | None


class ActorView(Actor):
    """Someone who uses the API."""


class IssuedToken(BaseModel):
    """A bearer token, shown this once: only its hash is kept."""

    actor: ActorView
    token: str


class Health(BaseModel):
    """Liveness: the web process answers."""

    status: str


class Readiness(BaseModel):
    """Readiness: this web process can serve (Redis answers); why not otherwise. Other processes play no part."""

    status: str  # "ok" or "unavailable"
    redis: str  # "ok" or "unreachable: <error>"
    channels: dict[str, str]
    reasons: list[str] = []  # why it is not ready, one sentence each


class StatusProblem(BaseModel):
    problem: str = Field(
        description="no_urgent_worker, urgent_late, no_general_worker, clock_stopped or provider_failing"
    )
    detail: str = Field(description="What is wrong and how to fix it")


class StatusWorker(BaseModel):
    name: str
    state: str = Field(description="RQ's state: idle, busy... (unknown if RQ has no key for it)")
    heartbeat_age: float | None = Field(description="Seconds since its last heartbeat")
    pid: int | None
    host: str | None


class StatusLane(BaseModel):
    lane: str
    queue: str
    pending: int
    oldest_age: float | None = Field(description="Seconds the next job has waited (None: the queue is empty)")
    scheduled: int
    started: int
    failed: int
    workers_alive: int
    workers: list[StatusWorker]


class StatusClock(BaseModel):
    last_sweep_age: float | None
    alive: bool
    stale_after: float


class StatusProcess(BaseModel):
    role: str = Field(description="urgent, general (workers) or clock")
    name: str
    pid: int | None
    host: str | None
    age: float = Field(description="Seconds since its last heartbeat")
    alive: bool


class StatusLimit(BaseModel):
    channel: str
    name: str
    per_second: float
    detail: str


class StatusProvider(BaseModel):
    channel: str
    provider: str
    failures: int = Field(description="Its last calls in a row that failed for a reason of its own")
    failing: bool
    last_failure: str | None
    last_failure_age: float | None
    last_success_age: float | None


class ServiceStatus(BaseModel):
    """The whole service's health: what needs attention (with its fix), queues, workers, clock, providers."""

    status: str = Field(description="ok, or attention when there are problems")
    problems: list[StatusProblem]
    notes: list[str]
    lanes: list[StatusLane]
    clock: StatusClock
    clocks: list[StatusProcess] = Field(description="The clock processes beating")
    lost: list[StatusProcess] = Field(description="Workers and clocks that stopped beating without a clean stop")
    limits: list[StatusLimit]
    providers: list[StatusProvider]
    channels: dict[str, str]


class OpenApiDocument(RootModel[dict[str, Any]]):
    """The OpenAPI 3.1 document of this API."""
