"""Signing in, what each role sees, the keyboard, the four languages and a phone's screen, in a real Chromium."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import DESKTOP, PHONE, screenshot, sign_in
from tests.console.stage import Stage
from tests.world import TEXTS


def test_signing_in_with_the_keyboard_keeps_the_token_in_the_tab_and_shows_what_the_role_may_do(
    page: Page, stage: Stage
) -> None:
    """A wrong token is refused with a reason; the right one, typed and sent with Enter, opens the console."""
    page.goto(stage.console)
    screenshot(page, "sign-in", full_page=False)
    token = page.get_by_label("Access token")
    expect(token).to_be_focused()
    page.keyboard.type("not-a-token")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("this token is not valid")
    token.fill("")
    page.keyboard.type(stage.tokens["police"])
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_contain_text("Inspecteur Lambert · Police · zone 5340")
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link")).to_have_text(
        ["New alert", "Alerts", "Feedback", "Annual evaluation", "Drills", "Notifications", "Access", "Audit log"]
    )
    assert page.evaluate("sessionStorage.getItem('plp.token')") == stage.tokens["police"]
    assert page.evaluate("Object.keys(localStorage)") in ([], ["plp.language"])
    page.goto(f"{stage.console}#/members")  # not for the police: back to what they may do
    expect(page).to_have_url(f"{stage.console}#/compose")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Access token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('plp.token')") is None

    sign_in(page, stage, "coordinator")
    expect(nav.get_by_role("link")).to_have_text(
        [
            "New alert",
            "Alerts",
            "To relay",
            "Feedback",
            "Members",
            "Annual evaluation",
            "Drills",
            "Join requests",
            "Charter",
            "Notifications",
            "Access",
            "Audit log",
        ]
    )
    page.get_by_role("link", name="New alert").click()
    expect(page.get_by_role("radio", name="Urgent", exact=True)).to_have_count(0)  # urgent alerts come from the police
    expect(page.get_by_text("Urgent alerts come from the police.")).to_be_visible()


def test_the_console_is_usable_with_the_keyboard_alone(page: Page, stage: Stage) -> None:
    """Each screen takes the focus; Tab reaches its controls in order with a visible focus ring; arrows, Space
    and Enter work them; Enter follows links."""
    page.goto(stage.console)
    expect(page.get_by_label("Access token")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Access token").focus()
    page.keyboard.type(stage.tokens["police"])
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    urgent = page.get_by_role("radio", name="Urgent", exact=True)
    expect(urgent).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="Non-urgent")).to_be_checked()
    page.get_by_label("PLP Parc").focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("PLP Parc")).to_be_checked()
    alerts = page.get_by_role("link", name="Alerts")
    alerts.focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    expect(page.locator("main")).to_be_focused()


def test_the_console_follows_the_browser_language_and_switches_on_request(browser: Browser, stage: Stage) -> None:
    """A Dutch browser gets Dutch; choosing French changes every word at once and is remembered."""
    context = browser.new_context(viewport=DESKTOP, locale="nl-BE")
    try:
        page = context.new_page()
        page.goto(stage.console)
        expect(page.get_by_role("heading", name="Aanmelden")).to_be_visible()
        page.get_by_label("Toegangstoken").fill(stage.tokens["police"])
        page.get_by_role("button", name="Aanmelden", exact=True).click()
        expect(page.get_by_role("heading", name="Nieuwe melding")).to_be_visible()
        page.get_by_label("Taal").select_option("fr")
        expect(page.get_by_role("heading", name="Nouvelle alerte")).to_be_visible()
        expect(page.get_by_role("link", name="Retours")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        page.get_by_label("Langue").select_option("de")
        expect(page.get_by_role("heading", name="Neue Meldung")).to_be_visible()
        screenshot(page, "compose-de")
        page.reload()
        expect(page.get_by_role("link", name="Rückmeldungen")).to_be_visible()
    finally:
        context.close()


def test_on_a_phone_the_console_fits_the_screen(browser: Browser, stage: Stage) -> None:
    """At 390 px wide nothing scrolls sideways and the main actions stay within reach."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [stage.plps["parc"]], "texts": TEXTS}
    stage.api("POST", "/v1/alerts", who="police", body=body, expect=202)
    context = browser.new_context(viewport=PHONE, locale="fr-BE", is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in_fr(page, stage)
        expect(page.get_by_role("button", name="Envoyer l'alerte")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "phone-compose")
        page.get_by_role("link", name="Alertes").click()
        expect(page.get_by_role("heading", name="Alertes", exact=True)).to_be_visible()
        page.locator("table.alerts a").first.click()
        expect(page.locator("#figure-ack")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "phone-follow")
    finally:
        context.close()


def sign_in_fr(page: Page, stage: Stage) -> None:
    page.goto(stage.console)
    page.get_by_label("Jeton d'accès").fill(stage.tokens["police"])
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", name="Nouvelle alerte")).to_be_visible()
