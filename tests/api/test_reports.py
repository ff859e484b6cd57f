"""``GET /v1/plps/{plp_id}/evaluation``: a PLP's annual evaluation as JSON, CSV or Markdown, for its
coordinators, the police of its zone and admins; bad years are problems naming ``query.year``.

The history here is this year's, made through the API (members added, imported and removed,
alerts sent by the police and the coordinator, a relay approved) and run as the workers would;
the dispatcher tests (``tests/dispatcher/test_reports.py``) build a whole past year.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from dispatcher.api.services import SERVICES
from dispatcher.core.models import ChannelName
from dispatcher.people import retention
from dispatcher.pipeline.receipts import Receipts
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, now_ts
from tests.api.test_openapi import ResponseChecker
from tests.conftest import Cast
from tests.support import get_json, member_rows, post_json, run_queued

PATH = "/v1/plps/{plp_id}/evaluation"
URGENT = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Cambriolage rue du Parc, voiture grise"}}
ADVICE = {"urgency": "non_urgent", "category": "prevention_advice", "texts": {"fr": "Fermez vos fenêtres"}}


def this_year() -> int:
    return datetime.now(ZoneInfo("Europe/Brussels")).year


def evaluation_of(plp_id: str, year: int | str, fmt: str | None = None) -> str:
    query = f"?year={year}" + (f"&format={fmt}" if fmt else "")
    return PATH.format(plp_id=plp_id) + query


def store_of(client: TestClient) -> Store:
    return client.server.app[SERVICES].store


async def a_year_so_far(client: TestClient, cast: Cast, runtime: Runtime) -> dict[str, Any]:
    """PLP A this year: 3 members added and 2 imported, 1 removed (erased); an urgent alert from the police
    to the 4 left, delivered, acknowledged by 2 after 40 and 100 s, answered by 1; police advice relayed
    by the coordinator; a message of the coordinator's own. Returns the urgent alert as the API shows it."""
    coordinator, police = cast.auth("coordinator_a"), cast.auth("police_a")
    members_path = f"/v1/plps/{cast.plp_a}/members"
    added = [await post_json(client, members_path, row, headers=coordinator, expect=201) for row in member_rows(3)]
    report = await post_json(
        client, f"{members_path}/import", {"members": member_rows(2, start=3)}, headers=coordinator, expect=200
    )
    assert len(report["imported"]) == 2
    response = await client.delete(f"{members_path}/{added[0]['id']}", headers=coordinator)
    assert response.status == 204

    alert = await post_json(client, "/v1/alerts", {**URGENT, "plp_ids": [cast.plp_a]}, headers=police, expect=202)
    await run_queued(runtime)
    store, created = store_of(client), datetime.fromisoformat(alert["created_at"]).timestamp()
    for member, after in ((added[1], 40), (added[2], 100)):
        assert await store.acknowledge(alert["id"], f"sms:{member['id']}", via="sms", at=created + after)
    replier = await store.get_member(added[1]["id"])
    assert replier is not None
    delivery = f"{alert['id']}:sms:{replier.id}"
    await Receipts(store).feedback(replier, "Vu une voiture grise", via=ChannelName.SMS, delivery=delivery)

    advice = await post_json(client, "/v1/alerts", {**ADVICE, "plp_ids": [cast.plp_a]}, headers=police, expect=202)
    relay = f"/v1/alerts/{advice['id']}/relays/{cast.plp_a}/approve"
    await post_json(client, relay, {}, headers=coordinator, expect=200)
    await post_json(client, "/v1/alerts", {**ADVICE, "plp_ids": [cast.plp_a]}, headers=coordinator, expect=202)
    await run_queued(runtime)
    return await get_json(client, f"/v1/alerts/{alert['id']}", headers=police)


