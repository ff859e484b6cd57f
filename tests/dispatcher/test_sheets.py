"""Members' sheets: CSV in the separators and encodings Belgian spreadsheets write, and Excel workbooks, read
into rows numbered as the sheet numbers them; files that cannot be read are refused saying what to do."""

from __future__ import annotations

import random
import time
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatcher.core.contacts import normalise_mobile
from dispatcher.people.membership import RowError
from dispatcher.people.sheets import SheetError, read_sheet
from tests.sheetfiles import (
    BELGIAN_NAMES,
    BELGIAN_ROWS,
    csv_file,
    entity_bomb,
    inline_row,
    ods_file,
    rewritten,
    sheet_xml,
    xls_file,
    xlsx_file,
    zip_bomb,
    zip_file,
)

BRUSSELS = ZoneInfo("Europe/Brussels")


def read(data: bytes, **options: Any) -> Any:
    return read_sheet(data, region="BE", zone="Europe/Brussels", max_rows=options.pop("max_rows", 100), **options)


def names(sheet: Any) -> list[str]:
    return [fields["name"] for _, fields in sheet.rows]


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter"),
    [
        pytest.param(csv_file(BELGIAN_ROWS, delimiter=";", encoding="cp1252"), "cp1252", ";", id="excel-csv-be"),
        pytest.param(csv_file(BELGIAN_ROWS, delimiter=";", encoding="utf-8-sig"), "utf-8", ";", id="csv-utf8-bom"),
        pytest.param(csv_file(BELGIAN_ROWS, delimiter=",", encoding="utf-8"), "utf-8", ",", id="utf8-comma"),
        pytest.param(csv_file(BELGIAN_ROWS, delimiter="\t", encoding="utf-16"), "utf-16", "\t", id="unicode-text"),
        pytest.param(csv_file(BELGIAN_ROWS, delimiter=";", encoding="utf-16-le"), "utf_16_le", ";", id="utf16-no-bom"),
        pytest.param(csv_file(BELGIAN_ROWS, delimiter=",", encoding="cp1252"), "cp1252", ",", id="cp1252-comma"),
        pytest.param(csv_file(BELGIAN_ROWS, delimiter=";", encoding="mac_roman"), "mac_roman", ";", id="mac-excel"),
    ],
)
def test_a_csv_in_any_separator_and_encoding_a_spreadsheet_writes_keeps_its_accents(
    data: bytes, encoding: str, delimiter: str
) -> None:
    """The separator and the encoding are found; accented names arrive intact; Excel's empty rows are skipped."""
    sheet = read(data)
    assert (sheet.source.format, sheet.source.encoding, sheet.source.delimiter) == ("csv", encoding, delimiter)
    assert names(sheet) == BELGIAN_NAMES
    assert [row for row, _ in sheet.rows] == [2, 3, 4, 5]
    assert sheet.rows[0][1] == {
        "name": "René Lefèvre",
        "phone": "0470 12 34 56",
        "email": "rene.lefevre@example.org",
        "language": "fr",
    }


@pytest.mark.parametrize(
    ("header", "fields"),
    [
        (["Nom", "Téléphone", "E-mail", "Langue"], ["name", "phone", "email", "language"]),
        (["Naam", "Telefoon", "E-mailadres", "Taal"], ["name", "phone", "email", "language"]),
        (["Name", "Telefon", "E-Mail-Adresse", "Sprache"], ["name", "phone", "email", "language"]),
        (["Full name", "Mobile", "Email address", "Language"], ["name", "phone", "email", "language"]),
        (["NOM ", "GSM", "Courriel", "Canaux"], ["name", "phone", "email", "channels"]),
        (["Achternaam", "Voornaam", "Mobiel", "Kanalen"], ["name", "name", "phone", "channels"]),
        (["name", "phone", "email", "consent_at"], ["name", "phone", "email", "consent_at"]),
        (["Nom", "GSM", "Date d'inscription"], ["name", "phone", "consent_at"]),
    ],
)
def test_column_names_are_read_in_french_dutch_german_and_english(header: list[str], fields: list[str]) -> None:
    """A header in any of the service's languages names the member's fields (a first-name column joins the name)."""
    values = {"name": "Anne", "phone": "0470 11 22 33", "email": "a@example.org", "language": "fr",
              "channels": "sms", "consent_at": "2024-03-12"}  # fmt: skip
    sheet = read(csv_file([header, [values[f] for f in fields]], delimiter=";"))
    row, read_fields = sheet.rows[0]
    assert row == 2
    assert set(read_fields) == set(fields)


