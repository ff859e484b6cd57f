"""Structured answers end to end: an alert offers answer options, members answer them by SMS (a digit or the
option's words) and by Telegram buttons, through the vendor simulators; the police and coordinators read a
live tally, and the police see a member's name and phone only when their answer consents to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dispatcher.api.services import SERVICES
from dispatcher.core.models import ActorIn, Category, ChannelName, Role
from dispatcher.core.segments import Encoding, measure
from dispatcher.core.wording import default_answers
from dispatcher.people.accounts import create_actor
from dispatcher.pipeline.receipts import AnswerResult, Receipts
from dispatcher.storage.store import Store
from tests.support import get_json, post_json, run_queued
from tests.world import SMS_FROM, TEXTS, VOICE_FROM, WEBHOOK_SECRET, World, open_world

ANNE, PIET, JOHN = "+32470111111", "+32470222222", "+32470444444"


@pytest.fixture
async def world(redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(redis_url, tmp_path) as opened:
        yield opened


async def _sent_alert(world: World, **extra: Any) -> dict[str, Any]:
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp], "texts": TEXTS, **extra}
    alert = await world.alert(body)
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    return alert


async def _seen(world: World, alert_id: str, who: str) -> dict[str, Any]:
    return dict(await get_json(world.client, f"/v1/alerts/{alert_id}", headers=world.auth(who)))


async def _answer_log(world: World, alert_id: str) -> list[tuple[str, str, float, str]]:
    async with world.runtime.async_redis() as redis:
        return await Store(redis, world.runtime.keys).answer_log(alert_id)


def _tally(seen: dict[str, Any]) -> dict[str, int]:
    return {row["id"]: row["members"] for row in seen["answer_tally"]}


def _answer_buttons(world: World, chat_id: int) -> list[dict[str, str]]:
    sent = [c for c in world.telegram.calls("sendMessage") if int(c.params["chat_id"]) == chat_id]
    markup = next(c for c in reversed(sent) if "reply_markup" in c.params).params["reply_markup"]
    rows = (json.loads(markup) if isinstance(markup, str) else markup)["inline_keyboard"]
    return [row[0] for row in rows[1:]]  # the first row is the "received" button


async def test_a_burglary_alert_offers_the_category_answers_in_every_language(world: World) -> None:
    """Without answers in the request, a burglary alert offers "saw", "nothing" and "camera" (which asks
    consent); the SMS lists them numbered in the member's language, in GSM 03.38."""
    alert = await _sent_alert(world)
    assert [(a["id"], a["consent"]) for a in alert["answers"]] == [("saw", False), ("nothing", False), ("camera", True)]
    assert set(alert["answers"][0]["texts"]) == {"fr", "nl", "de", "en"}
    sms = {m.to: m.body or "" for m in world.twilio.messages}
    assert "Répondez 1=J'ai vu quelque chose, 2=Rien vu, 3=J'ai des images caméra" in sms[ANNE]
    assert "Antwoord 1=Ik heb iets gezien, 2=Niets gezien, 3=Ik heb camerabeelden" in sms[PIET]
    assert all(measure(body).encoding is Encoding.GSM7 for body in sms.values())
    seen = await _seen(world, alert["id"], "police")
    assert _tally(seen) == {"saw": 0, "nothing": 0, "camera": 0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"answers": [{"id": f"a{n}", "texts": {"fr": "x"}} for n in range(5)]}, "body.answers", id="five"),
        pytest.param(
            {"answers": [{"id": "a", "texts": {"fr": "x"}}, {"id": "a", "texts": {"fr": "y"}}]},
            "body.answers",
            id="twice",
        ),
        pytest.param({"answers": [{"id": "A b", "texts": {"fr": "x"}}]}, "body.answers[0].id", id="bad-id"),
        pytest.param({"answers": [{"id": "a", "texts": {}}]}, "body.answers[0].texts", id="no-text"),
        pytest.param({"answers": [{"id": "a", "texts": {"fr": "x" * 41}}]}, "body.answers[0].texts.fr", id="long"),
        pytest.param({"answers": [{"id": "a", "texts": {"xx": "x"}}]}, "body.answers[0].texts.xx", id="language"),
    ],
)
async def test_bad_answer_options_get_a_422_naming_the_field(world: World, body: dict[str, Any], field: str) -> None:
    """More than four options, an id twice, a malformed id, no text, a long text or an unknown language: a 422."""
    payload = {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp], "texts": TEXTS, **body}
    problem = await post_json(world.client, "/v1/alerts", payload, headers=world.auth("police"), expect=422)
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem


