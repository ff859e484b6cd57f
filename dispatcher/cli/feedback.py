"""``plp feedback list``: members' replies, per PLP or per alert, newest first, through the API."""

from __future__ import annotations

from typing import Any

import click

from dispatcher.cli.client import ApiClient, Connection, api_options, run_api
from dispatcher.cli.common import CONTEXT, echo_json, json_option, printable


@click.group("feedback", context_settings=CONTEXT, short_help="Members' replies, per PLP or per alert.")
def feedback_group() -> None:
    """Members' replies: what they saw, or anything else they wrote back."""


@feedback_group.command("list", context_settings=CONTEXT, short_help="Replies of a PLP or to an alert.")
@click.option("--plp", "plp_id", help="Replies from this PLP's members.")
@click.option("--alert", "alert_id", help="Replies to this alert.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="At most this many.")
@json_option
@api_options
def list_feedback(
    *, connection: Connection, plp_id: str | None, alert_id: str | None, limit: int, as_json: bool
) -> None:
    """List members' replies, newest first, of a PLP (--plp) or to an alert (--alert).

    Coordinators see their members' names; the police see member ids only.

    \b
    Examples:
      plp feedback list --plp parc
      plp feedback list --alert 3f0c9a1e5b7d2c48 --limit 10
    """
    if (plp_id is None) == (alert_id is None):
        raise click.UsageError("give either --plp or --alert")
    path = f"/v1/plps/{plp_id}/feedback" if plp_id else f"/v1/alerts/{alert_id}/feedback"

    async def work(api: ApiClient) -> Any:
        return await api.get(path, params={"limit": limit})

    found = run_api(connection, work)
    if as_json:
        echo_json(found)
        return
    for item in found["items"]:
        name = printable(item["member_name"]) if item.get("member_name") else None
        who = f"{name} ({item['member_id']})" if name else item["member_id"]
        about = f", about alert {item['alert_id']}" if item.get("alert_id") else ""
        when = item["received_at"][:19].replace("T", " ")
        click.echo(f"{when} UTC  {item['channel']}  {who}{about}")
        for line in printable(item["text"]).splitlines() or [""]:
            click.echo(f"    {line}")
    click.echo(f"{len(found['items'])} replies" + (" (more with --limit)" if len(found["items"]) == limit else ""))