async def test_the_evaluation_of_this_year_as_json(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """The figures of the year so far, as the coordinator reads them; the answer matches its documented schema."""
    alert = await a_year_so_far(client, cast, runtime)
    document = await get_json(client, "/v1/openapi.json", headers={})
    response = await client.get(evaluation_of(cast.plp_a, this_year()), headers=cast.auth("coordinator_a"))
    ev = await ResponseChecker(document).check(response, method="GET", path=PATH)

    assert response.status == 200
    assert (ev["plp_id"], ev["plp_name"], ev["year"], ev["complete"]) == (cast.plp_a, "PLP A", this_year(), False)
    assert ev["members"] == {"start": 0, "end": 4, "joined": 5, "left": 1, "opted_out": 0}
    assert ev["alerts"]["total"] == 3 and (ev["alerts"]["urgent"], ev["alerts"]["non_urgent"]) == (1, 2)
    assert ev["alerts"]["by_category"]["burglary"] == 1 and ev["alerts"]["by_category"]["prevention_advice"] == 2
    assert ev["alerts"]["by_sender"] == {"admin": 0, "police": 2, "coordinator": 1}
    assert ev["alerts"]["relays"] == {"approved": 1, "declined": 0, "expired": 0, "awaiting": 0}
    # No credentials here: every message was only kept in the outbox, and reached nobody.
    assert ev["reach"]["urgent"] == {
        "members_targeted": 4,
        "members_reached": 0,
        "members_outbox": 4,
        "reach": 0.0,
        "members_acknowledged": 2,
        "acknowledgement_rate": 0.5,
    }
    assert ev["reach"]["non_urgent"]["members_targeted"] == 8 and ev["reach"]["non_urgent"]["reach"] == 0.0
    assert ev["reach"]["non_urgent"]["members_outbox"] == 8
    assert ev["urgent_first_acknowledgement"] == {"alerts": 1, "median_seconds": 40.0}
    assert ev["feedback_replies"] == 1
    month = ev["months"][datetime.now(ZoneInfo("Europe/Brussels")).month - 1]
    assert (month["members_joined"], month["members_left"], month["alerts"], month["feedback_replies"]) == (5, 1, 3, 1)
    cost = ev["cost"]
    assert (cost["sms_segments"], cost["voice_minutes"]) == (
        alert["cost"]["sms_segments"],
        alert["cost"]["voice_minutes"],
    )
    assert Decimal(cost["estimated"]) == Decimal(alert["cost"]["estimated"]).quantize(Decimal("0.01"))
    assert {name: spent["deliveries"] for name, spent in cost["by_channel"].items()} == {
        "sms": 4,
        "email": 4 + 8,  # the urgent alert, then the two pieces of advice (e-mail first)
        "telegram": 0,
        "voice": 4,
        "whatsapp": 0,  # no member consented to WhatsApp
    }


async def test_the_figures_survive_the_purge_and_the_erasure_of_a_member_who_acknowledged(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Once the deliveries are purged, and a member who acknowledged and replied is erased, reach,
    acknowledgements, replies and cost read the same; the member's leaving is counted."""
    await a_year_so_far(client, cast, runtime)
    path, coordinator = evaluation_of(cast.plp_a, this_year()), cast.auth("coordinator_a")
    before = await get_json(client, path, headers=coordinator)
    retention.purge(runtime, now=now_ts() + runtime.settings.retention_days * 86400 + 60)
    assert await store_of(client).redis.zcard(runtime.keys.plp_feedback(cast.plp_a)) == 0  # the reply went
    page = await get_json(client, f"/v1/plps/{cast.plp_a}/members", headers=coordinator)
    acknowledged = next(m for m in page["items"] if m["name"] == "Member 1")
    response = await client.delete(f"/v1/plps/{cast.plp_a}/members/{acknowledged['id']}", headers=coordinator)
    assert response.status == 204

    after = await get_json(client, path, headers=coordinator)
    unchanged = ("alerts", "reach", "urgent_first_acknowledgement", "feedback_replies", "cost")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["members"] == {**before["members"], "end": 3, "left": 2}


async def test_the_csv_file_reads_back_to_the_json_figures(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """format=csv: an attachment named after the PLP and the year; each row, read back, gives its figure."""
    await a_year_so_far(client, cast, runtime)
    year, coordinator = this_year(), cast.auth("coordinator_a")
    ev = await get_json(client, evaluation_of(cast.plp_a, year), headers=coordinator)
    response = await client.get(evaluation_of(cast.plp_a, year, "csv"), headers=coordinator)

    assert response.status == 200 and response.content_type == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="evaluation-{cast.plp_a}-{year}.csv"'
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == ["figure", "value", *(f"{year}-{n:02d}" for n in range(1, 13))]
    figures = {row[0]: row[1:] for row in rows[1:]}
    assert figures["plp.id"] == [cast.plp_a] and figures["complete"] == ["false"]
    assert figures["members.end"] == [str(ev["members"]["end"])] == ["4"]
    assert figures["members.joined"][0] == "5"
    assert figures["members.joined"][1:] == [str(m["members_joined"]) for m in ev["months"]]
    assert figures["reach.urgent.acknowledgement_rate"] == ["0.5"]
    assert figures["alerts.relays.approved"] == ["1"]
    assert figures["cost.estimated"] == [ev["cost"]["estimated"]]


async def test_the_markdown_file_has_the_tables_of_the_meeting(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """format=md: an attachment; its tables give the members, the reach per class, the cost, the months."""
    await a_year_so_far(client, cast, runtime)
    year = this_year()
    response = await client.get(evaluation_of(cast.plp_a, year, "md"), headers=cast.auth("police_a"))

    assert response.status == 200 and response.content_type == "text/markdown"
    assert response.headers["Content-Disposition"] == f'attachment; filename="evaluation-{cast.plp_a}-{year}.md"'
    text = await response.text()
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")) for line in text.splitlines() if line[:1] == "|"}
    assert text.startswith(f"# Annual evaluation {year}: PLP A\n")
    assert "The year is not over" in text
    assert {("on 1 January", "0"), ("now", "4"), ("joined", "5"), ("left", "1")} <= rows
    assert ("members targeted", "4", "8") in rows and ("acknowledgement rate", "50.0 %", "0.0 %") in rows
    assert ("police advice relayed by the coordinator", "1") in rows
    assert "first acknowledgement: 40 s (1 urgent alerts acknowledged)" in text


ROLES = {"admin": 200, "police_a": 200, "police_b": 403, "coordinator_a": 200, "coordinator_b": 403}


@pytest.mark.parametrize(("who", "expected"), ROLES.items())
async def test_who_may_read_the_evaluation(client: TestClient, cast: Cast, who: str, expected: int) -> None:
    """Admins, the PLP's coordinators and the police of its zone read it; others get a 403 saying why, in
    every format."""
    for fmt in (None, "csv", "md"):
        response = await client.get(evaluation_of(cast.plp_a, this_year(), fmt), headers=cast.auth(who))
        assert response.status == expected, await response.text()
        if expected == 403:
            problem = await response.json(content_type=None)
            assert response.content_type == "application/problem+json"
            assert problem["title"] == "Forbidden" and cast.plp_a in problem["detail"]


async def test_an_unknown_plp_is_a_404(client: TestClient, cast: Cast) -> None:
    response = await client.get(evaluation_of("no-such-plp", this_year()), headers=cast.auth("admin"))
    assert response.status == 404
    assert (await response.json())["errors"] == [{"field": "path.plp_id", "reason": "unknown PLP"}]


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("", "query.year", "required"),
        ("?year=twenty", "query.year", "integer"),
        ("?year=1999", "query.year", "2000"),
        ("?year=2025.5", "query.year", "integer"),
        ("?year={next}", "query.year", "has not begun in Europe/Brussels"),
        ("?year={this}&format=xlsx", "query.format", "'json', 'csv' or 'md'"),
        ("?year={this}&years=2", "query.years", "not permitted"),
    ],
)
async def test_a_bad_query_is_a_problem_naming_the_parameter(
    client: TestClient, cast: Cast, query: str, field: str, says: str
) -> None:
    """A missing, malformed, too early or future year, or an unknown format, is a 422 problem naming it."""
    path = PATH.format(plp_id=cast.plp_a) + query.format(next=this_year() + 1, this=this_year())
    response = await client.get(path, headers=cast.auth("coordinator_a"))
    problem = await response.json(content_type=None)
    assert response.status == 422 and response.content_type == "application/problem+json", problem
    [error] = problem["errors"]
    assert error["field"] == field and says in error["reason"], error


async def test_a_year_without_data_is_zeros_not_an_error(client: TestClient, cast: Cast) -> None:
    """2001, long before the PLP: zero members and alerts, null rates, twelve months of zeros, in each format."""
    ev = await get_json(client, evaluation_of(cast.plp_b, 2001), headers=cast.auth("coordinator_b"))
    assert ev["complete"] and ev["members"] == {"start": 0, "end": 0, "joined": 0, "left": 0, "opted_out": 0}
    assert ev["alerts"]["total"] == 0 and ev["reach"]["urgent"]["reach"] is None
    assert ev["cost"]["estimated"] == "0.00" and len(ev["months"]) == 12
    for fmt in ("csv", "md"):
        response = await client.get(evaluation_of(cast.plp_b, 2001, fmt), headers=cast.auth("coordinator_b"))
        assert response.status == 200


async def test_the_document_offers_json_csv_and_markdown(client: TestClient) -> None:
    """The OpenAPI document gives the three media types of the 200 answer and the year as required."""
    document = await get_json(client, "/v1/openapi.json", headers={})
    operation = document["paths"][PATH]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv", "text/markdown"}
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["year"]["required"] and not parameters["format"]["required"]
    assert "Evaluation" in document["components"]["schemas"]
