"""``plp report``: a PLP's annual evaluation, as Markdown or CSV, from the API."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from dispatcher.cli.client import ApiClient, Connection, api_options, run_api
from dispatcher.cli.common import CONTEXT, echo_json


@click.command("report", context_settings=CONTEXT, short_help="A PLP's annual evaluation (Markdown, CSV).")
@click.option("--plp", "plp_id", required=True, help="The PLP evaluated.")
@click.option(
    "--year",
    type=click.IntRange(2000, 2100),
    default=lambda: datetime.now(UTC).year,
    show_default="this year",
    help="The calendar year evaluated.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "csv", "json"]),
    default="md",
    show_default=True,
    help="Markdown (to read, print or paste), CSV (a spreadsheet), or JSON (scripts).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of the standard output.",
)
@api_options
def report(*, connection: Connection, plp_id: str, year: int, fmt: str, output: Path | None) -> None:
    """Produce the annual evaluation of a PLP: members at the start and the end of the year, joins and
    leaves, alerts by urgency and category, reach and acknowledgement rates, median time to the first
    acknowledgement of urgent alerts, feedback, cost per channel.

    \b
    Examples:
      plp report --plp parc --year 2026 > evaluation-2026.md
      plp report --plp parc --year 2026 --format csv --output evaluation-2026.csv
    """

    async def work(api: ApiClient) -> Any:
        params: dict[str, str | int] = {"year": year, "format": fmt}
        return await api.get(f"/v1/plps/{plp_id}/evaluation", params=params, options={"year": "--year"})

    found = run_api(connection, work)
    if fmt == "json":
        if output is None:
            echo_json(found)
            return
        import json

        text = json.dumps(found, indent=2, ensure_ascii=False) + "\n"
    else:
        text = found if isinstance(found, str) else str(found)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"evaluation of {plp_id} for {year} written to {output}", err=True)
