"""Administration in the console, in a real Chromium: a coordinator signed in by link edits the charter after its
preview, issues and revokes a token and reads the audit log filtered; an admin manages the people and their roles;
a coordinator finds the members in poor health (a seeded delivery history) and exports them; notifications are
marked read. Each screen as each role may see it."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, expect
from pydantic import SecretStr

from config.settings import Environment
from dispatcher.core.models import Language
from dispatcher.pipeline.notifications import Notification, NotificationKind, Notifications, notification_id
from dispatcher.storage.store import Store
from tests.console.conftest import screenshot, sign_in
from tests.console.stage import CHARTER, COORDINATOR_EMAIL, PEOPLE, PHONES, Stage
from tests.console.test_sign_in_by_link import _link_sent_to
from tests.history import seed_health_history
from tests.support import member_rows, settings_env, start_web

BRUSSELS = ZoneInfo("Europe/Brussels")


def row_of(table: Locator, heading: str) -> Locator:
    """The row of ``table`` whose first cell is ``heading``."""
    return table.locator("tbody tr").filter(has=table.page.locator("th", has_text=re.compile(f"^{heading}$")))


def _sign_in_by_link(page: Page, stage: Stage) -> None:
    already = len(stage.smtp.messages)
    page.goto(stage.console)
    page.get_by_label("E-mail address").fill(COORDINATOR_EMAIL)
    page.get_by_role("button", name="Send me a sign-in link").click()
    expect(page.get_by_role("status")).to_contain_text("a sign-in link is on its way")
    page.goto(stage.run(_link_sent_to(stage, COORDINATOR_EMAIL, already)))
    expect(page.locator("#who")).to_contain_text("Coordinatrice Martin")


def test_a_coordinator_signed_in_by_link_previews_and_saves_the_charter(page: Page, stage: Stage) -> None:
    """Urgent alerts by SMS and e-mail only, within 30 minutes, called again after 5, and quiet hours for advice: the
    preview shows what the next alert would do before and after (the calls and Telegram messages gone), then the
    charter is saved."""
    parc = stage.plps["parc"]
    _sign_in_by_link(page, stage)
    try:
        page.get_by_role("link", name="Charter").click()
        urgent = page.locator("fieldset", has_text="Urgent alerts")
        urgent.get_by_label("Voice call", exact=True).uncheck()
        urgent.get_by_label("Telegram", exact=True).uncheck()
        urgent.get_by_label("Time-to-live (minutes)").fill("30")
        urgent.get_by_label("Call again after (minutes)").fill("5")
        advice = page.locator("fieldset", has_text="Non-urgent messages")
        advice.get_by_role("button", name="Move SMS up").click()
        advice.get_by_label("Quiet hours from").fill("21:00")
        advice.get_by_label("to", exact=True).fill("08:00")
        page.get_by_role("button", name="Preview changes").click()

        preview = page.locator(".charter-preview")
        expect(preview).to_contain_text("What changes for the next alert")
        urgent = preview.locator("[data-class=urgent]")
        channels = row_of(urgent, "Channels")
        expect(channels).to_contain_text("SMS, E-mail, Telegram, Voice call")
        expect(channels.locator("strong")).to_have_text("SMS, E-mail")
        expect(row_of(urgent, "Deliveries per channel").locator("td").first).to_contain_text("Voice call")
        expect(row_of(urgent, "Deliveries per channel").locator("strong")).not_to_contain_text("Voice call")
        expect(row_of(urgent, "Time-to-live").locator("strong")).to_have_text("30 min")
        expect(urgent).to_contain_text("Also changed: the delay before calling again.")
        advice_preview = preview.locator("[data-class=non_urgent]")
        expect(row_of(advice_preview, "Quiet hours").locator("strong")).to_have_text("21:00–08:00")
        expect(preview.locator("[data-class=police_feedback]")).to_contain_text("No change")
        assert stage.api("GET", f"/v1/plps/{parc}", who="coordinator")["charter"]["urgent"]["ttl_seconds"] == 3600
        screenshot(page, "charter-preview")

        page.get_by_role("button", name="Save charter").click()
        expect(page.locator(".charter-form .status")).to_contain_text("Charter saved")
        saved = stage.api("GET", f"/v1/plps/{parc}", who="coordinator")["charter"]
        assert saved["urgent"]["channels"] == ["sms", "email"] and saved["urgent"]["ttl_seconds"] == 1800
        assert (saved["urgent"]["escalate_after_seconds"], saved["urgent"]["escalate_to"]) == (300, "voice")
        assert saved["non_urgent"]["channels"] == ["email", "sms", "telegram"]
        assert saved["non_urgent"]["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    finally:
        stage.api("PUT", f"/v1/plps/{parc}/charter", who="admin", body=CHARTER)


def test_a_coordinator_signed_in_by_link_issues_and_revokes_a_token_and_reads_the_audit(
    page: Page, stage: Stage
) -> None:
    """The new token is shown once and works; revoked, it is refused; the audit log, filtered by action and time,
    shows both with the coordinator's name."""
    _sign_in_by_link(page, stage)
    page.get_by_role("link", name="Access").click()
    page.get_by_label("Valid for (days)").fill("7")
    page.get_by_role("button", name="Issue a token").click()
    secret = page.get_by_label("New token")
    expect(page.locator(".notice.once")).to_contain_text("shown this once")
    new = secret.input_value()
    assert new.startswith("plp_")
    me = stage.run(stage.session.get(f"{stage.base}/v1/me", headers={"Authorization": f"Bearer {new}"}))
    assert me.status == 200
    rows = page.locator(".token-list tbody tr")
    expect(rows.filter(has_text="active")).to_have_count(2)  # the seeded one and the new one
    token_id = stage.api("GET", "/v1/tokens", who="coordinator")["items"][0]["id"]
    row = rows.filter(has_text=token_id)
    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    refused = stage.run(stage.session.get(f"{stage.base}/v1/me", headers={"Authorization": f"Bearer {new}"}))
    assert refused.status == 401

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Action").select_option(label="token revoked")
    hour_ago = (datetime.now(BRUSSELS) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")  # the browser's time zone
    page.get_by_label("From").fill(hour_ago)
    page.get_by_role("button", name="Show").click()
    entries = page.locator(".audit-list tbody tr")
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("Coordinatrice Martin")
    expect(entries.first).to_contain_text(token_id)
    page.get_by_label("Action").select_option(label="Every action")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".audit-list")).to_contain_text("token issued")
    expect(page.locator(".audit-list")).to_contain_text("signed in by link")
    screenshot(page, "audit")


