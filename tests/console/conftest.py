"""Fixtures of the browser tests: the stage (real service, workers, simulators), one Chromium for all of
them (Debian's, driven by Playwright), a fresh browser context per test, and the screenshots folder.

Chromium is required: without ``/usr/bin/chromium`` (or ``PLP_CHROMIUM``) these tests fail, they
are not skipped (``tests/run``, the README's test command, installs it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.console.stage import Stage, open_stage

CHROMIUM = os.environ.get("PLP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("PLP_SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "docs" / "screenshots")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=20_000)


@pytest.fixture(scope="package")
def stage(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    with open_stage(redis_url, tmp_path_factory.mktemp("console")) as opened:
        yield opened


# Package-scoped, not session-scoped: Playwright's synchronous API keeps an event loop running in this
# thread while it is open, which the asynchronous tests of the other packages could not start under.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: run the tests with tests/run, which installs Debian's Chromium, or set PLP_CHROMIUM"
    )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/Brussels")
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page of a fresh context; the test fails if the console's code throws an uncaught error on it."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert not errors, f"uncaught errors in the console: {errors}"


def sign_in(page: Page, stage: Stage, who: str) -> None:
    """Open the console and sign in with ``who``'s token."""
    page.goto(stage.console)
    page.get_by_label("Access token").fill(stage.tokens[who])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#who")).to_contain_text(stage.actors[who]["name"])


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save the page as ``<screenshots>/<name>.png`` (the README shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="initial")
    return path
