"""A member's own page, from the signed link in every e-mail: they see their data, choose, leave."""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from yarl import URL

from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.api.services import SERVICES
from dispatcher.core.links import Purpose, secret_key
from dispatcher.core.wording import TELEGRAM_MENU
from dispatcher.storage.store import Store
from tests.support import run_queued
from tests.world import SMS_FROM, TEXTS, WEBHOOK_SECRET, World, link_in, open_world


@pytest.fixture
async def world(redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(redis_url, tmp_path) as world:
        yield world


def _store(world: World) -> Store:
    return world.client.server.app[SERVICES].store


def _path(world: World, name: str) -> str:
    return URL(world.runtime.links.profile_url(world.members[name]["id"])).path


def _form_token(page: str) -> str:
    marker = 'name="form_token" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]


async def _open(world: World, path: str) -> tuple[int, str]:
    async with world.client.get(path) as response:
        return response.status, await response.text()


async def _post(world: World, path: str, fields: list[tuple[str, str]]) -> tuple[int, str]:
    async with world.client.post(path, data=fields) as response:
        return response.status, html.unescape(await response.text())


async def _choose(
    world: World, name: str, language: str, *channels: str, non_urgent: bool = True, whatsapp: bool = False
) -> tuple[int, str]:
    path = _path(world, name)
    token = _form_token((await _open(world, path))[1])
    fields = [("form_token", token), ("action", "choose"), ("language", language)]
    fields += [("channels", c) for c in channels] + ([("non_urgent", "yes")] if non_urgent else [])
    fields += [("whatsapp", "yes")] if whatsapp else []
    return await _post(world, path, fields)


async def _entries(world: World, action: Action) -> list[audit.Entry]:
    store = _store(world)
    return (await audit.read(store.redis, store.keys, action=action)).entries


async def test_every_email_carries_the_members_own_link(world: World) -> None:
    """An alert's e-mail ends with the link to the member's own page, which opens in their language."""
    await world.alert()
    await run_queued(world.runtime)
    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "anne@example.org")
    status, page = await _open(world, URL(link_in(mail, "/v1/p/")).path)
    assert status == 200
    assert '<html lang="fr">' in page and "Vos données et vos choix" in page
    assert "Anne Dubois" in page and "anne@example.org" in page and "+32470111111" in page
    assert "<script" not in page and "http" not in page.split("<body>", 1)[1]  # nothing from elsewhere


async def test_opening_the_page_changes_nothing(world: World) -> None:
    """A GET (a mail scanner following the link) leaves the member and the audit log as they were."""
    before = await world.member("anne")
    for _ in range(3):
        assert (await _open(world, _path(world, "anne")))[0] == 200
    assert await world.member("anne") == before
    assert await _entries(world, Action.MEMBER_CHOSE) == []


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-token", id="garbage"),
        pytest.param("TAMPERED", id="tampered"),
        pytest.param("EXPORT", id="another purpose"),
        pytest.param("EXPIRED", id="expired"),
    ],
)
async def test_a_forged_tampered_foreign_or_expired_link_is_gone(world: World, token: str) -> None:
    """Only a link signed for this page and within its lifetime opens it; others get 410, POST changes nothing."""
    links, member_id = world.runtime.links, world.members["anne"]["id"]
    good = links.token(Purpose.PROFILE, member_id)
    made = {
        "TAMPERED": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "EXPORT": links.token(Purpose.EXPORT, member_id),
        "EXPIRED": _token_made_days_ago(world, member_id, days=world.runtime.settings.link_ttl_days + 1),
    }.get(token, token)
    assert (await _open(world, f"/v1/p/{made}"))[0] == 410
    before = await world.member("anne")
    fields = [("form_token", links.token(Purpose.PROFILE_FORM, member_id)), ("action", "leave")]
    assert (await _post(world, f"/v1/p/{made}", fields))[0] == 410
    assert await world.member("anne") == before


def _token_made_days_ago(world: World, member_id: str, *, days: int) -> str:
    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - days * 86400

    serializer = URLSafeTimedSerializer(secret_key(world.runtime.settings), salt="plp-dispatch-links", signer=Then)
    return str(serializer.dumps({"p": Purpose.PROFILE.value, "s": member_id}))


