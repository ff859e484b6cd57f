"""Alerts as OASIS CAP 1.2 documents through the API: every kind of alert read as a document the OASIS
schema validates, documents posted by a police system sent as alerts (and read back the same), malformed
documents refused naming the element at fault, and who may do either.

The schema the documents are checked against here is the vendored OASIS file, loaded by the test itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree

from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import get_json, member_rows, post_json, run_queued

NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP = {"cap": NS}
XSD = Path(__file__).resolve().parents[2] / "dispatcher" / "exchange" / "schema" / "CAP-v1.2.xsd"
SCHEMA = etree.XMLSchema(etree.parse(str(XSD)))
SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
SENDER = "plp-dispatch@127.0.0.1"  # the tests' PLP_PUBLIC_BASE_URL is http://127.0.0.1:8080

URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue du Parc, voiture grise"}}
EVERY_LANGUAGE = {
    "urgency": "urgent",
    "category": "suspect_vehicle",
    "texts": {
        "fr": "Voiture grise 1-ABC-123 suspecte rue du Parc",
        "nl": "Grijze wagen 1-ABC-123 verdacht in de Parkstraat",
        "de": "Grauer Wagen 1-ABC-123 verdächtig in der Parkstraße",
        "en": "Grey car 1-ABC-123 seen acting suspiciously in rue du Parc",
    },
}
ADVICE = {
    "urgency": "non_urgent",
    "category": "prevention_advice",
    "texts": {"fr": "Fermez vos fenêtres en partant", "nl": "Sluit uw ramen als u vertrekt"},
}
INCIVILITY = {"urgency": "non_urgent", "category": "incivility", "texts": {"nl": "Sluikstort aan de kerk"}}


def document(plp: str, *, info: str | None = None, **envelope: str) -> str:
    """A CAP alert as a police system writes one, for PLP ``plp``; ``envelope`` replaces elements of the head."""
    head = {
        "identifier": "ZP5340-2026-000123",
        "sender": "dispatch@police5340.example.be",
        "sent": "2026-12-04T10:00:00+01:00",
        "status": "Actual",
        "msgType": "Alert",
        "scope": "Restricted",
    } | envelope
    elements = "".join(f"<{name}>{value}</{name}>" for name, value in head.items() if value is not None)
    return f'<?xml version="1.0" encoding="UTF-8"?><alert xmlns="{NS}">{elements}{info or police_info(plp)}</alert>'


def police_info(
    plp: str, *, language: str = "fr-BE", urgency: str = "Immediate", text: str = "Cambriolage rue du Parc"
) -> str:
    return (
        f"<info><language>{language}</language><category>Security</category><event>Cambriolage</event>"
        f"<urgency>{urgency}</urgency><severity>Moderate</severity><certainty>Observed</certainty>"
        f"<description>{text}</description>"
        f"<area><areaDesc>PLP A</areaDesc><geocode><valueName>PLP</valueName><value>{plp}</value></geocode></area>"
        "</info>"
    )


async def read_cap(client: TestClient, alert_id: str, headers: dict[str, str]) -> bytes:
    """The alert's CAP document, checked to be served as application/cap+xml."""
    response = await client.get(f"/v1/alerts/{alert_id}/cap", headers=headers)
    data = await response.read()
    assert response.status == 200, data
    assert response.content_type == "application/cap+xml"
    assert response.charset == "utf-8"
    return data


def valid(data: bytes) -> etree._Element:
    """The document's root, once the OASIS schema validated it."""
    root = etree.fromstring(data, SAFE)
    assert SCHEMA.validate(root), [e.message for e in SCHEMA.error_log]
    return root


async def post_cap(
    client: TestClient, data: bytes | str, headers: dict[str, str], *, expect: int, media: str = "application/cap+xml"
) -> Any:
    body = data.encode() if isinstance(data, str) else data
    response = await client.post("/v1/alerts/cap", data=body, headers={**headers, "Content-Type": media})
    answer = await response.json(content_type=None)
    assert response.status == expect, answer
    return answer


def texts_of(root: etree._Element) -> dict[str, str]:
    return {
        i.findtext("cap:language", namespaces=CAP): i.findtext("cap:description", namespaces=CAP) for i in infos(root)
    }


def infos(root: etree._Element) -> list[etree._Element]:
    return list(root.iterfind("cap:info", namespaces=CAP))


def head(root: etree._Element, name: str) -> str | None:
    return root.findtext(f"cap:{name}", namespaces=CAP)


# -- reading alerts as CAP ------------------------------------------------------------------------


async def test_an_urgent_alert_is_a_valid_cap_alert(client: TestClient, cast: Cast) -> None:
    """An urgent burglary alert reads as an Alert: Actual, Immediate, Moderate, Observed, Security, its text in
    fr-BE, its PLP as an area (name, commune, the PLP geocode), sent and expires as CAP writes times."""
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    root = valid(await read_cap(client, alert["id"], cast.auth("police_a")))
    assert (head(root, "identifier"), head(root, "sender")) == (alert["id"], SENDER)
    assert (head(root, "status"), head(root, "msgType"), head(root, "scope")) == ("Actual", "Alert", "Restricted")
    assert head(root, "references") is None
    created = datetime.fromisoformat(alert["created_at"]).astimezone(UTC)
    assert head(root, "sent") == created.strftime("%Y-%m-%dT%H:%M:%S-00:00")
    (info,) = infos(root)
    values = {
        name: info.findtext(f"cap:{name}", namespaces=CAP)
        for name in (
            "language",
            "category",
            "event",
            "urgency",
            "severity",
            "certainty",
            "responseType",
            "senderName",
            "expires",
        )
    }
    expires = (created + timedelta(seconds=alert["ttl_seconds"])).strftime("%Y-%m-%dT%H:%M:%S-00:00")
    assert values == {
        "language": "fr-BE",
        "category": "Security",
        "event": "Cambriolage",
        "urgency": "Immediate",
        "severity": "Moderate",
        "certainty": "Observed",
        "responseType": "Monitor",
        "senderName": "Zone de police 5340",
        "expires": expires,
    }
    assert info.findtext("cap:description", namespaces=CAP) == URGENT["texts"]["fr"]
    assert "112" in info.findtext("cap:instruction", namespaces=CAP)
    assert info.findtext("cap:eventCode[cap:valueName='PLP-category']/cap:value", namespaces=CAP) == "burglary"
    assert info.findtext("cap:area/cap:areaDesc", namespaces=CAP) == "PLP A (Ixelles)"
    assert info.findtext("cap:area/cap:geocode[cap:valueName='PLP']/cap:value", namespaces=CAP) == cast.plp_a


