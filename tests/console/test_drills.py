"""Recurring drills in the console: a coordinator schedules one for their PLP and deletes it; the police of the
zone may choose the urgent lane, a coordinator may not."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console.conftest import screenshot, sign_in
from tests.console.stage import Stage


def test_a_coordinator_schedules_a_monthly_drill_and_deletes_it(page: Page, stage: Stage) -> None:
    """The first Monday of each month at 18:00, non-urgent (the only lane a coordinator is offered): it is listed
    with its next occurrence, then deleted after a confirmation."""
    sign_in(page, stage, "coordinator")
    page.get_by_role("navigation").get_by_role("link", name="Drills").click()
    expect(page.get_by_role("heading", name="Recurring drills", exact=True)).to_be_visible()
    expect(page.locator(".drills")).to_contain_text("No drill scheduled.")
    expect(page.get_by_label("Lane").locator("option")).to_have_text(["Non-urgent"])
    page.get_by_label("How often").select_option("monthly")
    page.get_by_label("Which one in the month").select_option("1")
    page.get_by_label("Day").select_option("monday")
    page.get_by_label("Time").fill("18:00")
    page.get_by_role("textbox", name="French").fill("Exercice mensuel du PLP : aucune action requise.")
    page.get_by_role("textbox", name="Dutch").fill("Maandelijkse oefening van de BIN: geen actie nodig.")
    page.get_by_role("button", name="Schedule", exact=True).click()
    rows = page.locator("table.drill-list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Every month, the first Monday at 18:00")
    expect(rows.first).to_contain_text("Non-urgent")
    [drill] = stage.api("GET", f"/v1/plps/{stage.plps['parc']}/drills", who="coordinator")["items"]
    assert drill["rule"] == {"frequency": "monthly", "weekday": "monday", "week": 1, "at": "18:00"}
    assert drill["author_id"] == stage.actors["coordinator"]["id"]
    screenshot(page, "drills")

    rows.first.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".drills")).to_contain_text("No drill scheduled.")
    assert stage.api("GET", f"/v1/plps/{stage.plps['parc']}/drills", who="coordinator")["items"] == []


def test_the_police_may_schedule_an_urgent_drill(page: Page, stage: Stage) -> None:
    """The police of the zone are offered the urgent lane too; a weekly drill is listed as such."""
    sign_in(page, stage, "police")
    page.get_by_role("navigation").get_by_role("link", name="Drills").click()  # as a user goes there
    expect(page.get_by_role("heading", name="Recurring drills", exact=True)).to_be_visible()
    page.get_by_label("PLP", exact=True).select_option(stage.plps["gare"])
    expect(page).to_have_url(f"{stage.console}#/drills?plp={stage.plps['gare']}")
    expect(page.get_by_label("Lane").locator("option")).to_have_text(["Non-urgent", "Urgent"])
    page.get_by_label("How often").select_option("weekly")
    expect(page.get_by_label("Which one in the month")).to_be_hidden()
    page.get_by_label("Day").select_option("friday")
    page.get_by_label("Time").fill("12:00")
    page.get_by_label("Lane").select_option("urgent")
    page.get_by_role("textbox", name="French").fill("Test du réseau d'alerte.")
    page.get_by_role("button", name="Schedule", exact=True).click()
    row = page.locator("table.drill-list tbody tr").first
    expect(row).to_contain_text("Every week, Friday at 12:00")
    expect(row).to_contain_text("Urgent")
    [drill] = stage.api("GET", f"/v1/plps/{stage.plps['gare']}/drills", who="police")["items"]
    stage.api("DELETE", f"/v1/plps/{stage.plps['gare']}/drills/{drill['id']}", who="police", expect=204)
