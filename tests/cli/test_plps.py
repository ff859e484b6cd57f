"""``plp plp``, ``plp charter``, ``plp members``: PLPs, charters and members through the real API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from dispatcher.storage.runtime import Runtime
from tests.cli.conftest import PlpCommand, Scene
from tests.sheetfiles import BELGIAN_NAMES, BELGIAN_ROWS, csv_file, ods_file, xls_file, xlsx_file


def test_an_admin_creates_a_plp_and_finds_it_listed_and_shown(api: PlpCommand, scene: Scene) -> None:
    """``plp plp create`` prints the new id; ``plp list`` and ``plp show`` find it with its default charter."""
    created = api.ok(
        "plp", "create", "--name", "PLP Gare", "--commune", "Ixelles", "--zone", "5340",
        "--reply-to", "coord@gare.example.org", **scene.token("admin"),
    )  # fmt: skip
    found = re.search(r"^created PLP (\w+): PLP Gare \(Ixelles, police zone 5340\)$", created.output, re.MULTILINE)
    assert found, created.output
    plp_id = found.group(1)
    listed = api.ok("plp", "list", **scene.token("admin")).output.splitlines()
    assert listed[0].split() == ["ID", "NAME", "COMMUNE", "ZONE", "KIND"]
    assert [line.split()[0] for line in listed[1:]] == [plp_id, "parc"]  # by name: "PLP Gare" < "PLP Quartier"
    shown = api.ok("plp", "show", plp_id, **scene.token("admin")).output
    assert "replies to: coord@gare.example.org" in shown
    assert re.search(r"urgent +sms, telegram, email, voice \(all\); ttl 7200 s; no quiet hours", shown), shown
    assert "police advice goes out after a coordinator approves" in shown


def test_police_list_the_plps_of_their_zone_only(api: PlpCommand, scene: Scene) -> None:
    """The listing is the caller's part: the zone's officer sees parc, an officer of another zone nothing."""
    assert "parc" in api.ok("plp", "list", **scene.token("police")).output
    assert api.ok("plp", "list", **scene.token("police_elsewhere")).output.strip().splitlines() == [
        "ID  NAME  COMMUNE  ZONE  KIND"
    ]
    search = api.ok("plp", "list", "--search", "uccle", "--json", **scene.token("police")).output
    assert [p["id"] for p in json.loads(search)["items"]] == ["parc"]


def test_a_coordinator_may_not_create_a_plp(api: PlpCommand, scene: Scene) -> None:
    """A refusal of the API (403) is one sentence saying why and what to do, exit status 1."""
    result = api("plp", "create", "--name", "X", "--commune", "Y", "--zone", "1", **scene.token("coordinator"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: not allowed: ")
    assert "role" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_charter_is_set_from_options_on_top_of_the_current_one(api: PlpCommand, scene: Scene) -> None:
    """``--channels``, ``--mode``, ``--ttl``, ``--quiet-hours``, ``--relay`` change only what they name."""
    result = api.ok(
        "charter", "set", "parc", "--relay", "coordinator", "--channels", "urgent=sms,voice",
        "--ttl", "urgent=1800", "--quiet-hours", "non_urgent=22:00-07:30", "--mode", "non_urgent=all",
        **scene.token("coordinator"),
    )  # fmt: skip
    assert "charter of parc set" in result.output
    charter = yaml.safe_load(api.ok("charter", "show", "parc", **scene.token("coordinator")).output)
    assert charter["relay"] == "coordinator"
    assert (charter["urgent"]["channels"], charter["urgent"]["ttl_seconds"]) == (["sms", "voice"], 1800)
    assert charter["non_urgent"]["quiet_hours"] == {"start": "22:00", "end": "07:30"}
    assert (charter["non_urgent"]["mode"], charter["non_urgent"]["channels"]) == ("all", ["email", "sms"])
    api.ok("charter", "set", "parc", "--quiet-hours", "non_urgent=none", **scene.token("coordinator"))
    again = json.loads(api.ok("charter", "show", "parc", "--format", "json", **scene.token("admin")).stdout)
    assert again["non_urgent"]["quiet_hours"] is None
    assert again["urgent"]["channels"] == ["sms", "voice"]


def test_a_charter_shown_edited_and_set_from_a_file_round_trips(api: PlpCommand, scene: Scene, tmp_path: Path) -> None:
    """``charter show`` prints a YAML document that ``charter set --file`` takes back, edited."""
    document = yaml.safe_load(api.ok("charter", "show", "parc", **scene.token("admin")).stdout)
    document["urgent"]["escalate_after_seconds"] = 600
    document["urgent"]["channels"] = ["sms", "email"]
    path = tmp_path / "charter.yaml"
    path.write_text(yaml.safe_dump(document))
    api.ok("charter", "set", "parc", "--file", str(path), **scene.token("admin"))
    shown = api.ok("plp", "show", "parc", **scene.token("admin")).output
    assert re.search(r"urgent +sms, email \(all\); ttl 3600 s; no quiet hours; escalate to voice after 600 s", shown)


def test_a_refused_charter_names_the_option_of_each_bad_field(api: PlpCommand, scene: Scene) -> None:
    """Fields the API refuses are reported one per line, with the option that set them; nothing changes."""
    result = api("charter", "set", "parc", "--channels", "urgent=sms,fax", "--ttl", "urgent=10", **scene.token("admin"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == "Error: not valid:"
    assert lines[1].startswith("  urgent.channels[1] (--channels urgent=...): ")
    assert lines[2].startswith("  urgent.ttl_seconds (--ttl urgent=...): ") and "60" in lines[2]
    charter = yaml.safe_load(api.ok("charter", "show", "parc", **scene.token("admin")).stdout)
    assert charter["urgent"]["ttl_seconds"] == 3600


def test_charter_options_are_checked_before_anything_is_sent(api: PlpCommand, scene: Scene, tmp_path: Path) -> None:
    """A malformed option or file is a usage error (exit status 2) saying what to write."""
    cases = [
        (["--quiet-hours", "non_urgent=late"], "HH:MM-HH:MM"),
        (["--channels", "weekly=sms"], "CLASS one of urgent, non_urgent, police_feedback"),
        (["--ttl", "urgent=soon"], "not a number of seconds"),
        ([], "nothing to set"),
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("urgent: [sms\n")
    cases.append((["--file", str(bad)], "line 2"))
    for args, says in cases:
        result = api("charter", "set", "parc", *args, **scene.token("admin"))
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output, (args, result.output)
        assert "Traceback" not in result.output


SHEET = """name,phone,email,language,channels
Marie Lambert,0470 55 66 01,marie@example.org,fr,sms;email
Bad Number,0212345678,,fr,sms
Jan Peeters,+32 470 55 66 03,jan@example.org,nl,email
No Contact,,,de,
Anne Again,0470 11 22 01,,fr,sms
"""


def test_an_import_reports_each_bad_row_and_keeps_its_neighbours(api: PlpCommand, scene: Scene, tmp_path: Path) -> None:
    """``members import`` prints the row report by line of the sheet (a bad number, no contact point, someone
    already a member); the good rows around them are imported; exit status 3 says some rows were rejected."""
    sheet = tmp_path / "members.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    preview = api("members", "import", "parc", str(sheet), "--dry-run", **scene.token("coordinator"))
    assert preview.exit_code == 3, preview.output
    assert preview.output.startswith("dry run, nothing written: would import 2 of 5 rows\nrejected 3 rows")
    assert api.ok("members", "list", "parc", **scene.token("coordinator")).output.strip().endswith("3 members")
    result = api("members", "import", "parc", str(sheet), **scene.token("coordinator"))
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "imported 2 of 5 rows"
    assert lines[1] == "rejected 3 rows (line numbers of the sheet, the header is line 1):"
    assert [line.split(":")[0] for line in lines[2:5]] == ["  line 3", "  line 5", "  line 6"]
    assert lines[2].startswith("  line 3: phone: ")
    assert "already a member of this PLP" in lines[4]
    assert lines[5] == "read as CSV in utf-8, separated by ','"
    listed = api.ok("members", "list", "parc", **scene.token("coordinator")).output
    assert "Marie Lambert" in listed and "Jan Peeters" in listed and "Bad Number" not in listed
    assert listed.strip().endswith("5 members")  # the scene's three, and two new


def test_an_import_from_standard_input_with_every_row_good_exits_0(api: PlpCommand, scene: Scene) -> None:
    """``-`` reads the sheet from standard input; a byte-order mark from a spreadsheet is fine."""
    sheet = "\ufeffname,email,language\nEva Schmitz,eva@example.org,de\n"
    result = api.ok("members", "import", "parc", "-", "--json", input=sheet, **scene.token("admin"))
    report = json.loads(result.stdout)
    assert [row["row"] for row in report["imported"]] == [2]
    assert report["rejected"] == []


def test_an_import_with_a_wrong_header_says_which_columns_are_known(
    api: PlpCommand, scene: Scene, runtime: Runtime
) -> None:
    """A sheet whose header the API cannot read is refused whole, naming the column and the expected ones."""
    result = api("members", "import", "parc", "-", input="Nom;Adresse\nX;Rue Haute 1\n", **scene.token("admin"))
    assert result.exit_code == 1
    assert "unknown column(s) Adresse (B1)" in result.output
    assert "name, phone, email, language, channels" in result.output


BELGIAN_FILES = [
    pytest.param("leden.csv", csv_file(BELGIAN_ROWS, delimiter=";", encoding="cp1252"), (),
                 "read as CSV in cp1252, separated by ';'", id="excel-csv-cp1252"),
    pytest.param("leden.txt", csv_file(BELGIAN_ROWS, delimiter="\t", encoding="utf-16"), (),
                 "read as CSV in utf-16, separated by tabs", id="unicode-text"),
    pytest.param("leden.xlsx", xlsx_file({"Leden": BELGIAN_ROWS, "Oud": [["Naam"]]}), (),
                 "read the workbook's sheet 'Leden' (other sheets: 'Oud'; pick one with --sheet)", id="xlsx"),
    pytest.param("leden.xlsx", xlsx_file({"Oud": [["Naam"]], "Leden": BELGIAN_ROWS}), ("--sheet", "Leden"),
                 "read the workbook's sheet 'Leden' (other sheets: 'Oud'; pick one with --sheet)", id="xlsx-tab"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "options", "how"), BELGIAN_FILES)
def test_a_sheet_saved_by_a_belgian_excel_is_imported_with_its_accents(
    api: PlpCommand, scene: Scene, tmp_path: Path, name: str, data: bytes, options: tuple[str, ...], how: str
) -> None:
    """A ; CSV in Windows-1252, Unicode text or a workbook (a chosen tab): every name arrives intact, and the
    report says how the file was read."""
    sheet = tmp_path / name
    sheet.write_bytes(data)
    result = api.ok("members", "import", "parc", str(sheet), *options, **scene.token("coordinator"))
    assert result.output.splitlines() == ["imported 4 of 4 rows", how]
    listed = api.ok("members", "list", "parc", "--json", **scene.token("coordinator")).output
    assert {m["name"] for m in json.loads(listed)["items"]} >= set(BELGIAN_NAMES)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        pytest.param(xls_file(), 'Save As" "Excel Workbook (.xlsx)" or "CSV UTF-8"', id="xls"),
        pytest.param(ods_file(), '"File > Save As" and the type "Excel 2007-365 (.xlsx)"', id="ods"),
        pytest.param(b"\xff\xfeN\x00o\x00m", "ends in the middle of a character", id="truncated-utf16"),
    ],
)
def test_a_file_the_service_cannot_read_says_what_to_do(
    api: PlpCommand, scene: Scene, tmp_path: Path, data: bytes, said: str
) -> None:
    """An old .xls, an .ods or a damaged file: exit status 1 and the service's sentence saying what to do."""
    sheet = tmp_path / "members.bin"
    sheet.write_bytes(data)
    result = api("members", "import", "parc", str(sheet), **scene.token("admin"))
    assert result.exit_code == 1
    assert said in result.output