async def test_the_raw_bytes_are_utf8_xml_in_the_cap_namespace(client: TestClient, cast: Cast) -> None:
    """The document starts with its XML declaration (UTF-8), its root is alert in CAP 1.2's namespace, and
    accented texts are written as UTF-8."""
    body = {**EVERY_LANGUAGE, "plp_ids": [cast.plp_a]}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    data = await read_cap(client, alert["id"], cast.auth("police_a"))
    assert data.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
    )
    assert "Parkstraße".encode() in data
    assert etree.QName(valid(data)).namespace == NS


async def test_a_multi_language_alert_has_one_info_per_language(client: TestClient, cast: Cast) -> None:
    """Each text is an info in its language (fr-BE, nl-BE, de-BE, en), its event and sender named in it."""
    body = {**EVERY_LANGUAGE, "plp_ids": [cast.plp_a]}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    root = valid(await read_cap(client, alert["id"], cast.auth("police_a")))
    assert texts_of(root) == {
        "fr-BE": EVERY_LANGUAGE["texts"]["fr"],
        "nl-BE": EVERY_LANGUAGE["texts"]["nl"],
        "de-BE": EVERY_LANGUAGE["texts"]["de"],
        "en": EVERY_LANGUAGE["texts"]["en"],
    }
    events = [i.findtext("cap:event", namespaces=CAP) for i in infos(root)]
    assert events == ["Véhicule suspect", "Verdacht voertuig", "Verdächtiges Fahrzeug", "Suspect vehicle"]
    senders = [i.findtext("cap:senderName", namespaces=CAP) for i in infos(root)]
    assert senders == ["Zone de police 5340", "Politiezone 5340", "Polizeizone 5340", "Police zone 5340"]


async def test_a_non_urgent_message_is_future_minor_possible(client: TestClient, cast: Cast) -> None:
    """A coordinator's prevention advice reads as Future, Minor, Possible, Safety, Prepare; an incivility as Env."""
    body = {**ADVICE, "plp_ids": [cast.plp_a]}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("coordinator_a"), expect=202)
    root = valid(await read_cap(client, alert["id"], cast.auth("coordinator_a")))
    info = infos(root)[0]
    found = [info.findtext(f"cap:{n}", namespaces=CAP) for n in ("urgency", "severity", "certainty", "category")]
    assert found == ["Future", "Minor", "Possible", "Safety"]
    assert info.findtext("cap:responseType", namespaces=CAP) == "Prepare"
    other = await post_json(
        client, "/v1/alerts", {**INCIVILITY, "plp_ids": [cast.plp_a]}, headers=cast.auth("coordinator_a"), expect=202
    )
    root = valid(await read_cap(client, other["id"], cast.auth("coordinator_a")))
    assert [i.findtext("cap:category", namespaces=CAP) for i in infos(root)] == ["Env"]
    assert list(texts_of(root)) == ["nl-BE"]


async def test_relayed_police_advice_is_a_valid_alert(client: TestClient, cast: Cast) -> None:
    """Police advice that waits for the coordinator, then relayed with an added text, reads as the police's
    Alert (their texts), before and after the relay."""
    body = {**ADVICE, "plp_ids": [cast.plp_a]}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    assert alert["status"] == "awaiting_relay"
    before = valid(await read_cap(client, alert["id"], cast.auth("coordinator_a")))
    decision = {"texts": {"de": "Schließen Sie Ihre Fenster"}}
    await post_json(
        client,
        f"/v1/alerts/{alert['id']}/relays/{cast.plp_a}/approve",
        decision,
        headers=cast.auth("coordinator_a"),
        expect=200,
    )
    after = valid(await read_cap(client, alert["id"], cast.auth("police_a")))
    for root in (before, after):
        assert head(root, "msgType") == "Alert"
        assert texts_of(root) == {"fr-BE": ADVICE["texts"]["fr"], "nl-BE": ADVICE["texts"]["nl"]}


async def test_a_cancelled_alert_is_its_cancel_referring_to_the_original(client: TestClient, cast: Cast) -> None:
    """Once cancelled, the alert reads as a Cancel with its own identifier, sent when it was cancelled, whose
    references name the original exactly as the original document wrote itself (sender, identifier, sent)."""
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    original = valid(await read_cap(client, alert["id"], cast.auth("police_a")))
    await post_json(client, f"/v1/alerts/{alert['id']}/cancel", None, headers=cast.auth("police_a"), expect=200)
    cancel = valid(await read_cap(client, alert["id"], cast.auth("coordinator_a")))
    assert head(cancel, "msgType") == "Cancel"
    assert head(cancel, "identifier") == f"{alert['id']}-cancel"
    assert head(cancel, "references") == f"{SENDER},{alert['id']},{head(original, 'sent')}"
    state = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    cancelled_at = datetime.fromisoformat(state["status_times"]["cancelled"]).astimezone(UTC)
    assert head(cancel, "sent") == cancelled_at.strftime("%Y-%m-%dT%H:%M:%S-00:00")
    assert texts_of(cancel) == texts_of(original)


async def test_police_feedback_is_an_update_of_the_earlier_alert(client: TestClient, cast: Cast) -> None:
    """Feedback about an earlier alert reads as an Update, urgency Past, referring to the earlier alert."""
    earlier = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    body = {**ADVICE, "category": "burglary", "plp_ids": [cast.plp_a], "about_alert_id": earlier["id"]}
    feedback = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    first = valid(await read_cap(client, earlier["id"], cast.auth("police_a")))
    root = valid(await read_cap(client, feedback["id"], cast.auth("police_a")))
    assert head(root, "msgType") == "Update"
    assert head(root, "references") == f"{SENDER},{earlier['id']},{head(first, 'sent')}"
    assert {i.findtext("cap:urgency", namespaces=CAP) for i in infos(root)} == {"Past"}


