"""A PLP's sectors through the API: drawn or imported as GeoJSON, checked with clear errors, listed, deleted;
and a member's sector, from their position, by hand, or by their street."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Cast
from tests.support import get_json, post_json


def polygon(*ring: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


def box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    return polygon((west, south), (east, south), (east, north), (west, north), (west, south))


#: Two squares side by side around the Grand-Place (lon 4.350 to 4.352 and 4.352 to 4.354).
WEST = box(4.350, 50.845, 4.352, 50.848)
EAST = box(4.352, 50.845, 4.354, 50.848)
BOWTIE = polygon((4.35, 50.84), (4.36, 50.85), (4.36, 50.84), (4.35, 50.85), (4.35, 50.84))
SHORT = polygon((4.35, 50.84), (4.36, 50.85), (4.35, 50.84))
OPEN = polygon((4.35, 50.84), (4.36, 50.85), (4.36, 50.84), (4.35, 50.85))
SWAPPED = polygon((50.84, 4.35), (50.85, 4.36), (200, 4.36), (50.84, 4.35))
TEXT = {"type": "Polygon", "coordinates": [[["4.35", 50.84], [4.36, 50.85], [4.36, 50.84], ["4.35", 50.84]]]}
MULTI = {"type": "MultiPolygon", "coordinates": [WEST["coordinates"], BOWTIE["coordinates"]]}


def sectors_of(plp_id: str) -> str:
    return f"/v1/plps/{plp_id}/sectors"


async def add_sector(client: TestClient, cast: Cast, body: dict[str, Any], *, expect: int = 201) -> Any:
    return await post_json(client, sectors_of(cast.plp_a), body, headers=cast.auth("coordinator_a"), expect=expect)


async def test_a_coordinator_draws_sectors_and_everyone_of_the_plp_lists_them(client: TestClient, cast: Cast) -> None:
    """A polygon and a street list are sectors; the coordinator and the police of the zone list them by name."""
    west = await add_sector(client, cast, {"name": "West", "geometry": WEST})
    streets = await add_sector(client, cast, {"name": "Centre streets", "streets": ["Rue Neuve", "Grand-Place"]})
    assert west["geometry"] == WEST
    for who in ("coordinator_a", "police_a"):
        listed = await get_json(client, sectors_of(cast.plp_a), headers=cast.auth(who))
        assert [s["id"] for s in listed["items"]] == [streets["id"], west["id"]]
    response = await client.get(sectors_of(cast.plp_a), headers=cast.auth("police_b"))
    assert response.status == 403


async def test_the_police_and_other_coordinators_may_not_draw_sectors(client: TestClient, cast: Cast) -> None:
    """Sectors are the PLP's coordinators' (and admins'): 403 for the police and another PLP's coordinator."""
    for who in ("police_a", "coordinator_b"):
        response = await client.post(
            sectors_of(cast.plp_a), json={"name": "X", "geometry": WEST}, headers=cast.auth(who)
        )
        assert response.status == 403


@pytest.mark.parametrize(
    ("geometry", "field", "words"),
    [
        ({"type": "Point", "coordinates": [4.35, 50.84]}, "body.geometry.type", "Polygon or MultiPolygon"),
        (SHORT, "body.geometry.coordinates[0]", "at least 4"),
        (OPEN, "body.geometry.coordinates[0]", "end where it starts"),
        (SWAPPED, "body.geometry.coordinates[0][2]", "off the Earth"),
        (TEXT, "body.geometry.coordinates[0][0]", "two numbers"),
        (BOWTIE, "body.geometry.coordinates", "self-intersection near [4.355, 50.845]"),
        (MULTI, "body.geometry.coordinates[1]", "self-intersection"),
        ({"type": "Polygon", "coordinates": []}, "body.geometry.coordinates", "non-empty"),
    ],
    ids=["point", "short-ring", "open-ring", "off-earth", "text", "bowtie", "multi-bowtie", "empty"],
)
async def test_an_invalid_shape_is_a_422_saying_what_and_where(
    client: TestClient, cast: Cast, geometry: dict[str, Any], field: str, words: str
) -> None:
    """Each way a shape can be wrong is refused with the place in the body and what to do, never a 500."""
    answer = await add_sector(client, cast, {"name": "Bad", "geometry": geometry}, expect=422)
    [error] = answer["errors"]
    assert error["field"] == field
    assert words in error["reason"]


async def test_a_sector_needs_a_shape_or_streets_and_a_free_name(client: TestClient, cast: Cast) -> None:
    """No geometry and no streets is a 422; a name the PLP has already is a 409."""
    answer = await add_sector(client, cast, {"name": "Empty"}, expect=422)
    assert answer["errors"][0]["field"] == "body"
    await add_sector(client, cast, {"name": "West", "geometry": WEST})
    answer = await add_sector(client, cast, {"name": "west", "geometry": EAST}, expect=409)
    assert answer["errors"][0]["field"] == "body.name"


async def test_a_geojson_file_imports_all_its_sectors_or_none(client: TestClient, cast: Cast) -> None:
    """A FeatureCollection (as QGIS or geojson.io writes it) imports each named feature; one bad feature refuses
    the file, naming the feature."""
    good = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "West"}, "geometry": WEST},
            {"type": "Feature", "properties": {"naam": "Oost", "streets": ["Rue Neuve"]}, "geometry": EAST},
        ],
    }
    crossed = {"type": "Feature", "properties": {"name": "X"}, "geometry": BOWTIE}
    bad = {"type": "FeatureCollection", "features": [*good["features"], crossed]}
    path = f"{sectors_of(cast.plp_a)}/import"
    answer = await post_json(client, path, bad, headers=cast.auth("coordinator_a"), expect=422)
    assert answer["errors"][0]["field"] == "body.features[2].geometry.coordinates"
    assert (await get_json(client, sectors_of(cast.plp_a), headers=cast.auth("coordinator_a")))["items"] == []

    imported = await post_json(client, path, good, headers=cast.auth("coordinator_a"), expect=201)
    assert [(s["name"], s["streets"]) for s in imported["items"]] == [("West", []), ("Oost", ["Rue Neuve"])]
    unnamed = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": WEST}]}
    answer = await post_json(client, path, unnamed, headers=cast.auth("coordinator_a"), expect=422)
    assert answer["errors"][0]["field"] == "body.features[0].properties.name"


async def test_a_deleted_sector_is_gone(client: TestClient, cast: Cast) -> None:
    west = await add_sector(client, cast, {"name": "West", "geometry": WEST})
    path = f"{sectors_of(cast.plp_a)}/{west['id']}"
    assert (await client.delete(path, headers=cast.auth("coordinator_a"))).status == 204
    assert (await client.delete(path, headers=cast.auth("coordinator_a"))).status == 404
    assert (await get_json(client, sectors_of(cast.plp_a), headers=cast.auth("coordinator_a")))["items"] == []


async def test_a_members_sector_follows_position_then_hand_then_street(client: TestClient, cast: Cast) -> None:
    """By position (on the shared edge: the first sector by name), set by hand, or by street without a position."""
    west = await add_sector(client, cast, {"name": "West", "geometry": WEST})
    east = await add_sector(client, cast, {"name": "East", "geometry": EAST, "streets": ["Rue Neuve"]})
    members = f"/v1/plps/{cast.plp_a}/members"
    headers = cast.auth("coordinator_a")

    async def enroll(name: str, **place: Any) -> dict[str, Any]:
        body = {"name": name, "email": f"{name}@example.org", **place}
        return await post_json(client, members, body, headers=headers, expect=201)

    in_west = await enroll("w", coordinates={"lat": 50.846, "lon": 4.351})
    on_edge = await enroll("e", coordinates={"lat": 50.846, "lon": 4.352})
    by_street = await enroll("s", address={"street": "rue neuve", "number": "5", "commune": "Bruxelles"})
    nowhere = await enroll("n", coordinates={"lat": 50.9, "lon": 4.4})
    assert [m["sector_id"] for m in (in_west, on_edge, by_street, nowhere)] == [
        west["id"],
        east["id"],
        east["id"],
        None,
    ]

    response = await client.patch(f"{members}/{in_west['id']}", json={"sector_id": east["id"]}, headers=headers)
    assert (await response.json())["sector_id"] == east["id"]
    response = await client.patch(f"{members}/{in_west['id']}", json={"sector_id": None}, headers=headers)
    assert (await response.json())["sector_id"] == west["id"]
    response = await client.patch(f"{members}/{in_west['id']}", json={"sector_id": "nope"}, headers=headers)
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "body.sector_id"


async def test_the_member_list_filters_by_sector_and_not_located(client: TestClient, cast: Cast) -> None:
    """sector=<id>, sector=none and located=false list those members only, a page at a time."""
    west = await add_sector(client, cast, {"name": "West", "geometry": WEST})
    members, headers = f"/v1/plps/{cast.plp_a}/members", cast.auth("coordinator_a")
    ids = {}
    for name, place in (
        ("w1", {"coordinates": {"lat": 50.846, "lon": 4.351}}),
        ("w2", {"coordinates": {"lat": 50.847, "lon": 4.3505}}),
        ("out", {"coordinates": {"lat": 50.9, "lon": 4.4}}),
        ("lost", {}),
    ):
        body = {"name": name, "email": f"{name}@example.org", **place}
        ids[name] = (await post_json(client, members, body, headers=headers, expect=201))["id"]

    async def listed(query: str) -> set[str]:
        found, cursor = set(), ""
        while True:
            page = await get_json(client, f"{members}?{query}&limit=1{cursor}", headers=headers)
            found |= {m["id"] for m in page["items"]}
            if page["next_cursor"] is None:
                return found
            cursor = f"&cursor={page['next_cursor']}"

    assert await listed(f"sector={west['id']}") == {ids["w1"], ids["w2"]}
    assert await listed("sector=none") == {ids["out"], ids["lost"]}
    assert await listed("located=false") == {ids["lost"]}
    lost = (await get_json(client, f"{members}?located=false", headers=headers))["items"][0]
    assert lost["locating"]["reason"] == "no address or position is known"
    response = await client.get(f"{members}?sector=West", headers=headers)
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "query.sector"


async def test_a_sector_set_by_hand_goes_when_the_member_leaves_the_plp(client: TestClient, cast: Cast) -> None:
    """A member of two PLPs who leaves the one whose sector was set by hand keeps nothing of it."""
    west = await add_sector(client, cast, {"name": "West", "geometry": WEST})
    body = {"name": "Ann", "phone": "0470 99 88 77"}
    ann = await post_json(client, f"/v1/plps/{cast.plp_a}/members", body, headers=cast.auth("admin"), expect=201)
    await post_json(client, f"/v1/plps/{cast.plp_b}/members", body, headers=cast.auth("admin"), expect=200)
    path = f"/v1/plps/{cast.plp_a}/members/{ann['id']}"
    response = await client.patch(path, json={"sector_id": west["id"]}, headers=cast.auth("admin"))
    assert (await response.json())["sector_ids"] == {cast.plp_a: west["id"]}
    assert (await client.delete(path, headers=cast.auth("admin"))).status == 204
    left = await get_json(client, f"/v1/plps/{cast.plp_b}/members/{ann['id']}", headers=cast.auth("admin"))
    assert left["sector_ids"] == {}


async def test_an_import_with_two_features_of_one_name_is_a_409_naming_the_second(
    client: TestClient, cast: Cast
) -> None:
    """Names are compared without case, within the file as against the PLP's sectors."""
    twice = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "West"}, "geometry": WEST},
            {"type": "Feature", "properties": {"name": "WEST"}, "geometry": EAST},
        ],
    }
    path = f"{sectors_of(cast.plp_a)}/import"
    answer = await post_json(client, path, twice, headers=cast.auth("coordinator_a"), expect=409)
    assert answer["errors"] == [
        {"field": "body.features[1].properties.name", "reason": "the same name as body.features[0].properties.name"}
    ]