def test_rows_keep_the_sheet_s_numbers_past_title_rows_and_cells_holding_line_breaks() -> None:
    """The header may sit under a title and a blank row; a quoted cell spanning lines is one row, as in Excel."""
    rows = [
        ["Membres PLP Quartier du Parc", "", ""],
        ["", "", ""],
        ["Nom", "GSM", "Langue"],
        ["Anne Dubois", "0470 11 22 33", "fr"],
        ["Jan\nPeeters", "0470 11 22 44", "nl"],
        ["Bad", "3,24701E+11", "fr"],
        ["Eva Braun", "0470 11 22 55", "de"],
    ]
    sheet = read(csv_file(rows, delimiter=";", encoding="cp1252"))
    assert sheet.source.header_row == 3
    assert [row for row, _ in sheet.rows] == [4, 5, 6, 7]
    assert sheet.rows[1][1]["name"] == "Jan Peeters"
    assert isinstance(sheet.rows[2][1], RowError)
    assert "lost its last digits" in str(sheet.rows[2][1])


@pytest.mark.parametrize(
    ("cell", "e164"),
    [
        (470123456, "+32470123456"),
        (470123456.0, "+32470123456"),
        (32470123456, "+32470123456"),
        (3.2470123456e10, "+32470123456"),
        (33612345678, "+33612345678"),
        ("0470/12.34.56", "+32470123456"),
        ("'0470123456", None),
    ],
)
def test_phone_numbers_a_spreadsheet_turned_into_numbers_get_their_prefix_back(cell: Any, e164: str | None) -> None:
    """A number without its leading 0 (or without +) is read as the mobile number it was."""
    sheet = read(xlsx_file({"Leden": [["Naam", "GSM"], ["Jan", cell]]}))
    phone = sheet.rows[0][1]["phone"]
    if e164 is None:
        assert phone == cell
    else:
        assert normalise_mobile(phone, region="BE") == e164


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        (date(2024, 1, 1), "a date here"),
        (4.7012, "no phone number"),
        ("4,70123E+08", "lost its last digits"),
    ],
)
def test_a_phone_cell_a_spreadsheet_spoiled_is_refused_in_its_row(cell: Any, reason: str) -> None:
    """A date, a fraction or a number in scientific notation rejects its row, with what to do; others are read."""
    sheet = read(xlsx_file({"Leden": [["Naam", "GSM"], ["Jan", cell], ["Eva", "0470 11 22 33"]]}))
    bad, good = sheet.rows
    assert bad[0] == 2 and isinstance(bad[1], RowError)
    assert bad[1].errors[0]["field"] == "phone" and reason in bad[1].errors[0]["reason"]
    assert good == (3, {"name": "Eva", "phone": "0470 11 22 33"})


def test_a_workbook_is_read_from_its_first_visible_tab_with_excel_s_types() -> None:
    """Numbers, dates and localised words become the member's fields; the other tabs are listed, not read."""
    data = xlsx_file(
        {
            "Oud": [["Naam"], ["Old"]],
            "Membres": [
                ["Nom", "Prénom", "GSM", "E-mail", "Langue", "Canaux", "Date d'inscription", None],
                ["Dubois", "Anne", 470123456.0, "anne@example.org", "Français", "SMS, e-mail", datetime(2024, 3, 12)],
                [None] * 7,
                ["Peeters", "Jan", 32470123457, None, "Nederlands", "voix", date(2023, 9, 1), None],
            ],
            "Archief": [["Naam"], ["Older"]],
        },
        hidden=["Oud"],
    )
    sheet = read(data)
    assert (sheet.source.format, sheet.source.sheet, sheet.source.sheets) == ("xlsx", "Membres", ("Membres", "Archief"))
    assert sheet.rows == [
        (2, {"name": "Anne Dubois", "phone": "470123456", "email": "anne@example.org", "language": "fr",
             "channels": ["sms", "email"], "consent_at": datetime(2024, 3, 12, tzinfo=BRUSSELS)}),
        (4, {"name": "Jan Peeters", "phone": "32470123457", "language": "nl", "channels": ["voice"],
             "consent_at": datetime(2023, 9, 1, tzinfo=BRUSSELS)}),
    ]  # fmt: skip
    assert names(read(data, sheet="Archief")) == ["Older"]
    assert names(read(data, sheet="oud")) == ["Old"]


def test_a_cell_outside_the_named_columns_rejects_its_row_only() -> None:
    """A note in a column without a name is not silently dropped: its row is rejected, naming the cell."""
    sheet = read(csv_file([["Nom", "GSM", ""], ["Anne", "0470 11 22 33", "a note"], ["Jan", "0470 11 22 44", ""]]))
    assert isinstance(sheet.rows[0][1], RowError)
    assert sheet.rows[0][1].errors == [
        {"field": "row", "reason": "cell C2 is in a column without a name: name the column or clear the cell"}
    ]
    assert sheet.rows[1] == (3, {"name": "Jan", "phone": "0470 11 22 44"})


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


RANDOM = random.Random(20261124)