@pytest.mark.parametrize(
    ("kind", "urgency", "response", "marker"),
    [
        ("all_clear", "Past", "AllClear", "Fin d'alerte (cambriolage) : "),
        ("update", "Immediate", "Monitor", "Mise à jour"),
    ],
)
async def test_a_follow_up_is_an_update_of_its_alert(
    client: TestClient, cast: Cast, kind: str, urgency: str, response: str, marker: str
) -> None:
    """An all-clear or an update reads as an Update referring to the alert it follows, its headline marked as
    such; an all-clear's response is AllClear, the event Past."""
    earlier = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    body = {"kind": kind, "texts": {"fr": "Le suspect a été arrêté, merci."}}
    follow_up = await post_json(
        client, f"/v1/alerts/{earlier['id']}/follow-ups", body, headers=cast.auth("police_a"), expect=202
    )
    first = valid(await read_cap(client, earlier["id"], cast.auth("police_a")))
    root = valid(await read_cap(client, follow_up["id"], cast.auth("coordinator_a")))
    assert (head(root, "identifier"), head(root, "msgType")) == (follow_up["id"], "Update")
    assert head(root, "references") == f"{SENDER},{earlier['id']},{head(first, 'sent')}"
    (info,) = infos(root)
    assert (info.findtext("cap:urgency", namespaces=CAP), info.findtext("cap:responseType", namespaces=CAP)) == (
        urgency,
        response,
    )
    assert (info.findtext("cap:headline", namespaces=CAP) or "").startswith(marker)
    assert info.findtext("cap:description", namespaces=CAP) == "Le suspect a été arrêté, merci."


async def test_no_member_data_is_in_a_document(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """After an alert went to members, its document holds nothing of them: no name, phone or e-mail."""
    rows = member_rows(3)
    report = await post_json(
        client, f"/v1/plps/{cast.plp_a}/members/import", {"members": rows}, headers=cast.auth("admin"), expect=200
    )
    assert len(report["imported"]) == 3
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    await run_queued(runtime)
    text = (await read_cap(client, alert["id"], cast.auth("admin"))).decode()
    needles = [str(row[key]) for row in rows for key in ("name", "phone", "email") if row.get(key)]
    digits = [re.sub(r"\D", "", row["phone"])[-8:] for row in rows if row.get("phone")]
    assert [n for n in needles + digits if n in text] == []


# -- who may read and post ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [("admin", 200), ("police_a", 200), ("coordinator_a", 200), ("police_b", 403), ("coordinator_b", 403)],
)
async def test_an_alert_is_read_as_cap_by_those_who_may_read_it(
    client: TestClient, cast: Cast, who: str, expected: int
) -> None:
    """The document is for those who may read the alert: its zone's police, its PLPs' coordinators, admins."""
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    response = await client.get(f"/v1/alerts/{alert['id']}/cap", headers=cast.auth(who))
    assert response.status == expected
    if expected == 403:
        assert response.content_type == "application/problem+json"


async def test_an_unknown_alert_or_no_token_is_refused(client: TestClient, cast: Cast) -> None:
    """No alert: 404 naming the path; no token: 401."""
    problem = await get_json(client, "/v1/alerts/0123456789abcdef/cap", headers=cast.auth("admin"), expect=404)
    assert problem["errors"][0]["field"] == "path.alert_id"
    assert (await client.get("/v1/alerts/0123456789abcdef/cap")).status == 401
    assert (await client.post("/v1/alerts/cap", data=document(cast.plp_a))).status == 401


@pytest.mark.parametrize(
    ("who", "urgency", "expected"),
    [
        ("police_a", "Immediate", 202),
        ("police_b", "Immediate", 403),  # PLP a is in zone 5340, not theirs
        ("police_b", "Future", 403),
        ("coordinator_a", "Immediate", 403),  # urgent alerts come from the police
        ("coordinator_a", "Future", 202),
        ("coordinator_b", "Future", 403),
        ("admin", "Immediate", 202),
    ],
)
async def test_a_document_is_sent_by_those_who_may_send_what_it_asks(
    client: TestClient, cast: Cast, who: str, urgency: str, expected: int
) -> None:
    """Posting a document has the rights of POST /v1/alerts: police in their zone, coordinators non-urgent to
    their PLPs, admins."""
    data = document(cast.plp_a, info=police_info(cast.plp_a, urgency=urgency))
    await post_cap(client, data, cast.auth(who), expect=expected)


async def test_an_outsider_is_refused_before_the_document_is_checked(client: TestClient, cast: Cast) -> None:
    """The officer of another zone gets the same 403 for a valid document and for one the schema refuses."""
    broken = document(cast.plp_a, msgType="Notice", identifier=None)
    problem = await post_cap(client, broken, cast.auth("police_b"), expect=403)
    assert "5340" in problem["detail"]
    assert (await post_cap(client, broken, cast.auth("police_a"), expect=422))["errors"]


# -- sending from CAP -----------------------------------------------------------------------------