@pytest.mark.parametrize(
    "form_token",
    [
        pytest.param(None, id="no form token"),
        pytest.param("forged", id="forged form token"),
        pytest.param("OTHER", id="another member's form token"),
        pytest.param("LINK", id="the link token itself"),
    ],
)
async def test_a_post_without_the_pages_own_form_token_changes_nothing(world: World, form_token: str | None) -> None:
    """A post from another site (CSRF) or a robot lacks the page's form token: 400, the page again, nothing changed."""
    links, path = world.runtime.links, _path(world, "anne")
    value = {
        "OTHER": links.token(Purpose.PROFILE_FORM, world.members["john"]["id"]),
        "LINK": path.rsplit("/", 1)[1],
    }.get(form_token or "", form_token)
    fields = [("action", "leave")] + ([("form_token", value)] if value else [])
    before = await world.member("anne")
    status, page = await _post(world, path, fields)
    assert status == 400 and "Vos données et vos choix" in page
    assert await world.member("anne") == before
    assert await _entries(world, Action.MEMBER_LEFT) == []


async def test_a_member_chooses_language_and_channels_audited_as_themselves(world: World) -> None:
    """The choices are saved, the page answers in the new language, and the audit log names the member as actor."""
    status, page = await _choose(world, "anne", "nl", "email")
    assert status == 200 and '<html lang="nl">' in page and "Uw keuzes zijn opgeslagen" in page
    anne = await world.member("anne")
    # Telegram (not linked) and WhatsApp (no consent given) cannot reach her yet: kept as they were
    assert anne["language"] == "nl" and anne["channels"] == ["email", "telegram", "whatsapp"]
    [entry] = await _entries(world, Action.MEMBER_CHOSE)
    assert (entry.actor_id, entry.role) == (anne["id"], "member")
    assert entry.target == {"member": anne["id"]} and entry.detail == "language,channels"


@pytest.mark.parametrize(
    ("language", "channels"),
    [
        pytest.param("fr", [], id="no channel"),
        pytest.param("fr", ["telegram"], id="only a channel without a contact point"),
        pytest.param("it", ["sms"], id="a language the service does not speak"),
        pytest.param("fr", ["pigeon"], id="a channel nobody defined"),
    ],
)
async def test_choices_that_would_leave_a_member_unreachable_are_refused(
    world: World, language: str, channels: list[str]
) -> None:
    """Urgent alerts must reach the member somewhere: no reachable channel, or an unknown value, is a 400."""
    before = await world.member("anne")
    status, page = await _choose(world, "anne", language, *channels)
    assert status == 400 and "Choisissez au moins un canal" in page
    assert await world.member("anne") == before


async def test_the_next_alert_follows_the_new_choices(world: World) -> None:
    """After Anne chose Dutch and e-mail only, the next alert reaches her by e-mail only, in Dutch."""
    assert (await _choose(world, "anne", "nl", "email"))[0] == 200
    alert = await world.alert()
    await run_queued(world.runtime)
    deliveries = await world.deliveries(alert["id"])
    assert sorted(channel for channel, name in deliveries if name == "anne") == ["email"]
    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "anne@example.org")
    assert TEXTS["nl"] in mail.get_body(("plain",)).get_content()


async def test_a_member_gives_their_whatsapp_consent_recorded_with_its_time_and_source_audited_as_themselves(
    world: World,
) -> None:
    """Anne ticks the WhatsApp consent on her page: it is recorded with its time and the source "self-service",
    WhatsApp is among her channels, the page shows it held, and the audit log names her as actor."""
    before = datetime.now(UTC)
    status, page = await _choose(world, "anne", "fr", "sms", "email", "voice", whatsapp=True)
    assert status == 200 and "Vos choix sont enregistrés" in page
    anne = await world.member("anne")
    consent = anne["whatsapp_consent"]
    assert consent["source"] == "self-service" and datetime.fromisoformat(consent["at"]) >= before
    assert "whatsapp" in anne["channels"] and "whatsapp" in anne["working_channels"]
    assert 'name="whatsapp" value="yes" checked' in page and "Accord WhatsApp" in page
    [entry] = await _entries(world, Action.MEMBER_CHOSE)
    assert (entry.actor_id, entry.role, entry.detail) == (anne["id"], "member", "whatsapp_consent")

    assert (await _choose(world, "anne", "fr", "sms", "email", "voice", whatsapp=True))[0] == 200
    assert (await world.member("anne"))["whatsapp_consent"] == consent  # given again: the first time kept