async def test_custom_answers_and_none_at_all(world: World) -> None:
    """An alert names its own options, or none (``[]``): then the SMS lists nothing and "1" acknowledges."""
    own = [{"id": "heard", "texts": {"fr": "Entendu", "en": "Heard it"}}]
    alert = await _sent_alert(world, answers=own)
    assert [a["id"] for a in alert["answers"]] == ["heard"]
    assert "Répondez 1=Entendu" in {m.to: m.body or "" for m in world.twilio.messages}[ANNE]
    bare = await world.alert(
        {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp], "texts": TEXTS, "answers": []}
    )
    assert bare["answers"] == [] and bare["answer_tally"] == []


@pytest.mark.parametrize(
    ("phone", "reply", "answer", "thanks"),
    [
        pytest.param(ANNE, "2", "nothing", "Merci, votre réponse « Rien vu » est enregistrée.", id="digit-fr"),
        pytest.param(ANNE, "rien vu", "nothing", "Merci, votre réponse « Rien vu » est enregistrée.", id="words-fr"),
        pytest.param(PIET, "Ik heb iets gezien!", "saw", "Bedankt, uw antwoord", id="words-nl"),
        pytest.param(JOHN, " 3 ", "camera", 'Thank you, your answer "I have camera images"', id="digit-en"),
    ],
)
async def test_an_sms_digit_or_words_answer_and_acknowledge(
    world: World, phone: str, reply: str, answer: str, thanks: str
) -> None:
    """A reply "1"-"3" or the option's words (any case, final punctuation aside) answers the alert, acknowledges
    the SMS, and is answered with thanks and the 101/112 reminder in the member's language."""
    alert = await _sent_alert(world)
    status, twiml = await world.twilio.incoming_sms(world.sms_webhook, phone, SMS_FROM, reply)
    assert status == 200 and thanks in twiml and "112" in twiml
    seen = await _seen(world, alert["id"], "coordinator")
    assert _tally(seen)[answer] == 1 and sum(_tally(seen).values()) == 1
    assert seen["counts"]["acknowledged"] == 1
    deliveries = await world.deliveries(alert["id"])
    assert sum(1 for d in deliveries.values() if d["acknowledged_via"] == "sms") == 1


async def test_words_that_name_no_answer_stay_feedback(world: World) -> None:
    """A reply that names no option ("5", a description) is feedback, not an answer."""
    alert = await _sent_alert(world)
    for text in ("5", "Une voiture grise rue du Parc"):
        status, twiml = await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, text)
        assert status == 200 and "coordinateur" in twiml and "112" in twiml
    seen = await _seen(world, alert["id"], "coordinator")
    assert sum(_tally(seen).values()) == 0 and seen["counts"]["acknowledged"] == 0


async def test_a_telegram_answer_button_answers(world: World) -> None:
    """Each option is a button under the Telegram message; pressing one answers, in the member's language."""
    alert = await _sent_alert(world)
    buttons = _answer_buttons(world, 1002)
    assert [b["text"] for b in buttons] == ["I saw something", "Nothing seen", "I have camera images"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)  # the Bot API's limit
    status, answer = await world.telegram.member_presses(
        world.telegram_webhook, 1002, buttons[0]["callback_data"], 1, secret=WEBHOOK_SECRET
    )
    assert status == 200 and answer["method"] == "answerCallbackQuery"
    assert answer["text"].startswith('Thank you, your answer "I saw something"') and "112" in answer["text"]
    seen = await _seen(world, alert["id"], "police")
    assert _tally(seen) == {"saw": 1, "nothing": 0, "camera": 0}
    assert (await world.deliveries(alert["id"]))["telegram", "john"]["acknowledged_via"] == "telegram"


