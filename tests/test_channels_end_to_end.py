"""The four real channels end to end: the service, driven by the real vendor libraries, talks to
simulators of Twilio, an SMTP server and the Telegram Bot API on loopback, and they talk back.

Each test builds the same neighbourhood: a PLP whose urgent plan uses every channel, and four
members who between them use all of them, in French, Dutch, German and English.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.models import Language
from dispatcher.core.segments import measure
from dispatcher.core.wording import Words, say
from tests.support import get_json, post_json, run_queued
from tests.world import (
    ACCOUNT,
    SMS_FROM,
    TEXTS,
    VOICE_FROM,
    WEBHOOK_SECRET,
    World,
    callback_data,
    link_in,
    open_world,
)


@pytest.fixture
async def world(redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(redis_url, tmp_path) as opened:
        yield opened


async def _sent_alert(world: World) -> dict[str, Any]:
    alert = await world.alert()
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    return alert


async def test_an_urgent_alert_reaches_every_member_on_every_channel_in_their_language(world: World) -> None:
    """SMS, calls, e-mails and Telegram messages reach the right addresses, in each language, with the
    acknowledgement hint; the deliveries carry the providers' ids and reach "delivered" from the callbacks."""
    alert = await _sent_alert(world)
    phones = {"anne": "+32470111111", "piet": "+32470222222", "john": "+32470444444"}
    sms = {m.to: m for m in world.twilio.messages}
    assert set(sms) == set(phones.values())
    for name, language, hint in (  # a burglary's answer options, numbered
        ("anne", "fr", "Répondez 1=J'ai vu quelque chose"),
        ("piet", "nl", "Antwoord 1=Ik heb iets gezien"),
        ("john", "en", "Reply 1=I saw something"),
    ):
        body = sms[phones[name]].body or ""
        assert body.startswith(TEXTS[language]) and hint in body
        assert sms[phones[name]].from_ == SMS_FROM
    calls = {c.to: c for c in world.twilio.calls}
    assert set(calls) == set(phones.values())
    assert 'language="nl-BE"' in (calls[phones["piet"]].twiml or "")
    assert TEXTS["nl"] in (calls[phones["piet"]].twiml or "")
    mails = {m.message["To"]: m.message for m in await world.smtp.wait_for(3)}
    assert set(mails) == {"anne@example.org", "lea@example.org", "john@example.org"}
    lea = mails["lea@example.org"]
    assert lea["Content-Language"] == "de" and lea["Reply-To"] == "coordination@plp.example"
    assert lea["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Einbruch" in lea["Subject"]
    assert TEXTS["de"] in lea.get_body(("plain",)).get_content()
    chats = {c.params["chat_id"]: c.params for c in world.telegram.calls("sendMessage") if "reply_markup" in c.params}
    assert {int(chat) for chat in chats} == {1001, 1002}

    deliveries = await world.deliveries(alert["id"])
    assert len(deliveries) == 11
    for (channel, _), delivery in deliveries.items():
        expected = {"sms": "delivered", "voice": "delivered", "telegram": "delivered", "email": "sent"}[channel]
        assert delivery["status"] == expected, delivery
        assert delivery["provider_id"]
    assert deliveries["sms", "anne"]["provider_id"].startswith("SM")
    assert deliveries["voice", "anne"]["provider_id"].startswith("CA")
    seen = await get_json(world.client, f"/v1/alerts/{alert['id']}", headers=world.auth("police"))
    assert seen["status"] == "completed"
    assert seen["cost"]["sms_segments"] == sum(measure(m.body or "").segments for m in sms.values())
    assert seen["cost"]["voice_minutes"] >= 3


async def test_every_acknowledgement_path_is_recorded_on_its_delivery(world: World) -> None:
    """An SMS "ok", key 1 in the call, the Telegram button and the e-mail page's POST each acknowledge once."""
    alert = await _sent_alert(world)
    status, twiml = await world.twilio.incoming_sms(world.sms_webhook, "+32470111111", SMS_FROM, "Ok.")
    assert status == 200 and "Merci, réception confirmée" in twiml

    call = next(c for c in world.twilio.calls if c.to == "+32470222222")
    gather = re.search(r'action="([^"]+)"', call.twiml or "")
    assert gather is not None
    status, twiml = await world.twilio.press_digits(
        gather.group(1).replace("&amp;", "&"), call.sid, "1", VOICE_FROM, call.to
    )
    assert status == 200 and "Bedankt, ontvangst bevestigd" in twiml

    button = next(
        c
        for c in world.telegram.calls("sendMessage")
        if int(c.params["chat_id"]) == 1002 and "reply_markup" in c.params
    )
    data = _callback_data(button.params["reply_markup"])
    status, answer = await world.telegram.member_presses(world.telegram_webhook, 1002, data, 1, secret=WEBHOOK_SECRET)
    assert (
        status == 200
        and answer["method"] == "answerCallbackQuery"
        and answer["text"] == "Thank you, receipt confirmed."
    )

    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "lea@example.org")
    link = _receipt_link(mail)
    page = await world.client.get(link.removeprefix(world.base))
    assert page.status == 200 and "Ich bestätige den Empfang" in await page.text()
    before = await world.deliveries(alert["id"])
    assert before["email", "lea"]["acknowledged_at"] is None  # opening the link (a mail scanner) does not count
    confirmed = await world.client.post(link.removeprefix(world.base), data={"action": "ack"})
    assert confirmed.status == 200

    after = await world.deliveries(alert["id"])
    acknowledged = {key: d["acknowledged_via"] for key, d in after.items() if d["acknowledged_at"]}
    assert acknowledged == {
        ("sms", "anne"): "sms",
        ("voice", "piet"): "voice",
        ("telegram", "john"): "telegram",
        ("email", "lea"): "email",
    }
    seen = await get_json(world.client, f"/v1/alerts/{alert['id']}", headers=world.auth("police"))
    assert seen["counts"]["acknowledged"] == 4