async def test_a_member_withdraws_their_whatsapp_consent_and_whatsapp_no_longer_reaches_them(world: World) -> None:
    """Unticking the consent withdraws it (audited as the member): WhatsApp is no longer among the channels that
    reach her, whatever her channel list says."""
    assert (await _choose(world, "anne", "fr", "sms", "email", "voice", whatsapp=True))[0] == 200
    status, page = await _choose(world, "anne", "fr", "sms", "email", "voice")
    assert status == 200 and 'name="whatsapp" value="yes" checked' not in page and "Accord WhatsApp" not in page
    anne = await world.member("anne")
    assert anne["whatsapp_consent"] is None and "whatsapp" not in anne["working_channels"]
    assert [e.detail for e in await _entries(world, Action.MEMBER_CHOSE)] == ["whatsapp_consent", "whatsapp_consent"]


async def test_the_whatsapp_consent_alone_is_a_channel_that_reaches_the_member(world: World) -> None:
    """Every channel box unticked but the WhatsApp consent given: she can still be reached, so it is saved;
    withdrawing it too would leave her unreachable, so that is refused."""
    assert (await _choose(world, "anne", "fr", whatsapp=True))[0] == 200
    assert (await world.member("anne"))["working_channels"] == ["whatsapp"]
    status, page = await _choose(world, "anne", "fr")
    assert status == 400 and "Choisissez au moins un canal" in page
    assert (await world.member("anne"))["whatsapp_consent"] is not None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        pytest.param("anne", "j'accepte de recevoir les messages du PLP sur WhatsApp", id="French"),
        pytest.param("piet", "ik ga akkoord dat ik de berichten van het BIN via WhatsApp ontvang", id="Dutch"),
        pytest.param("john", "I agree to receive the PLP's messages on WhatsApp", id="English"),
    ],
)
async def test_the_page_asks_for_the_whatsapp_consent_in_the_members_language(
    world: World, name: str, words: str
) -> None:
    """The consent is asked in words of its own, unticked until given; WhatsApp is not one of the channel boxes."""
    page = html.unescape((await _open(world, _path(world, name)))[1])
    assert words in page and 'name="whatsapp" value="yes">' in page
    assert 'name="channels" value="whatsapp"' not in page


async def test_a_member_without_a_mobile_number_is_not_asked_and_keeps_what_she_had(world: World) -> None:
    """Lea has no phone: her page does not ask for WhatsApp, and her choices leave the consent as it was."""
    page = html.unescape((await _open(world, _path(world, "lea")))[1])
    assert "WhatsApp" not in page
    assert (await _choose(world, "lea", "de", "email", whatsapp=True))[0] == 200
    assert (await world.member("lea"))["whatsapp_consent"] is None


async def test_a_member_leaves_and_their_link_is_gone(world: World) -> None:
    """Leaving erases the member as a coordinator's removal does, audited as the member; the link then says 410."""
    path, member_id = _path(world, "anne"), world.members["anne"]["id"]
    token = _form_token((await _open(world, path))[1])
    status, page = await _post(world, path, [("form_token", token), ("action", "leave")])
    assert status == 200 and "Vous avez quitté le PLP" in page
    assert await _store(world).get_member(member_id) is None
    [entry] = await _entries(world, Action.MEMBER_LEFT)
    assert (entry.actor_id, entry.role, entry.target) == (member_id, "member", {"member": member_id})
    assert (await _open(world, path))[0] == 410
    assert (await _post(world, path, [("form_token", token), ("action", "leave")]))[0] == 410  # a reused link


