"""Who is inside an alert's area, as tables: polygons, multipolygons, holes, edges, circles, streets, and
members whose place is unknown under both charter options."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dispatcher.core.models import Charter, Language, Member, Plp
from dispatcher.core.places import Address, AreaIn, Location, LocationSource, Sector
from dispatcher.geo.areas import Placement, Reach, Sectors, Targeting
from dispatcher.geo.shapes import distance_m

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def ring(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


#: A square with a square hole in its middle, and a multipolygon of two squares apart.
DONUT = {"type": "Polygon", "coordinates": [ring(4.30, 50.80, 4.40, 50.90), ring(4.34, 50.84, 4.36, 50.86)]}
ISLANDS = {"type": "MultiPolygon", "coordinates": [[ring(4.00, 50.00, 4.01, 50.01)], [ring(4.10, 50.00, 4.11, 50.01)]]}
WEST = {"type": "Polygon", "coordinates": [ring(4.350, 50.845, 4.352, 50.848)]}
EAST = {"type": "Polygon", "coordinates": [ring(4.352, 50.845, 4.354, 50.848)]}


def sector(sector_id: str, geometry: dict[str, Any] | None = None, streets: list[str] | None = None) -> Sector:
    return Sector(id=sector_id, plp_id="p", name=sector_id, geometry=geometry, streets=streets or [], created_at=NOW)


def member(
    lat: float | None = None, lon: float | None = None, *, street: str | None = None, by_hand: str | None = None
) -> Member:
    location = Location(lat=lat, lon=lon, source=LocationSource.GIVEN, at=NOW) if lat is not None else None
    address = Address(street=street, commune="Bruxelles") if street else None
    return Member(
        id="m1",
        name="M",
        email="m@example.org",
        language=Language.FR,
        channels=[],
        consent_at=NOW,
        plp_ids=["p"],
        created_at=NOW,
        updated_at=NOW,
        location=location,
        address=address,
        sector_ids={"p": by_hand} if by_hand else {},
    )


SECTORS = Sectors.of(
    "p", [sector("donut", DONUT), sector("islands", ISLANDS), sector("west", WEST), sector("east", EAST, ["Rue Neuve"])]
)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (member(50.82, 4.32), "donut"),
        (member(50.85, 4.35), None),  # in the donut's hole: in no sector
        (member(50.84, 4.35), "donut"),  # on the hole's edge: in
        (member(50.80, 4.35), "donut"),  # on the outer edge: in
        (member(50.005, 4.005), "islands"),
        (member(50.005, 4.105), "islands"),
        (member(50.005, 4.05), None),  # between the islands
        (member(50.846, 4.352), "east"),  # on the edge shared by west and east: the first by name
        (member(50.846, 4.351), "west"),
        (member(street="rue  neuve"), "east"),  # no position: by street, written otherwise
        (member(50.0, 3.0, street="Rue Neuve"), "east"),  # a position in no shape: by street
        (member(50.846, 4.351, by_hand="islands"), "islands"),  # set by hand
        (member(50.846, 4.351, by_hand="gone"), "west"),  # set by hand to a sector deleted since
        (member(), None),
    ],
)
def test_a_members_sector(who: Member, expected: str | None) -> None:
    """By hand, else the shape that covers the position (edges and holes' edges included), else the street."""
    assert SECTORS.sector_of(who) == expected


PLP = Plp(id="p", name="P", commune="Bruxelles", police_zone="5340", created_at=NOW)
SILENT = PLP.model_copy(update={"charter": Charter(area_reaches_unlocated=False)})


def targeting(area: dict[str, Any], plp: Plp = PLP) -> Targeting:
    return Targeting.of(AreaIn.model_validate(area), plp, SECTORS.sectors)


@pytest.mark.parametrize(
    ("area", "who", "expected"),
    [
        ({"sectors": ["donut"]}, member(50.82, 4.32), Reach.REACHED),
        ({"sectors": ["donut"]}, member(50.85, 4.35), Reach.OUTSIDE),  # in the hole
        ({"sectors": ["islands"]}, member(50.005, 4.105), Reach.REACHED),
        ({"sectors": ["west"]}, member(50.846, 4.352), Reach.OUTSIDE),  # the shared edge is east's
        ({"sectors": ["west", "east"]}, member(50.846, 4.352), Reach.REACHED),
        ({"sectors": ["east"]}, member(street="Rue Neuve"), Reach.REACHED),
        ({"sectors": ["east"]}, member(street="Rue Haute"), Reach.UNLOCATED),  # no position, street in no list
        ({"sectors": ["east"]}, member(), Reach.UNLOCATED),
        ({"circle": {"center": {"lat": 50.85, "lon": 4.35}, "radius_m": 500}}, member(50.853, 4.35), Reach.REACHED),
        ({"circle": {"center": {"lat": 50.85, "lon": 4.35}, "radius_m": 300}}, member(50.853, 4.35), Reach.OUTSIDE),
        (
            {"circle": {"center": {"lat": 50.85, "lon": 4.35}, "radius_m": 500}},
            member(street="Rue Neuve"),
            Reach.UNLOCATED,
        ),
        ({"streets": ["RUE NEUVE"]}, member(street="Rue Neuve"), Reach.REACHED),
        ({"streets": ["Avenue Louise"]}, member(street="av. Louise"), Reach.REACHED),
        ({"streets": ["Rue Neuve"]}, member(street="Rue Haute"), Reach.OUTSIDE),
        ({"streets": ["Rue Neuve"]}, member(50.85, 4.35), Reach.UNLOCATED),  # a position, no street
    ],
)
def test_who_an_area_reaches(area: dict[str, Any], who: Member, expected: Reach) -> None:
    """Sectors (holes, multipolygons, shared edges), circles and streets place each member."""
    assert targeting(area).reach(who) is expected


CIRCLE = {"circle": {"center": {"lat": 50, "lon": 4}, "radius_m": 9}}


@pytest.mark.parametrize("area", [{"sectors": ["east"]}, CIRCLE, {"streets": ["Rue Neuve"]}])
def test_members_without_a_place_follow_the_charter(area: dict[str, Any]) -> None:
    """Reached and counted apart by default; left out when the charter says area alerts do not reach them."""
    assert targeting(area).reach(member()) is Reach.UNLOCATED
    assert targeting(area, SILENT).reach(member()) is Reach.LEFT_OUT
    assert Targeting.of(None, SILENT, []).reach(member()) is Reach.REACHED  # a whole-PLP alert reaches everyone


def test_a_circle_is_measured_on_the_earth() -> None:
    """500 m north of a point is 500 m away, within a metre; the placement agrees at the edge."""
    north = 50.85 + 500 / 111_195
    assert distance_m(50.85, 4.35, north, 4.35) == pytest.approx(500, abs=1)
    edge = targeting({"circle": {"center": {"lat": 50.85, "lon": 4.35}, "radius_m": 501}})
    assert edge.area is not None and edge.area.placement(member(north, 4.35), "p") is Placement.INSIDE
