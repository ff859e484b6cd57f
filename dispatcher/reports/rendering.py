"""A PLP's annual evaluation as a file: CSV (one row per figure, a column per month) or Markdown (for the
yearly meeting); JSON is the evaluation itself (``dispatcher.reports.models``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from dispatcher.core.models import Category, ChannelName, Urgency
from dispatcher.reports.models import Evaluation, Reach

#: The months' names, January first.
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class EvaluationFormat(StrEnum):
    """The forms an evaluation is given in: JSON (the evaluation itself), CSV or Markdown."""

    JSON = "json"
    CSV = "csv"
    MD = "md"


#: Media type and file extension of each format but JSON.
FILE_FORMATS = {EvaluationFormat.CSV: ("text/csv", "csv"), EvaluationFormat.MD: ("text/markdown", "md")}


def filename(evaluation: Evaluation, fmt: EvaluationFormat) -> str:
    """``evaluation-<plp>-<year>.<csv|md>``."""
    return f"evaluation-{evaluation.plp_id}-{evaluation.year}.{FILE_FORMATS[fmt][1]}"


def _number(value: float | Decimal | int | None) -> str:
    return "" if value is None else str(value)


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(ev: Evaluation) -> list[list[str]]:
    """The evaluation as rows: ``figure, value`` (the whole year), then one column per month where
    the figure has months. Figure names are the JSON paths (``members.joined``)."""
    months = ev.months
    rows: list[list[str]] = [
        ["figure", "value", *(m.month for m in months)],
        ["plp.id", ev.plp_id],
        ["plp.name", _cell(ev.plp_name)],
        ["plp.commune", _cell(ev.commune)],
        ["plp.police_zone", _cell(ev.police_zone)],
        ["year", str(ev.year)],
        ["timezone", ev.timezone],
        ["complete", "true" if ev.complete else "false"],
        ["members.start", str(ev.members.start)],
        ["members.end", str(ev.members.end)],
    ]

    def monthly(name: str, total: int, values: Iterable[int]) -> None:
        rows.append([name, str(total), *(str(v) for v in values)])

    monthly("members.joined", ev.members.joined, (m.members_joined for m in months))
    monthly("members.left", ev.members.left, (m.members_left for m in months))
    monthly("members.opted_out", ev.members.opted_out, (m.members_opted_out for m in months))
    monthly("alerts.total", ev.alerts.total, (m.alerts for m in months))
    monthly("alerts.urgent", ev.alerts.urgent, (m.urgent for m in months))
    monthly("alerts.non_urgent", ev.alerts.non_urgent, (m.non_urgent for m in months))
    monthly("alerts.police_feedback", ev.alerts.police_feedback, (m.police_feedback for m in months))
    monthly("alerts.exercises", ev.alerts.exercises, (m.exercises for m in months))
    for category in Category:
        monthly(
            f"alerts.by_category.{category.value}",
            ev.alerts.by_category[category],
            (m.by_category[category] for m in months),
        )
    rows += [[f"alerts.by_sender.{role.value}", str(count)] for role, count in ev.alerts.by_sender.items()]
    rows += [[f"alerts.relays.{name}", str(count)] for name, count in ev.alerts.relays.model_dump().items()]
    for urgency in Urgency:
        reach: Reach = getattr(ev.reach, urgency.value)
        rows += [[f"reach.{urgency.value}.{name}", _number(value)] for name, value in reach.model_dump().items()]
    first = ev.urgent_first_acknowledgement
    rows += [
        ["urgent_first_acknowledgement.alerts", str(first.alerts)],
        ["urgent_first_acknowledgement.median_seconds", _number(first.median_seconds)],
    ]
    monthly("feedback_replies", ev.feedback_replies, (m.feedback_replies for m in months))
    cost = ev.cost
    rows += [
        ["cost.currency", cost.currency],
        ["cost.sms_segments", str(cost.sms_segments)],
        ["cost.voice_minutes", str(cost.voice_minutes)],
    ]
    for channel, spent in cost.by_channel.items():
        rows += [
            [f"cost.by_channel.{channel.value}.deliveries", str(spent.deliveries)],
            [f"cost.by_channel.{channel.value}.estimated", str(spent.estimated)],
        ]
    rows.append(["cost.estimated", str(cost.estimated)])
    for sector in ev.sectors:
        rows += [
            [f"sectors.{sector.sector_id}.name", _cell(sector.name or "")],
            [f"sectors.{sector.sector_id}.alerts", str(sector.alerts)],
            [f"sectors.{sector.sector_id}.aimed", str(sector.aimed)],
            [f"sectors.{sector.sector_id}.members_targeted", str(sector.members_targeted)],
        ]
    return rows


def to_csv(ev: Evaluation) -> str:
    """The evaluation as CSV (RFC 4180, comma-separated): see ``csv_rows``."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(csv_rows(ev))
    return out.getvalue()


_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|~&"})