@pytest.mark.parametrize(
    ("phone", "reply", "expected"),
    [
        pytest.param("+32470111111", "PROFIL", "Votre page PLP", id="French, SMS"),
        pytest.param("+32470222222", "profiel", "Uw BIN-pagina", id="Dutch, any case"),
        pytest.param("+32470444444", "Profile.", "Your PLP page", id="English, final punctuation aside"),
    ],
)
async def test_the_reply_keyword_answers_with_the_members_own_link(
    world: World, phone: str, reply: str, expected: str
) -> None:
    """PROFIL / PROFIEL / PROFILE by SMS is answered with the member's own link, in their language, and it opens."""
    status, twiml = await world.twilio.incoming_sms(world.sms_webhook, phone, SMS_FROM, reply)
    assert status == 200 and expected in twiml
    link = URL(re.search(r"https?://\S+/v1/p/[^\s<]+", twiml).group(0))  # type: ignore[union-attr]
    assert (await _open(world, link.path))[0] == 200
    assert await _store(world).redis.zcard(_store(world).keys.plp_feedback(world.plp)) == 0  # not feedback


async def test_the_telegram_profile_command_answers_with_the_members_own_link(world: World) -> None:
    """On Telegram, /profile (or the word) is answered in the chat with the member's link, in their language."""
    status, _ = await world.telegram.member_sends(world.telegram_webhook, 1001, "/profile", secret=WEBHOOK_SECRET)
    assert status == 200
    assert "Uw BIN-pagina" in await world.answer_to(1001)


@pytest.mark.parametrize("command", [*(c for menu in TELEGRAM_MENU.values() for c, _ in menu if c != "stop")])
async def test_each_command_of_the_bots_menu_answers_with_the_members_own_link(world: World, command: str) -> None:
    """The menu's page command of each language (/profil, /profiel, /profile), typed or chosen from the menu in a
    group (``/profiel@bot``), is answered with the member's link, in the member's language."""
    for text in (f"/{command}", f"/{command}@PlpDispatchBot"):
        status, _ = await world.telegram.member_sends(world.telegram_webhook, 1001, text, secret=WEBHOOK_SECRET)
        assert status == 200
        assert "Uw BIN-pagina" in await world.answer_to(1001)


async def test_the_menus_stop_command_stops_the_messages(world: World) -> None:
    status, _ = await world.telegram.member_sends(world.telegram_webhook, 1002, "/stop", secret=WEBHOOK_SECRET)
    assert status == 200
    assert (await world.member("john"))["status"] == "opted_out"


async def test_a_coordinator_has_the_member_sent_their_link_without_seeing_it(world: World) -> None:
    """The coordinator's "send the member their link" e-mails it in the member's language; the answer names only
    the channel (the coordinator never holds the link, so nobody acts as the member), and it is audited."""
    path = f"/v1/plps/{world.plp}/members/{world.members['anne']['id']}/profile-link"
    async with world.client.post(path, headers=world.auth("coordinator")) as response:
        assert response.status == 202 and await response.json() == {"channel": "email"}
    await run_queued(world.runtime)
    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "anne@example.org")
    assert mail["Subject"] == "Votre page PLP"
    assert (await _open(world, URL(link_in(mail, "/v1/p/")).path))[0] == 200
    [entry] = await _entries(world, Action.MEMBER_LINK_SENT)
    assert entry.role == "coordinator" and entry.target["member"] == world.members["anne"]["id"]


async def test_a_member_without_email_gets_their_link_on_telegram(world: World) -> None:
    """Piet has no e-mail address: his link goes to his linked Telegram chat, in Dutch."""
    path = f"/v1/plps/{world.plp}/members/{world.members['piet']['id']}/profile-link"
    async with world.client.post(path, headers=world.auth("coordinator")) as response:
        assert response.status == 202 and await response.json() == {"channel": "telegram"}
    assert "Uw BIN-pagina" in await world.answer_to(1001)


