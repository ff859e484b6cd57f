"""A PLP's annual evaluation as the API returns it: the figures of one calendar year, and their parts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from dispatcher.core.models import Category, ChannelName, Role


class MemberFigures(BaseModel):
    start: int = Field(description="Members on 1 January at 00:00, in the PLP's time zone")
    end: int = Field(description="Members at the end of the year (now, for the current year)")
    joined: int = Field(description="Members added to the PLP during the year (new, imported, or linked)")
    left: int = Field(description="Members removed from the PLP during the year (erased if it was their last)")
    opted_out: int = Field(description="Members who stopped messages (STOP, unsubscribe link); they stay listed")


class RelayCounts(BaseModel):
    """Police advice that waited for a coordinator of the PLP, by what became of it."""

    approved: int = 0
    declined: int = 0
    expired: int = 0
    awaiting: int = 0


class AlertTotals(BaseModel):
    total: int = Field(description="Alerts addressed to the PLP and created during the year, exercises left out")
    urgent: int
    non_urgent: int
    police_feedback: int = Field(description="Of the non-urgent alerts: police feedback about an earlier alert")
    by_category: dict[Category, int] = Field(description="Every category, zero included")
    by_sender: dict[Role, int] = Field(description="Who sent them: police, coordinator or admin")
    relays: RelayCounts
    exercises: int = Field(default=0, description="Exercises (drills) addressed to the PLP: counted here only")


class Reach(BaseModel):
    """How far one class of alerts reached the PLP's members, summed over its alerts (member × alert)."""

    members_targeted: int = Field(description="Members the alerts were planned for through this PLP")
    members_reached: int = Field(description="Of them, with at least one delivery sent or delivered")
    members_outbox: int = Field(
        default=0,
        description="Of them, not reached: their messages were only kept in the local outbox (a channel without "
        "credentials), never handed to a provider",
    )
    reach: float | None = Field(description="members_reached / members_targeted (null without any)")
    members_acknowledged: int = Field(description="Of them, who acknowledged on any channel")
    acknowledgement_rate: float | None = Field(description="members_acknowledged / members_targeted")


class ReachFigures(BaseModel):
    urgent: Reach
    non_urgent: Reach = Field(description="Non-urgent alerts, police feedback included")
    exercises: Reach | None = Field(default=None, description="Exercises (drills), of either urgency, apart")


class FirstAcknowledgement(BaseModel):
    """How soon the first member of the PLP acknowledged an urgent alert, from its creation."""

    alerts: int = Field(description="Urgent alerts at least one member of this PLP acknowledged")
    median_seconds: float | None = Field(description="Median over those alerts (null without any)")


class ChannelCost(BaseModel):
    deliveries: int = Field(description="Deliveries planned to the PLP's members on this channel")
    estimated: Decimal


class CostFigures(BaseModel):
    """The SMS and calls planned for the PLP's members, at the configured prices (e-mail, Telegram: free)."""

    currency: str
    sms_segments: int
    voice_minutes: int
    estimated: Decimal
    by_channel: dict[ChannelName, ChannelCost] = Field(description="Every channel, zero included")


class MonthFigures(BaseModel):
    month: str = Field(description="YYYY-MM, in the PLP's time zone")
    members_joined: int
    members_left: int
    members_opted_out: int
    alerts: int
    urgent: int
    non_urgent: int
    police_feedback: int
    by_category: dict[Category, int]
    feedback_replies: int
    exercises: int = Field(default=0, description="Exercises (drills), not counted in alerts")


class SectorFigures(BaseModel):
    """One sector of the PLP over the year: alerts that reached its members, and members planned (counts only)."""

    sector_id: str
    name: str | None = Field(description="The sector's name; null for a sector deleted since")
    alerts: int = Field(description="Alerts that were planned for at least one member of the sector")
    aimed: int = Field(description="Of them, alerts to part of the PLP that named this sector")
    members_targeted: int = Field(description="Members of the sector the alerts were planned for, summed over them")


class Evaluation(BaseModel):
    """A PLP's annual evaluation: one calendar year in the PLP's time zone, in figures."""

    plp_id: str
    plp_name: str
    commune: str
    police_zone: str
    year: int
    timezone: str
    period_start: datetime = Field(description="1 January 00:00, PLP local time")
    period_end: datetime = Field(description="1 January 00:00 of the next year, PLP local time (excluded)")
    complete: bool = Field(description="False while the year is not over: the figures so far")
    generated_at: datetime
    members: MemberFigures
    alerts: AlertTotals
    reach: ReachFigures
    urgent_first_acknowledgement: FirstAcknowledgement
    feedback_replies: int = Field(description="Replies (feedback) received from the PLP's members")
    cost: CostFigures
    months: list[MonthFigures] = Field(description="The twelve months, January first")
    sectors: list[SectorFigures] = Field(
        default_factory=list, description="Per sector of the PLP (by name; those deleted since last): alerts and reach"
    )