async def test_a_police_document_becomes_an_alert(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """A police system's Alert is sent like any alert: 202, its Location, its texts per language, its PLPs,
    urgent from Immediate, the category from its CAP category, its time-to-live from expires; queued on the
    urgent lane."""
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    info = police_info(cast.plp_a).replace("</certainty>", f"</certainty><expires>{expires}</expires>")
    info += police_info(cast.plp_a, language="nl", text="Inbraak in de Parkstraat")
    response = await client.post(
        "/v1/alerts/cap",
        data=document(cast.plp_a, info=info),
        headers={**cast.auth("police_a"), "Content-Type": "application/cap+xml"},
    )
    alert = await response.json()
    assert response.status == 202, alert
    assert response.headers["Location"] == f"/v1/alerts/{alert['id']}"
    assert alert["texts"] == {"fr": "Cambriolage rue du Parc", "nl": "Inbraak in de Parkstraat"}
    assert (alert["urgency"], alert["category"], alert["plp_ids"]) == ("urgent", "other", [cast.plp_a])
    assert 3590 <= alert["ttl_seconds"] <= 3600
    assert runtime.urgent_queue.count == 1
    audit = await get_json(client, "/v1/audit?action=alert.created", headers=cast.auth("admin"))
    assert audit["items"][0]["detail"] == "urgent other from CAP ZP5340-2026-000123"


async def test_a_document_reaches_the_members_as_any_alert(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """The alert a document asks for is fanned out and sent like any other: each member of the PLP gets a
    delivery per charter channel, in their language (the English text for an English-speaking member; an
    info without a language is English, as CAP says)."""
    rows = member_rows(2) + member_rows(1, start=2, language="en")
    await post_json(
        client, f"/v1/plps/{cast.plp_a}/members/import", {"members": rows}, headers=cast.auth("admin"), expect=200
    )
    info = police_info(cast.plp_a) + police_info(cast.plp_a, text="Burglary in rue du Parc").replace(
        "<language>fr-BE</language>", ""
    )
    alert = await post_cap(client, document(cast.plp_a, info=info), cast.auth("police_a"), expect=202)
    assert alert["texts"] == {"fr": "Cambriolage rue du Parc", "en": "Burglary in rue du Parc"}
    await run_queued(runtime)
    state = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    assert state["status"] == "completed"
    assert state["counts"]["total"] >= 3
    outbox = [line for line in (runtime.settings.data_dir / "outbox.jsonl").read_text().splitlines() if line]
    assert any("Burglary in rue du Parc" in line for line in outbox)
    assert any("Cambriolage rue du Parc" in line for line in outbox)


@pytest.mark.parametrize(
    "kind",
    ["urgent", "every_language", "advice_by_coordinator", "relayed_police_advice", "incivility", "police_feedback"],
)
async def test_a_round_trip_keeps_texts_languages_plps_and_urgency(client: TestClient, cast: Cast, kind: str) -> None:
    """An alert's document, posted back, sends an alert with the same texts in the same languages, to the same
    PLPs, at the same urgency and category (police feedback: about the same earlier alert)."""
    bodies = {
        "urgent": ("police_a", URGENT),
        "every_language": ("police_a", EVERY_LANGUAGE),
        "advice_by_coordinator": ("coordinator_a", ADVICE),
        "relayed_police_advice": ("police_a", ADVICE),
        "incivility": ("coordinator_a", INCIVILITY),
        "police_feedback": ("police_a", {**ADVICE, "category": "burglary"}),
    }
    who, body = bodies[kind]
    body = {**body, "plp_ids": [cast.plp_a, cast.plp_b] if who == "admin" else [cast.plp_a]}
    if kind == "police_feedback":
        earlier = await post_json(
            client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth(who), expect=202
        )
        body["about_alert_id"] = earlier["id"]
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth(who), expect=202)
    data = await read_cap(client, alert["id"], cast.auth(who))
    again = await post_cap(client, data, cast.auth(who), expect=202)
    assert again["id"] != alert["id"]
    kept = ("texts", "urgency", "category", "plp_ids", "about_alert_id")
    assert {k: again[k] for k in kept} == {k: alert[k] for k in kept}


async def test_a_round_trip_keeps_several_plps(client: TestClient, cast: Cast) -> None:
    """An admin's alert to PLPs of two zones reads with an area per PLP (no zone in the sender's name), and
    posted back targets both, in order."""
    body = {**EVERY_LANGUAGE, "plp_ids": [cast.plp_b, cast.plp_a]}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("admin"), expect=202)
    data = await read_cap(client, alert["id"], cast.auth("admin"))
    root = valid(data)
    values = root.xpath("cap:info[1]/cap:area/cap:geocode/cap:value/text()", namespaces=CAP)
    assert values == [cast.plp_b, cast.plp_a]
    assert root.find("cap:info/cap:senderName", namespaces=CAP) is None
    again = await post_cap(client, data, cast.auth("admin"), expect=202)
    assert again["plp_ids"] == [cast.plp_b, cast.plp_a]
    assert again["texts"] == alert["texts"]


