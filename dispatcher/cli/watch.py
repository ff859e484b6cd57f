"""``plp alert watch``: an alert followed live, a progress bar per channel and the tally of its answers, until it
is finished.

The alert is read with ``GET /v1/alerts/{id}`` every ``interval`` seconds: simple, and it
works through any proxy (the server-sent events of ``/events`` are for the console). A
channel's bar counts its deliveries that left the queue for good or were handed to the
provider (``sent``, ``delivered``, ``failed``, ``expired``, ``cancelled``) out of those planned;
the total grows while the fan-out plans more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text

from dispatcher.cli.client import ApiClient, ApiError
from dispatcher.cli.common import echo_table
from dispatcher.core.models import FINAL_ALERT, DeliveryStatus

FINISHED = frozenset(s.value for s in FINAL_ALERT)
#: Statuses a delivery is still on its way in; every other one counts as done on the bar.
ON_ITS_WAY = (DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value)
#: The order statuses are shown in: the outcome first.
STATUS_ORDER = ("delivered", "sent", "outbox", "failed", "expired", "cancelled", "sending", "queued")


class ChannelBars:
    """One progress bar per channel, added as the fan-out plans deliveries on it."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            console=console,
            auto_refresh=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def update(self, by_channel: dict[str, dict[str, int]]) -> None:
        for channel in sorted(by_channel):
            counts = by_channel[channel]
            total = sum(counts.values())
            done = total - sum(counts.get(s, 0) for s in ON_ITS_WAY)
            if channel not in self.tasks:
                self.tasks[channel] = self.progress.add_task(channel, total=total, counts="")
            self.progress.update(self.tasks[channel], total=total, completed=done, counts=_status_counts(counts))


def _status_counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{status} {counts[status]}" for status in STATUS_ORDER if counts.get(status))


def _acknowledged(alert: dict[str, Any]) -> str:
    counts = alert["counts"]
    total, acked = counts["total"], counts["acknowledged"]
    share = f" ({acked / total:.0%})" if total else ""
    return f"acknowledged {acked} of {total} deliveries{share}"


def _answers(alert: dict[str, Any]) -> str:
    """The live tally of the alert's answers (``answers: saw 2 · nothing 5 · camera 1``); "" when it offers none."""
    tally = alert.get("answer_tally") or []
    return "answers: " + " · ".join(f"{row['id']} {row['members']}" for row in tally) if tally else ""


def _consenting(alert: dict[str, Any]) -> list[str]:
    """The members who consent to be contacted about the alert, one line each."""
    return [
        f"consents to be contacted ({c['answer']}): {c['name']} {c['phone'] or ''}".rstrip()
        for c in alert.get("consenting") or []
    ]


def _header(alert: dict[str, Any], elapsed: float) -> Text:
    line = f"alert {alert['id']} · {alert['urgency']} {alert['category']} · {alert['status']} · {elapsed:.1f} s"
    text = Text(line, style="bold")
    waiting = [r["plp_id"] for r in alert.get("relays", []) if r["state"] == "awaiting"]
    if waiting:
        text.append(f"\nwaiting for the coordinators of {', '.join(waiting)} to relay it", style="yellow")
    elif not alert["counts"]["by_channel"] and alert["status"] not in FINISHED:
        text.append("\nplanning the deliveries…", style="dim")
    if alert.get("held_until"):
        text.append(f"\nheld by the quiet hours until {alert['held_until']}", style="yellow")
    text.append("\n" + _acknowledged(alert), style="green")
    if answers := _answers(alert):
        text.append("\n" + answers, style="cyan")
    return text


