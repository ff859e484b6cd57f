"""Places in the console: the member list's place column and filters, a member's address edited, and an alert
composed for one sector of a PLP with its preview per sector, in a real Chromium against the real service.

Everything happens in PLP Gare (the package's tests add members there, never to PLP Parc)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import screenshot, sign_in
from tests.console.stage import Stage
from tests.support import until

STATION = {
    "type": "Polygon",
    "coordinates": [[[4.36, 50.82], [4.37, 50.82], [4.37, 50.83], [4.36, 50.83], [4.36, 50.82]]],
}


@pytest.fixture(scope="module")
def gare(stage: Stage) -> dict[str, Any]:
    """A sector "Station" in PLP Gare, a member inside it, one with an address only, one far from it."""
    plp = stage.plps["gare"]
    sector = stage.api("POST", f"/v1/plps/{plp}/sectors", body={"name": "Station", "geometry": STATION}, expect=201)
    people = {
        "Inès Station": {"phone": "0471 10 00 01", "coordinates": {"lat": 50.825, "lon": 4.365}},
        "Oscar Adresse": {"phone": "0471 10 00 02", "address": {"street": "Rue du Midi", "commune": "Ixelles"}},
        "Zoé Loin": {"phone": "0471 10 00 03", "coordinates": {"lat": 50.9, "lon": 4.5}},
    }
    ids = {}
    for name, data in people.items():
        body = {"name": name, "channels": ["sms"], **data}
        ids[name] = stage.api("POST", f"/v1/plps/{plp}/members", body=body, expect=201)["id"]
    settled(stage, ids["Oscar Adresse"])  # the real workers ask the stage's geocoder, in the background
    return {"sector": sector, "ids": ids}


def settled(stage: Stage, member_id: str) -> dict[str, Any]:
    """The member once the background geocoder has answered for them (another process's work: polled)."""
    path = f"/v1/plps/{stage.plps['gare']}/members/{member_id}"

    async def answered() -> dict[str, Any] | None:
        member = await stage._api("GET", path, who="admin", body=None, expect=200)
        return member if member["locating"]["state"] != "pending" else None

    return stage.run(until(answered, timeout=30, what="the geocoder's answer for the member"))


def test_the_member_list_shows_each_members_place_and_filters_by_sector_and_not_located(
    page: Page, stage: Stage, gare: dict[str, Any]
) -> None:
    """The place column says the sector, or why the member is not located; the filters narrow the list; an
    address typed in the edit dialog is kept."""
    sign_in(page, stage, "coordinator_gare")
    page.get_by_role("link", name="Members").click()
    rows = page.locator("table.members tbody tr")
    expect(rows.filter(has_text="Inès Station")).to_contain_text("Station")
    expect(rows.filter(has_text="Oscar Adresse")).to_contain_text("Address not found")
    expect(rows.filter(has_text="Oscar Adresse")).to_contain_text("no place at this address")

    page.get_by_label("Only members not located").check()
    expect(rows.filter(has_text="Oscar Adresse")).to_have_count(1)
    expect(rows.filter(has_text="Inès Station")).to_have_count(0)
    page.get_by_label("Only members not located").uncheck()
    page.get_by_label("Sector", exact=True).select_option(label="Station")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Inès Station")
    page.get_by_label("Sector", exact=True).select_option(label="No sector")
    expect(rows.filter(has_text="Zoé Loin")).to_have_count(1)

    rows.filter(has_text="Zoé Loin").get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name="Edit Zoé Loin")
    dialog.get_by_label("Street").fill("Rue de la Gare")
    dialog.get_by_label("House number").fill("7")
    dialog.get_by_label("Postcode").fill("1050")
    dialog.get_by_label("Latitude").fill("50,826")
    dialog.get_by_label("Longitude").fill("4,366")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".success")).to_have_text("Zoé Loin saved.")
    member = stage.api("GET", f"/v1/plps/{stage.plps['gare']}/members/{gare['ids']['Zoé Loin']}")
    assert member["address"] == {"street": "Rue de la Gare", "number": "7", "postcode": "1050", "commune": None}
    assert (member["location"]["lat"], member["sector_id"]) == (50.826, gare["sector"]["id"])


def test_a_police_officer_previews_an_alert_to_one_sector(page: Page, stage: Stage, gare: dict[str, Any]) -> None:
    """Choosing "Some sectors" and ticking one shows the members reached per sector and those without a place,
    the same figures as the API's preview."""
    body = {
        "urgency": "urgent",
        "category": "burglary",
        "plp_ids": [stage.plps["gare"]],
        "texts": {"fr": "Vol à la gare"},
        "area": {"sectors": [gare["sector"]["id"]]},
    }
    expected = stage.api("POST", "/v1/alerts/preview", who="police", body=body)
    sign_in(page, stage, "police")
    page.get_by_label("PLP Gare").check()
    page.get_by_label("Some sectors").check()
    page.get_by_label("Station").check()
    page.get_by_role("textbox", name="French").fill("Vol à la gare")
    expect(page.locator("#members-reached")).to_have_text(str(expected["members_reached"]))
    in_station = next(s["members"] for s in expected["by_sector"] if s["sector_id"] == gare["sector"]["id"])
    expect(page.locator("#reached-by-sector")).to_have_text(f"Per sector: Station {in_station}")
    reached, left = expected["members_unlocated"], expected["members_unlocated_left_out"]
    expect(page.locator("#members-unlocated")).to_have_text(
        f"Place unknown: {reached} reached, {left} left out (their charter)."
    )