async def test_the_same_document_twice_sends_once(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """Without an Idempotency-Key, the document's sender and identifier are one: posted again, the same
    alert is answered (Idempotent-Replayed), and nothing more is queued; another document under the same
    identifier is a 422 naming it."""
    data = document(cast.plp_a).encode()
    headers = {**cast.auth("police_a"), "Content-Type": "application/cap+xml"}
    first = await post_cap(client, data, cast.auth("police_a"), expect=202)
    response = await client.post("/v1/alerts/cap", data=data, headers=headers)
    assert response.status == 202
    assert response.headers["Idempotent-Replayed"] == "true"
    assert (await response.json())["id"] == first["id"]
    assert runtime.urgent_queue.count == 1
    other = document(cast.plp_a, info=police_info(cast.plp_a, text="Autre chose"))
    problem = await post_cap(client, other, cast.auth("police_a"), expect=422)
    assert problem["errors"] == [{"field": "/alert/identifier", "reason": "already used with another body"}]


async def test_an_idempotency_key_works_as_for_json(client: TestClient, cast: Cast) -> None:
    """With an Idempotency-Key header, the key decides: two documents under two keys are two alerts, even with
    the same identifier; a key reused with another document is a 422 naming the header."""
    headers = cast.auth("police_a")
    one = await post_cap(client, document(cast.plp_a), {**headers, "Idempotency-Key": "cap-1"}, expect=202)
    two = await post_cap(client, document(cast.plp_a), {**headers, "Idempotency-Key": "cap-2"}, expect=202)
    assert one["id"] != two["id"]
    other = document(cast.plp_a, info=police_info(cast.plp_a, text="Autre chose"))
    problem = await post_cap(client, other, {**headers, "Idempotency-Key": "cap-1"}, expect=422)
    assert problem["errors"][0]["field"] == "header.Idempotency-Key"


async def test_an_update_is_feedback_about_our_alert(client: TestClient, cast: Cast) -> None:
    """An Update whose references name one of our alerts is police feedback about it; one naming nothing of
    ours is refused naming references, one naming an alert we do not have naming it too."""
    earlier = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    info = police_info(cast.plp_a, urgency="Past", text="Le suspect a été arrêté, merci")
    references = f"{SENDER},{earlier['id']},2026-12-04T10:00:00-00:00"
    update = document(cast.plp_a, info=info, msgType="Update", references=references)
    feedback = await post_cap(client, update, cast.auth("police_a"), expect=202)
    assert (feedback["about_alert_id"], feedback["urgency"]) == (earlier["id"], "non_urgent")
    foreign = document(
        cast.plp_a,
        info=info,
        msgType="Update",
        identifier="x2",
        references="other@example.be,abc,2026-12-04T10:00:00-00:00",
    )
    problem = await post_cap(client, foreign, cast.auth("police_a"), expect=422)
    assert problem["errors"][0]["field"] == "/alert/references"
    unknown = document(
        cast.plp_a,
        info=info,
        msgType="Update",
        identifier="x3",
        references=f"{SENDER},0123456789abcdef,2026-12-04T10:00:00-00:00",
    )
    problem = await post_cap(client, unknown, cast.auth("police_a"), expect=422)
    assert problem["errors"] == [{"field": "/alert/references", "reason": "unknown alert"}]


# -- malformed documents --------------------------------------------------------------------------

LAUGHS = '<!ENTITY a0 "ha">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))


def _malformed(plp: str) -> dict[str, tuple[str, str, str]]:
    """name -> (document, the field named, a part of the reason)."""
    good = document(plp)
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return {
        "not XML": ("this is not a CAP document <alert", "body", "not well-formed XML"),
        "wrong namespace": (good.replace("cap:1.2", "cap:1.1"), "/alert", "urn:oasis:names:tc:emergency:cap:1.1"),
        "missing identifier": (document(plp, identifier=None), "/alert/sender", "Expected is ( identifier )"),
        "bad date": (document(plp, sent="2026-12-04 10:00"), "/alert/sent", "2026-12-04 10:00"),
        "unknown msgType": (document(plp, msgType="Notice"), "/alert/msgType", "'Notice' is not an element of the set"),
        "info without event": (
            good.replace("<event>Cambriolage</event>", ""),
            "/alert/info/urgency",
            "Expected is one of ( category, event )",
        ),
        "text too long": (
            document(plp, info=police_info(plp, text="x" * 1601)),
            "/alert/info/description",
            "1601 characters",
        ),
        "entity expansion": (
            good.replace("<alert ", f"<!DOCTYPE alert [{LAUGHS}]><alert ", 1).replace("Parc<", "Parc &a9;<"),
            "body",
            "DOCTYPE",
        ),
        "external entity": (
            good.replace("<alert ", '<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]><alert ', 1).replace(
                "Parc<", "&x;<"
            ),
            "body",
            "DOCTYPE",
        ),
        "language code not RFC 3066": (
            document(plp, info=police_info(plp, language="fr_BE")),
            "/alert/info/language",
            "xs:language",
        ),
        "language not ours": (
            document(plp, info=police_info(plp, language="es-ES")),
            "/alert/info/language",
            "'es-ES' is not a language",
        ),
        "same language twice": (
            document(plp, info=police_info(plp) + police_info(plp, language="fr")),
            "/alert/info[2]/language",
            "a second info in fr",
        ),
        "unknown PLP": (document("nowhere"), "/alert/info/area/geocode/value", "unknown PLP 'nowhere'"),
        "no PLP": (
            good.replace("<valueName>PLP</valueName>", "<valueName>NIS</valueName>"),
            "/alert/info/area",
            "no target PLP",
        ),
        "test": (document(plp, status="Test"), "/alert/status", "only Actual alerts and Exercise drills"),
        "cancel of nothing of ours": (
            document(plp, msgType="Cancel", references="other@example.be,ZP-1,2026-12-04T09:00:00+01:00"),
            "/alert/references",
            "A Cancel refers to exactly one alert of ours",
        ),
        "acknowledgement": (document(plp, msgType="Ack"), "/alert/msgType", "an Ack creates no alert"),
        "no info": (document(plp, info=" "), "/alert", "no info"),
        "no text": (
            good.replace("<description>Cambriolage rue du Parc</description>", ""),
            "/alert/info/description",
            "no text",
        ),
        "expired": (
            good.replace("</certainty>", f"</certainty><expires>{past}</expires>"),
            "/alert/info/expires",
            "expires in -",
        ),
        "an XInclude": (
            good.replace(
                "<status>", '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd"/><status>'
            ),
            "/alert/include",
            "This element is not expected",
        ),
        "an attribute": (good.replace("<status>", '<status level="high">'), "/alert/status", "'level' is not allowed"),
        "unknown category code": (
            good.replace(
                "<description>",
                "<eventCode><valueName>PLP-category</valueName><value>arson</value></eventCode><description>",
            ),
            "/alert/info/eventCode/value",
            "'arson' is not a category",
        ),
    }


MALFORMED = list(_malformed("plp"))


@pytest.mark.parametrize("name", MALFORMED)
async def test_a_malformed_document_is_a_422_naming_the_element(client: TestClient, cast: Cast, name: str) -> None:
    """Each malformed document is refused with a problem whose field is the element's place in the document
    and whose reason says what is wrong; nothing is sent."""
    data, field, reason = _malformed(cast.plp_a)[name]
    problem = await post_cap(client, data, cast.auth("police_a"), expect=422)
    assert problem["title"] in ("Invalid CAP document", "Invalid request")  # the latter: what JSON gets too
    assert field in [e["field"] for e in problem["errors"]], problem
    assert any(reason in e["reason"] for e in problem["errors"] if e["field"] == field), problem
    assert field in problem["detail"] or problem["title"] == "Invalid request"
    listed = await get_json(client, "/v1/alerts", headers=cast.auth("admin"))
    assert listed["items"] == []


async def test_every_fault_of_a_document_is_named_at_once(client: TestClient, cast: Cast) -> None:
    """A document with several faults past the schema gets them all in one answer."""
    info = police_info(cast.plp_a, language="es") + police_info("nowhere", language="fr", urgency="Future")
    problem = await post_cap(client, document(cast.plp_a, info=info, status="Test"), cast.auth("admin"), expect=422)
    fields = [e["field"] for e in problem["errors"]]
    assert fields == ["/alert/status", "/alert/info[1]/language", "/alert/info[2]/urgency"]


async def test_an_oversized_document_is_a_413(client: TestClient, cast: Cast) -> None:
    """A document past 256 KiB is refused unread with a 413 naming the body."""
    data = document(cast.plp_a).replace("<scope>", "<!--" + "x" * 300_000 + "--><scope>")
    problem = await post_cap(client, data, cast.auth("police_a"), expect=413)
    assert problem["errors"][0]["field"] == "body"
    assert "262144" in problem["errors"][0]["reason"]


@pytest.mark.parametrize("media", ["application/json", "text/plain", "application/octet-stream"])
async def test_a_document_in_another_media_type_is_a_415(client: TestClient, cast: Cast, media: str) -> None:
    """Only application/cap+xml (or application/xml, text/xml) is read."""
    problem = await post_cap(client, document(cast.plp_a), cast.auth("police_a"), expect=415, media=media)
    assert "application/cap+xml" in problem["detail"]


@pytest.mark.parametrize("media", ["application/xml", "text/xml"])
async def test_a_document_as_plain_xml_is_read(client: TestClient, cast: Cast, media: str) -> None:
    """The generic XML media types are read as CAP too."""
    await post_cap(client, document(cast.plp_a), cast.auth("police_a"), expect=202, media=media)


async def test_a_plp_outside_the_readers_part_is_named_by_its_id_alone(client: TestClient, cast: Cast) -> None:
    """An admin's alert to PLPs of two zones: the officer of zone 5340 reads PLP b, of zone 5341, as its id
    (as the alert's view shows it), not by its name and commune; the admin reads both names."""
    body = {**URGENT, "plp_ids": [cast.plp_a, cast.plp_b]}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("admin"), expect=202)
    path = "cap:info/cap:area/cap:areaDesc/text()"
    police = valid(await read_cap(client, alert["id"], cast.auth("police_a")))
    assert police.xpath(path, namespaces=CAP) == ["PLP A (Ixelles)", f"PLP {cast.plp_b}"]
    admin = valid(await read_cap(client, alert["id"], cast.auth("admin")))
    assert admin.xpath(path, namespaces=CAP) == ["PLP A (Ixelles)", "PLP B (Ixelles)"]


