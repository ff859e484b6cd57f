"""Drills: an alert sent as an exercise is marked as such on every channel in each member's language (an SMS
staying in GSM 03.38), is read and written as a CAP ``Exercise``, and is counted apart in the annual
evaluation and in the metrics.

The end-to-end tests run the neighbourhood of ``tests.world`` (simulators of Twilio, an SMTP server and the
Telegram Bot API on loopback); the others the two-zone cast of ``tests.conftest``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from dispatcher.core.segments import Encoding, encoding_of
from dispatcher.reports.reach import timing
from tests.api.test_cap import document, head, post_cap, read_cap, valid
from tests.api.test_metrics import samples
from tests.api.test_reports import this_year
from tests.conftest import Cast
from tests.simulators.twilio import Failure
from tests.support import get_json, post_json, run_queued
from tests.world import SMS_FROM, TEXTS, World, open_world

MARKS = {
    "fr": "EXERCICE — aucune action requise",
    "nl": "OEFENING — geen actie nodig",
    "de": "ÜBUNG — keine Maßnahme nötig",
    "en": "EXERCISE — no action needed",
}
SMS_MARKS = {language: mark.replace("—", "-") for language, mark in MARKS.items()}
PHONES = {"anne": "+32470111111", "piet": "+32470222222", "karl": "+32470666666", "john": "+32470444444"}
LANGUAGES = {"anne": "fr", "piet": "nl", "karl": "de", "john": "en", "lea": "de"}


@pytest.fixture
async def world(redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(redis_url, tmp_path) as opened:
        await opened.enroll("karl", {"name": "Karl Weber", "phone": "0470 66 66 66", "language": "de"})
        yield opened


async def _drill(world: World) -> dict[str, Any]:
    """An urgent exercise to the neighbourhood, with every send made and every provider report in."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp], "texts": TEXTS, "exercise": True}
    alert = await world.alert(body)
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    return alert


async def test_every_channel_marks_an_exercise_in_the_members_language(world: World) -> None:
    """The raw SMS, call, e-mail and Telegram message each begin with the exercise mark in the member's language,
    then the alert's text; the SMS in GSM 03.38 (a hyphen for the dash; Ü and ß are in the alphabet)."""
    alert = await _drill(world)
    assert alert["exercise"] is True
    sms = {m.to: m.body or "" for m in world.twilio.messages}
    calls = {c.to: c.twiml or "" for c in world.twilio.calls}
    for name, phone in PHONES.items():
        language = LANGUAGES[name]
        assert sms[phone].startswith(f"{SMS_MARKS[language]}\n{TEXTS[language]}"), sms[phone]
        assert encoding_of(sms[phone]) is Encoding.GSM7
        assert MARKS[language] in calls[phone] and TEXTS[language] in calls[phone]
    mails = {m.message["To"]: m.message for m in await world.smtp.wait_for(3)}
    for name in ("anne", "lea", "john"):
        plain = mails[f"{name}@example.org"].get_body(("plain",)).get_content()
        language = LANGUAGES[name]
        assert plain.startswith(f"{MARKS[language]}\n{TEXTS[language]}"), plain
    chats = {int(c.params["chat_id"]): str(c.params["text"]) for c in world.telegram.calls("sendMessage")}
    assert f"{MARKS['nl']}\n{TEXTS['nl']}" in chats[1001] and f"{MARKS['en']}\n{TEXTS['en']}" in chats[1002]


async def test_an_alert_that_is_no_exercise_carries_no_mark(world: World) -> None:
    """Without ``exercise`` an alert is a real one: no text sent carries the mark."""
    alert = await world.alert()
    await run_queued(world.runtime)
    assert alert["exercise"] is False
    assert not any("EXERCI" in (m.body or "") or "ÜBUNG" in (m.body or "") for m in world.twilio.messages)