def test_an_admin_adds_changes_and_removes_a_person(page: Page, stage: Stage) -> None:
    """Added as a police officer (a token shown once), made coordinator of PLP Gare, then removed."""
    sign_in(page, stage, "admin")
    page.get_by_role("link", name="Access").click()
    form = page.locator("form.add-actor")
    form.get_by_label("Name").fill("Agent Dupont")
    form.get_by_label("Role").select_option("police")
    form.get_by_label("Police zone").fill("5340")
    form.get_by_role("button", name="Add and issue a token").click()
    expect(page.locator(".notice.once")).to_contain_text("Agent Dupont")
    row = page.locator(".actor-list tbody tr", has_text="Agent Dupont")
    expect(row).to_contain_text("zone 5340")
    screenshot(page, "access-admin")

    row.get_by_role("button", name="Change").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Role").select_option("coordinator")
    dialog.get_by_label("PLP Gare — Ixelles").check()
    dialog.get_by_role("button", name="Save").click()
    expect(row).to_contain_text("Coordinator")
    expect(row).to_contain_text("PLP Gare")
    dupont = next(a for a in stage.api("GET", "/v1/actors")["items"] if a["name"] == "Agent Dupont")
    assert (dupont["role"], dupont["police_zone"], dupont["plp_ids"]) == ("coordinator", None, [stage.plps["gare"]])

    row.get_by_role("button", name="Remove").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator(".actor-list")).not_to_contain_text("Agent Dupont")
    assert "Agent Dupont" not in {a["name"] for a in stage.api("GET", "/v1/actors")["items"]}