@pytest.mark.parametrize(
    ("detected", "with_the_key", "acknowledged"),
    [
        pytest.param("human", "human", True, id="human"),
        pytest.param("unknown", "unknown", True, id="unknown-detection-could-not-tell"),
        pytest.param("human", None, True, id="not-in-the-key-request-callbacks-said-human"),
        pytest.param("machine_start", "machine_start", False, id="machine_start"),
        pytest.param("machine_end_beep", "machine_end_beep", False, id="machine_end_beep"),
        pytest.param("machine_end_silence", "machine_end_silence", False, id="machine_end_silence"),
        pytest.param("machine_end_other", "machine_end_other", False, id="machine_end_other"),
        pytest.param("fax", "fax", False, id="fax"),
        pytest.param("human", "machine_end_beep", False, id="the-key-request-says-machine"),
        pytest.param("machine_end_beep", None, False, id="not-in-the-key-request-callbacks-said-machine"),
        pytest.param("fax", None, False, id="not-in-the-key-request-callbacks-said-fax"),
    ],
)
async def test_only_a_person_pressing_1_acknowledges_a_call(
    world: World, detected: str, with_the_key: str | None, acknowledged: bool
) -> None:
    """Key 1 acknowledges when answering machine detection says a person (or could not tell) answered;
    a voicemail's or a fax's tones do not, whether AnsweredBy comes with the key or only in the status callbacks."""
    world.twilio.answered_by["+32470222222"] = detected
    alert = await _sent_alert(world)
    call = next(c for c in world.twilio.calls if c.to == "+32470222222")
    gather = re.search(r'action="([^"]+)"', call.twiml or "")
    assert gather is not None
    status, twiml = await world.twilio.press_digits(
        gather.group(1).replace("&amp;", "&"), call.sid, "1", VOICE_FROM, call.to, answered_by=with_the_key
    )
    assert status == 200 and ("Bedankt, ontvangst bevestigd" in twiml) is acknowledged
    voice = (await world.deliveries(alert["id"]))["voice", "piet"]
    assert (voice["acknowledged_via"] == "voice") is acknowledged
    seen = await get_json(world.client, f"/v1/alerts/{alert['id']}", headers=world.auth("police"))
    assert seen["counts"]["acknowledged"] == int(acknowledged)