async def watch_alert(api: ApiClient, alert_id: str, *, interval: float, timeout: float | None) -> dict[str, Any]:
    """Show the alert live until it is finished; print its figures per channel; return its last reading.

    On a terminal, the bars are redrawn at each reading; elsewhere (a pipe, a log), a line is
    printed each time the alert's status changes. Raises ``ApiError`` when ``timeout`` seconds
    pass first (or the API refuses, e.g. an unknown alert).
    """
    console = Console(highlight=False)
    started = time.monotonic()
    first = await api.get(f"/v1/alerts/{alert_id}")
    alert = first
    if console.is_terminal:
        bars = ChannelBars(console)
        with Live(console=console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False) as live:
            async for alert in _readings(api, first, started, interval=interval, timeout=timeout):
                bars.update(alert["counts"]["by_channel"])
                live.update(Group(_header(alert, time.monotonic() - started), bars.progress), refresh=True)
    else:
        shown = None
        async for alert in _readings(api, first, started, interval=interval, timeout=timeout):
            if alert["status"] != shown:
                shown = alert["status"]
                click.echo(_header(alert, time.monotonic() - started).plain.replace("\n", "; "))
    echo_summary(alert, await _audience(api, alert["id"]))
    return alert


async def _audience(api: ApiClient, alert_id: str) -> dict[str, Any] | None:
    """Members planned, reached and who acknowledged (``/audience``); None from a service without it."""
    answer = await api.call("GET", f"/v1/alerts/{alert_id}/audience", params={"limit": 1}, allow=frozenset({404}))
    return answer.body if answer.status == 200 and isinstance(answer.body, dict) else None


async def _readings(
    api: ApiClient, alert: dict[str, Any], started: float, *, interval: float, timeout: float | None
) -> AsyncIterator[dict[str, Any]]:
    """The alert read every ``interval`` seconds, the first reading included, until it is finished."""
    while True:
        yield alert
        if alert["status"] in FINISHED:
            return
        if timeout is not None and time.monotonic() - started > timeout:
            raise ApiError(
                f"the alert is still {alert['status']} after {timeout:g} s; "
                f"go on watching with `plp alert watch {alert['id']}`"
            )
        await asyncio.sleep(interval)  # the alert's progress is made by other processes: this is a poll
        alert = await api.get(f"/v1/alerts/{alert['id']}")


def echo_summary(alert: dict[str, Any], audience: dict[str, Any] | None = None) -> None:
    """The alert's outcome: how long it took, per channel the deliveries in each status, acknowledged, members
    reached and acknowledging (when the service tells), cost."""
    counts = alert["counts"]
    took = _duration(alert)
    click.echo(f"alert {alert['id']} {alert['status']}{took}: {counts['total']} deliveries")
    header = ("CHANNEL", "TOTAL", *(s.upper() for s in STATUS_ORDER))
    rows = [
        (channel, sum(by_status.values()), *(by_status.get(s, 0) for s in STATUS_ORDER))
        for channel, by_status in sorted(counts["by_channel"].items())
    ]
    rows.append(("all", counts["total"], *(counts["by_status"].get(s, 0) for s in STATUS_ORDER)))
    echo_table(header, rows)
    click.echo(_acknowledged(alert))
    for line in filter(None, [_answers(alert), *_consenting(alert)]):
        click.echo(line)
    if audience is not None and audience.get("members"):
        members = audience["members"]
        click.echo(
            f"members: {members}, reached {audience['reached']} ({audience['reached'] / members:.0%}), "
            f"acknowledged {audience['acknowledged']} ({audience['acknowledged'] / members:.0%})"
        )
    extra = [
        f"{counts[k]} members {k.removeprefix('members_').replace('_', ' ')}"
        for k in ("members_unreachable", "members_opted_out")
        if counts.get(k)
    ]
    if counts.get("escalated"):
        extra.append(f"{counts['escalated']} deliveries added by escalation")
    if counts.get("possible_duplicates"):
        extra.append(f"{counts['possible_duplicates']} sent again after a send in doubt (may have arrived twice)")
    if extra:
        click.echo("; ".join(extra))
    cost = alert["cost"]
    click.echo(
        f"cost: {cost['estimated']} {cost['currency']} ({cost['sms_segments']} SMS segments, "
        f"{cost['voice_minutes']} call minutes)"
    )


def _duration(alert: dict[str, Any]) -> str:
    ended = alert.get("status_times", {}).get(alert["status"])
    if not ended:
        return ""
    seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(alert["created_at"])).total_seconds()
    return f" {seconds:.1f} s after it was posted"