def test_a_coordinator_filters_the_members_by_health_and_exports_them(page: Page, stage: Stage) -> None:
    """In a PLP with a seeded delivery history: "never acknowledges" lists the one member reached four times who never
    acknowledged, "not reachable for months" the one no alert reached for 90 days; the CSV holds the same rows."""
    plp = stage.api(
        "POST",
        "/v1/plps",
        body={"name": "PLP Sablon", "commune": "Bruxelles", "police_zone": "5340", "charter": CHARTER},
        expect=201,
    )["id"]
    coordinator = stage.api(
        "POST", "/v1/actors", body={"name": "Coordinateur Sablon", "role": "coordinator", "plp_ids": [plp]}, expect=201
    )
    stage.tokens["sablon"] = coordinator["token"]
    stage.actors["sablon"] = coordinator["actor"]
    ids = {}
    for i, name in enumerate(("steady", "silent", "lost", "newcomer", "mute")):
        row = member_rows(1, start=900 + i)[0] | {"name": f"{name.title()} Member"}
        if name == "mute":
            row |= {"channels": ["telegram"]}
        ids[name] = stage.api("POST", f"/v1/plps/{plp}/members", who="sablon", body=row, expect=201)["id"]
    stage.with_store(lambda store: seed_health_history(store, plp, ids))

    sign_in(page, stage, "sablon")
    page.get_by_role("link", name="Members").click()
    health = page.get_by_label("Health", exact=True)
    health.select_option(label="Never acknowledges")
    table = page.locator("table.member-health")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Silent Member")
    expect(table).to_contain_text("4 planned · 4 reached · 0 acknowledged")
    health.select_option(label="Not reachable for months")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Lost Member")
    health.select_option(label="No working channel")
    expect(table).to_contain_text("Mute Member")
    expect(table).not_to_contain_text("@example.org")
    health.select_option(label="Never acknowledges")
    screenshot(page, "member-health")

    with page.expect_download() as downloaded:
        page.get_by_role("button", name="Download health CSV").click()
    path = downloaded.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    assert [(r["name"], r["problems"]) for r in rows] == [("Silent Member", "never_acknowledges")]
    assert downloaded.value.suggested_filename == f"member-health-{plp}-never_acknowledges.csv"


def test_notifications_are_marked_read_and_unread(page: Page, stage: Stage) -> None:
    """An unread notification stands out; marked read it does not, and it can be marked unread again; in French, Dutch
    and German too."""
    stage.with_store(_notify(stage, "police"))
    sign_in(page, stage, "police")
    page.get_by_role("link", name="Notifications").click()
    item = page.locator(".notification").first
    expect(item).to_have_class("card notification unread")
    expect(page.locator(".notifications")).to_contain_text("1 unread")
    item.get_by_role("button", name="Mark read").click()
    expect(page.locator(".notification").first).to_have_class("card notification read")
    expect(page.locator(".notifications")).to_contain_text("0 unread")
    page.locator(".notification").first.get_by_role("button", name="Mark unread").click()
    expect(page.locator(".notification").first).to_have_class("card notification unread")
    for language, nav, button in (
        ("fr", "Journal d'audit", "Marquer comme lue"),
        ("nl", "Auditlog", "Als gelezen markeren"),
        ("de", "Audit-Protokoll", "Als gelesen markieren"),
    ):
        page.locator("#language").select_option(language)
        expect(page.locator("#nav")).to_contain_text(nav)
        expect(page.locator(".notification").first.get_by_role("button")).to_have_text(button)


def _notify(stage: Stage, who: str) -> Callable[[Store], Awaitable[None]]:
    """A few-acknowledgements notification about PLP Parc for ``who``, to publish with ``stage.with_store``."""

    async def publish(store: Store) -> None:
        kind = NotificationKind.FEW_ACKNOWLEDGEMENTS
        notification = Notification(
            id=notification_id(kind, "0123456789abcdef", stage.plps["parc"]),
            kind=kind,
            alert_id="0123456789abcdef",
            plp_id=stage.plps["parc"],
            created_at=datetime.now(UTC),
            language=Language.FR,
            subject="Peu d'accusés de réception",
            text="1 membre sur 4 a accusé réception.",
            planned=4,
            acknowledged=1,
            threshold=0.5,
        )
        await Notifications(store.redis, store.keys).publish(notification, [stage.actors[who]["id"]])

    return publish