async def test_the_openapi_document_lists_both_routes_with_their_media_type(client: TestClient) -> None:
    """The reading answers application/cap+xml; the sending takes it and answers an alert (202)."""
    document = await get_json(client, "/v1/openapi.json", headers={})
    read = document["paths"]["/v1/alerts/{alert_id}/cap"]["get"]
    assert list(read["responses"]["200"]["content"]) == ["application/cap+xml"]
    send = document["paths"]["/v1/alerts/cap"]["post"]
    assert list(send["requestBody"]["content"]) == ["application/cap+xml"]
    assert send["requestBody"]["required"] is True
    assert send["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AlertView"
    }


# -- cancelling from CAP --------------------------------------------------------------------------


def _cancel_of(exported: bytes) -> bytes:
    """What a police system makes of our document to cancel the alert: a Cancel referring to it."""
    root = etree.fromstring(exported, SAFE)
    reference = f"{head(root, 'sender')},{head(root, 'identifier')},{head(root, 'sent')}"
    root.find("cap:identifier", namespaces=CAP).text = "ZP5340-2026-000124"
    root.find("cap:sender", namespaces=CAP).text = "dispatch@police5340.example.be"
    root.find("cap:msgType", namespaces=CAP).text = "Cancel"
    root.find("cap:restriction", namespaces=CAP).addnext(
        etree.fromstring(f'<references xmlns="{NS}">{reference}</references>')
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


async def test_a_cancel_cancels_the_alert_it_refers_to(client: TestClient, cast: Cast) -> None:
    """A police system's Cancel referring to one of our alerts cancels it as POST /v1/alerts/{id}/cancel does
    (200, the alert cancelled, audited); the alert then reads as its Cancel, and that Cancel posted again is a
    409: the alert is already cancelled."""
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    cancel = _cancel_of(await read_cap(client, alert["id"], cast.auth("police_a")))
    valid(cancel)
    cancelled = await post_cap(client, cancel, cast.auth("police_a"), expect=200)
    assert (cancelled["id"], cancelled["status"]) == (alert["id"], "cancelled")
    audit = await get_json(client, "/v1/audit?action=alert.cancelled", headers=cast.auth("admin"))
    assert [e["target"] for e in audit["items"]] == [{"alert": alert["id"]}]
    ours = await read_cap(client, alert["id"], cast.auth("police_a"))
    assert head(valid(ours), "msgType") == "Cancel"
    problem = await post_cap(client, ours, cast.auth("police_a"), expect=409)
    assert "already cancelled" in problem["detail"]


@pytest.mark.parametrize(
    ("who", "expected"),
    [("admin", 200), ("police_a", 200), ("police_b", 403), ("coordinator_a", 403), ("coordinator_b", 403)],
)
async def test_a_cancel_is_for_those_who_may_cancel(client: TestClient, cast: Cast, who: str, expected: int) -> None:
    """The author, the police of the alert's zone and admins may cancel it by CAP; the refused get the 403
    whatever the document (one the schema refuses too)."""
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    cancel = _cancel_of(await read_cap(client, alert["id"], cast.auth("police_a")))
    if expected == 403:
        broken = cancel.replace(b"<status>Actual</status>", b"<status>Maybe</status>")
        await post_cap(client, broken, cast.auth(who), expect=403)
    await post_cap(client, cancel, cast.auth(who), expect=expected)


async def test_a_cancel_of_an_alert_we_do_not_have_is_a_404_naming_references(client: TestClient, cast: Cast) -> None:
    references = f"{SENDER},0123456789abcdef,2026-12-04T10:00:00-00:00"
    problem = await post_cap(
        client, document(cast.plp_a, msgType="Cancel", references=references), cast.auth("police_a"), expect=404
    )
    assert problem["errors"] == [{"field": "/alert/references", "reason": "no alert '0123456789abcdef'"}]


async def test_a_cancel_the_schema_refuses_is_a_422(client: TestClient, cast: Cast) -> None:
    """A Cancel of an alert the actor may cancel is still checked: a status other than Actual is named, and the
    alert stays as it was."""
    alert = await post_json(
        client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=cast.auth("police_a"), expect=202
    )
    cancel = _cancel_of(await read_cap(client, alert["id"], cast.auth("police_a")))
    problem = await post_cap(client, cancel.replace(b"Actual", b"Exercise"), cast.auth("police_a"), expect=422)
    assert problem["errors"][0]["field"] == "/alert/status"
    state = await get_json(client, f"/v1/alerts/{alert['id']}", headers=cast.auth("police_a"))
    assert state["status"] != "cancelled"


# -- an alert's area ------------------------------------------------------------------------------

#: Two sectors' shapes around the Grand-Place (GeoJSON: [lon, lat]): a square, and two squares one with a hole.
WEST = {
    "type": "Polygon",
    "coordinates": [[[4.35, 50.845], [4.352, 50.845], [4.352, 50.848], [4.35, 50.848], [4.35, 50.845]]],
}
EAST_AND_HOLE = {
    "type": "MultiPolygon",
    "coordinates": [
        [
            [[4.352, 50.845], [4.354, 50.845], [4.354, 50.848], [4.352, 50.848], [4.352, 50.845]],
            [[4.3525, 50.846], [4.353, 50.846], [4.353, 50.847], [4.3525, 50.846]],
        ],
        [[[4.36, 50.85], [4.361, 50.85], [4.361, 50.851], [4.36, 50.85]]],
    ],
}
#: The same, as CAP writes them: lat,lon pairs, the exterior rings only.
WEST_CAP = "50.845,4.35 50.845,4.352 50.848,4.352 50.848,4.35 50.845,4.35"
EAST_CAP = (
    "50.845,4.352 50.845,4.354 50.848,4.354 50.848,4.352 50.845,4.352",
    "50.85,4.36 50.85,4.361 50.851,4.361 50.85,4.36",
)
CIRCLE = {"circle": {"center": {"lat": 50.8503, "lon": 4.3517}, "radius_m": 500}}
STREETS = {"streets": ["Rue du Parc", "Avenue Louise", "Chaussée d'Ixelles"]}


async def add_sector(client: TestClient, cast: Cast, plp: str, body: dict[str, Any]) -> str:
    coordinator = "coordinator_a" if plp == cast.plp_a else "coordinator_b"
    sector = await post_json(client, f"/v1/plps/{plp}/sectors", body, headers=cast.auth(coordinator), expect=201)
    return str(sector["id"])


async def two_sectors(client: TestClient, cast: Cast) -> tuple[str, str]:
    """PLP a's sectors West (a square) and East (a square with a hole, and a second square)."""
    return (
        await add_sector(client, cast, cast.plp_a, {"name": "West", "geometry": WEST}),
        await add_sector(client, cast, cast.plp_a, {"name": "East", "geometry": EAST_AND_HOLE}),
    )


def areas(root: etree._Element, info: int = 1) -> list[dict[str, Any]]:
    """The areas of the document's ``info`` (1: the first): description, polygons, circles and geocodes."""
    return [
        {
            "desc": area.findtext("cap:areaDesc", namespaces=CAP),
            "polygons": area.xpath("cap:polygon/text()", namespaces=CAP),
            "circles": area.xpath("cap:circle/text()", namespaces=CAP),
            "geocodes": [
                (g.findtext("cap:valueName", namespaces=CAP), g.findtext("cap:value", namespaces=CAP))
                for g in area.iterfind("cap:geocode", namespaces=CAP)
            ],
        }
        for area in root.xpath(f"cap:info[{info}]/cap:area", namespaces=CAP)
    ]


async def test_an_alert_to_sectors_has_an_area_per_sector(client: TestClient, cast: Cast) -> None:
    """An alert to two sectors of its PLP reads with one area per sector: its name and its PLP's, its shape as
    polygons of lat,lon pairs, the first repeated last (a hole left out, a multipolygon as one polygon per part),
    and the geocodes of its PLP and of the sector; every info has the same areas."""
    west, east = await two_sectors(client, cast)
    body = {**EVERY_LANGUAGE, "plp_ids": [cast.plp_a], "area": {"sectors": [west, east]}}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    data = await read_cap(client, alert["id"], cast.auth("police_a"))
    root = valid(data)
    assert areas(root) == [
        {
            "desc": "West, PLP A (Ixelles)",
            "polygons": [WEST_CAP],
            "circles": [],
            "geocodes": [("PLP", cast.plp_a), ("PLP-sector", west)],
        },
        {
            "desc": "East, PLP A (Ixelles)",
            "polygons": list(EAST_CAP),
            "circles": [],
            "geocodes": [("PLP", cast.plp_a), ("PLP-sector", east)],
        },
    ]
    assert all(areas(root, i) == areas(root) for i in (2, 3, 4))
    assert f"<polygon>{WEST_CAP}</polygon>".encode() in data
    for polygon in root.xpath("//cap:polygon/text()", namespaces=CAP):
        pairs = polygon.split(" ")
        assert pairs[0] == pairs[-1] and len(pairs) >= 4
        assert all(50 < float(pair.split(",")[0]) < 51 and 4 < float(pair.split(",")[1]) < 5 for pair in pairs)


async def test_a_plp_none_of_whose_sectors_is_named_is_one_whole_area(client: TestClient, cast: Cast) -> None:
    """An admin's alert to a sector of PLP a and the whole of PLP b: the sector's area, then PLP b's as any
    whole PLP's; the officer of zone 5340 reads PLP b by its id alone."""
    west, _ = await two_sectors(client, cast)
    await add_sector(client, cast, cast.plp_b, {"name": "Nord", "streets": ["Rue Haute"]})
    body = {**URGENT, "plp_ids": [cast.plp_a, cast.plp_b], "area": {"sectors": [west]}}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("admin"), expect=202)
    root = valid(await read_cap(client, alert["id"], cast.auth("police_a")))
    assert [(a["desc"], a["geocodes"]) for a in areas(root)] == [
        ("West, PLP A (Ixelles)", [("PLP", cast.plp_a), ("PLP-sector", west)]),
        (f"PLP {cast.plp_b}", [("PLP", cast.plp_b)]),
    ]