async def test_a_call_a_fax_machine_took_fails(world: World) -> None:
    """A call answered by a fax reached nobody: it fails with that cause, and is not acknowledged."""
    world.twilio.answered_by["+32470222222"] = "fax"
    alert = await _sent_alert(world)
    voice = (await world.deliveries(alert["id"]))["voice", "piet"]
    assert (voice["status"], voice["cause"], voice["acknowledged_at"]) == ("failed", "answered by a fax machine", None)


@pytest.mark.parametrize(
    ("method", "form", "status", "acknowledged"),
    [
        pytest.param("GET", None, 200, False, id="opened-by-a-mail-scanner"),
        pytest.param("HEAD", None, 405, False, id="probed-by-a-link-checker"),
        pytest.param("POST", {}, 400, False, id="blind-post"),
        pytest.param("POST", {"List-Unsubscribe": "One-Click"}, 400, False, id="one-click-body-is-not-a-receipt"),
        pytest.param("POST", {"action": "ack"}, 200, True, id="confirm-button"),
        pytest.param("POST", {"action": "feedback", "text": "Gesehen"}, 200, True, id="reply-button"),
    ],
)
async def test_only_a_button_of_the_receipt_page_acknowledges_an_email(
    world: World, method: str, form: dict[str, str] | None, status: int, acknowledged: bool
) -> None:
    """Opening, probing or blindly posting to the e-mail's receipt link changes nothing; the page's buttons do."""
    alert = await _sent_alert(world)
    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "lea@example.org")
    response = await world.client.request(method, _receipt_link(mail).removeprefix(world.base), data=form)
    assert response.status == status
    if status == 400:
        assert "Ich bestätige den Empfang" in await response.text()  # the page again, for a person to confirm
    lea = (await world.deliveries(alert["id"]))["email", "lea"]
    assert (lea["acknowledged_via"] == "email") is acknowledged


async def test_every_page_a_mail_links_to_can_be_neither_framed_nor_scripted(world: World) -> None:
    """The receipt, unsubscribe, data and own-page links answer with the same guard: not cached, not indexed, no
    referrer, no framing (a framed "received" button could be clicked for the member), nothing but inline style, and
    forms posted only to the service; an expired or forged link's page too."""
    await _sent_alert(world)
    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "lea@example.org")
    links = [
        _receipt_link(mail),
        mail["List-Unsubscribe"].strip("<>"),
        link_in(mail, "/v1/p/"),
        f"{world.base}/v1/r/forged-token",
    ]
    for link in links:
        response = await world.client.get(link.removeprefix(world.base))
        assert response.status in (200, 410), (link, response.status)
        headers = response.headers
        assert headers["X-Frame-Options"] == "DENY", link
        assert headers["Content-Security-Policy"] == (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
        ), link
        assert (headers["Cache-Control"], headers["Referrer-Policy"], headers["X-Robots-Tag"]) == (
            "no-store",
            "no-referrer",
            "noindex",
        ), link


