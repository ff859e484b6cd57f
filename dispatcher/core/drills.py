"""Recurring drills: when a scheduled drill comes round, in its PLP's local time.

A drill schedule sends an exercise (``exercise: true``) to one PLP on a rule such as "monthly, the first
Monday, at 18:00": the time is the PLP's wall-clock time (``Plp.timezone``), so the drill keeps its local
hour across a daylight-saving change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, model_validator

from dispatcher.core.models import AlertText, Category, Language, Role, Strict, Urgency


class Frequency(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


_WEEKDAYS = list(Weekday)


class DrillRule(Strict):
    """When a drill recurs: every week on ``weekday``, or every month on its ``week``-th ``weekday``, at ``at``
    (``HH:MM``, the PLP's local time)."""

    frequency: Frequency
    weekday: Weekday
    week: int | None = Field(default=None, ge=1, le=4, description="Monthly: the first (1) to fourth (4) weekday")
    at: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, the PLP's local time")

    @model_validator(mode="after")
    def _week_for_monthly_only(self) -> Self:
        if (self.frequency is Frequency.MONTHLY) != (self.week is not None):
            raise ValueError("week (1 to 4) is given for a monthly drill, and only for one")
        return self

    def next_after(self, moment: datetime, timezone: str) -> datetime:
        """The first occurrence strictly after ``moment``, in UTC."""
        zone = ZoneInfo(timezone)
        start = moment.astimezone(zone).date()
        hour, minute = (int(part) for part in self.at.split(":"))
        for day in self._days_from(start):
            local = datetime.combine(day, time(hour, minute), tzinfo=zone)
            if local > moment:
                return local.astimezone(UTC)
        raise AssertionError("a weekday comes round within two months")  # pragma: no cover

    def _days_from(self, start: date) -> list[date]:
        weekday = _WEEKDAYS.index(self.weekday)
        if self.frequency is Frequency.WEEKLY:
            return [start + timedelta(days=n) for n in range(8) if (start + timedelta(days=n)).weekday() == weekday]
        firsts = [date(start.year + (start.month - 1 + n) // 12, (start.month - 1 + n) % 12 + 1, 1) for n in range(3)]
        later = 7 * ((self.week or 1) - 1)
        return [first + timedelta(days=(weekday - first.weekday()) % 7 + later) for first in firsts]


class DrillScheduleIn(Strict):
    """A drill to send to the PLP on a rule: as an exercise, marked as such on every channel."""

    urgency: Urgency = Field(description="urgent: police and admins only; coordinators schedule non-urgent drills")
    category: Category = Category.OTHER
    texts: dict[Language, AlertText] = Field(min_length=1)
    rule: DrillRule


class DrillSchedule(DrillScheduleIn):
    """A scheduled drill: who scheduled it (it goes out, and is audited, as theirs) and when it goes next."""

    id: str
    plp_id: str
    author_id: str
    author_role: Role
    created_at: datetime
    next_at: datetime = Field(description="Its next occurrence (UTC)")


class DrillList(BaseModel):
    items: list[DrillSchedule]