async def test_an_exercise_is_counted_apart_in_the_evaluation(world: World) -> None:
    """The evaluation counts a drill among the exercises, of the year and of its month, and its reach apart:
    not as an alert, not in the urgent reach."""
    path = f"/v1/plps/{world.plp}/evaluation?year={this_year()}"
    before = await get_json(world.client, path, headers=world.auth("coordinator"))
    await _drill(world)
    after = await get_json(world.client, path, headers=world.auth("coordinator"))
    assert after["alerts"] == {**before["alerts"], "exercises": before["alerts"]["exercises"] + 1}
    assert after["reach"]["urgent"] == before["reach"]["urgent"]
    assert after["reach"]["exercises"]["members_targeted"] == 5
    assert after["reach"]["exercises"]["members_reached"] == 5
    assert sum(m["exercises"] for m in after["months"]) == 1
    assert sum(m["alerts"] for m in after["months"]) == sum(m["alerts"] for m in before["months"])


async def test_an_exercise_is_counted_apart_in_the_metrics(world: World) -> None:
    """Its hand-overs and its end go to the exercise counters; the alert counters and histograms do not move."""
    before = samples(await (await world.client.get("/metrics")).text())
    await _drill(world)
    after = samples(await (await world.client.get("/metrics")).text())
    sms = 'channel="sms",urgency="urgent"'
    handed = "plp_exercise_deliveries_handed_over_total"
    assert after[f"{handed}{{{sms}}}"] - before.get(f"{handed}{{{sms}}}", 0) == 4
    assert after.get(f"plp_deliveries_handed_over_total{{{sms}}}", 0) == before.get(
        f"plp_deliveries_handed_over_total{{{sms}}}", 0
    )
    assert after.get('plp_alert_first_send_seconds_count{urgency="urgent"}', 0) == before.get(
        'plp_alert_first_send_seconds_count{urgency="urgent"}', 0
    )


async def test_an_exercise_is_a_cap_exercise_and_back(client: TestClient, cast: Cast) -> None:
    """Its CAP document has status Exercise and validates; a police document with status Exercise creates an
    exercise, which reads back as Exercise."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": "Exercice"}}
    sent = await post_json(client, "/v1/alerts", {**body, "exercise": True}, headers=cast.auth("police_a"), expect=202)
    assert head(valid(await read_cap(client, sent["id"], cast.auth("police_a"))), "status") == "Exercise"
    posted = await post_cap(client, document(cast.plp_a, status="Exercise"), cast.auth("police_a"), expect=202)
    assert posted["exercise"] is True
    assert head(valid(await read_cap(client, posted["id"], cast.auth("police_a"))), "status") == "Exercise"
    actual = await post_cap(
        client, document(cast.plp_a, identifier="ZP5340-2026-000124"), cast.auth("police_a"), expect=202
    )
    assert actual["exercise"] is False


@pytest.mark.parametrize("value", ["yes", 1, None, []])
async def test_exercise_other_than_a_boolean_is_a_422_naming_the_field(
    client: TestClient, cast: Cast, value: Any
) -> None:
    """``exercise`` is true or false, nothing else."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": "x"}}
    problem = await post_json(
        client, "/v1/alerts", {**body, "exercise": value}, headers=cast.auth("police_a"), expect=422
    )
    assert [e["field"] for e in problem["errors"]] == ["body.exercise"]


# -- the reach report -----------------------------------------------------------------------------


def _seconds(at: str, since: str) -> float:
    return (datetime.fromisoformat(at) - datetime.fromisoformat(since)).total_seconds()


def _nearest_rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