@pytest.mark.parametrize(
    ("method", "form", "status", "opted_out"),
    [
        pytest.param("GET", None, 200, False, id="opened-by-a-mail-scanner"),
        pytest.param("POST", {}, 400, False, id="blind-post"),
        pytest.param("POST", {"action": "ack"}, 400, False, id="another-pages-button"),
        pytest.param("POST", {"List-Unsubscribe": "One-Click"}, 200, True, id="rfc-8058-one-click"),
        pytest.param("POST", {"action": "unsubscribe"}, 200, True, id="the-pages-button"),
    ],
)
async def test_only_a_one_click_post_or_the_pages_button_unsubscribes(
    world: World, method: str, form: dict[str, str] | None, status: int, opted_out: bool
) -> None:
    """The unsubscribe link opts out on the mail client's one-click POST or the page's button, never otherwise."""
    await _sent_alert(world)
    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "lea@example.org")
    unsubscribe = mail["List-Unsubscribe"].strip("<>").removeprefix(world.base)
    response = await world.client.request(method, unsubscribe, data=form)
    assert response.status == status
    assert ((await world.member("lea"))["status"] == "opted_out") is opted_out


async def test_in_a_group_chat_nobody_acknowledges_or_stops_for_the_member(world: World) -> None:
    """A member linked from a group chat: another user's "received" button, "ok" or /stop there is not theirs."""
    group, member_user, neighbour = -100777, 555, 556
    await world.enroll("club", {"name": "Club Buurt", "email": "club@example.org", "language": "nl"})
    link = await world.telegram_link("club")
    status, _ = await world.telegram.member_sends(
        world.telegram_webhook, group, link["start_command"], secret=WEBHOOK_SECRET, by=member_user
    )
    assert status == 200 and (await world.member("club"))["telegram_chat_id"] == group
    alert = await _sent_alert(world)
    data = world.button_to(group)
    for user in (neighbour, member_user):  # in a group, we cannot tell the member's own press
        status, answer = await world.telegram.member_presses(
            world.telegram_webhook, group, data, 1, secret=WEBHOOK_SECRET, by=user
        )
        assert status == 200 and "text" not in answer
    for text in ("ok", "/stop"):
        status, _ = await world.telegram.member_sends(
            world.telegram_webhook, group, text, secret=WEBHOOK_SECRET, by=neighbour
        )
        assert status == 200 and await world.answer_to(group) == say(Words.TELEGRAM_UNKNOWN, Language.NL)
    club = (await world.deliveries(alert["id"]))["telegram", "club"]
    assert club["acknowledged_at"] is None
    assert (await world.member("club"))["status"] == "active"


async def test_forged_signatures_and_tokens_are_refused_and_change_nothing(world: World) -> None:
    """A forged Twilio signature, a wrong Telegram secret and a tampered e-mail link are refused."""
    alert = await _sent_alert(world)
    status, _ = await world.twilio.incoming_sms(world.sms_webhook, "+32470111111", SMS_FROM, "STOP", forge=True)
    assert status == 403
    sms = next(m for m in world.twilio.messages if m.to == "+32470111111")
    status, _ = await world.twilio.post_signed(
        f"{world.base}/v1/webhooks/twilio/status?d={alert['id']}:sms:{world.members['anne']['id']}",
        {"MessageSid": sms.sid, "MessageStatus": "failed", "AccountSid": ACCOUNT},
        forge=True,
    )
    assert status == 403
    status, _ = await world.telegram.member_sends(world.telegram_webhook, 1001, "/stop", secret="wrong")
    assert status == 403
    status, _ = await world.telegram.member_sends(world.telegram_webhook, 1001, "/stop", secret=None)
    assert status == 403
    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "lea@example.org")
    tampered = _receipt_link(mail)[:-3] + "xyz"
    response = await world.client.post(tampered.removeprefix(world.base), data={"action": "ack"})
    assert response.status == 410

    assert (await world.member("anne"))["status"] == "active"
    assert (await world.member("piet"))["status"] == "active"
    deliveries = await world.deliveries(alert["id"])
    assert deliveries["sms", "anne"]["status"] == "delivered"
    assert not any(d["acknowledged_at"] for d in deliveries.values())


