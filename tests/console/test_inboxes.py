"""The feedback inbox and the coordinator's relay inbox, in a real Chromium against the real service."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console.conftest import screenshot, sign_in
from tests.console.stage import Stage
from tests.world import TEXTS


def urgent_alert(stage: Stage, category: str = "burglary") -> dict:
    body = {"urgency": "urgent", "category": category, "plp_ids": [stage.plps["parc"]], "texts": TEXTS}
    return dict(stage.api("POST", "/v1/alerts", who="police", body=body, expect=202))


def test_a_coordinator_reads_members_replies_newest_first_each_linked_to_its_alert(page: Page, stage: Stage) -> None:
    """A member's SMS reply to an alert shows in the feedback inbox with the member's name, and opens the alert."""
    alert = urgent_alert(stage, "suspect_person")
    sign_in(page, stage, "coordinator")
    page.goto(f"{stage.console}#/alerts/{alert['id']}")
    expect(page.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
    stage.member_texts("anne", "Un homme en veste rouge regardait les boîtes aux lettres au n°12.")
    stage.member_texts("john", "Saw the grey car parked near the school at 10:15.")
    expect(page.locator(".replies")).to_contain_text("Saw the grey car parked near the school")  # live, on the alert

    page.get_by_role("link", name="Feedback").click()
    replies = page.locator("#replies > li")
    expect(replies.first).to_contain_text("Saw the grey car parked near the school at 10:15.")
    expect(replies.first).to_contain_text("John Smith")
    expect(replies.nth(1)).to_contain_text("Un homme en veste rouge")
    expect(replies.nth(1)).to_contain_text("Anne Dubois")
    screenshot(page, "feedback")
    replies.first.get_by_role("link", name="About the alert “Suspect person”").click()
    expect(page).to_have_url(f"{stage.console}#/alerts/{alert['id']}")


def test_police_feedback_to_a_plp_is_sent_from_the_alert_and_listed_with_a_link_to_it(page: Page, stage: Stage) -> None:
    """From an alert, the police send feedback to its PLPs; the coordinator finds it linked to that alert."""
    alert = urgent_alert(stage, "suspect_vehicle")
    sign_in(page, stage, "police")
    page.goto(f"{stage.console}#/alerts/{alert['id']}")
    page.get_by_role("link", name="Send feedback to the PLP").click()
    expect(page.get_by_role("heading", name="Feedback to the PLP about an alert")).to_be_visible()
    expect(page.get_by_label("PLP Parc")).to_be_checked()
    page.get_by_role("textbox", name="French").fill("Le véhicule a été retrouvé grâce à vos signalements. Merci !")
    expect(page.locator("#members-reached")).to_have_text("4")
    page.get_by_role("button", name="Send alert").click()  # non-urgent: no confirmation step
    expect(page.locator(".alert-head")).to_contain_text("Open the alert this feedback is about")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, stage, "coordinator")
    page.get_by_role("link", name="Feedback").click()
    police = page.locator("#police-feedback > li").first
    expect(police).to_contain_text("Le véhicule a été retrouvé")
    police.get_by_role("link", name="About the alert “Suspect vehicle”").click()
    expect(page).to_have_url(f"{stage.console}#/alerts/{alert['id']}")


def test_a_coordinator_translates_and_relays_a_police_message_and_declines_another_with_a_reason(
    page: Page, stage: Stage
) -> None:
    """Non-urgent police messages wait in the relay inbox; approving sends the edited texts, declining says why."""
    parc = stage.plps["parc"]
    advice = {
        "urgency": "non_urgent",
        "category": "prevention_advice",
        "plp_ids": [parc],
        "texts": {"fr": "Vacances : pensez à la surveillance d'habitation, c'est gratuit."},
    }
    first = stage.api("POST", "/v1/alerts", who="police", body=advice, expect=202)
    second = stage.api(
        "POST", "/v1/alerts", who="police", body={**advice, "texts": {"fr": "Message envoyé par erreur."}}, expect=202
    )
    sign_in(page, stage, "coordinator")
    page.get_by_role("link", name="To relay").click()
    waiting_first = page.get_by_role("article").filter(has_text="surveillance d'habitation")
    waiting_second = page.get_by_role("article").filter(has_text="Message envoyé par erreur.")
    expect(waiting_first).to_have_count(1)
    expect(waiting_second).to_have_count(1)
    screenshot(page, "relay")

    waiting_first.get_by_text("Edit or translate before relaying").click()
    waiting_first.get_by_role("textbox", name="Dutch (add a translation)").fill(
        "Vakantie: vraag gratis woningtoezicht aan bij de politie."
    )
    waiting_first.get_by_role("button", name="Relay to my members").click()
    expect(page.locator(".success")).to_have_text("Relayed to the members of PLP Parc.")
    expect(waiting_first).to_have_count(0)

    waiting_second.get_by_text("Decline with a reason").click()
    waiting_second.get_by_role("button", name="Decline").click()
    expect(waiting_second.get_by_role("alert")).to_contain_text("Give a reason to decline.")
    waiting_second.get_by_label("Reason for declining").fill("Envoyé par erreur, déjà signalé à l'inspecteur.")
    waiting_second.get_by_role("button", name="Decline").click()
    expect(page.locator(".success")).to_have_text("Declined for PLP Parc.")
    expect(waiting_second).to_have_count(0)

    relayed = stage.api("GET", f"/v1/alerts/{first['id']}", who="police")["relays"][0]
    assert relayed["state"] == "approved" and relayed["texts"] == {
        "nl": "Vakantie: vraag gratis woningtoezicht aan bij de politie."
    }
    declined = stage.api("GET", f"/v1/alerts/{second['id']}", who="police")
    assert declined["status"] == "declined"
    assert declined["relays"][0]["reason"] == "Envoyé par erreur, déjà signalé à l'inspecteur."