def test_a_coordinator_draws_a_sector_the_police_target_it_and_follow_it_on_the_map(
    page: Page, stage: Stage, gare: dict[str, Any]
) -> None:
    """The coordinator draws a sector on the map (no tile server: a plain background) and saves it; the police
    choose it on the compose map, preview the count, send, and follow the alert's reach on the sector's map."""
    sign_in(page, stage, "coordinator_gare")
    page.get_by_role("link", name="Members").click()
    page.get_by_text("Sectors", exact=True).click()
    sector_map = page.locator("#sector-map")
    expect(sector_map.locator(".sector-label")).to_contain_text(["Station"])
    page.get_by_role("button", name="Draw a sector").click()
    box = sector_map.bounding_box()
    assert box is not None
    for x, y in ((0.05, 0.05), (0.95, 0.05), (0.95, 0.95), (0.05, 0.95)):
        sector_map.click(position={"x": box["width"] * x, "y": box["height"] * y})
    expect(page.locator("#draw-hint")).to_have_text("4 points placed.")
    page.get_by_label("Sector name").fill("Market")
    page.get_by_role("button", name="Save sector").click()
    expect(page.locator(".success")).to_have_text("Sector Market saved.")
    expect(page.locator("#sector-list")).to_contain_text("Market")
    expect(sector_map.locator(".sector-label")).to_have_count(2)
    screenshot(page, "sectors-draw")

    market = next(
        s for s in stage.api("GET", f"/v1/plps/{stage.plps['gare']}/sectors")["items"] if s["name"] == "Market"
    )
    body = {
        "urgency": "urgent",
        "category": "burglary",
        "plp_ids": [stage.plps["gare"]],
        "texts": {"fr": "Vol au marché"},
        "area": {"sectors": [market["id"]]},
    }
    expected = stage.api("POST", "/v1/alerts/preview", who="police", body=body)
    assert expected["by_sector"], "the drawn sector holds members"
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, stage, "police")
    page.get_by_label("PLP Gare").check()
    page.get_by_label("Some sectors").check()
    page.get_by_label("Market").check()
    page.get_by_role("textbox", name="French").fill("Vol au marché")
    expect(page.locator("#members-reached")).to_have_text(str(expected["members_reached"]))
    expect(page.locator("#compose-map .sector-label")).to_have_count(2)
    screenshot(page, "compose-area")

    page.get_by_role("button", name="Send alert").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, send now").click()
    expect(page.locator("#alert-sectors")).to_be_visible()
    in_market = next(s["members"] for s in expected["by_sector"] if s["sector_id"] == market["id"])
    row = page.locator("table.by-sector tbody tr").filter(has_text="Market")
    expect(row).to_contain_text(str(in_market))
    expect(page.locator("#follow-map .sector-label").filter(has_text="Market")).to_contain_text(f"/{in_market}")
    screenshot(page, "follow-sectors")


def test_the_evaluation_shows_the_year_per_sector(page: Page, stage: Stage, gare: dict[str, Any]) -> None:
    """The coordinator's evaluation has a table per sector: alerts, those aimed at it, members targeted."""
    plp = stage.plps["gare"]
    year = stage.api("GET", f"/v1/plps/{plp}/evaluation?year={datetime.now(UTC).year}", who="coordinator_gare")
    sign_in(page, stage, "coordinator_gare")
    page.get_by_role("link", name="Annual evaluation").click()
    rows = page.locator("#eval-sectors table.by-sector tbody tr")
    expect(rows).to_have_count(len(year["sectors"]))
    market = next(s for s in year["sectors"] if s["name"] == "Market")
    expect(rows.filter(has_text="Market")).to_contain_text(str(market["members_targeted"]))


def test_a_police_officer_previews_an_alert_around_an_address(page: Page, stage: Stage, gare: dict[str, Any]) -> None:
    """An alert "500 m around Grand-Place 1": the preview first says the address is being located; the real workers ask
    the geocoder in the background, and the preview, asking again by itself, shows the members reached."""
    assert stage.nominatim is not None
    before = len(stage.nominatim.ledger)
    sign_in(page, stage, "police")
    page.get_by_label("PLP Gare").check()
    page.get_by_label("Around a point").check()
    address = page.locator("fieldset.around-address")
    address.get_by_label("Street").fill("Grand-Place")
    address.get_by_label("House number").fill("1")
    address.get_by_label("Postcode").fill("1000")
    page.get_by_role("textbox", name="French").fill("Vol Grand-Place")
    expect(page.locator(".preview .error")).to_contain_text("looking it up in the background", timeout=10_000)
    expect(page.locator("#members-reached")).to_be_visible(timeout=30_000)
    expect(page.locator("#members-unlocated")).to_contain_text("Place unknown:")
    assert any(r.query.get("street") == "1 Grand-Place" for r in stage.nominatim.ledger[before:])