async def test_someone_else_pressing_an_answer_button_changes_nothing(world: World) -> None:
    """A button pressed by another user (in a group) or under another member's message answers nothing."""
    alert = await _sent_alert(world)
    data = _answer_buttons(world, 1002)[0]["callback_data"]
    await world.telegram.member_presses(world.telegram_webhook, 1002, data, 1, secret=WEBHOOK_SECRET, by=1001)
    await world.telegram.member_presses(world.telegram_webhook, 1001, data, 1, secret=WEBHOOK_SECRET)
    assert sum(_tally(await _seen(world, alert["id"], "police")).values()) == 0


async def test_a_member_changes_their_answer_the_last_counts_and_each_is_kept(world: World) -> None:
    """Answering again moves the member's count to the new option; the log keeps every answer with its time."""
    alert = await _sent_alert(world)
    for reply in ("1", "2", "Ik heb camerabeelden"):
        await world.twilio.incoming_sms(world.sms_webhook, PIET, SMS_FROM, reply)
    await world.telegram.member_presses(
        world.telegram_webhook, 1002, _answer_buttons(world, 1002)[1]["callback_data"], 1, secret=WEBHOOK_SECRET
    )
    seen = await _seen(world, alert["id"], "police")
    assert _tally(seen) == {"saw": 0, "nothing": 1, "camera": 1}
    assert seen["counts"]["acknowledged"] == 2
    log = await _answer_log(world, alert["id"])
    piet = world.members["piet"]["id"]
    assert [(a, c) for m, a, _, c in log if m == piet] == [("saw", "sms"), ("nothing", "sms"), ("camera", "sms")]
    times = [t for m, _, t, _ in log if m == piet]
    assert times == sorted(times)


async def test_tallies_stay_exact_under_duplicated_and_late_webhooks(world: World) -> None:
    """A provider's retry of an answer counts once; a late report of an earlier answer is kept but does not count."""
    alert = await _sent_alert(world)
    params = {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": world.twilio.account_sid,
        "From": ANNE,
        "To": SMS_FROM,
        "Body": "3",
        "NumMedia": "0",
    }
    for _ in range(3):
        status, _ = await world.twilio.post_signed(world.sms_webhook, params)
        assert status == 200
    assert _tally(await _seen(world, alert["id"], "police")) == {"saw": 0, "nothing": 0, "camera": 1}

    delivery = f"{alert['id']}:sms:{world.members['anne']['id']}"
    saw, nothing, _ = default_answers(Category.BURGLARY)
    now = datetime.now(UTC)
    async with world.runtime.async_redis() as redis:
        receipts = Receipts(Store(redis, world.runtime.keys))
        later, earlier = now + timedelta(seconds=5), now  # the earlier one arriving later
        assert await receipts.answer(delivery, nothing, via=ChannelName.SMS, at=later) is AnswerResult.COUNTS
        assert await receipts.answer(delivery, saw, via=ChannelName.SMS, at=earlier) is AnswerResult.KEPT
        again = now + timedelta(seconds=6)
        assert await receipts.answer(delivery, nothing, via=ChannelName.SMS, at=again) is AnswerResult.KEPT
    assert _tally(await _seen(world, alert["id"], "police")) == {"saw": 0, "nothing": 1, "camera": 0}
    assert [a for _, a, _, _ in await _answer_log(world, alert["id"])] == ["camera", "nothing", "saw", "nothing"]


async def test_the_police_see_a_member_only_with_their_consent(world: World) -> None:
    """Police see counts; a member whose answer asks consent ("camera") appears with name and phone, and no more
    once they change to an answer without consent; coordinators see the same list."""
    alert = await _sent_alert(world)
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "1")
    police = await _seen(world, alert["id"], "police")
    assert police["consenting"] == []
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "3")
    await world.twilio.incoming_sms(world.sms_webhook, PIET, SMS_FROM, "2")
    police = await _seen(world, alert["id"], "police")
    assert [(c["name"], c["phone"], c["answer"]) for c in police["consenting"]] == [("Anne Dubois", ANNE, "camera")]
    assert "Piet" not in json.dumps(police)
    coordinator = await _seen(world, alert["id"], "coordinator")
    assert [c["member_id"] for c in coordinator["consenting"]] == [world.members["anne"]["id"]]
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "2")
    assert (await _seen(world, alert["id"], "police"))["consenting"] == []