async def test_replies_are_feedback_for_the_author_and_coordinators_with_the_emergency_reminder(world: World) -> None:
    """Other replies are stored as feedback on the alert (newest first) and answered with 101 / 112."""
    alert = await _sent_alert(world)
    status, twiml = await world.twilio.incoming_sms(
        world.sms_webhook, "+32470111111", SMS_FROM, "J'ai vu la voiture grise rue Vanderkindere"
    )
    assert status == 200 and "101" in twiml and "112" in twiml
    status, _ = await world.telegram.member_sends(
        world.telegram_webhook, 1001, "Grijze wagen reed richting Ukkel-centrum", secret=WEBHOOK_SECRET
    )
    assert status == 200 and "112" in await world.answer_to(1001)
    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "lea@example.org")
    page = await world.client.post(
        _receipt_link(mail).removeprefix(world.base), data={"action": "feedback", "text": "Zwei Männer, <b>dunkel</b>"}
    )
    assert page.status == 200 and "112" in await page.text()

    listed = await get_json(world.client, f"/v1/alerts/{alert['id']}/feedback", headers=world.auth("coordinator"))
    assert [(f["channel"], f["member_name"]) for f in listed["items"]] == [
        ("email", "Lea Schmitz"),
        ("telegram", "Piet Janssens"),
        ("sms", "Anne Dubois"),
    ]
    assert listed["items"][0]["text"] == "Zwei Männer, <b>dunkel</b>"
    by_police = await get_json(world.client, f"/v1/alerts/{alert['id']}/feedback", headers=world.auth("police"))
    assert {f["member_name"] for f in by_police["items"]} == {None}  # the police read what was seen, not who
    per_plp = await get_json(world.client, f"/v1/plps/{world.plp}/feedback", headers=world.auth("coordinator"))
    assert len(per_plp["items"]) == 3


async def test_every_opt_out_path_stops_all_messages_at_once(world: World) -> None:
    """STOP by SMS, /stop on Telegram and the e-mail's one-click unsubscribe opt out; nothing more is sent to them."""
    await _sent_alert(world)
    status, twiml = await world.twilio.incoming_sms(world.sms_webhook, "+32470111111", SMS_FROM, "ARRET")
    assert status == 200 and "Vous ne recevrez plus de messages" in twiml
    status, _ = await world.telegram.member_sends(world.telegram_webhook, 1001, "/stop", secret=WEBHOOK_SECRET)
    assert status == 200 and "U ontvangt geen berichten meer" in await world.answer_to(1001)
    mail = next(m.message for m in world.smtp.messages if m.message["To"] == "lea@example.org")
    unsubscribe = mail["List-Unsubscribe"].strip("<>").removeprefix(world.base)
    response = await world.client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert response.status == 200
    for name in ("anne", "piet", "lea"):
        member = await world.member(name)
        assert member["status"] == "opted_out" and member["opted_out_at"]

    sent_before = len(world.twilio.ledger), len(world.smtp.messages), len(world.telegram.calls("sendMessage"))
    second = await world.alert()
    await run_queued(world.runtime, limit=1)  # the fan-out: John's sends are queued
    status, _ = await world.twilio.incoming_sms(world.sms_webhook, "+32470444444", SMS_FROM, "stop")
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    assert (len(world.twilio.ledger), len(world.smtp.messages), len(world.telegram.calls("sendMessage"))) == sent_before
    seen = await get_json(world.client, f"/v1/alerts/{second['id']}", headers=world.auth("police"))
    assert seen["counts"]["members_opted_out"] == 3
    assert seen["counts"]["by_status"]["cancelled"] == seen["counts"]["total"] == 4  # John's, dropped from the queue
    deliveries = await world.deliveries(second["id"])
    assert {d["cause"] for d in deliveries.values()} == {"member opted out"}


