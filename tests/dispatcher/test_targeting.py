"""Alerts to part of their PLPs, end to end: the police preview and send an alert to sectors, a circle or
streets through the API, and the real fan-out plans exactly the members inside, once each.

Two PLPs of zone 5340 side by side (A, and C created here) share one person; a third (B) is in another zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from dispatcher.core.models import Category, ChannelName
from dispatcher.core.wording import default_answers
from dispatcher.pipeline.receipts import AnswerResult, Receipts
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.conftest import Cast
from tests.support import get_json, post_json, run_queued

CENTER = {"lat": 50.850, "lon": 4.350}
#: Two squares side by side in PLP A: west (4.350 to 4.352) and east (4.352 to 4.354).
WEST = {"type": "Polygon", "coordinates": [[[4.350, 50.845], [4.352, 50.845], [4.352, 50.848], [4.350, 50.848]]]}
EAST = {"type": "Polygon", "coordinates": [[[4.352, 50.845], [4.354, 50.845], [4.354, 50.848], [4.352, 50.848]]]}
for square in (WEST, EAST):
    square["coordinates"][0].append(square["coordinates"][0][0])  # closed
TEXTS = {"fr": "Cambriolage rue Neuve il y a 10 minutes"}


@dataclass
class Town:
    plp_c: str
    ids: dict[str, str]
    sectors: dict[str, str]


async def enroll(client: TestClient, cast: Cast, plp: str, name: str, phone: str, **place: Any) -> str:
    body = {"name": name, "phone": phone, "channels": ["sms"], **place}
    response = await client.post(f"/v1/plps/{plp}/members", json=body, headers=cast.auth("admin"))
    assert response.status in (200, 201), await response.text()
    return str((await response.json())["id"])


@pytest.fixture
async def town(client: TestClient, cast: Cast) -> Town:
    """PLP A and PLP C (zone 5340) side by side; members placed by position, street, or nothing."""
    charter = {"relay": "auto"}
    body = {"name": "PLP C", "commune": "Ixelles", "police_zone": "5340", "charter": charter}
    plp_c = (await post_json(client, "/v1/plps", body, headers=cast.auth("admin"), expect=201))["id"]
    a, c = cast.plp_a, plp_c
    ids = {
        "a_near": await enroll(client, cast, a, "A near", "0470 00 00 01", coordinates={"lat": 50.8502, "lon": 4.3502}),
        "a_far": await enroll(
            client,
            cast,
            a,
            "A far",
            "0470 00 00 02",
            coordinates={"lat": 50.8600, "lon": 4.3500},
            address={"street": "Rue Haute", "commune": "Bruxelles"},
        ),
        "a_west": await enroll(client, cast, a, "A west", "0470 00 00 03", coordinates={"lat": 50.8460, "lon": 4.3510}),
        "a_edge": await enroll(client, cast, a, "A edge", "0470 00 00 04", coordinates={"lat": 50.8460, "lon": 4.3520}),
        "a_street": await enroll(
            client, cast, a, "A street", "0470 00 00 05", address={"street": "Rue Neuve", "commune": "Bruxelles"}
        ),
        "a_nowhere": await enroll(client, cast, a, "A nowhere", "0470 00 00 06"),
        "c_near": await enroll(client, cast, c, "C near", "0470 00 00 07", coordinates={"lat": 50.8510, "lon": 4.3520}),
        "c_far": await enroll(client, cast, c, "C far", "0470 00 00 08", coordinates={"lat": 50.9000, "lon": 4.4000}),
        "both": await enroll(client, cast, a, "Both", "0470 00 00 09", coordinates={"lat": 50.8505, "lon": 4.3495}),
    }
    assert await enroll(client, cast, c, "Both", "0470 00 00 09") == ids["both"]  # the same person, linked
    sectors = {}
    for name, geometry, streets in (("West", WEST, []), ("East", EAST, ["Rue Neuve"])):
        sector = {"name": name, "geometry": geometry, "streets": streets}
        sectors[name] = (
            await post_json(client, f"/v1/plps/{a}/sectors", sector, headers=cast.auth("admin"), expect=201)
        )["id"]
    return Town(plp_c=plp_c, ids=ids, sectors=sectors)


def alert(plp_ids: list[str], area: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"urgency": "urgent", "category": "burglary", "plp_ids": plp_ids, "texts": TEXTS}
    return body | ({"area": area} if area is not None else {})


async def planned(client: TestClient, cast: Cast, runtime: Runtime, body: dict[str, Any]) -> set[str]:
    """Send the alert as the police of zone 5340, run its fan-out and sends; the members it planned."""
    sent = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    await run_queued(runtime)
    refs = runtime.sync_redis.zrange(runtime.keys.alert_deliveries(sent["id"]), 0, -1)
    members = [str(ref).split(":", 1)[1] for ref in refs]
    assert len(members) == len(set(members)), "a member got the alert twice"
    return set(members)


def named(town: Town, *names: str) -> set[str]:
    return {town.ids[name] for name in names}


CIRCLE = {"circle": {"center": CENTER, "radius_m": 300}}


@pytest.mark.parametrize(
    ("plps", "area", "reached"),
    [
        ("a", None, ("a_near", "a_far", "a_west", "a_edge", "a_street", "a_nowhere", "both")),
        ("ac", None, ("a_near", "a_far", "a_west", "a_edge", "a_street", "a_nowhere", "both", "c_near", "c_far")),
        ("ac", CIRCLE, ("a_near", "both", "c_near", "a_street", "a_nowhere")),  # across the PLPs' border
        ("a", {"sectors": ["West"]}, ("a_west", "a_nowhere")),  # the edge belongs to East, the first by name
        ("a", {"sectors": ["East"]}, ("a_edge", "a_street", "a_nowhere")),  # by position, and by street
        ("ac", {"sectors": ["West"]}, ("a_west", "a_nowhere", "c_near", "c_far", "both")),  # C has none: whole
        # by street: members without an address have no known place (reached by default), "A far" is in Rue Haute
        (
            "ac",
            {"streets": ["rue neuve"]},
            ("a_street", "a_near", "a_west", "a_edge", "a_nowhere", "both", "c_near", "c_far"),
        ),
    ],
    ids=["plp", "two-plps", "circle-across-plps", "sector-west", "sector-east", "sector-and-whole-plp", "streets"],
)
async def test_an_alert_reaches_exactly_the_members_inside_its_area_once(
    client: TestClient, cast: Cast, runtime: Runtime, town: Town, plps: str, area: Any, reached: tuple[str, ...]
) -> None:
    """Whole PLPs, a circle across two PLPs, sectors, streets: the members inside, and those without a place
    (reached by default), each once even when in two PLPs."""
    plp_ids = [cast.plp_a] + ([town.plp_c] if "c" in plps else [])
    if area and "sectors" in area:
        area = {"sectors": [town.sectors[name] for name in area["sectors"]]}
    assert await planned(client, cast, runtime, alert(plp_ids, area)) == named(town, *reached)


async def test_members_without_a_place_follow_their_plps_charter(
    client: TestClient, cast: Cast, runtime: Runtime, town: Town
) -> None:
    """A PLP whose charter keeps area alerts from members without a place leaves them out; the preview counts
    them apart either way."""
    body = alert([cast.plp_a, town.plp_c], CIRCLE)
    preview = await post_json(client, "/v1/alerts/preview", body, headers=cast.auth("police_a"), expect=200)
    assert (preview["members_reached"], preview["members_unlocated"], preview["members_unlocated_left_out"]) == (
        5,
        2,
        0,
    )

    plp = await get_json(client, f"/v1/plps/{cast.plp_a}", headers=cast.auth("admin"))
    charter = plp["charter"] | {"area_reaches_unlocated": False}
    response = await client.put(f"/v1/plps/{cast.plp_a}/charter", json=charter, headers=cast.auth("admin"))
    assert response.status == 200, await response.text()

    preview = await post_json(client, "/v1/alerts/preview", body, headers=cast.auth("police_a"), expect=200)
    assert (preview["members_reached"], preview["members_unlocated"], preview["members_unlocated_left_out"]) == (
        3,
        0,
        2,
    )
    assert await planned(client, cast, runtime, body) == named(town, "a_near", "both", "c_near")


async def test_the_preview_and_the_alert_count_members_per_plp_and_sector(
    client: TestClient, cast: Cast, runtime: Runtime, town: Town
) -> None:
    """The preview shows members per PLP and per sector and those without a place; the alert's counts agree."""
    body = alert([cast.plp_a], {"sectors": [town.sectors["West"], town.sectors["East"]]})
    preview = await post_json(client, "/v1/alerts/preview", body, headers=cast.auth("police_a"), expect=200)
    west, east = town.sectors["West"], town.sectors["East"]
    assert preview["by_plp"] == {cast.plp_a: 4}
    assert preview["by_sector"] == sorted(
        [
            {"plp_id": cast.plp_a, "sector_id": west, "members": 1},
            {"plp_id": cast.plp_a, "sector_id": east, "members": 2},
        ],
        key=lambda s: s["sector_id"],
    )
    assert preview["members_unlocated"] == 1
    assert preview["cost"]["sms_segments"] == 4

    sent = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    await run_queued(runtime)
    counts = (await get_json(client, f"/v1/alerts/{sent['id']}", headers=cast.auth("police_a")))["counts"]
    assert counts["by_sector"] == preview["by_sector"]
    assert counts["members_unlocated"] == 1
    assert counts["by_status"]["outbox"] == 4