async def test_a_coordinator_sees_only_the_consenting_members_of_their_own_plps(world: World) -> None:
    """An alert to two PLPs: the other PLP's coordinator sees the tally, never a member of this one who consented
    (their name and phone are for the police and this PLP's coordinators)."""
    store = world.client.server.app[SERVICES].store
    other = {"name": "PLP Gare", "commune": "Uccle", "police_zone": "5340"}
    other_id = (await post_json(world.client, "/v1/plps", other, headers=world.auth("admin"), expect=201))["id"]
    _, token = await create_actor(store, ActorIn(name="Coordinateur Gare", role=Role.COORDINATOR, plp_ids=[other_id]))
    world.tokens["coordinator_gare"] = token
    alert = await _sent_alert(world, plp_ids=[world.plp, other_id])
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "3")
    assert [c["name"] for c in (await _seen(world, alert["id"], "police"))["consenting"]] == ["Anne Dubois"]
    assert [c["name"] for c in (await _seen(world, alert["id"], "coordinator"))["consenting"]] == ["Anne Dubois"]
    theirs = await _seen(world, alert["id"], "coordinator_gare")
    assert theirs["consenting"] == [] and _tally(theirs)["camera"] == 1
    assert ANNE not in json.dumps(theirs) and "Anne" not in json.dumps(theirs)


async def test_consent_shows_on_that_alert_only(world: World) -> None:
    """A member who consented on one alert is not shown on the next one."""
    first = await _sent_alert(world)
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "3")
    second = await _sent_alert(world)
    assert len((await _seen(world, first["id"], "police"))["consenting"]) == 1
    assert (await _seen(world, second["id"], "police"))["consenting"] == []


async def test_the_preview_and_the_cost_count_the_listed_answers(world: World) -> None:
    """The options listed in the SMS are part of its segments: the preview shows the SMS as sent, and the
    alert's cost counts what went out."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp], "texts": TEXTS}
    preview = await post_json(world.client, "/v1/alerts/preview", body, headers=world.auth("police"), expect=200)
    texts = {s["language"]: s["text"] for s in preview["sms"]}
    alert = await _sent_alert(world)
    sent = {m.to: m.body or "" for m in world.twilio.messages}
    assert sent[ANNE] == texts["fr"] and "2=Rien vu" in texts["fr"]
    seen = await _seen(world, alert["id"], "police")
    assert seen["cost"]["sms_segments"] == sum(measure(body).segments for body in sent.values())


async def _press(world: World, phone: str, digits: str, *, answered_by: str | None = None) -> tuple[int, str]:
    call = next(c for c in world.twilio.calls if c.to == phone)
    gather = re.search(r'action="([^"]+)"', call.twiml or "")
    assert gather is not None
    url = gather.group(1).replace("&amp;", "&")
    return await world.twilio.press_digits(url, call.sid, digits, VOICE_FROM, phone, answered_by=answered_by)


async def test_a_call_says_the_answer_keys_after_the_acknowledgement_key_and_a_key_answers(world: World) -> None:
    """The call asks for 1 to confirm, then 2, 3, 4 for the answers; pressing 3 answers "nothing" and acknowledges,
    pressing 1 afterwards only acknowledges (the answer stays), a key beyond the options says goodbye."""
    alert = await _sent_alert(world)
    call = next(c for c in world.twilio.calls if c.to == PIET)
    assert "Om te antwoorden, druk op 2: Ik heb iets gezien; 3: Niets gezien; 4: Ik heb camerabeelden." in (
        call.twiml or ""
    )
    status, twiml = await _press(world, PIET, "3")
    assert status == 200 and "Bedankt" in twiml
    status, twiml = await _press(world, PIET, "1")
    assert status == 200 and "Bedankt" in twiml
    status, twiml = await _press(world, ANNE, "7")
    assert status == 200 and "Bedankt" not in twiml
    seen = await _seen(world, alert["id"], "police")
    assert _tally(seen) == {"saw": 0, "nothing": 1, "camera": 0}
    assert (await world.deliveries(alert["id"]))["voice", "piet"]["acknowledged_via"] == "voice"


async def test_an_answer_key_pressed_on_a_voicemail_does_not_count(world: World) -> None:
    """A machine's tones are no answer: a key in a call answered by voicemail changes nothing."""
    alert = await _sent_alert(world)
    await _press(world, PIET, "4", answered_by="machine_end_beep")
    assert sum(_tally(await _seen(world, alert["id"], "police")).values()) == 0