async def test_provider_reports_move_deliveries_forward_only(world: World) -> None:
    """Undelivered SMS fail with the error; voicemail is delivered unacknowledged; no answer fails; a late
    or repeated report changes nothing."""
    world.twilio.undelivered.add("+32470111111")
    world.twilio.answered_by["+32470222222"] = "machine_end_beep"
    world.twilio.call_outcomes["+32470444444"] = "no-answer"
    alert = await _sent_alert(world)
    deliveries = await world.deliveries(alert["id"])
    assert (deliveries["sms", "anne"]["status"], deliveries["sms", "anne"]["last_error"]) == (
        "failed",
        "Twilio error 30005",
    )
    voicemail = deliveries["voice", "piet"]
    assert (voicemail["status"], voicemail["cause"], voicemail["acknowledged_at"]) == (
        "delivered",
        "left on voicemail",
        None,
    )
    assert (deliveries["voice", "john"]["status"], deliveries["voice", "john"]["cause"]) == ("failed", "no answer")

    sms = next(m for m in world.twilio.messages if m.to == "+32470444444")
    delivery = f"{alert['id']}:sms:{world.members['john']['id']}"
    late = {"MessageSid": sms.sid, "MessageStatus": "sent", "AccountSid": ACCOUNT}
    status, _ = await world.twilio.post_signed(f"{world.base}/v1/webhooks/twilio/status?d={delivery}", late)
    assert status == 204
    again = await world.deliveries(alert["id"])
    assert again["sms", "john"] == deliveries["sms", "john"]


async def test_police_feedback_goes_out_under_its_own_charter_plan(world: World) -> None:
    """Feedback about an earlier alert follows the police-feedback plan (e-mail, then Telegram), linked to it."""
    first = await _sent_alert(world)
    body = {
        "urgency": "non_urgent",
        "category": "burglary",
        "plp_ids": [world.plp],
        "about_alert_id": first["id"],
        "texts": {"fr": "Les suspects ont été interpellés grâce à vos signalements. Merci !"},
    }
    feedback = await world.alert(body)
    assert feedback["about_alert_id"] == first["id"] and feedback["status"] == "accepted"
    mails_before = len(world.smtp.messages)
    await run_queued(world.runtime)
    deliveries = await world.deliveries(feedback["id"])
    assert {key[0] for key in deliveries} == {"email", "telegram"}  # first that works: e-mail, else Telegram
    assert ("telegram", "piet") in deliveries and ("email", "anne") in deliveries
    mail = (await world.smtp.wait_for(mails_before + 3))[-1].message
    assert any(
        word in mail["Subject"] for word in ("Retour de la police", "Police feedback", "Rückmeldung", "Terugkoppeling")
    )
    refused = await world.client.post("/v1/alerts", json=body, headers=world.auth("coordinator"))
    assert refused.status == 403


async def test_the_preview_shows_segments_reach_and_cost_before_sending(world: World) -> None:
    """The preview counts SMS segments per language (accents and all), members per channel, and the price."""
    texts = {
        "fr": "Cambriolage : fenêtre forcée rue du Parc, soyez vigilants ce soir." * 2,
        "en": "Burglary in Park Street.",
    }
    # no answer options: the segments of the text alone (tests/test_answers_end_to_end.py counts the options')
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp], "texts": texts, "answers": []}
    preview = await post_json(world.client, "/v1/alerts/preview", body, headers=world.auth("police"), expect=200)
    sms = {s["language"]: s for s in preview["sms"]}
    assert (sms["fr"]["encoding"], sms["fr"]["segments"]) == ("ucs2", 2)  # ê is not GSM: 132 units, no room for a hint
    assert (sms["en"]["encoding"], sms["en"]["segments"]) == ("gsm7", 1)
    assert preview["members_reached"] == 4
    assert preview["by_channel"] == {"sms": 3, "email": 3, "telegram": 2, "voice": 3}
    assert preview["cost"]["currency"] == "EUR"
    assert float(preview["cost"]["estimated"]) > 0
    assert world.twilio.ledger == []  # nothing was sent


def _fit(text: str, length: int) -> str:
    """The text cut or padded with dots to exactly ``length`` characters."""
    return text[:length].rstrip().ljust(length, ".")