async def test_the_reach_report_matches_the_deliveries_own_times(world: World) -> None:
    """Per channel, p50/p90/max from the POST to hand-off and to delivery are those of the deliveries' own
    status times; the acknowledgement curve counts the member who acknowledged; the coordinator sees who was
    not reached and why, the police the same counts and no list."""
    await world.enroll("marc", {"name": "Marc Peeters", "phone": "0470 55 55 55", "language": "fr"})
    world.twilio.failures["+32470555555"] = Failure(400, 21211, "The 'To' number is not a valid phone number.")
    alert = await _drill(world)
    status, _ = await world.twilio.incoming_sms(world.sms_webhook, "+32470111111", SMS_FROM, "OK")
    assert status == 200  # Anne acknowledges
    await run_queued(world.runtime)
    report = await get_json(world.client, f"/v1/alerts/{alert['id']}/reach", headers=world.auth("coordinator"))
    page = await get_json(world.client, f"/v1/alerts/{alert['id']}/deliveries?limit=100", headers=world.auth("admin"))
    assert report["exercise"] is True and report["members"] == 6 and report["reached"] == 5
    channels = {c["channel"]: c for c in report["channels"]}
    assert set(channels) == {"sms", "email", "telegram", "voice"}
    for channel, figures in channels.items():
        own = [d for d in page["items"] if d["channel"] == channel]
        assert figures["deliveries"] == len(own)
        handed = [
            min(
                _seconds(d["status_times"][s], alert["created_at"])
                for s in ("sent", "delivered")
                if s in d["status_times"]
            )
            for d in own
            if {"sent", "delivered"} & set(d["status_times"])
        ]
        delivered = [
            _seconds(d["status_times"]["delivered"], alert["created_at"])
            for d in own
            if "delivered" in d["status_times"]
        ]
        for key, values in (("to_hand_over", handed), ("to_delivery", delivered)):
            timing = figures[key]
            assert timing["count"] == len(values)
            if values:
                assert timing["p50"] == pytest.approx(_nearest_rank(values, 0.5), abs=0.001)
                assert timing["p90"] == pytest.approx(_nearest_rank(values, 0.9), abs=0.001)
                assert timing["max"] == pytest.approx(max(values), abs=0.001)
    assert channels["sms"]["by_status"]["failed"] == 1
    assert report["acknowledged"] == 1
    curve = report["acknowledged_over_time"]
    assert curve[-1] == {"after_seconds": 86400, "acknowledged": 1, "share": round(1 / 6, 4)}
    assert [c["acknowledged"] for c in curve] == sorted(c["acknowledged"] for c in curve)
    marc = world.members["marc"]["id"]
    assert report["members_not_reached"] == 1
    [missing] = report["not_reached"]
    assert (missing["member_id"], missing["name"], missing["plp_id"]) == (marc, "Marc Peeters", world.plp)
    assert missing["reason"].startswith("sms: failed (") and "voice: failed" in missing["reason"]

    police = await get_json(world.client, f"/v1/alerts/{alert['id']}/reach", headers=world.auth("police"))
    assert police["not_reached"] is None
    assert {k: v for k, v in police.items() if k != "not_reached"} == {
        k: v for k, v in report.items() if k != "not_reached"
    }


def test_nearest_rank_percentiles_of_a_few_times() -> None:
    """p50 and p90 are observed values (nearest rank), max the largest; none without any."""
    assert timing([3.0, 1.0, 2.0, 10.0]).model_dump() == {"count": 4, "p50": 2.0, "p90": 10.0, "max": 10.0}
    assert timing([]).model_dump() == {"count": 0, "p50": None, "p90": None, "max": None}


async def test_the_preview_of_an_exercise_counts_its_marked_sms(client: TestClient, cast: Cast) -> None:
    """The preview shows each language's SMS as a drill sends it, mark included, still GSM-7."""
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": "Exercice"}}
    preview = await post_json(
        client, "/v1/alerts/preview", {**body, "exercise": True}, headers=cast.auth("police_a"), expect=200
    )
    sms = {t["language"]: t for t in preview["sms"]}
    assert sms["de"]["text"].startswith(f"{SMS_MARKS['de']}\nExercice") and sms["de"]["encoding"] == "gsm7"