@pytest.mark.parametrize(
    ("data", "options", "status", "detail"),
    [
        pytest.param(b"", {}, 422, "the file is empty", id="empty"),
        pytest.param(b"\xef\xbb\xbf", {}, 422, "the file is empty", id="utf8-bom-only"),
        pytest.param(b"\xff\xfe", {}, 422, "the file is empty", id="utf16-bom-only"),
        pytest.param(b"\xff\xfe" + "Nom;GSM".encode("utf-16-le")[:-1], {}, 422, "middle of a character",
                     id="truncated-utf16"),
        pytest.param(bytes(RANDOM.randrange(256) for _ in range(4000)), {}, 422, "save the sheet as",
                     id="random-bytes"),
        pytest.param(b"Nom;GSM\nAnne\x00;0470\n", {}, 422, "NUL characters", id="nul"),
        pytest.param("Nom;GSM\nRené;0470\n".encode("cp1252"), {"charset": "utf-8"}, 422, "byte 0xe9",
                     id="declared-utf8-but-cp1252"),
        pytest.param(b"Nom;GSM\n", {"charset": "klingon"}, 415, "unknown charset 'klingon'", id="unknown-charset"),
        pytest.param(b"Nom;GSM\n", {"charset": "base64"}, 415, "unknown charset 'base64'", id="non-text-codec"),
        pytest.param(xls_file(), {}, 415, "Excel 97-2003 workbook (.xls)", id="xls"),
        pytest.param(ods_file(), {}, 415, "OpenDocument spreadsheet (.ods)", id="ods"),
        pytest.param(zip_file({"a.txt": b"hello"}), {}, 415, "zip archive, not an Excel workbook", id="zip"),
        pytest.param(_truncated(xlsx_file({"Membres": [["Nom"], ["Anne"]] * 50})), {}, 422,
                     "may be damaged or cut short", id="truncated-xlsx"),
        pytest.param(b"PK\x03\x04" + bytes(100), {}, 422, "may be damaged or cut short", id="zip-magic-only"),
        pytest.param(xlsx_file({"Membres": [["Nom"]]}), {"sheet": "Leden"}, 422, "no sheet 'Leden'; its sheets: "
                     "'Membres'", id="unknown-tab"),
        pytest.param(csv_file([["Nom", "GSM", "Adresse"]]), {}, 422, "unknown column(s) Adresse (C1)",
                     id="unknown-column"),
        pytest.param(csv_file([["Nom", "GSM", "Téléphone"]]), {}, 422, "two columns are the member's phone: B and C",
                     id="two-phone-columns"),
        pytest.param(csv_file([["a", "b"], ["c", "d"]]), {}, 422, "no header row", id="no-header"),
        pytest.param(csv_file([["Nom", "GSM"]] + [["X", "0470"]] * 4), {"max_rows": 3}, 413, "more than 3 rows",
                     id="too-many-rows"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_read_is_refused_saying_what_to_do(
    data: bytes, options: dict[str, Any], status: int, detail: str
) -> None:
    """Bad bytes, a format to convert first or a sheet without usable columns: a 4xx and a sentence, never a crash."""
    with pytest.raises(SheetError) as refused:
        read(data, **options)
    assert refused.value.status == status
    assert detail in refused.value.detail


@pytest.mark.parametrize(
    ("data", "status", "detail"),
    [
        pytest.param(zip_bomb(40 * 1024 * 1024), 413, "the workbook unpacks to 41 MB", id="zip-bomb"),
        pytest.param(entity_bomb(), 422, "cannot be read", id="billion-laughs"),
    ],
)
def test_a_workbook_bomb_is_refused_before_it_is_unpacked(data: bytes, status: int, detail: str) -> None:
    """A workbook that unpacks to far more than a members' sheet, or expands XML entities, is refused at once."""
    assert len(data) < 1_000_000
    started = time.monotonic()
    with pytest.raises(SheetError) as refused:
        read(data)
    assert time.monotonic() - started < 5
    assert (refused.value.status, detail in refused.value.detail) == (status, True)


def test_a_workbook_whose_declared_size_lies_is_read_by_its_rows_in_bounded_time() -> None:
    """A sheet claiming 16,384 columns and a million rows, with a row at the last one, is read in seconds."""
    body = (
        inline_row(1, {"A": "Nom", "B": "GSM"})
        + inline_row(2, {"A": "Anne", "B": "0470 11 22 33"})
        + inline_row(1_048_576, {"A": "Zoë", "B": "0470 11 22 44", "XFD": "far away"})
    )
    data = rewritten(
        xlsx_file({"Membres": [["x"]]}), {"xl/worksheets/sheet1.xml": sheet_xml(body, dimension="A1:XFD1048576")}
    )
    started = time.monotonic()
    sheet = read(data)
    assert time.monotonic() - started < 10
    assert sheet.rows == [(2, {"name": "Anne", "phone": "0470 11 22 33"}), (1_048_576, {"name": "Zoë",
                          "phone": "0470 11 22 44"})]  # fmt: skip
