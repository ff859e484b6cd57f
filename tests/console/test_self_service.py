"""A member's own page in a real browser, on a phone: they change their language and channels through their link,
and the next alert follows."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from dispatcher.storage.store import Store
from tests.console.conftest import PHONE, screenshot, sign_in
from tests.console.stage import Stage
from tests.world import TEXTS, link_in

SOFIE = {"name": "Sofie Claes", "phone": "0470 66 77 88", "email": "sofie.claes@example.org", "language": "fr"}


def test_a_member_changes_language_and_channels_through_their_link_and_the_next_alert_follows(
    browser: Browser, stage: Stage
) -> None:
    """Sofie gets her link from her coordinator (the members screen's button), opens it on her phone (no script
    needed), switches to Dutch and e-mail only; the next urgent alert reaches her by e-mail only, in Dutch."""
    plp = stage.plps["gare"]
    mails = len(stage.smtp.messages)
    sofie = stage.api("POST", f"/v1/plps/{plp}/members", who="coordinator_gare", body=SOFIE, expect=201)
    coordinator = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        sign_in(coordinator, stage, "coordinator_gare")
        coordinator.get_by_role("link", name="Members").click()
        row = coordinator.locator("table.members tr", has_text="Sofie Claes")
        row.get_by_role("button", name="Send their page link").click()
        expect(coordinator.locator("p.success")).to_have_text(
            "The link to their own page is on its way to Sofie Claes (E-mail)."
        )
    finally:
        coordinator.close()
    stage.run(stage.smtp.wait_for(mails + 1, timeout=20))
    context = browser.new_context(viewport=PHONE, locale="fr-BE", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(_mail_link(stage, "/v1/p/"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Vos données et vos choix")
        expect(page.locator("dl")).to_contain_text("sofie.claes@example.org")
        screenshot(page, "self-service")
        page.get_by_label("Langue des messages").select_option("nl")
        page.get_by_role("checkbox", name="SMS").uncheck()
        page.get_by_role("checkbox", name="Appel vocal").uncheck()
        page.get_by_role("button", name="Enregistrer").click()
        expect(page.locator(".notice")).to_have_text("Uw keuzes zijn opgeslagen: ze gelden vanaf het volgende bericht.")
        expect(page.get_by_role("checkbox", name="E-mail")).to_be_checked()
        expect(page.get_by_role("checkbox", name="SMS")).not_to_be_checked()
        screenshot(page, "self-service-saved")
    finally:
        context.close()
    member = stage.api("GET", f"/v1/plps/{plp}/members/{sofie['id']}", who="coordinator_gare")
    # Telegram (not linked) and WhatsApp (no consent) cannot reach her yet: kept as they were
    assert member["language"] == "nl" and member["channels"] == ["email", "telegram", "whatsapp"]

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
    assert sorted(d["channel"] for d in deliveries if d["member_id"] == sofie["id"]) == ["email"]
    copies = [m.message for m in stage.smtp.messages if m.message_id.startswith(f"<{alert['id']}.email.")]
    [mail] = [m for m in copies if m["To"] == SOFIE["email"]]
    assert TEXTS["nl"] in mail.get_body(("plain",)).get_content()


def _mail_link(stage: Stage, route: str) -> str:
    """The link to ``route`` in the last mail to Sofie."""
    mail = [m.message for m in stage.smtp.messages if m.message["To"] == SOFIE["email"]][-1]
    return link_in(mail, route)


JONAS = {"name": "Jonas Wouters", "phone": "0470 66 77 99", "email": "jonas.wouters@example.org", "language": "nl"}
JONAS_NEW_PHONE = "+32470667700"


def test_a_phone_change_confirmed_by_a_code(browser: Browser, stage: Stage) -> None:
    """Jonas asks for a new number on his page; a code reaches the new number by SMS; he types it and the page
    (and his coordinator's view) show the new number."""
    plp = stage.plps["gare"]
    jonas = stage.api("POST", f"/v1/plps/{plp}/members", who="coordinator_gare", body=JONAS, expect=201)
    mails = len(stage.smtp.messages)
    stage.api("POST", f"/v1/plps/{plp}/members/{jonas['id']}/profile-link", who="coordinator_gare", expect=202)
    stage.run(stage.smtp.wait_for(mails + 1, timeout=20))
    mail = [m.message for m in stage.smtp.messages if m.message["To"] == JONAS["email"]][-1]
    context = browser.new_context(viewport=PHONE, locale="nl-BE", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link_in(mail, "/v1/p/"))
        page.get_by_label("Nieuw gsm-nummer").fill("0470 66 77 00")
        texts = len(stage.twilio.messages)
        page.get_by_role("button", name="Een code sturen").first.click()
        expect(page.locator(".notice")).to_contain_text("+32470667700")
        stage.run(stage.twilio.wait_for_messages(texts + 1, timeout=20))
        [sms] = [m for m in stage.twilio.messages if m.to == JONAS_NEW_PHONE]
        code = re.search(r"\b(\d{6})\b", sms.body or "").group(1)  # type: ignore[union-attr]
        page.get_by_label("Ontvangen code").fill(code)
        screenshot(page, "self-service-code")
        page.get_by_role("button", name="De wijziging bevestigen").click()
        expect(page.locator(".notice")).to_have_text("Gewijzigd: de volgende berichten gaan naar het nieuwe adres.")
        expect(page.locator("dl")).to_contain_text(JONAS_NEW_PHONE)
    finally:
        context.close()
    assert stage.api("GET", f"/v1/plps/{plp}/members/{jonas['id']}", who="coordinator_gare")["phone"] == JONAS_NEW_PHONE


NORA = {"name": "Nora Lambert", "phone": "0470 66 77 11", "email": "nora.lambert@example.org", "language": "fr"}


def test_a_member_gives_then_withdraws_her_whatsapp_consent_on_her_page(browser: Browser, stage: Stage) -> None:
    """Nora ticks the WhatsApp consent on her page, on her phone: her coordinator sees it given by herself
    ("self-service"), with its date on her page; she unticks it, and it is withdrawn."""
    plp = stage.plps["gare"]
    nora = stage.api("POST", f"/v1/plps/{plp}/members", who="coordinator_gare", body=NORA, expect=201)
    mails = len(stage.smtp.messages)
    stage.api("POST", f"/v1/plps/{plp}/members/{nora['id']}/profile-link", who="coordinator_gare", expect=202)
    stage.run(stage.smtp.wait_for(mails + 1, timeout=20))
    mail = [m.message for m in stage.smtp.messages if m.message["To"] == NORA["email"]][-1]
    context = browser.new_context(viewport=PHONE, locale="fr-BE", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link_in(mail, "/v1/p/"))
        consent = page.get_by_label("j'accepte de recevoir les messages du PLP sur WhatsApp")
        expect(consent).not_to_be_checked()
        consent.check()
        page.get_by_role("button", name="Enregistrer").click()
        expect(page.locator(".notice")).to_have_text("Vos choix sont enregistrés : ils valent dès le prochain message.")
        expect(consent).to_be_checked()
        expect(page.locator("dl")).to_contain_text("Accord WhatsApp")
        given = stage.api("GET", f"/v1/plps/{plp}/members/{nora['id']}", who="coordinator_gare")["whatsapp_consent"]
        assert given["source"] == "self-service" and given["at"]

        consent.uncheck()
        page.get_by_role("button", name="Enregistrer").click()
        expect(page.locator(".notice")).to_have_text("Vos choix sont enregistrés : ils valent dès le prochain message.")
        expect(consent).not_to_be_checked()
        expect(page.locator("dl")).not_to_contain_text("Accord WhatsApp")
    finally:
        context.close()
    member = stage.api("GET", f"/v1/plps/{plp}/members/{nora['id']}", who="coordinator_gare")
    assert member["whatsapp_consent"] is None and "whatsapp" not in member["working_channels"]


LUCAS = {"name": "Lucas Martin", "phone": "0470 66 77 22", "email": "lucas.martin@example.org", "language": "fr"}


def test_a_member_orders_his_channels_sets_quiet_hours_and_his_coordinator_is_told(
    browser: Browser, stage: Stage
) -> None:
    """Lucas puts e-mail first and sets quiet hours on his page, on his phone: his record follows, and his
    coordinator's Notifications screen says what he changed (never the values), in each of the four languages;
    he then leaves, and the screen names him no more."""
    plp = stage.plps["gare"]
    lucas = stage.api("POST", f"/v1/plps/{plp}/members", who="coordinator_gare", body=LUCAS, expect=201)
    mails = len(stage.smtp.messages)
    stage.api("POST", f"/v1/plps/{plp}/members/{lucas['id']}/profile-link", who="coordinator_gare", expect=202)
    stage.run(stage.smtp.wait_for(mails + 1, timeout=20))
    mail = [m.message for m in stage.smtp.messages if m.message["To"] == LUCAS["email"]][-1]
    context = browser.new_context(viewport=PHONE, locale="fr-BE", java_script_enabled=False)
    coordinator = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(link_in(mail, "/v1/p/"))
        order = page.get_by_role("group", name="Dans quel ordre vous joindre (1 : essayé en premier)")
        order.locator('select[name="rank_email"]').select_option("1")
        order.locator('select[name="rank_sms"]').select_option("2")
        order.locator('select[name="rank_voice"]').select_option("3")
        page.get_by_label("De", exact=True).fill("22:00")
        page.get_by_label("à", exact=True).fill("07:00")
        screenshot(page, "self-service-order")
        page.get_by_role("button", name="Enregistrer").click()
        expect(page.locator(".notice")).to_have_text("Vos choix sont enregistrés : ils valent dès le prochain message.")
        expect(order.locator('select[name="rank_email"]')).to_have_value("1")
        expect(page.get_by_label("De", exact=True)).to_have_value("22:00")
        member = stage.api("GET", f"/v1/plps/{plp}/members/{lucas['id']}", who="coordinator_gare")
        assert member["channel_order"][:2] == ["email", "sms"]
        assert member["quiet_hours"] == {"start": "22:00", "end": "07:00"}

        sign_in(coordinator, stage, "coordinator_gare")
        coordinator.get_by_role("link", name="Notifications").click()
        told = coordinator.locator(".notification", has_text="Lucas Martin")
        expect(told.locator(".member-change")).to_have_text("Member: Lucas Martin — channels and preferences")
        expect(told.locator(".kind")).to_have_text("A member changed their details")
        expect(told).not_to_contain_text(LUCAS["email"])
        for language, kind, change in (
            ("fr", "Un membre a modifié ses données", "Membre : Lucas Martin — canaux et préférences"),
            ("nl", "Een lid heeft zijn gegevens gewijzigd", "Lid: Lucas Martin — kanalen en voorkeuren"),
            ("de", "Ein Mitglied hat seine Angaben geändert", "Mitglied: Lucas Martin — Kanäle und Einstellungen"),
        ):
            coordinator.locator("#language").select_option(language)
            expect(told.locator(".kind")).to_have_text(kind)
            expect(told.locator(".member-change")).to_have_text(change)
        coordinator.locator("#language").select_option("en")
        screenshot(coordinator, "notifications-member-changed")

        page.get_by_role("button", name="Quitter le PLP et effacer mes données").click()
        coordinator.reload()
        expect(coordinator.locator(".notification .member-change").first).to_have_text(
            "A former member (their data is erased) — left the PLP"
        )
        expect(coordinator.locator(".notifications")).not_to_contain_text("Lucas Martin")
    finally:
        coordinator.close()
        context.close()


EMMA = {"name": "Emma Peeters", "phone": "0470 66 77 33", "email": "emma.peeters@example.org", "language": "nl"}


def test_the_compose_preview_counts_apart_the_members_who_decline_non_urgent_messages(
    browser: Browser, stage: Stage
) -> None:
    """Emma chose no non-urgent messages: her coordinator's preview of an advice counts her apart, not reached."""
    plp = stage.plps["gare"]
    emma = stage.api("POST", f"/v1/plps/{plp}/members", who="coordinator_gare", body=EMMA, expect=201)

    async def decline(store: Store) -> None:
        member = await store.get_member(emma["id"])
        assert member is not None
        await store.save_member(member.model_copy(update={"non_urgent": False}), previous=member)

    stage.with_store(decline)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        sign_in(page, stage, "coordinator_gare")
        page.get_by_role("link", name="New alert").click()
        expect(page.get_by_role("heading", name="New alert")).to_be_visible()
        page.get_by_role("textbox", name="French").fill("Fermez vos fenêtres la nuit")
        expect(page.locator("#members-declined")).to_have_text("1")
        expect(page.locator(".figures")).to_contain_text("Decline non-urgent messages")
    finally:
        page.close()
        stage.api("DELETE", f"/v1/plps/{plp}/members/{emma['id']}", who="coordinator_gare", expect=204)