async def test_an_email_answer_link_records_only_on_the_pages_post(world: World) -> None:
    """Each answer is a signed link in the e-mail; opening it (a mail scanner) shows the page with it chosen and
    records nothing; the page's button records it, with thanks and the 101/112 reminder; an answer the alert does
    not offer gets the page back with a 400."""
    alert = await _sent_alert(world)
    mail = next(m.message for m in await world.smtp.wait_for(3) if m.message["To"] == "lea@example.org")
    plain = mail.get_body(("plain",)).get_content()
    found = re.search(r"Ich habe Kamerabilder: (\S+)", plain)
    assert found is not None and "?answer=camera" in found.group(1)
    assert "?answer=camera" in mail.get_body(("html",)).get_content()
    path = found.group(1).removeprefix(world.base)
    page = await world.client.get(path)
    assert page.status == 200 and "✔ Ich habe Kamerabilder" in await page.text()
    assert sum(_tally(await _seen(world, alert["id"], "police")).values()) == 0
    assert (await world.deliveries(alert["id"]))["email", "lea"]["acknowledged_at"] is None

    refused = await world.client.post(path, data={"action": "answer", "answer": "elsewhere"})
    assert refused.status == 400
    done = await world.client.post(path, data={"action": "answer", "answer": "camera"})
    text = await done.text()
    assert done.status == 200 and "Ich habe Kamerabilder" in text and "112" in text
    seen = await _seen(world, alert["id"], "police")
    assert _tally(seen) == {"saw": 0, "nothing": 0, "camera": 1}
    assert [c["name"] for c in seen["consenting"]] == ["Lea Schmitz"]
    assert (await world.deliveries(alert["id"]))["email", "lea"]["acknowledged_via"] == "email"


async def test_no_answer_counts_once_the_alert_has_ended(world: World) -> None:
    """After an all-clear (or a cancellation, or its time-to-live), an answer is no longer recorded: an SMS "2"
    is then a reply like any other (feedback), and the e-mail page says the link has expired."""
    alert = await _sent_alert(world)
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "1")
    all_clear = {"kind": "all_clear", "texts": {"fr": "Le suspect a été arrêté, merci."}}
    path = f"/v1/alerts/{alert['id']}/follow-ups"
    await post_json(world.client, path, all_clear, headers=world.auth("police"), expect=202)
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "2")
    mail = next(m.message for m in await world.smtp.wait_for(3) if m.message["To"] == "lea@example.org")
    link = re.search(r"Ich habe Kamerabilder: (\S+)", mail.get_body(("plain",)).get_content())
    assert link is not None
    ended = await world.client.post(link.group(1).removeprefix(world.base), data={"action": "answer", "answer": "saw"})
    assert ended.status == 410
    assert _tally(await _seen(world, alert["id"], "police")) == {"saw": 1, "nothing": 0, "camera": 0}
    assert [a for _, a, _, _ in await _answer_log(world, alert["id"])] == ["saw"]