async def test_a_circle_alert_has_its_circle_in_km_in_each_plp_area(client: TestClient, cast: Cast) -> None:
    """A circle reads as CAP's circle, "lat,lon radius" with the radius in km, in the area of each target PLP,
    described with its radius in metres and its centre."""
    body = {**URGENT, "plp_ids": [cast.plp_a, cast.plp_b], "area": CIRCLE}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("admin"), expect=202)
    data = await read_cap(client, alert["id"], cast.auth("admin"))
    assert b"<circle>50.8503,4.3517 0.5</circle>" in data
    assert areas(valid(data)) == [
        {
            "desc": f"PLP {name} (Ixelles): 500 m around 50.8503,4.3517",
            "polygons": [],
            "circles": ["50.8503,4.3517 0.5"],
            "geocodes": [("PLP", plp)],
        }
        for name, plp in (("A", cast.plp_a), ("B", cast.plp_b))
    ]


async def test_a_street_alert_lists_its_streets_and_carries_them_as_geocodes(client: TestClient, cast: Cast) -> None:
    """Streets read as the PLP's area described with the streets, each also a PLP-street geocode, in order."""
    body = {**URGENT, "plp_ids": [cast.plp_a], "area": STREETS}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    root = valid(await read_cap(client, alert["id"], cast.auth("police_a")))
    assert areas(root) == [
        {
            "desc": "PLP A (Ixelles): Rue du Parc, Avenue Louise, Chaussée d'Ixelles",
            "polygons": [],
            "circles": [],
            "geocodes": [("PLP", cast.plp_a)] + [("PLP-street", s) for s in STREETS["streets"]],
        }
    ]


