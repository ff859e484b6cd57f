"""The coordinator's members screen: reachability, adding and editing, sheet import with a preview, Telegram links."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.console.conftest import screenshot, sign_in
from tests.console.stage import Stage
from tests.sheetfiles import XLSX, csv_file, xlsx_file

CSV = """name,phone,email,language,channels
Marie Leroy,0471 55 66 77,marie.leroy@example.org,fr,sms;email
Jan De Smet,0472 88 99 00,,nl,sms;voice
Bad Row,02 555 12 34,,fr,sms
Eva Braun,,eva.braun@example.org,de,email
"""


def test_importing_a_csv_shows_the_rejected_rows_and_why_before_importing_the_others(
    page: Page, stage: Stage, tmp_path: Path
) -> None:
    """The preview (a dry run) names the bad line and its reason and writes nothing; the import adds the rest."""
    plp = stage.plps["gare"]
    before = {m["name"] for m in stage.api("GET", f"/v1/plps/{plp}/members", who="coordinator_gare")["items"]}
    sheet = tmp_path / "members.csv"
    sheet.write_text(CSV, encoding="utf-8")
    sign_in(page, stage, "coordinator_gare")
    page.get_by_role("link", name="Members").click()
    page.get_by_text("Import a spreadsheet (CSV or Excel)").click()
    page.get_by_label("Spreadsheet (CSV or Excel)").set_input_files(sheet)
    expect(page.locator("#import-preview")).to_have_text("3 rows will be imported. 1 row is rejected.")
    rejected = page.locator("table.rejected tbody tr")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("4")  # the spreadsheet's line (the header is line 1)
    expect(rejected).to_contain_text("phone: not a mobile number")
    screenshot(page, "members-import")
    after_preview = {m["name"] for m in stage.api("GET", f"/v1/plps/{plp}/members", who="coordinator_gare")["items"]}
    assert after_preview == before, "the preview imports nothing"

    page.get_by_role("button", name="Import 3 rows").click()
    expect(page.locator("#import-done")).to_have_text("3 rows imported. 1 row is rejected.")
    members = page.locator("table.members")
    expect(members).to_contain_text("Marie Leroy")
    expect(members).to_contain_text("Eva Braun")
    expect(members).not_to_contain_text("Bad Row")
    names = {m["name"] for m in stage.api("GET", f"/v1/plps/{plp}/members", who="coordinator_gare")["items"]}
    assert names == before | {"Marie Leroy", "Jan De Smet", "Eva Braun"}


WINDOWS_SHEET = [
    ["Nom", "Prénom", "Téléphone", "E-mail", "Langue", "", ""],
    ["Lefèvre", "René", "0478 10 20 01", "rene.lefevre@example.org", "Français", "", ""],
    ["Dubœuf", "Hélène", "0478 10 20 02", "", "fr", "", ""],
    ["Müller", "Jürgen", "", "juergen.mueller@example.org", "Deutsch", "", ""],
    ["", "", "", "", "", "", ""],
]
WORKBOOK = {
    "Archief": [["Naam", "GSM"], ["Oud Lid", 478102099]],
    "Leden": [["Naam", "Voornaam", "GSM", "Taal"], ["Claes", "Joëlle", 478102003.0, "Nederlands"],
              ["Ægidius", "Noël", 32478102004, "NL"]],
}  # fmt: skip


def test_a_windows_excel_csv_and_a_workbook_arrive_with_their_accented_names_intact(page: Page, stage: Stage) -> None:
    """The console sends the file's bytes: a ; CSV in Windows-1252 (typed as Windows browsers type it) and an
    .xlsx whose second sheet is picked arrive with é, œ, ü, ë, Æ intact, and the preview says how they were read."""
    plp = stage.plps["gare"]
    sign_in(page, stage, "coordinator_gare")
    page.get_by_role("link", name="Members").click()
    page.get_by_text("Import a spreadsheet (CSV or Excel)").click()
    chooser = page.get_by_label("Spreadsheet (CSV or Excel)")
    windows_csv = csv_file(WINDOWS_SHEET, delimiter=";", encoding="cp1252")
    chooser.set_input_files({"name": "leden.csv", "mimeType": "application/vnd.ms-excel", "buffer": windows_csv})
    expect(page.locator("#import-preview")).to_have_text("3 rows will be imported. 0 rows are rejected.")
    expect(page.locator("#import-source")).to_have_text("Read as CSV (cp1252, separated by “;”).")
    page.get_by_role("button", name="Import 3 rows").click()
    expect(page.locator("#import-done")).to_have_text("3 rows imported. 0 rows are rejected.")
    members = page.locator("table.members")
    for name in ("René Lefèvre", "Hélène Dubœuf", "Jürgen Müller"):
        expect(members).to_contain_text(name)

    chooser.set_input_files({"name": "leden.xlsx", "mimeType": XLSX, "buffer": xlsx_file(WORKBOOK)})
    expect(page.locator("#import-source")).to_have_text("Read from the sheet “Archief”.")
    page.get_by_label("Sheet", exact=True).select_option("Leden")
    expect(page.locator("#import-source")).to_have_text("Read from the sheet “Leden”.")
    expect(page.locator("#import-preview")).to_have_text("2 rows will be imported. 0 rows are rejected.")
    page.get_by_role("button", name="Import 2 rows").click()
    expect(page.locator("#import-done")).to_have_text("2 rows imported. 0 rows are rejected.")
    expect(members).to_contain_text("Noël Ægidius")
    names = {m["name"] for m in stage.api("GET", f"/v1/plps/{plp}/members", who="coordinator_gare")["items"]}
    assert {"René Lefèvre", "Hélène Dubœuf", "Jürgen Müller", "Joëlle Claes", "Noël Ægidius"} <= names
    assert "Oud Lid" not in names


def test_each_member_shows_which_channels_work_and_their_last_acknowledgement(page: Page, stage: Stage) -> None:
    """After an alert Anne acknowledged, her row says when and by which channel; Lea (e-mail only) shows ✓ E-mail."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [stage.plps["parc"]], "texts": {"fr": "Test."}}
    alert = stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
    sign_in(page, stage, "coordinator")
    page.goto(f"{stage.console}#/alerts/{alert['id']}")
    expect(page.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
    stage.member_texts("anne", "OK")
    expect(page.locator("#figure-ack .value")).to_have_text("1 / 4")
    page.get_by_role("link", name="Members").click()
    anne = page.locator("table.members tbody tr").filter(has_text="Anne Dubois")
    expect(anne).to_contain_text("✓ SMS")
    expect(anne).to_contain_text("✓ E-mail")
    expect(anne).to_contain_text("✗ Telegram")  # accepted, but never linked
    expect(anne.locator("td").nth(2)).to_contain_text("SMS")  # the last acknowledgement, by SMS
    lea = page.locator("table.members tbody tr").filter(has_text="Lea Schmitz")
    expect(lea).to_contain_text("never")
    screenshot(page, "members")


def test_a_coordinator_adds_and_edits_a_member_and_hands_out_a_telegram_link(page: Page, stage: Stage) -> None:
    """The add form creates the member, the edit dialog changes them, the Telegram dialog gives the personal link."""
    sign_in(page, stage, "coordinator_gare")
    page.get_by_role("link", name="Members").click()
    page.get_by_text("Add a member").click()
    form = page.locator("form").filter(has=page.get_by_role("button", name="Add", exact=True))
    form.get_by_label("Name").fill("Noah Lambert")
    form.get_by_label("Mobile number").fill("0475 12 34 56")
    form.get_by_label("Language").select_option("nl")
    form.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".success")).to_have_text("Noah Lambert added.")
    row = page.locator("table.members tbody tr").filter(has_text="Noah Lambert")
    expect(row).to_contain_text("Dutch")

    row.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name="Edit Noah Lambert")
    dialog.get_by_label("E-mail address").fill("noah.lambert@example.org")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".success")).to_have_text("Noah Lambert saved.")
    expect(row).to_contain_text("✓ E-mail")

    row.get_by_role("button", name="Telegram link").click()
    telegram = page.get_by_role("dialog", name="Personal Telegram link")
    expect(telegram.locator(".telegram-url")).to_have_text(re.compile(r"^https://t\.me/plp_alert_bot\?start=\S+$"))
    expect(telegram.locator(".telegram-command")).to_have_text(re.compile(r"^/start \S+$"))
    telegram.get_by_role("button", name="Close").click()
    expect(telegram).to_have_count(0)

    bad = page.locator("form").filter(has=page.get_by_role("button", name="Add", exact=True))
    bad.get_by_label("Name").fill("Nobody")
    bad.get_by_label("Mobile number").fill("02 123 45 67")
    bad.get_by_role("button", name="Add", exact=True).click()
    expect(bad.get_by_role("alert")).to_contain_text("body.phone")