async def test_an_answer_given_after_the_time_to_live_is_not_recorded(world: World) -> None:
    """An answer given once the alert's time-to-live has passed (an hour here) is refused as ended."""
    alert = await _sent_alert(world)
    delivery = f"{alert['id']}:sms:{world.members['anne']['id']}"
    saw = default_answers(Category.BURGLARY)[0]
    async with world.runtime.async_redis() as redis:
        receipts = Receipts(Store(redis, world.runtime.keys))
        late = datetime.now(UTC) + timedelta(hours=2)
        assert await receipts.answer(delivery, saw, via=ChannelName.SMS, at=late) is AnswerResult.ENDED
    assert sum(_tally(await _seen(world, alert["id"], "police")).values()) == 0


async def _replies(world: World, alert_id: str, who: str) -> list[dict[str, Any]]:
    found = await get_json(world.client, f"/v1/alerts/{alert_id}/feedback", headers=world.auth(who))
    return list(found["items"])


async def test_the_police_read_the_replies_without_names_unless_the_member_consented_on_that_alert(
    world: World,
) -> None:
    """Beside the tally, the police read the members' free-text replies with no name (their numbers masked); a
    member whose answer to the alert consents to be contacted shows by name on that alert's replies only;
    the PLP's coordinator sees every name."""
    alert = await _sent_alert(world)
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "Grey car at the corner, call me 0470 99 99 99")
    await world.twilio.incoming_sms(world.sms_webhook, PIET, SMS_FROM, "Two men ran towards the park")
    police = await _replies(world, alert["id"], "police")
    masked = "Grey car at the corner, call me 04******99"
    assert sorted(r["text"] for r in police) == [masked, "Two men ran towards the park"]
    assert [(r["member_name"], r["consented_name"]) for r in police] == [(None, None), (None, None)]
    assert "Anne" not in json.dumps(police) and "Piet" not in json.dumps(police)

    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "3")  # I have camera images: consents
    police = await _replies(world, alert["id"], "police")
    assert {r["text"][:9]: r["consented_name"] for r in police} == {"Grey car ": "Anne Dubois", "Two men r": None}
    assert all(r["member_name"] is None for r in police)
    coordinator = await _replies(world, alert["id"], "coordinator")
    assert sorted(r["member_name"] for r in coordinator) == ["Anne Dubois", "Piet Janssens"]

    other = await _sent_alert(world)  # consent is for that alert only
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "Still there")
    assert [r["consented_name"] for r in await _replies(world, other["id"], "police")] == [None]


async def test_a_members_export_holds_each_answer_with_its_history_and_erasure_takes_them_away(
    world: World,
) -> None:
    """The member's data export lists their answer to each alert (its option, words in their language, time)
    with every change in the order received; when the member is erased their answers go with them, and the
    alert's tally stays."""
    alert = await _sent_alert(world)
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "1")
    await world.twilio.incoming_sms(world.sms_webhook, ANNE, SMS_FROM, "3")
    await world.twilio.incoming_sms(world.sms_webhook, PIET, SMS_FROM, "2")
    anne = world.members["anne"]["id"]
    path = f"/v1/plps/{world.plp}/members/{anne}"
    export = await get_json(world.client, f"{path}/export", headers=world.auth("coordinator"))
    [answer] = export["answers"]
    assert (answer["alert_id"], answer["answer"], answer["answer_text"]) == (
        alert["id"],
        "camera",
        "J'ai des images caméra",
    )
    assert [(c["answer"], c["via"]) for c in answer["history"]] == [("saw", "sms"), ("camera", "sms")]
    last = datetime.fromisoformat(answer["history"][-1]["answered_at"])
    assert abs(datetime.fromisoformat(answer["answered_at"]) - last) < timedelta(milliseconds=1)  # the latest
    assert answer["history"][0]["answered_at"] <= answer["history"][1]["answered_at"]

    response = await world.client.delete(path, headers=world.auth("coordinator"))
    assert response.status == 204, await response.text()
    log = await _answer_log(world, alert["id"])
    assert [(a, c) for _, a, _, c in log] == [("nothing", "sms")]  # Piet's alone
    async with world.runtime.async_redis() as redis:
        assert anne not in await Store(redis, world.runtime.keys).answers(alert["id"])
    assert _tally(await _seen(world, alert["id"], "police")) == {"saw": 0, "nothing": 1, "camera": 1}
