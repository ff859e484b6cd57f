"""``plp report``: a PLP's annual evaluation from the API, as Markdown, CSV or JSON, to the terminal or a file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from dispatcher.storage.runtime import Runtime
from tests.cli.conftest import PlpCommand, Scene
from tests.support import run_queued

YEAR = str(datetime.now(UTC).year)
URGENT = ("--plp", "parc", "--urgent", "--category", "burglary", "--text", "fr=Cambriolage rue du Parc")


def test_the_evaluation_as_markdown_counts_this_years_alert(api: PlpCommand, scene: Scene, runtime: Runtime) -> None:
    """By default, this year's evaluation in Markdown, with the alert sent and the PLP's members."""
    api.ok("alert", "send", *URGENT, "--yes", **scene.token("police"))
    asyncio.run(run_queued(runtime))
    text = api.ok("report", "--plp", "parc", **scene.token("coordinator")).output
    assert text.startswith(f"# Annual evaluation {YEAR}: PLP Quartier du Parc\n")
    assert "| urgent | 1 |" in text
    assert "| now | 3 |" in text


def test_the_evaluation_as_csv_goes_to_a_file(api: PlpCommand, scene: Scene, tmp_path: Path) -> None:
    """``--format csv --output FILE`` writes the spreadsheet and says where, on the standard error."""
    target = tmp_path / "evaluation.csv"
    result = api.ok(
        "report", "--plp", "parc", "--year", YEAR, "--format", "csv", "-o", str(target), **scene.token("admin")
    )
    assert result.stdout == ""
    assert f"evaluation of parc for {YEAR} written to {target}" in result.stderr
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(target.read_text()))}
    assert rows["plp.id"][0] == "parc"
    assert rows["year"][0] == YEAR


def test_the_evaluation_as_json(api: PlpCommand, scene: Scene) -> None:
    """``--format json`` prints the API's figures for scripts."""
    figures = json.loads(api.ok("report", "--plp", "parc", "--format", "json", **scene.token("police")).stdout)
    assert (figures["plp_id"], figures["year"]) == ("parc", int(YEAR))


def test_a_year_not_begun_and_a_plp_outside_ones_part_are_refused(api: PlpCommand, scene: Scene) -> None:
    """A year that has not begun is refused naming --year; police of another zone are not allowed."""
    result = api("report", "--plp", "parc", "--year", str(int(YEAR) + 1), **scene.token("admin"))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: year (--year): {int(YEAR) + 1} has not begun in Europe/Brussels; " + (
        f"the latest year is {YEAR}"
    )
    refused = api("report", "--plp", "parc", **scene.token("police_elsewhere"))
    assert refused.exit_code == 1
    assert refused.output.startswith("Error: not allowed: the evaluation of PLP parc is for the police of zone 5340")