def test_the_member_form_records_a_whatsapp_consent_as_the_consoles_and_withdraws_it(page: Page, stage: Stage) -> None:
    """The WhatsApp consent checkbox: checked, the member is reachable on WhatsApp, their consent recorded as
    given in the console; unchecked in the edit dialog, the consent is withdrawn."""
    plp = stage.plps["gare"]
    sign_in(page, stage, "coordinator_gare")
    page.get_by_role("link", name="Members").click()
    page.get_by_text("Add a member").click()
    form = page.locator("form").filter(has=page.get_by_role("button", name="Add", exact=True))
    form.get_by_label("Name").fill("Wanda Pieters")
    form.get_by_label("Mobile number").fill("0475 65 43 21")
    form.get_by_label("The member agrees to be alerted on WhatsApp").check()
    form.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".success")).to_have_text("Wanda Pieters added.")
    row = page.locator("table.members tbody tr").filter(has_text="Wanda Pieters")
    expect(row).to_contain_text("✓ WhatsApp")

    def wanda() -> dict[str, Any]:
        members = stage.api("GET", f"/v1/plps/{plp}/members", who="coordinator_gare")["items"]
        return next(m for m in members if m["name"] == "Wanda Pieters")

    assert wanda()["whatsapp_consent"]["source"] == "console"
    row.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name="Edit Wanda Pieters")
    consent = dialog.get_by_label("The member agrees to be alerted on WhatsApp")
    expect(consent).to_be_checked()
    consent.uncheck()
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".success")).to_have_text("Wanda Pieters saved.")
    expect(row).not_to_contain_text("✓ WhatsApp")
    assert wanda()["whatsapp_consent"] is None