@pytest.mark.parametrize(
    ("texts", "encoding", "segments"),
    [
        pytest.param({lang: _fit(f"{text} — suspects", 128) for lang, text in TEXTS.items()}, "ucs2", 2, id="ucs2-128"),
        pytest.param({lang: _fit(f"{text} — suspects", 70) for lang, text in TEXTS.items()}, "ucs2", 1, id="ucs2-70"),
        pytest.param({lang: _fit(text, 160) for lang, text in TEXTS.items()}, "gsm7", 1, id="gsm-160"),
        pytest.param({lang: _fit(text, 140) for lang, text in TEXTS.items()}, "gsm7", 1, id="gsm-140"),
        pytest.param(
            {lang: _fit(text, 152) + "€" + _fit(text, 152) for lang, text in TEXTS.items()},
            "gsm7",
            3,
            id="gsm-euro-sign-on-a-segment-border",
        ),
    ],
)
async def test_the_sms_hint_adds_no_segment_in_the_preview_nor_on_the_wire(
    world: World, texts: dict[str, str], encoding: str, segments: int
) -> None:
    """In all four languages, the preview's SMS is what Twilio receives, and it costs the segments of the text alone."""
    await world.enroll("greta", {"name": "Greta Braun", "phone": "0470 55 55 55", "language": "de"})
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp], "texts": texts, "answers": []}
    preview = await post_json(world.client, "/v1/alerts/preview", body, headers=world.auth("police"), expect=200)
    sms = {s["language"]: s for s in preview["sms"]}
    assert {lang: (s["encoding"], s["segments"]) for lang, s in sms.items()} == dict.fromkeys(
        TEXTS, (encoding, segments)
    )
    alert = await world.alert(body)
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    received = {m.to: m.body for m in world.twilio.messages}
    phones = {"fr": "+32470111111", "nl": "+32470222222", "de": "+32470555555", "en": "+32470444444"}
    for lang, phone in phones.items():
        wire = received[phone] or ""
        assert wire == sms[lang]["text"] and wire.startswith(texts[lang])
        assert (measure(wire).encoding.value, measure(wire).segments) == (encoding, segments), lang
    seen = await get_json(world.client, f"/v1/alerts/{alert['id']}", headers=world.auth("police"))
    assert seen["cost"]["sms_segments"] == 4 * segments


def _callback_data(markup: Any) -> str:
    return callback_data(markup)


def _receipt_link(mail: Any) -> str:
    return link_in(mail, "/v1/r/")


async def test_a_replayed_webhook_is_recorded_once(world: World) -> None:
    """The same inbound SMS or Telegram update posted twice (a provider retrying, or an attacker replaying a
    signed request) stores one feedback and answers once."""
    alert = await _sent_alert(world)
    sms = {"MessageSid": "SM" + "ab" * 16, "AccountSid": ACCOUNT, "From": "+32470111111", "To": SMS_FROM}
    sms["Body"] = "Voiture grise garée devant le 12"
    first = await world.twilio.post_signed(world.sms_webhook, sms)
    replay = await world.twilio.post_signed(world.sms_webhook, sms)
    assert first[0] == replay[0] == 200
    assert "<Message>" in first[1] and "<Message>" not in replay[1]

    update = {
        "update_id": 777,
        "message": {
            "message_id": 9,
            "date": 0,
            "from": {"id": 1001, "is_bot": False, "first_name": "Piet"},
            "chat": {"id": 1001, "type": "private"},
            "text": "Twee mannen",
        },
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    for _ in range(2):
        response = await world.client.post("/v1/webhooks/telegram", json=update, headers=headers)
        assert response.status == 200
    listed = await get_json(world.client, f"/v1/alerts/{alert['id']}/feedback", headers=world.auth("coordinator"))
    assert sorted(f["channel"] for f in listed["items"]) == ["sms", "telegram"]