async def test_a_member_who_declines_non_urgent_messages_still_gets_urgent_ones(world: World) -> None:
    """Anne unticks non-urgent messages: the coordinator's advice is recorded as opted out for her (the others get
    it), and the next urgent alert still reaches her on her channels."""
    charter = {"non_urgent": {"channels": ["email", "sms"], "mode": "first_that_works", "ttl_seconds": 86400}}
    async with world.client.put(f"/v1/plps/{world.plp}/charter", json=charter, headers=world.auth("coordinator")) as r:
        assert r.status == 200, await r.text()  # no quiet hours: the test must not depend on the time of day
    assert (await _choose(world, "anne", "fr", "sms", "email", "voice", non_urgent=False))[0] == 200
    assert (await world.member("anne"))["non_urgent"] is False
    [entry] = await _entries(world, Action.MEMBER_CHOSE)
    assert entry.detail == "non_urgent"
    advice = {"urgency": "non_urgent", "category": "prevention_advice", "plp_ids": [world.plp], "texts": TEXTS}
    sent = await world.alert(advice, who="coordinator")
    await run_queued(world.runtime)
    reached = {name for _, name in await world.deliveries(sent["id"])}
    assert "anne" not in reached and {"john", "lea"} <= reached
    urgent = await world.alert()
    await run_queued(world.runtime)
    assert sorted(c for c, name in await world.deliveries(urgent["id"]) if name == "anne") == ["email", "sms", "voice"]


async def test_a_member_orders_their_channels_and_sets_quiet_hours_and_the_next_alert_follows(world: World) -> None:
    """Anne ranks voice, SMS, then e-mail and sets quiet hours: both are saved and audited (field names only), the
    page shows them, and the next advice (charter: e-mail then SMS, first that works) tries SMS first: her order
    among the charter's channels (voice is not one of them)."""
    charter = {"non_urgent": {"channels": ["email", "sms"], "mode": "first_that_works", "ttl_seconds": 86400}}
    async with world.client.put(f"/v1/plps/{world.plp}/charter", json=charter, headers=world.auth("coordinator")) as r:
        assert r.status == 200, await r.text()
    path = _path(world, "anne")
    page = (await _open(world, path))[1]
    assert 'name="rank_sms"' in page and 'name="quiet_start"' in page and "Dans quel ordre vous joindre" in page
    before = await world.member("anne")
    fields = [("form_token", _form_token(page)), ("action", "choose"), ("language", "fr"), ("non_urgent", "yes")]
    fields += [("channels", c) for c in before["channels"] if c in ("sms", "email", "voice")]
    fields += [("rank_voice", "1"), ("rank_sms", "2"), ("rank_email", "3")]
    fields += [("quiet_start", "23:00"), ("quiet_end", "06:30")]
    status, page = await _post(world, path, fields)
    assert status == 200, page
    anne = await world.member("anne")
    assert anne["channel_order"] == ["voice", "sms", "email"]
    assert anne["quiet_hours"] == {"start": "23:00", "end": "06:30"}
    assert 'value="23:00"' in page and 'value="06:30"' in page
    [entry] = await _entries(world, Action.MEMBER_CHOSE)
    assert entry.detail == "channel_order,quiet_hours"

    fields = [(k, v) for k, v in fields if not k.startswith("quiet_")] + [("quiet_start", ""), ("quiet_end", "")]
    fields[0] = ("form_token", _form_token(page))
    assert (await _post(world, path, fields))[0] == 200  # both emptied: no quiet hours, whatever the time of day
    assert (await world.member("anne"))["quiet_hours"] is None
    advice = {"urgency": "non_urgent", "category": "prevention_advice", "plp_ids": [world.plp], "texts": TEXTS}
    sent = await world.alert(advice, who="coordinator")
    await run_queued(world.runtime)
    assert [c for c, name in await world.deliveries(sent["id"]) if name == "anne"] == ["sms"]


async def test_quiet_hours_that_are_not_times_are_refused(world: World) -> None:
    path = _path(world, "anne")
    before = await world.member("anne")
    fields = [("form_token", _form_token((await _open(world, path))[1])), ("action", "choose"), ("language", "fr")]
    fields += [("channels", "sms"), ("quiet_start", "late"), ("quiet_end", "08:00")]
    status, page = await _post(world, path, fields)
    assert status == 400 and "Heures calmes : donnez un début et une fin" in page
    assert await world.member("anne") == before


