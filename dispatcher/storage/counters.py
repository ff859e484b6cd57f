"""The anonymous counters kept for a PLP's annual evaluation (``dispatcher.reports``), written with
each event, in the transaction of the event itself.

- Membership changes and replies are counted per PLP and month of its time zone, in
  ``plp:<id>:activity:<year>`` (``activity_counter``): ``Store`` counts joins, leaves and opt-outs
  (``Scripts.counted_change``: only if the change took place), ``dispatcher.pipeline.receipts`` replies.
- The SMS segments and call minutes planned for a PLP's members are added to the alert's counts
  (``cost_field``) by the fan-out and escalations.

None holds personal data: they survive the retention purge and members' erasure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from dispatcher.core.models import Plp
from dispatcher.storage.keys import Keys

#: The months of a year as counters name them (``MM``).
MONTHS = tuple(f"{m:02d}" for m in range(1, 13))


class Activity(StrEnum):
    """Events counted per PLP and month for the evaluation."""

    JOINED = "joined"
    LEFT = "left"  # removed from the PLP, or erased
    OPTED_OUT = "opted_out"
    REPLIES = "replies"


def local_month(timezone: str, at: datetime | float) -> tuple[int, str]:
    """The year and the month (``MM``) of a moment, in a time zone."""
    moment = datetime.fromtimestamp(at, UTC) if isinstance(at, int | float) else at
    local = moment.astimezone(ZoneInfo(timezone))
    return local.year, f"{local.month:02d}"


def activity_counter(keys: Keys, plp: Plp, event: Activity, at: datetime) -> tuple[str, str]:
    """The hash and field counting ``event`` at ``at`` for the PLP: its time zone's year and month."""
    year, month = local_month(plp.timezone, at)
    return keys.plp_activity(plp.id, year), f"{event.value}:{month}"


def cost_field(plp_id: str, unit: str) -> str:
    """The field of an alert's counts that adds up ``unit`` (``sms_segments``, ``voice_minutes``) for one PLP."""
    return f"p:{plp_id}:{unit}"


def sector_field(plp_id: str, sector_id: str) -> str:
    """The field of an alert's counts that adds up the members planned in one sector of a PLP."""
    return f"sector:{plp_id}:{sector_id}"


def sector_counts(raw: dict[str, int]) -> dict[tuple[str, str], int]:
    """The members planned per (PLP, sector) in an alert's counts (``sector_field``)."""
    found = {}
    for name, value in raw.items():
        if name.startswith("sector:"):
            _, plp_id, sector_id = name.split(":", 2)
            found[plp_id, sector_id] = int(value)
    return found
