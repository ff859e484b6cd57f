"""``plp drills``: a PLP's recurring drills (schedule one, list them, delete one), through the API."""

from __future__ import annotations

from typing import Any

import click

from dispatcher.cli.alerts import _texts
from dispatcher.cli.client import ApiClient, Connection, api_options, run_api
from dispatcher.cli.common import CONTEXT, echo_json, echo_table, json_option
from dispatcher.core.drills import Frequency, Weekday
from dispatcher.core.models import Category


@click.group("drills", context_settings=CONTEXT, short_help="A PLP's recurring drills: schedule, list, delete.")
def drills_group() -> None:
    """A PLP's recurring drills: exercises the clock sends on a rule, in the PLP's local time. Its coordinators
    schedule non-urgent drills; the police of its zone (and admins) urgent ones too."""


@drills_group.command("schedule", context_settings=CONTEXT, short_help="Schedule a recurring drill for a PLP.")
@click.argument("plp_id")
@click.option("--urgent/--non-urgent", "urgent", default=False, show_default=True, help="The lane it goes on.")
@click.option("--monthly", "week", type=click.IntRange(1, 4), metavar="N", help="Monthly, on the N-th weekday (1-4).")
@click.option("--weekly", is_flag=True, help="Every week.")
@click.option("--on", "weekday", type=click.Choice([d.value for d in Weekday]), required=True, help="The weekday.")
@click.option("--at", "at", required=True, metavar="HH:MM", help="The time, in the PLP's time zone.")
@click.option(
    "--category",
    type=click.Choice([c.value for c in Category]),
    default=Category.OTHER.value,
    show_default=True,
    help="Its category (its answer options follow it).",
)
@click.option(
    "--text",
    "texts",
    multiple=True,
    callback=_texts,
    metavar="LANG=TEXT",
    required=True,
    help="Its text in one language (repeat for each).",
)
@json_option
@api_options
def schedule(
    *,
    connection: Connection,
    plp_id: str,
    urgent: bool,
    week: int | None,
    weekly: bool,
    weekday: str,
    at: str,
    category: str,
    texts: dict[str, str],
    as_json: bool,
) -> None:
    """Schedule a drill for the PLP PLP_ID: sent as an exercise, marked as such on every channel.

    
    Example (the first Monday of each month at 18:00, the PLP's time):
      plp drills schedule parc --monthly 1 --on monday --at 18:00 --text fr="Exercice mensuel du PLP"
    """
    if (week is None) == (not weekly):
        raise click.UsageError("give one of --monthly N or --weekly")
    rule: dict[str, Any] = {"frequency": (Frequency.WEEKLY if weekly else Frequency.MONTHLY).value}
    rule |= {"weekday": weekday, "at": at} | ({"week": week} if week is not None else {})
    body = {"urgency": "urgent" if urgent else "non_urgent", "category": category, "texts": texts, "rule": rule}

    async def work(api: ApiClient) -> Any:
        return (await api.call("POST", f"/v1/plps/{plp_id}/drills", json_body=body)).body

    made = run_api(connection, work)
    if as_json:
        echo_json(made)
        return
    click.echo(f"drill {made['id']} scheduled: next {made['next_at']}")


@drills_group.command("list", context_settings=CONTEXT, short_help="A PLP's recurring drills, next first.")
@click.argument("plp_id")
@json_option
@api_options
def list_drills(*, connection: Connection, plp_id: str, as_json: bool) -> None:
    """List the recurring drills of the PLP PLP_ID: id, lane, rule, next occurrence (UTC), author's role."""

    async def work(api: ApiClient) -> Any:
        return await api.get(f"/v1/plps/{plp_id}/drills")

    found = run_api(connection, work)
    if as_json:
        echo_json(found)
        return
    rows = [(d["id"], d["urgency"], _rule(d["rule"]), d["next_at"], d["author_role"]) for d in found["items"]]
    echo_table(("ID", "LANE", "RULE", "NEXT (UTC)", "BY"), rows)
    click.echo(f"{len(rows)} drills")


def _rule(rule: dict[str, Any]) -> str:
    when = f"{rule['weekday']} {rule['at']}"
    return f"weekly, {when}" if rule["frequency"] == "weekly" else f"monthly, #{rule['week']} {when}"


@drills_group.command("delete", context_settings=CONTEXT, short_help="Delete one of a PLP's recurring drills.")
@click.argument("plp_id")
@click.argument("drill_id")
@api_options
def delete_drill(*, connection: Connection, plp_id: str, drill_id: str) -> None:
    """Delete the drill DRILL_ID of the PLP PLP_ID: none of its occurrences goes any more."""

    async def work(api: ApiClient) -> Any:
        return (await api.call("DELETE", f"/v1/plps/{plp_id}/drills/{drill_id}")).body

    run_api(connection, work)
    click.echo(f"drill {drill_id} deleted")