async def test_an_area_names_sectors_of_its_plps_and_police_stay_in_their_zone(
    client: TestClient, cast: Cast, town: Town
) -> None:
    """A sector of no target PLP is a 422 naming it; the police of another zone are refused as before; an area
    of two kinds is a 422."""
    body = alert([town.plp_c], {"sectors": [town.sectors["West"]]})
    answer = await post_json(client, "/v1/alerts/preview", body, headers=cast.auth("police_a"), expect=422)
    assert answer["errors"][0]["field"] == "body.area.sectors[0]"
    body = alert([cast.plp_a], CIRCLE)
    await post_json(client, "/v1/alerts", body, headers=cast.auth("police_b"), expect=403)
    both = {"streets": ["Rue Neuve"], **CIRCLE}
    answer = await post_json(client, "/v1/alerts", alert([cast.plp_a], both), headers=cast.auth("police_a"), expect=422)
    assert answer["errors"][0]["field"] == "body.area"
    wide = {"circle": {"center": CENTER, "radius_m": 0}}
    answer = await post_json(client, "/v1/alerts", alert([cast.plp_a], wide), headers=cast.auth("police_a"), expect=422)
    assert answer["errors"][0]["field"] == "body.area.circle.radius_m"


async def test_the_evaluation_counts_alerts_and_reach_per_sector(
    client: TestClient, cast: Cast, runtime: Runtime, town: Town
) -> None:
    """A whole-PLP alert and an alert to West: the year's figures per sector, in JSON, CSV and Markdown."""
    await planned(client, cast, runtime, alert([cast.plp_a], None))
    await planned(client, cast, runtime, alert([cast.plp_a], {"sectors": [town.sectors["West"]]}))
    path = f"/v1/plps/{cast.plp_a}/evaluation?year={datetime.now(UTC).year}"
    figures = await get_json(client, path, headers=cast.auth("police_a"))
    west, east = town.sectors["West"], town.sectors["East"]
    assert figures["sectors"] == [
        {"sector_id": east, "name": "East", "alerts": 1, "aimed": 0, "members_targeted": 2},
        {"sector_id": west, "name": "West", "alerts": 2, "aimed": 1, "members_targeted": 2},
    ]
    response = await client.get(f"{path}&format=csv", headers=cast.auth("coordinator_a"))
    assert f"sectors.{west}.members_targeted,2" in await response.text()
    response = await client.get(f"{path}&format=md", headers=cast.auth("coordinator_a"))
    assert "| West | 2 | 1 | 2 |" in await response.text()


