"""Sending an alert from the console and following it live, in a real Chromium against the real service."""

from __future__ import annotations

import re
from collections import Counter

from playwright.sync_api import Page, expect

from tests.console.conftest import screenshot, sign_in
from tests.console.stage import Stage
from tests.simulators.faults import Fault, FaultPlan
from tests.world import TEXTS


def alert_ids(stage: Stage) -> list[str]:
    return [a["id"] for a in stage.api("GET", "/v1/alerts?limit=1000")["items"]]


def test_a_police_officer_sends_an_urgent_alert_once_and_watches_it_complete_and_be_acknowledged(
    page: Page, stage: Stage
) -> None:
    """Compose with a live preview, confirm, send (a double click sends once), then follow the alert as the
    simulators answer and members acknowledge, without reloading."""
    before = alert_ids(stage)
    sign_in(page, stage, "police")
    expect(page.get_by_role("heading", name="New alert")).to_be_visible()
    page.get_by_label("Find a PLP by name or commune").fill("ucc")
    expect(page.get_by_label("PLP Gare")).to_have_count(0)
    page.get_by_label("PLP Parc").check()
    page.get_by_role("textbox", name="French").fill(TEXTS["fr"])
    page.get_by_role("textbox", name="Dutch").fill(TEXTS["nl"])
    page.get_by_role("textbox", name="German").fill(TEXTS["de"])
    page.get_by_role("textbox", name="English").fill(
        "Burglary in Park Street ten minutes ago, grey car 1-ABC-123. Call 101 if you see it 🚗"
    )
    expect(page.locator("#segments-fr")).to_have_text("1 SMS segment (GSM-7)")
    expect(page.locator("#segments-de")).to_have_text("1 SMS segment (GSM-7)")  # ß is in GSM 03.38
    expect(page.locator("#segments-en")).to_have_text("3 SMS segments (UCS-2)")  # the text, then its answer options
    expect(page.locator("#members-reached")).to_have_text("4")
    expect(page.locator(".plans")).to_contain_text("SMS, E-mail, Telegram, Voice call")
    expect(page.locator("#estimated-cost")).to_have_text(re.compile(r"€\d+\.\d\d"))
    screenshot(page, "compose")

    page.get_by_role("button", name="Send alert").dblclick()
    dialog = page.get_by_role("dialog", name="Send this urgent alert now?")
    expect(dialog).to_contain_text("It goes at once to 4 members of PLP Parc.")
    screenshot(page, "compose-confirm", full_page=False)
    dialog.get_by_role("button", name="Yes, send now").click()

    expect(page).to_have_url(re.compile(r"#/alerts/[0-9a-f]{16}$"))
    alert_id = page.url.rsplit("/", 1)[1]
    assert [i for i in alert_ids(stage) if i not in before] == [alert_id], "one alert, however often clicked"
    expect(page.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
    expect(page.locator("#figure-handed .value")).to_have_text("11 / 11")
    expect(page.locator(".live")).to_have_text("Live")  # members go on acknowledging a completed alert
    expect(page.locator("#figure-ack .value")).to_have_text("0 / 4")
    expect(page.locator("table.by-channel")).to_contain_text("Voice call")
    expect(page.locator("#names-hidden")).to_be_visible()  # the police see counts, not names
    expect(page.locator("#audience-reached")).to_have_text("4")

    # Members acknowledge: the page follows without a reload.
    page.evaluate("window.__same_page = true")
    stage.member_texts("anne", "OK")
    stage.member_texts("john", "oui")
    expect(page.locator("#figure-ack .value")).to_have_text("2 / 4")
    expect(page.locator("#figure-ack .detail")).to_have_text("50%")
    expect(page.locator("#ack-chart-caption")).to_contain_text("50%")
    expect(page.locator("#audience-acknowledged")).to_have_text("2")
    assert page.evaluate("window.__same_page") is True
    screenshot(page, "follow-police")


def test_the_live_view_updates_while_the_alert_is_still_sending(page: Page, stage: Stage) -> None:
    """An alert opened before it is sent to the members moves on screen from its first status to completed."""
    sign_in(page, stage, "coordinator")
    body = {"urgency": "non_urgent", "category": "prevention_advice", "plp_ids": [stage.plps["parc"]], "texts": TEXTS}
    alert = stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
    page.goto(f"{stage.console}#/alerts/{alert['id']}")
    expect(page.locator(".alert-head .badge")).to_contain_text(["Non-urgent", "Waiting for coordinator"])
    expect(page.locator(".live")).to_have_text("Live")
    stage.api("POST", f"/v1/alerts/{alert['id']}/relays/{stage.plps['parc']}/approve", who="coordinator", body={})
    expect(page.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
    expect(page.locator(".relays")).to_contain_text("PLP Parc: relayed by the coordinator")


def test_a_coordinator_sees_by_name_who_has_not_acknowledged_and_can_cancel_nothing_finished(
    page: Page, stage: Stage
) -> None:
    """Coordinators see the names of their members not reached or not acknowledged, with each delivery's status."""
    body = {"urgency": "urgent", "category": "suspect_vehicle", "plp_ids": [stage.plps["parc"]], "texts": TEXTS}
    alert = stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
    sign_in(page, stage, "coordinator")
    page.goto(f"{stage.console}#/alerts/{alert['id']}")
    expect(page.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
    stage.member_texts("piet", "ok")
    pending = page.locator(".people.not_acknowledged")
    expect(pending.locator("summary")).to_have_text("3 members have not acknowledged")
    expect(pending).to_contain_text("Anne Dubois")
    expect(pending).not_to_contain_text("Piet Janssens")
    expect(pending).to_contain_text("SMS: Delivered")
    expect(page.get_by_role("button", name="Cancel alert")).to_have_count(0)
    screenshot(page, "follow-coordinator")


def test_a_police_officer_cancels_an_alert_waiting_for_the_coordinator(page: Page, stage: Stage) -> None:
    """Cancel asks first, then the alert shows cancelled."""
    body = {"urgency": "non_urgent", "category": "other", "plp_ids": [stage.plps["parc"]], "texts": TEXTS}
    alert = stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
    sign_in(page, stage, "police")
    page.goto(f"{stage.console}#/alerts/{alert['id']}")
    page.get_by_role("button", name="Cancel alert").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, cancel").click()
    expect(page.locator(".alert-head .badge.status-cancelled")).to_have_text("Cancelled")
    assert stage.api("GET", f"/v1/alerts/{alert['id']}")["status"] == "cancelled"


def test_the_live_view_says_how_many_messages_may_have_arrived_twice(page: Page, stage: Stage) -> None:
    """A mail server that takes Lea's e-mail and drops the connection before it replies makes the service send it
    again: the follow view says one message may have reached its member twice, as the server's ledger shows."""
    stage.smtp.faults = FaultPlan(seed=1, script={"lea@example.org": [Fault.TAKEN_THEN_RESET]})
    try:
        body = {"urgency": "urgent", "category": "burglary", "plp_ids": [stage.plps["parc"]], "texts": TEXTS}
        alert = stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
        sign_in(page, stage, "police")
        page.goto(f"{stage.console}#/alerts/{alert['id']}")
        expect(page.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
        expect(page.locator("#possible-duplicates")).to_have_text(
            "1 message was sent again after a send in doubt: its member may have received it twice."
        )
    finally:
        stage.smtp.faults = None
    copies = [m for m in stage.smtp.messages if m.message_id.startswith(f"<{alert['id']}.email.")]
    assert sorted(Counter(m.rcpt_tos for m in copies).values()) == [1, 1, 2]  # Anne, John once; Lea twice


def test_a_police_officer_sends_the_all_clear_to_the_members_reached(page: Page, stage: Stage) -> None:
    """On a completed alert the police find "Send an update" and "All clear"; the all-clear asks for its text in
    the alert's languages, is sent once, and opens on the follow-up, which links back to the alert and reaches
    its four members; coordinators see neither button."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [stage.plps["parc"]], "texts": TEXTS}
    alert = stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
    coordinator = page.context.new_page()  # a tab of its own: its own session
    sign_in(coordinator, stage, "coordinator")
    coordinator.goto(f"{stage.console}#/alerts/{alert['id']}")
    expect(coordinator.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
    expect(coordinator.get_by_role("button", name="All clear")).to_have_count(0)
    expect(coordinator.get_by_role("button", name="Send an update")).to_have_count(0)
    coordinator.close()

    sign_in(page, stage, "police")
    page.goto(f"{stage.console}#/alerts/{alert['id']}")
    expect(page.get_by_role("button", name="Send an update")).to_be_visible()
    page.get_by_role("button", name="All clear").click()
    dialog = page.get_by_role("dialog", name="Send the all-clear to the members reached")
    dialog.get_by_role("textbox", name="French").fill("Le suspect a été arrêté, merci.")
    dialog.get_by_role("textbox", name="Dutch").fill("De verdachte werd opgepakt, bedankt.")
    screenshot(page, "follow-all-clear", full_page=False)
    dialog.get_by_role("button", name="Send the all-clear").click()

    expect(page).to_have_url(re.compile(rf"#/alerts/(?!{alert['id']})[0-9a-f]{{16}}$"))  # the follow-up's page
    follow_up_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".alert-head .follows")).to_contain_text("All clear")
    expect(page.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
    expect(page.locator("#audience-reached")).to_have_text("4")
    expect(page.get_by_role("button", name="All clear")).to_have_count(0)  # a follow-up is not followed up
    assert stage.api("GET", f"/v1/alerts/{alert['id']}")["follow_ups"] == [follow_up_id]
    page.locator(".alert-head .follows a").click()
    expect(page.locator(".alert-head .follow-ups a")).to_have_text(follow_up_id)
    page.goto(f"{stage.console}#/alerts")
    expect(page.locator("table.alerts .follow-up-kind")).to_have_text(" · All clear")


def test_the_police_and_the_coordinator_follow_the_answer_tally_and_the_replies_beside_it(
    page: Page, stage: Stage
) -> None:
    """The follow view counts each member's latest answer per option, live; beside it the free-text replies: the
    police read them without names except from a member who consented to be contacted about this alert (listed
    with their phone under the tally); the PLP's coordinator sees every name."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [stage.plps["parc"]], "texts": TEXTS}
    alert = stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
    sign_in(page, stage, "police")
    page.goto(f"{stage.console}#/alerts/{alert['id']}")
    expect(page.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
    tally = page.locator("table.answer-tally tbody tr")
    expect(tally).to_have_count(3)
    expect(page.locator("#answered")).to_have_text("0 members answered")

    stage.member_texts("piet", "1")
    stage.member_texts("piet", "Twee mannen liepen naar het park")
    stage.member_texts("john", "2")
    stage.member_texts("anne", "3")  # camera images: consents to be contacted
    stage.member_texts("anne", "Voiture grise au coin de la rue")
    expect(page.locator("#answered")).to_have_text("3 members answered")
    expect(tally.nth(0)).to_contain_text("I saw something1")
    expect(tally.nth(1)).to_contain_text("Nothing seen1")
    expect(tally.nth(2)).to_contain_text("I have camera imagesasks consent1")
    expect(page.locator(".consenting li")).to_have_count(1)
    expect(page.locator(".consenting li")).to_contain_text("Anne Dubois · +32470111111")
    feed = page.locator(".replies .feed li")
    expect(feed).to_have_count(2)
    expect(feed.filter(has_text="Voiture grise")).to_contain_text("Anne Dubois")
    expect(feed.filter(has_text="Twee mannen")).to_contain_text("Member")
    expect(page.locator(".replies")).not_to_contain_text("Piet")
    expect(page.locator("#replies-anonymous")).to_be_visible()
    page.locator("#answers").scroll_into_view_if_needed()
    screenshot(page, "follow-answers", full_page=False)

    stage.member_texts("piet", "2")  # a change: the latest answer counts
    expect(tally.nth(0)).to_contain_text("I saw something0")
    expect(tally.nth(1)).to_contain_text("Nothing seen2")

    coordinator = page.context.new_page()
    sign_in(coordinator, stage, "coordinator")
    coordinator.goto(f"{stage.console}#/alerts/{alert['id']}")
    expect(coordinator.locator("#answered")).to_have_text("3 members answered")
    expect(coordinator.locator(".consenting li")).to_contain_text("Anne Dubois")
    expect(coordinator.locator(".replies .feed li").filter(has_text="Twee mannen")).to_contain_text("Piet Janssens")
    expect(coordinator.locator("#replies-anonymous")).to_have_count(0)
