"""A coordinator signs in to the console through the organisation's identity provider, in a real Chromium."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console.stage import COORDINATOR_EMAIL, Stage
from tests.simulators.oidc import Person


def test_a_coordinator_signs_in_with_the_organisation_s_provider(page: Page, stage: Stage) -> None:
    """The "Sign in with" button goes to the provider and back: the coordinator is in, with a session cookie the
    page's script cannot read, and stays in after a reload."""
    page.goto(stage.console)
    button = page.get_by_role("button", name="Sign in with IRISbox")
    expect(button).to_be_visible()
    button.click()
    expect(page.locator("#who")).to_contain_text("Coordinatrice Martin")
    assert "signin=" not in page.url
    assert page.evaluate("document.cookie") == ""  # HttpOnly
    page.reload()
    expect(page.locator("#who")).to_contain_text("Coordinatrice Martin")
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_label("Access token")).to_be_visible()


def test_an_address_no_actor_has_is_refused_in_the_console_s_language(page: Page, stage: Stage) -> None:
    """Someone the provider knows but the service does not gets a page in the console's language, and no session."""
    assert stage.idp is not None
    stage.idp.person = Person("voisin@example.org")
    try:
        page.goto(stage.console)
        page.locator("#language").select_option("nl")
        page.get_by_role("button", name="Aanmelden met IRISbox").click()
        expect(page.get_by_role("heading", name="Aanmelding geweigerd")).to_be_visible()
        expect(page.locator("body")).to_contain_text("Uw e-mailadres hoort bij geen enkele coördinator")
    finally:
        stage.idp.person = Person(COORDINATOR_EMAIL)
    page.goto(stage.console)
    expect(page.get_by_label("Toegangstoken")).to_be_visible()
