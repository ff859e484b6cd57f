"""A coordinator signs in to the console with a one-time link sent to their e-mail, in a real Chromium."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.console.conftest import screenshot
from tests.console.stage import COORDINATOR_EMAIL, Stage

LINK = re.compile(r"http://\S+/console/#signin=[A-Za-z0-9_-]+")


async def _link_sent_to(stage: Stage, address: str, already: int) -> str:
    """The sign-in link of the first mail to ``address`` after the ``already`` messages received before."""
    count = already + 1
    while True:
        mails = await stage.smtp.wait_for(count, timeout=20)
        for mail in mails[already:]:
            if address in mail.rcpt_tos:
                found = LINK.search(mail.message.get_content())
                assert found is not None
                return found.group(0)
        count = len(mails) + 1


def test_a_coordinator_signs_in_by_link_and_the_session_changes_things_then_ends_everywhere(
    page: Page, stage: Stage
) -> None:
    """The link, opened in the browser, signs the coordinator in with a cookie the page's script cannot read; a
    reload keeps them in; a change made with the session (CSRF token sent) works; "End all my sessions" ends it,
    and the link cannot be used again."""
    already = len(stage.smtp.messages)
    page.goto(stage.console)
    page.get_by_label("E-mail address").fill(COORDINATOR_EMAIL)
    screenshot(page, "signin", full_page=False)
    page.get_by_role("button", name="Send me a sign-in link").click()
    expect(page.get_by_role("status")).to_contain_text("a sign-in link is on its way")
    link = stage.run(_link_sent_to(stage, COORDINATOR_EMAIL, already))

    page.goto(link)
    expect(page.locator("#who")).to_contain_text("Coordinatrice Martin")
    assert "signin=" not in page.url
    assert page.evaluate("sessionStorage.getItem('plp.token')") is None
    assert page.evaluate("document.cookie") == ""  # HttpOnly
    page.reload()
    expect(page.locator("#who")).to_contain_text("Coordinatrice Martin")

    plp = stage.plps["parc"]
    status = page.evaluate(
        """async (plp) => {
            const { api } = await import("./js/api.js");
            const view = await api("GET", `/v1/plps/${plp}`);
            await api("PUT", `/v1/plps/${plp}/charter`, { json: view.charter });
            const bare = await fetch(`/v1/plps/${plp}/charter`, {
                method: "PUT", body: JSON.stringify(view.charter), headers: { "Content-Type": "application/json" },
            });
            return bare.status;
        }""",
        plp,
    )
    assert status == 403  # the same change without the CSRF token

    page.get_by_role("button", name="End all my sessions").click()
    expect(page.get_by_label("Access token")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Access token")).to_be_visible()
    page.goto(link)
    expect(page.get_by_role("alert")).to_contain_text("this sign-in link is not valid")