async def test_an_alerts_reach_per_sector_is_counts_for_the_police(
    client: TestClient, cast: Cast, runtime: Runtime, town: Town
) -> None:
    """Per sector: members planned, reached, acknowledged, with the sector's shape; no member's id or place."""
    sent = await post_json(client, "/v1/alerts", alert([cast.plp_a], None), headers=cast.auth("police_a"), expect=202)
    await run_queued(runtime)
    found = await get_json(client, f"/v1/alerts/{sent['id']}/sectors", headers=cast.auth("police_a"))
    counts = {s["name"]: (s["members"], s["reached"], s["acknowledged"]) for s in found["items"]}
    assert counts == {"East": (2, 0, 0), "West": (1, 0, 0)}  # the outbox reached nobody
    assert found["elsewhere"] == 4
    assert found["items"][0]["geometry"]["type"] == "Polygon"
    assert not any(member_id in str(found) for member_id in town.ids.values())


async def test_an_alerts_answers_per_sector_are_counts_of_each_members_latest_answer(
    client: TestClient, cast: Cast, runtime: Runtime, town: Town
) -> None:
    """Per sector, each answer option of the alert with the members of the sector whose latest answer it is: the
    police read counts, never who answered; members in no sector count in no sector."""
    sent = await post_json(client, "/v1/alerts", alert([cast.plp_a], None), headers=cast.auth("police_a"), expect=202)
    await run_queued(runtime)
    saw, nothing, camera = default_answers(Category.BURGLARY)
    async with runtime.async_redis() as redis:
        receipts = Receipts(Store(redis, runtime.keys))
        for name, answer in (("a_west", nothing), ("a_west", saw), ("a_edge", camera), ("a_street", nothing)):
            delivery = f"{sent['id']}:sms:{town.ids[name]}"
            assert await receipts.answer(delivery, answer, via=ChannelName.SMS) is not AnswerResult.ENDED
        await receipts.answer(f"{sent['id']}:sms:{town.ids['a_nowhere']}", saw, via=ChannelName.SMS)
    found = await get_json(client, f"/v1/alerts/{sent['id']}/sectors", headers=cast.auth("police_a"))
    answers = {s["name"]: s["answers"] for s in found["items"]}
    assert answers == {"East": {"saw": 0, "nothing": 1, "camera": 1}, "West": {"saw": 1, "nothing": 0, "camera": 0}}
    assert list(answers["East"]) == ["saw", "nothing", "camera"]  # in the alert's order
    assert not any(member_id in str(found) for member_id in town.ids.values())
