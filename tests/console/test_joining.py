"""Joining a PLP in a real browser: the coordinator opens the PLP's join page, a resident asks on their phone
and confirms their number and e-mail by code, the coordinator approves, and the new member gets the next alert."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.console.conftest import PHONE, screenshot, sign_in
from tests.console.stage import Stage
from tests.world import TEXTS

NOTICES = {
    "French": "Le PLP Gare garde votre nom et vos coordonnées tant que vous êtes membre.",
    "Dutch": "Het BIN Gare bewaart uw naam en contactgegevens zolang u lid bent.",
    "German": "Die PLP Gare speichert Ihren Namen und Ihre Kontaktdaten, solange Sie Mitglied sind.",
    "English": "PLP Gare keeps your name and contact details while you are a member.",
}
LOTTE = {"name": "Lotte Maes", "phone": "0470 88 99 00", "email": "lotte.maes@example.org"}
LOTTE_PHONE = "+32470889900"


def test_a_resident_joins_a_coordinator_approves_and_the_member_gets_the_next_alert(
    browser: Browser, stage: Stage
) -> None:
    """The coordinator turns the join page on with its privacy notice; Lotte asks in Dutch on her phone (no
    script needed), types the codes sent to her number and her e-mail; the coordinator, notified, approves under
    Join requests; the next urgent alert reaches Lotte."""
    plp = stage.plps["gare"]
    coordinator = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        sign_in(coordinator, stage, "coordinator_gare")
        coordinator.get_by_role("link", name="Join requests").click()
        expect(coordinator.get_by_text("No request waits.")).to_be_visible()
        for language, text in NOTICES.items():
            coordinator.get_by_label(f"Privacy notice ({language})").fill(text)
        coordinator.get_by_label("Residents may ask to join the PLP on this page").check()
        coordinator.get_by_role("button", name="Save the join page").click()
        expect(coordinator.locator(".join-page .ok")).to_have_text("Saved.")
        url = coordinator.locator(".join-page a").get_attribute("href") or ""
        assert url.endswith(f"/v1/join/{plp}")

        _resident_asks(browser, stage, url)

        notices = stage.api("GET", "/v1/notifications", who="coordinator_gare")["items"]
        assert notices[0]["kind"] == "join_request"
        coordinator.get_by_role("link", name="Notifications").click()  # where the coordinator hears of it
        notice = coordinator.locator("li.notification.unread").first
        expect(notice).to_contain_text(notices[0]["subject"])
        notice.get_by_role("link", name="See the join requests").click()
        request = coordinator.locator("article.join-request", has_text=LOTTE["name"])
        expect(request).to_contain_text(LOTTE_PHONE)
        expect(request).to_contain_text("Dutch")
        screenshot(coordinator, "join-requests")
        request.get_by_role("button", name="Approve").click()
        expect(coordinator.locator("p.success")).to_have_text("Lotte Maes is now a member, and is told so.")
    finally:
        coordinator.close()
    members = stage.api("GET", f"/v1/plps/{plp}/members?limit=200", who="coordinator_gare")["items"]
    [lotte] = [m for m in members if m["phone"] == LOTTE_PHONE]
    assert (lotte["language"], lotte["consent_source"]) == ("nl", "join-page")

    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [plp], "texts": TEXTS}
    alert = stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
    watcher = browser.new_page()
    try:
        sign_in(watcher, stage, "coordinator_gare")
        watcher.goto(f"{stage.console}#/alerts/{alert['id']}")
        expect(watcher.locator(".alert-head .badge.status-completed")).to_have_text("Completed")
    finally:
        watcher.close()
    deliveries = stage.api("GET", f"/v1/alerts/{alert['id']}/deliveries", who="admin")["items"]
    assert {d["channel"] for d in deliveries if d["member_id"] == lotte["id"]} >= {"sms", "email"}


def _resident_asks(browser: Browser, stage: Stage, url: str) -> None:
    context = browser.new_context(viewport=PHONE, locale="nl-BE", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_have_text("Lid worden van het BIN PLP Gare")
        expect(page.locator(".privacy")).to_have_text(NOTICES["Dutch"])
        page.get_by_label("Naam en voornaam").fill(LOTTE["name"])
        page.get_by_label("Gsm-nummer").fill(LOTTE["phone"])
        page.get_by_label("E-mailadres").fill(LOTTE["email"])
        page.get_by_label("Taal van de berichten").select_option("nl")
        page.get_by_role("checkbox").check()
        screenshot(page, "join-page")
        texts, mails = len(stage.twilio.messages), len(stage.smtp.messages)
        page.get_by_role("button", name="Mijn aanvraag versturen").click()
        expect(page.locator(".notice")).to_contain_text("binnen 10 minuten")
        stage.run(stage.twilio.wait_for_messages(texts + 1, timeout=20))
        stage.run(stage.smtp.wait_for(mails + 1, timeout=20))
        page.get_by_label("Code ontvangen per sms").fill(_sms_code(stage))
        page.get_by_label("Code ontvangen per e-mail").fill(_mail_code(stage))
        page.get_by_role("button", name="Bevestigen").click()
        expect(page.locator(".notice")).to_contain_text("wacht op de goedkeuring")
        screenshot(page, "join-waiting")
    finally:
        context.close()


def _sms_code(stage: Stage) -> str:
    [sms] = [m for m in stage.twilio.messages if m.to == LOTTE_PHONE]
    return _code(sms.body or "")


def _mail_code(stage: Stage) -> str:
    mail = [m.message for m in stage.smtp.messages if m.message["To"] == LOTTE["email"]][-1]
    return _code(mail.get_body(("plain",)).get_content())


def _code(text: str) -> str:
    found = re.search(r"\b(\d{6})\b", text)
    assert found is not None, text
    return found.group(1)