def test_each_role_sees_only_its_screens_and_its_part(page: Page, stage: Stage) -> None:
    """The police get no charter, no members and no member's contact point in the audit; another PLP's coordinator
    reads neither Parc's charter nor its entries; admins see everyone."""
    stage.api("GET", f"/v1/plps/{stage.plps['parc']}/members", who="coordinator")  # an entry about Parc
    sign_in(page, stage, "police")
    nav = page.locator("#nav")
    expect(nav.get_by_role("link", name="Audit log")).to_be_visible()
    expect(nav.get_by_role("link", name="Charter")).to_have_count(0)
    expect(nav.get_by_role("link", name="Members")).to_have_count(0)
    page.goto(f"{stage.console}#/members")
    expect(page).not_to_have_url(f"{stage.console}#/members")
    page.get_by_role("link", name="Audit log").click()
    audit = page.locator(".audit")
    expect(audit).to_contain_text("members listed")
    text = audit.inner_text()
    for person in PEOPLE.values():
        for contact in (person.get("email"), person["name"]):
            assert not contact or contact not in text
    for phone in PHONES.values():
        assert phone not in text
    page.get_by_role("link", name="Access").click()
    expect(page.locator(".actor-list")).to_have_count(0)  # the police manage their own tokens only
    expect(page.locator(".token-list")).not_to_contain_text("Coordinatrice Martin")

    page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in(page, stage, "coordinator_gare")
    page.get_by_role("link", name="Charter").click()
    expect(page.locator("main")).to_contain_text("PLP Gare")
    expect(page.locator("main")).not_to_contain_text("PLP Parc")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_label("PLP", exact=True)).not_to_contain_text("PLP Parc")
    expect(page.locator(".audit")).not_to_contain_text("members listed")
    forbidden = stage.api("GET", f"/v1/audit?plp_id={stage.plps['parc']}", who="coordinator_gare", expect=403)
    assert "outside your part" in forbidden["detail"]


@pytest.fixture
def production_console(stage: Stage) -> Iterator[str]:
    """A second ``plp web`` on the stage's Redis, in production: WhatsApp has no credentials here and no outbox, so
    nothing can send it. Returns its console's address."""
    settings = stage.settings.model_copy(
        update={"environment": Environment.PRODUCTION, "secret_key": SecretStr("console-production-secret-key-0123")}
    )
    env = {
        **os.environ,
        **settings_env(settings),
        "PLP_LOG_FORMAT": "json",
        "PLP_LOG_LEVEL": "WARNING",
        "PLP_RATE_LIMIT_PER_TOKEN": "0",
        "PLP_RATE_LIMIT_PER_ADDRESS": "0",
    }
    process, base = start_web(env, settings.data_dir / "web-production.log")
    try:
        yield f"{base}/console"
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_a_charter_naming_a_channel_this_service_cannot_send_is_refused_by_name(
    page: Page, stage: Stage, production_console: str
) -> None:
    """In production, WhatsApp without its credentials: ticked for urgent alerts (instead of Telegram), the preview
    and the save are both refused naming the place, the channel and what would enable it; the charter stays as it
    was."""
    page.goto(production_console)
    page.get_by_label("Access token").fill(stage.tokens["coordinator"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("link", name="Charter").click()
    urgent = page.locator("fieldset", has_text="Urgent alerts")
    urgent.get_by_label("Telegram", exact=True).uncheck()  # four channels at most
    urgent.get_by_label("WhatsApp", exact=True).check()
    page.get_by_role("button", name="Preview changes").click()
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("urgent.channels[3]: whatsapp cannot be sent by this service")
    expect(refusal).to_contain_text("PLP_OUTBOX_CHANNELS=whatsapp")
    expect(page.locator(".charter-preview")).to_be_hidden()
    page.get_by_role("button", name="Save charter").click()
    expect(page.get_by_role("alert")).to_contain_text("whatsapp cannot be sent by this service")
    assert stage.api("GET", f"/v1/plps/{stage.plps['parc']}")["charter"]["urgent"] == CHARTER["urgent"] | {
        "mode": "all",
        "quiet_hours": None,
        "escalate_after_seconds": None,
        "escalate_to": "voice",
        "ack_check_after_seconds": None,
        "ack_threshold": None,
    }