@pytest.mark.parametrize("kind", ["sectors", "sector_and_whole_plp", "circle", "streets", "drill_to_sectors"])
async def test_a_round_trip_keeps_the_area(client: TestClient, cast: Cast, kind: str) -> None:
    """An alert's document posted back sends an alert to the same area (the same sectors, the same circle to the
    metre, the same streets), with the same texts, languages, urgency, category and PLPs."""
    west, east = await two_sectors(client, cast)
    who, plps, area = {
        "sectors": ("police_a", [cast.plp_a], {"sectors": [west, east]}),
        "sector_and_whole_plp": ("admin", [cast.plp_b, cast.plp_a], {"sectors": [east]}),
        "circle": (
            "police_a",
            [cast.plp_a],
            {"circle": {"center": {"lat": 50.8467, "lon": 4.35246}, "radius_m": 333.3}},
        ),
        "streets": ("police_a", [cast.plp_a], STREETS),
        "drill_to_sectors": ("police_a", [cast.plp_a], {"sectors": [east]}),
    }[kind]
    body = {**EVERY_LANGUAGE, "plp_ids": plps, "area": area, "exercise": kind.startswith("drill")}
    alert = await post_json(client, "/v1/alerts", body, headers=cast.auth(who), expect=202)
    data = await read_cap(client, alert["id"], cast.auth(who))
    again = await post_cap(client, data, cast.auth(who), expect=202)
    assert again["id"] != alert["id"]
    kept = ("area", "texts", "urgency", "category", "plp_ids", "exercise")
    assert {k: again[k] for k in kept} == {k: alert[k] for k in kept}
    assert again["area"] is not None


def area_document(plp: str, *elements: str) -> str:
    """A police document for PLP ``plp`` whose area holds ``elements`` (shapes, then geocodes) after its PLP's."""
    shapes = "".join(e for e in elements if not e.startswith("<geocode>"))
    codes = "".join(e for e in elements if e.startswith("<geocode>"))
    plp_code = f"<geocode><valueName>PLP</valueName><value>{plp}</value></geocode>"
    info = police_info(plp).replace(plp_code, "").replace("</areaDesc>", f"</areaDesc>{shapes}{plp_code}{codes}")
    return document(plp, info=info)


def geocode(name: str, value: str) -> str:
    return f"<geocode><valueName>{name}</valueName><value>{value}</value></geocode>"


def _malformed_areas(plp: str, sector: str, foreign_sector: str) -> dict[str, tuple[str, str, str]]:
    """name -> (document, the field named, a part of the reason)."""
    sector_code = geocode("PLP-sector", sector)
    return {
        "polygon of three points": (
            area_document(plp, "<polygon>50.82,4.36 50.83,4.37 50.82,4.36</polygon>", sector_code),
            "/alert/info/area/polygon",
            "3 points: a polygon has at least 4",
        ),
        "open polygon": (
            area_document(plp, "<polygon>50.82,4.36 50.83,4.37 50.82,4.38 50.83,4.36</polygon>", sector_code),
            "/alert/info/area/polygon",
            "ends where it starts",
        ),
        "polygon of no sector": (
            area_document(plp, f"<polygon>{WEST_CAP}</polygon>"),
            "/alert/info/area/polygon",
            "a polygon is read only in the area of one of our sectors",
        ),
        "circle of radius 0": (
            area_document(plp, "<circle>50.85,4.35 0</circle>"),
            "/alert/info/area/circle",
            "radius '0'",
        ),
        "circle of 80 km": (
            area_document(plp, "<circle>50.85,4.35 80</circle>"),
            "/alert/info/area/circle",
            "at most 50",
        ),
        "circle without radius": (
            area_document(plp, "<circle>50.85,4.35</circle>"),
            "/alert/info/area/circle",
            "not a circle",
        ),
        "two circles": (
            area_document(plp, "<circle>50.85,4.35 1</circle>", "<circle>50.86,4.35 1</circle>"),
            "/alert/info/area/circle[2]",
            "the same circle",
        ),
        "circle and streets": (
            area_document(plp, "<circle>50.85,4.35 1</circle>", geocode("PLP-street", "Rue du Parc")),
            "/alert/info/area/geocode[2]/value",
            "one of sectors, a circle or streets",
        ),
        "unknown sector": (
            area_document(plp, geocode("PLP-sector", "nowhere")),
            "/alert/info/area/geocode[2]/value",
            "no sector 'nowhere' in the target PLPs",
        ),
        "sector of a PLP outside the zone": (
            area_document(plp, geocode("PLP-sector", foreign_sector)),
            "/alert/info/area/geocode[2]/value",
            f"no sector {foreign_sector!r} in the target PLPs",
        ),
        "street of one letter": (
            area_document(plp, geocode("PLP-street", "X")),
            "/alert/info/area/geocode[2]/value",
            "not a street's name",
        ),
    }


@pytest.mark.parametrize("name", list(_malformed_areas("plp", "s", "f")))
async def test_a_malformed_area_is_a_422_naming_the_element(client: TestClient, cast: Cast, name: str) -> None:
    """Each area that cannot be sent (a polygon that is none, or of no sector of ours; a circle that is none;
    two kinds of area; a sector that is no sector of the target PLPs, as one of another zone's PLP) is refused
    naming its element; nothing is sent."""
    west, _ = await two_sectors(client, cast)
    foreign = await add_sector(client, cast, cast.plp_b, {"name": "Nord", "geometry": WEST})
    data, field, reason = _malformed_areas(cast.plp_a, west, foreign)[name]
    problem = await post_cap(client, data, cast.auth("police_a"), expect=422)
    assert field in [e["field"] for e in problem["errors"]], problem
    assert any(reason in e["reason"] for e in problem["errors"] if e["field"] == field), problem
    listed = await get_json(client, "/v1/alerts", headers=cast.auth("admin"))
    assert listed["items"] == []


async def test_a_sector_in_another_zone_is_refused_as_its_plp_is(client: TestClient, cast: Cast) -> None:
    """The police's zone decides as before: a document naming another zone's PLP for its sector is a 403,
    whatever its area; its own zone's police send it."""
    foreign = await add_sector(client, cast, cast.plp_b, {"name": "Nord", "geometry": WEST})
    data = area_document(cast.plp_b, f"<polygon>{WEST_CAP}</polygon>", geocode("PLP-sector", foreign))
    problem = await post_cap(client, data, cast.auth("police_a"), expect=403)
    assert "5340" in problem["detail"]
    sent = await post_cap(client, data, cast.auth("police_b"), expect=202)
    assert sent["area"] == {"sectors": [foreign], "circle": None, "streets": None}
