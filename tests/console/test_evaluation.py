"""The annual evaluation screen: figures and charts from GET /v1/plps/{id}/evaluation, CSV download, print."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from tests.console.conftest import screenshot, sign_in
from tests.console.stage import Stage
from tests.world import TEXTS


def test_a_coordinator_reads_the_year_downloads_it_as_csv_and_prints_a_clean_report(page: Page, stage: Stage) -> None:
    """The screen shows the evaluation's figures with charts; the CSV is the service's; print hides the controls."""
    parc = stage.plps["parc"]
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [parc], "texts": TEXTS}
    stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
    year = datetime.now(ZoneInfo("Europe/Brussels")).year
    sign_in(page, stage, "coordinator")
    page.get_by_role("link", name="Annual evaluation").click()
    expect(page.get_by_role("heading", name=f"PLP Parc — evaluation {year}")).to_be_visible()
    figures = stage.api("GET", f"/v1/plps/{parc}/evaluation?year={year}", who="coordinator")
    assert figures["alerts"]["urgent"] >= 1
    expect(page.locator("#eval-alerts")).to_have_text(str(figures["alerts"]["total"]))
    expect(page.locator("#eval-urgent")).to_have_text(str(figures["alerts"]["urgent"]))
    expect(page.locator("#eval-members-end")).to_have_text(str(figures["members"]["end"]))
    for chart in ("chart-months", "chart-categories", "chart-members", "chart-cost"):
        expect(page.locator(f"#{chart}")).to_have_attribute("width", re.compile(r"^[1-9]\d*$"))
    screenshot(page, "evaluation")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == f"evaluation-{parc}-{year}.csv"
    csv = download.value.path().read_text(encoding="utf-8")
    served = stage.run(_text(stage, f"/v1/plps/{parc}/evaluation?year={year}&format=csv"))
    assert csv.splitlines()[0] == served.splitlines()[0] and len(csv.splitlines()) == len(served.splitlines())

    page.emulate_media(media="print")
    expect(page.locator("nav.tabs")).to_be_hidden()
    expect(page.get_by_role("button", name="Print or save as PDF")).to_be_hidden()
    expect(page.locator(".report-only")).to_be_visible()
    screenshot(page, "evaluation-print")
    assert page.pdf(format="A4")[:4] == b"%PDF"


async def _text(stage: Stage, path: str) -> str:
    headers = {"Authorization": f"Bearer {stage.tokens['coordinator']}"}
    async with stage.session.get(f"{stage.base}{path}", headers=headers) as response:
        assert response.status == 200
        return await response.text()