async def _told(world: World, who: str = "coordinator") -> list[dict[str, object]]:
    """The member changes the coordinator was told of, newest first."""
    async with world.client.get("/v1/notifications", headers=world.auth(who)) as response:
        assert response.status == 200
        return [n for n in (await response.json())["items"] if n["kind"] == "member_changed"]


async def test_the_coordinator_is_told_of_every_change_without_any_contact_point(world: World) -> None:
    """Anne changes her language and channels, then her phone, then leaves: each time the PLP's coordinator gets a
    notification (in the PLP's language) saying what changed, never the values; it names Anne while she is a member,
    and no one once she left. The police officer is told nothing."""
    anne = await world.member("anne")
    assert (await _choose(world, "anne", "nl", "email"))[0] == 200
    [chose] = await _told(world)
    assert (chose["member_id"], chose["member_name"], chose["changes"]) == (
        anne["id"],
        "Anne Dubois",
        ["language", "channels"],
    )
    assert chose["plp_id"] == world.plp and chose["language"] == "fr" and chose["read"] is False
    assert "sa langue, ses canaux et préférences" in str(chose["text"])

    assert (await _change(world, "anne", "phone", NEW_PHONE))[0] == 200
    assert (await _code(world, "anne", await _code_sent_to(world, NEW_PHONE)))[0] == 200
    changed, _ = await _told(world)
    assert changed["changes"] == ["contact"] and "son numéro ou son adresse e-mail" in str(changed["text"])

    path = _path(world, "anne")
    token = _form_token((await _open(world, path))[1])
    assert (await _post(world, path, [("form_token", token), ("action", "leave")]))[0] == 200
    told = await _told(world)
    assert [n["changes"] for n in told] == [["left"], ["contact"], ["language", "channels"]]
    assert all(n["member_name"] is None for n in told)  # her name is gone with her data
    for notice in told:
        said = f"{notice['subject']} {notice['text']}"
        for secret in ("Anne", "anne@example.org", NEW_PHONE, "0470", "+3247"):
            assert secret not in said
    assert await _told(world, "police") == []


async def test_saving_the_same_choices_tells_nobody(world: World) -> None:
    anne = await world.member("anne")
    channels = [c for c in anne["channels"] if c in ("sms", "email", "voice")]
    assert (await _choose(world, "anne", "fr", *channels))[0] == 200
    assert await _told(world) == []


async def test_the_preview_counts_apart_the_members_who_decline_non_urgent_messages(world: World) -> None:
    """Anne declines non-urgent messages: the preview of an advice leaves her out of those reached and counts her
    apart; an urgent alert's preview still counts her among those reached."""
    advice = {"urgency": "non_urgent", "category": "prevention_advice", "plp_ids": [world.plp], "texts": TEXTS}
    urgent = {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp], "texts": TEXTS}

    async def preview(body: dict[str, object]) -> dict[str, int]:
        async with world.client.post("/v1/alerts/preview", json=body, headers=world.auth("police")) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    before = await preview(advice)
    assert before["members_declined_non_urgent"] == 0
    assert (await _choose(world, "anne", "fr", "sms", "email", "voice", non_urgent=False))[0] == 200
    after = await preview(advice)
    assert after["members_declined_non_urgent"] == 1
    assert after["members_reached"] == before["members_reached"] - 1
    assert after["members_opted_out"] == before["members_opted_out"]
    still = await preview(urgent)
    assert still["members_declined_non_urgent"] == 0 and still["members_reached"] == before["members_reached"]


NEW_PHONE = "+32470999888"


async def _change(world: World, name: str, kind: str, value: str) -> tuple[int, str]:
    path = _path(world, name)
    token = _form_token((await _open(world, path))[1])
    fields = [("form_token", token), ("action", "change_contact"), ("kind", kind), ("value", value)]
    return await _post(world, path, fields)


