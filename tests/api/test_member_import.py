"""Importing a spreadsheet through the API: the file's bytes as Excel, LibreOffice or a browser send them (CSV in
any separator and encoding, .xlsx), read into members with their names intact; bad files refused with a 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.sheetfiles import (
    BELGIAN_NAMES,
    BELGIAN_ROWS,
    XLSX,
    csv_file,
    ods_file,
    xls_file,
    xlsx_file,
    zip_bomb,
)
from tests.support import get_json

BELGIAN_SHEETS = [
    pytest.param(csv_file(BELGIAN_ROWS, delimiter=";", encoding="cp1252"), "text/csv", id="excel-csv-cp1252"),
    pytest.param(
        csv_file(BELGIAN_ROWS, delimiter=";", encoding="cp1252"), "application/vnd.ms-excel", id="csv-from-windows"
    ),
    pytest.param(csv_file(BELGIAN_ROWS, delimiter=";", encoding="utf-8-sig"), "text/csv", id="excel-csv-utf8"),
    pytest.param(csv_file(BELGIAN_ROWS, delimiter="\t", encoding="utf-16"), "text/plain", id="unicode-text"),
    pytest.param(
        csv_file(BELGIAN_ROWS, delimiter=",", encoding="cp1252"), "text/csv; charset=windows-1252", id="declared"
    ),
    pytest.param(xlsx_file({"Membres": BELGIAN_ROWS}), XLSX, id="xlsx"),
    pytest.param(xlsx_file({"Membres": BELGIAN_ROWS}), "application/octet-stream", id="xlsx-untyped"),
]


def import_of(plp_id: str, **query: str) -> str:
    return f"/v1/plps/{plp_id}/members/import" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


async def upload(client: TestClient, path: str, data: bytes, media_type: str, cast: Cast) -> tuple[int, Any]:
    response = await client.post(path, data=data, headers={**cast.auth("coordinator_a"), "Content-Type": media_type})
    return response.status, await response.json()


async def member_names(client: TestClient, cast: Cast) -> list[str]:
    page = await get_json(client, f"/v1/plps/{cast.plp_a}/members", headers=cast.auth("coordinator_a"))
    return sorted(m["name"] for m in page["items"])


@pytest.mark.parametrize(("data", "media_type"), BELGIAN_SHEETS)
async def test_a_belgian_coordinator_s_sheet_is_imported_with_its_names_intact(
    client: TestClient, cast: Cast, data: bytes, media_type: str
) -> None:
    """A ; CSV from Excel (Windows-1252, UTF-8 or UTF-16) or a workbook: every member arrives, accents intact."""
    status, report = await upload(client, import_of(cast.plp_a), data, media_type, cast)
    assert status == 200, report
    assert [r["row"] for r in report["imported"]] == [2, 3, 4, 5]
    assert report["rejected"] == []
    assert report["source"]["header_row"] == 1
    assert await member_names(client, cast) == sorted(BELGIAN_NAMES)
    page = await get_json(client, f"/v1/plps/{cast.plp_a}/members", headers=cast.auth("coordinator_a"))
    joelle = next(m for m in page["items"] if m["name"] == "Joëlle Claes")
    assert (joelle["phone"], joelle["language"]) == ("+32472987654", "nl")


async def test_the_report_says_how_the_sheet_was_read(client: TestClient, cast: Cast) -> None:
    """A dry run of a CSV names its encoding and separator; of a workbook, the tab read and the others."""
    path = import_of(cast.plp_a, dry_run="true")
    _, report = await upload(client, path, csv_file(BELGIAN_ROWS, delimiter=";", encoding="cp1252"), "text/csv", cast)
    assert report["source"] == {
        "format": "csv", "header_row": 1, "encoding": "cp1252", "delimiter": ";", "sheet": None, "sheets": [],
    }  # fmt: skip
    workbook = xlsx_file({"Membres": BELGIAN_ROWS, "Archief": [["Naam", "GSM"], ["Jan Peeters", 470556601]]})
    _, report = await upload(client, path, workbook, XLSX, cast)
    assert (report["source"]["sheet"], report["source"]["sheets"]) == ("Membres", ["Membres", "Archief"])
    status, report = await upload(client, import_of(cast.plp_a, sheet="Archief"), workbook, XLSX, cast)
    assert (status, [r["row"] for r in report["imported"]]) == (200, [2])
    assert await member_names(client, cast) == ["Jan Peeters"]


async def test_a_workbook_s_rows_keep_the_sheet_s_numbers_and_excel_s_types(client: TestClient, cast: Cast) -> None:
    """Under a title row, numbers without their 0 or + and a consent date are read; a spoiled cell rejects its row."""
    workbook = xlsx_file(
        {
            "Leden": [
                ["Leden BIN Stationswijk"],
                [],
                ["Naam", "Voornaam", "GSM", "Taal", "Datum toestemming"],
                ["Peeters", "Jan", 470123456.0, "Nederlands", datetime(2024, 3, 12, 18, 30)],
                ["Claes", "Joëlle", 32470123457, "NL", None],
                ["Wouters", "Bram", datetime(2024, 1, 1), "NL", None],
                ["Janssens", "Lien", 32470123458, "NL", None],
            ]
        }
    )
    status, report = await upload(client, import_of(cast.plp_a), workbook, XLSX, cast)
    assert status == 200, report
    assert [r["row"] for r in report["imported"]] == [4, 5, 7]
    assert [(r["row"], r["errors"][0]["field"]) for r in report["rejected"]] == [(6, "phone")]
    jan = await get_json(
        client,
        f"/v1/plps/{cast.plp_a}/members/{report['imported'][0]['member_id']}",
        headers=cast.auth("coordinator_a"),
    )
    assert (jan["name"], jan["phone"]) == ("Jan Peeters", "+32470123456")
    assert datetime.fromisoformat(jan["consent_at"]) == datetime(2024, 3, 12, 17, 30, tzinfo=UTC)  # Brussels time


BAD_FILES = [
    pytest.param(xls_file(), "application/vnd.ms-excel", 415, ".xls", id="xls"),
    pytest.param(ods_file(), "application/vnd.oasis.opendocument.spreadsheet", 415, ".ods", id="ods"),
    pytest.param(b"\xef\xbb\xbf", "text/csv", 422, "empty", id="bom-only"),
    pytest.param(b"\xff\xfe" + "Nom;GSM\n".encode("utf-16-le")[:-1], "text/csv", 422, "cut short", id="trunc-utf16"),
    pytest.param(bytes(range(256)) * 8, "application/octet-stream", 422, "CSV UTF-8", id="random-bytes"),
    pytest.param(b"Nom;GSM\n", "text/csv; charset=x-unknown", 415, "unknown charset", id="unknown-charset"),
    pytest.param("Nom;GSM\nRené;0470\n".encode("cp1252"), "text/csv; charset=utf-8", 422, "0xe9", id="not-utf8"),
    pytest.param(csv_file([["Nom", "Adresse"]], delimiter=";"), "text/csv", 422, "Adresse (B1)", id="unknown-column"),
    pytest.param(zip_bomb(40 * 1024 * 1024), XLSX, 413, "unpacks to", id="zip-bomb"),
    pytest.param(b"PK\x03\x04" + bytes(64), XLSX, 422, "damaged", id="broken-zip"),
    pytest.param(b"--x\r\nContent-Disposition: form-data\r\n\r\nA\r\n--x--", "multipart/form-data; boundary=x", 415,
                 "send JSON (application/json), CSV (text/csv) or an Excel workbook", id="form-upload"),
    pytest.param(b"\x89PNG\r\n", "image/png", 415, "not 'image/png'", id="picture"),
    pytest.param(b'{"members": [{"name": "Ren\xe9"}]}', "application/json", 400, "not utf-8 text", id="json-latin1"),
    pytest.param('{"members": []}'.encode("utf-16"), "application/json", 400, "Malformed JSON", id="json-utf16"),
    pytest.param(b'{"members": []}', "application/json; charset=x-klingon", 415, "unknown charset", id="json-charset"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "media_type", "status", "detail"), BAD_FILES)
async def test_a_file_that_cannot_be_imported_is_a_4xx_saying_why_and_writes_nothing(
    client: TestClient, cast: Cast, data: bytes, media_type: str, status: int, detail: str
) -> None:
    """Bad bytes, a format to convert first, a bomb, another media type: a problem naming it, never a 500."""
    answer, problem = await upload(client, import_of(cast.plp_a), data, media_type, cast)
    assert answer == status, problem
    assert detail in problem["detail"] + problem["title"] + str(problem["errors"])
    assert await member_names(client, cast) == []


@pytest.fixture
async def small_body_client(settings: Settings, client: TestClient) -> AsyncIterator[TestClient]:
    """A second app on the same Redis that takes bodies of at most 4 KiB."""
    runtime = Runtime.from_settings(settings.model_copy(update={"max_body_bytes": 4096}))
    async with TestClient(TestServer(create_app(runtime))) as small:
        yield small
    runtime.close()


async def test_a_file_larger_than_the_service_takes_is_a_413_saying_to_split_it(
    small_body_client: TestClient, cast: Cast
) -> None:
    """A sheet past the body limit is refused with 413 and what to do, and nothing is imported."""
    rows = [["Nom", "GSM"]] + [[f"Membre {i}", f"0470 00 {i // 100:02d} {i % 100:02d}"] for i in range(300)]
    status, problem = await upload(small_body_client, import_of(cast.plp_a), csv_file(rows), "text/csv", cast)
    assert status == 413
    assert problem["title"] == "File too large"
    assert "0.0 MiB" not in problem["detail"] and "split the sheet" in problem["detail"]
    redis = small_body_client.server.app[SERVICES].store.redis
    assert [key async for key in redis.scan_iter(match="plptest:member:*")] == []


async def test_a_coordinator_of_another_plp_is_refused_before_the_file_is_read(client: TestClient, cast: Cast) -> None:
    """A coordinator importing into another PLP gets 403, even with a file that could not be read."""
    response = await client.post(
        import_of(cast.plp_b), data=xls_file(), headers={**cast.auth("coordinator_a"), "Content-Type": XLSX}
    )
    assert response.status == 403


@pytest.mark.parametrize(
    ("header", "yes", "no"),
    [("WhatsApp", "yes", "no"), ("Consentement WhatsApp", "oui", "non"), ("WhatsApp toestemming", "ja", "nee"),
     ("WhatsApp-Einwilligung", "x", "nein")],
)  # fmt: skip
async def test_a_whatsapp_column_records_each_members_consent_as_from_the_import(
    client: TestClient, cast: Cast, header: str, yes: str, no: str
) -> None:
    """A yes/no WhatsApp column, in any of the four languages: a yes is the member's consent, recorded with the
    import as its source; a no or an empty cell is none; anything else rejects the row, saying so."""
    rows = [
        ["Nom", "GSM", header],
        ["Anne Dubois", "0470 11 11 11", yes],
        ["Piet Janssens", "0470 22 22 22", no],
        ["Lea Schmitz", "0470 33 33 33", ""],
        ["John Smith", "0470 44 44 44", "maybe"],
    ]
    status, report = await upload(client, import_of(cast.plp_a), csv_file(rows, delimiter=";"), "text/csv", cast)
    assert status == 200, report
    [rejected] = report["rejected"]
    assert rejected["row"] == 5 and "neither yes nor no" in str(rejected["errors"])
    page = await get_json(client, f"/v1/plps/{cast.plp_a}/members", headers=cast.auth("coordinator_a"))
    consents = {m["name"]: m["whatsapp_consent"] for m in page["items"]}
    assert consents["Anne Dubois"]["source"] == "import" and consents["Anne Dubois"]["at"]
    assert consents["Piet Janssens"] is None and consents["Lea Schmitz"] is None