def _md(text: str) -> str:
    """Text written as is in Markdown (no markup, no table cell break)."""
    return " ".join(text.split()).translate(_MARKDOWN_SPECIAL)


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{rest} s" if rest else ""]
    return " ".join(p for p in parts if p) or "0 s"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], *, align: str = "---:") -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "|".join([align] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


_CHANNEL_NAMES = {ChannelName.SMS: "SMS", ChannelName.VOICE: "voice call", ChannelName.EMAIL: "e-mail"}
_CHANNEL_NAMES[ChannelName.TELEGRAM] = "Telegram"
_UNITS = {ChannelName.SMS: "segments", ChannelName.VOICE: "minutes"}
_RELAYS = {
    "approved": "police advice relayed by the coordinator",
    "declined": "police advice declined by the coordinator",
    "expired": "police advice left undecided until it expired",
    "awaiting": "police advice awaiting the coordinator",
}


def to_markdown(ev: Evaluation) -> str:
    """The evaluation as a Markdown document for the yearly meeting: a table per subject, then the months."""
    last = datetime.fromtimestamp(ev.period_end.timestamp() - 1, ZoneInfo(ev.timezone)).date()
    lines = [
        f"# Annual evaluation {ev.year}: {_md(ev.plp_name)}",
        "",
        f"{_md(ev.commune)}, police zone {_md(ev.police_zone)}. Calendar year {ev.year} in the time zone "
        f"{_md(ev.timezone)}, from {ev.period_start.date().isoformat()} to {last.isoformat()}."
        + ("" if ev.complete else f" The year is not over: figures as of {ev.generated_at:%Y-%m-%d %H:%M} UTC."),
        "",
        "## Members",
        "",
    ]
    m = ev.members
    lines += _table(
        ["", "members"],
        [
            ["on 1 January", m.start],
            ["at the end of the year" if ev.complete else "now", m.end],
            ["joined", m.joined],
            ["left", m.left],
            ["opted out (stopped messages)", m.opted_out],
        ],
    )
    a = ev.alerts
    lines += ["## Alerts", ""]
    lines += _table(
        ["", "alerts"],
        [
            ["total", a.total],
            ["urgent", a.urgent],
            ["non-urgent", a.non_urgent],
            ["of which police feedback", a.police_feedback],
            ["exercises (drills, not counted above)", a.exercises],
            *([f"sent by {role.value}", count] for role, count in a.by_sender.items()),
            *([_RELAYS[name], count] for name, count in a.relays.model_dump().items()),
        ],
    )
    lines += _table(["category", "alerts"], ([c.value.replace("_", " "), n] for c, n in a.by_category.items()))
    lines += ["## Reach and acknowledgements", ""]
    r = ev.reach
    lines += _table(
        ["", "urgent", "non-urgent"],
        [
            ["members targeted", r.urgent.members_targeted, r.non_urgent.members_targeted],
            ["members reached", r.urgent.members_reached, r.non_urgent.members_reached],
            [
                "not reached: only in the local outbox",
                r.urgent.members_outbox,
                r.non_urgent.members_outbox,
            ],
            ["reach", _percent(r.urgent.reach), _percent(r.non_urgent.reach)],
            ["members who acknowledged", r.urgent.members_acknowledged, r.non_urgent.members_acknowledged],
            [
                "acknowledgement rate",
                _percent(r.urgent.acknowledgement_rate),
                _percent(r.non_urgent.acknowledgement_rate),
            ],
        ],
    )
    first = ev.urgent_first_acknowledgement
    lines += [
        f"Median time from an urgent alert to its first acknowledgement: {_duration(first.median_seconds)} "
        f"({first.alerts} urgent alerts acknowledged).",
        "",
        "## Replies from members",
        "",
        f"{ev.feedback_replies} replies received.",
        "",
        "## Cost",
        "",
    ]
    c = ev.cost
    units = {ChannelName.SMS: c.sms_segments, ChannelName.VOICE: c.voice_minutes}
    lines += _table(
        ["channel", "deliveries", "units", f"estimated ({c.currency})"],
        [
            *(
                [
                    _CHANNEL_NAMES.get(ch, str(ch)),  # a vendor added later is named as its channel
                    spent.deliveries,
                    f"{units[ch]} {_UNITS[ch]}" if ch in units else "",
                    spent.estimated,
                ]
                for ch, spent in c.by_channel.items()
            ),
            ["total", sum(s.deliveries for s in c.by_channel.values()), "", c.estimated],
        ],
    )
    lines += ["## Month by month", ""]
    lines += _table(
        ["month", "joined", "left", "opted out", "alerts", "urgent", "non-urgent", "police feedback", "replies"],
        (
            [
                MONTH_NAMES[n],
                month.members_joined,
                month.members_left,
                month.members_opted_out,
                month.alerts,
                month.urgent,
                month.non_urgent,
                month.police_feedback,
                month.feedback_replies,
            ]
            for n, month in enumerate(ev.months)
        ),
    )
    if ev.sectors:
        lines += ["## Sectors", ""]
        lines += _table(
            ["sector", "alerts", "of them aimed at it", "members targeted"],
            ([_md(s.name or f"{s.sector_id} (deleted)"), s.alerts, s.aimed, s.members_targeted] for s in ev.sectors),
        )
    return "\n".join(lines)


def render(ev: Evaluation, fmt: EvaluationFormat) -> str:
    """The evaluation as a CSV or Markdown file."""
    return to_csv(ev) if fmt is EvaluationFormat.CSV else to_markdown(ev)