async def _code(world: World, name: str, code: str) -> tuple[int, str]:
    path = _path(world, name)
    token = _form_token((await _open(world, path))[1])
    return await _post(world, path, [("form_token", token), ("action", "confirm_code"), ("code", code)])


async def _code_sent_to(world: World, phone: str) -> str:
    await run_queued(world.runtime)
    texts = [m.body or "" for m in world.twilio.messages if m.to == phone]
    assert texts, f"no code reached {phone}"
    return re.search(r"\b(\d{6})\b", texts[-1]).group(1)  # type: ignore[union-attr]


async def test_a_phone_change_is_confirmed_by_a_code_sent_to_the_new_number(world: World) -> None:
    """The new number gets a six-digit code; until it is entered nothing changes; then the phone is the new one,
    audited as the member, and the code cannot be used twice."""
    status, page = await _change(world, "anne", "phone", "0470 99 98 88")
    assert status == 200 and "+32470999888" in page and "Code reçu" in page
    assert (await world.member("anne"))["phone"] == "+32470111111"
    code = await _code_sent_to(world, NEW_PHONE)
    status, page = await _code(world, "anne", code)
    assert status == 200 and "C'est changé" in page
    assert (await world.member("anne"))["phone"] == NEW_PHONE
    [entry] = await _entries(world, Action.MEMBER_CHOSE)
    assert (entry.actor_id, entry.role, entry.detail) == (world.members["anne"]["id"], "member", "phone")
    assert (await _code(world, "anne", code))[0] == 400  # reused: no change pending any more


async def test_five_wrong_codes_lock_the_change(world: World) -> None:
    """Four wrong codes are each refused; the fifth locks: the right code no longer works, nor does a new change."""
    await _change(world, "anne", "phone", NEW_PHONE)
    code = await _code_sent_to(world, NEW_PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(4):
        status, page = await _code(world, "anne", wrong)
        assert status == 400 and "Ce code n'est pas le bon." in page
    status, page = await _code(world, "anne", wrong)
    assert status == 429 and "Trop d'essais" in page
    assert (await _code(world, "anne", code))[0] == 400
    assert (await _change(world, "anne", "phone", NEW_PHONE))[0] == 429
    assert (await world.member("anne"))["phone"] == "+32470111111"


async def test_codes_are_rate_limited(world: World) -> None:
    """Three codes an hour at most: the fourth request is refused and sends nothing."""
    for _ in range(3):
        assert (await _change(world, "anne", "phone", NEW_PHONE))[0] == 200
    status, page = await _change(world, "anne", "phone", NEW_PHONE)
    assert status == 429 and "Trop de codes demandés" in page
    await run_queued(world.runtime)
    assert len([m for m in world.twilio.messages if m.to == NEW_PHONE]) == 3


async def test_a_code_keeps_ten_minutes_at_most(world: World) -> None:
    """The pending change (and its code) is kept ten minutes at most."""
    await _change(world, "anne", "email", "anne.new@example.org")
    store = _store(world)
    assert 0 < await store.redis.ttl(store.keys.member_contact_change(world.members["anne"]["id"])) <= 600


async def test_a_number_another_member_has_gets_the_same_answer_and_no_code(world: World) -> None:
    """Asking for Piet's number answers exactly as for a free one (nobody learns who is a member); no code goes."""
    free = (await _change(world, "anne", "phone", NEW_PHONE))[1].replace("+32470999888", "X")
    taken = (await _change(world, "anne", "phone", "+32470222222"))[1].replace("+32470222222", "X")
    assert _without_tokens(free) == _without_tokens(taken)
    await run_queued(world.runtime)
    assert not [m for m in world.twilio.messages if m.to == "+32470222222" and "code" in (m.body or "").lower()]


def _without_tokens(page: str) -> str:
    return re.sub(r'name="form_token" value="[^"]+"', "", page)


async def test_an_unusable_number_is_refused_with_the_reason(world: World) -> None:
    """A landline is not a mobile number: 400, in the member's language, nothing sent."""
    status, page = await _change(world, "anne", "phone", "02 555 12 34")
    assert status == 400 and "ne peut pas être utilisé" in page
