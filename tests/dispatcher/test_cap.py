"""The CAP 1.2 formats on their own (``dispatcher.exchange``): the vendored schema, CAP's times and
languages, what a document holds whatever an alert's text, and an alert's area as CAP shapes and back."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources

import pytest
from lxml import etree

from dispatcher.core.models import Alert, Category, Language, Role, Urgency
from dispatcher.core.places import AreaIn, Circle, Coordinates
from dispatcher.exchange import CapArea, CapRefused, alert_document, parse, read_alert
from dispatcher.exchange.cap import cap_time, language_of, parse_time, sender_for
from dispatcher.exchange.shapes import ShapeRefused, check_polygon, circle_text, polygons_of, read_circle

SCHEMA_SHA256 = "b7798ef25868b068c97b268bda02d067c7d4ba9373adc5638bf37105804ee723"
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
SENDER = "plp-dispatch@plp.example.be"
NOW = datetime(2026, 12, 4, 9, 30, 15, 123456, tzinfo=UTC)


def _schema_bytes() -> bytes:
    return resources.files("dispatcher.exchange").joinpath("schema/CAP-v1.2.xsd").read_bytes()


SCHEMA = etree.XMLSchema(etree.fromstring(_schema_bytes()))


def _alert(**fields: object) -> Alert:
    values: dict[str, object] = {
        "id": "0123456789abcdef",
        "author_id": "officer",
        "author_role": Role.POLICE,
        "urgency": Urgency.URGENT,
        "category": Category.BURGLARY,
        "plp_ids": ["parc"],
        "texts": {Language.FR: "Cambriolage rue du Parc"},
        "ttl_seconds": 7200,
        "created_at": NOW,
    } | fields
    return Alert.model_validate(values)


def _valid(data: bytes) -> etree._Element:
    root = etree.fromstring(data)
    assert SCHEMA.validate(root), [e.message for e in SCHEMA.error_log]
    return root


def test_the_vendored_schema_is_the_oasis_file_unchanged() -> None:
    """The schema shipped is OASIS's CAP 1.2 XSD byte for byte (see its NOTICE.md), with its copyright."""
    data = _schema_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256
    assert b"Copyright OASIS Open 2010" in data
    assert resources.files("dispatcher.exchange").joinpath("schema/NOTICE.md").is_file()


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (NOW, "2026-12-04T09:30:15-00:00"),
        (datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), "2026-07-01T10:00:00-00:00"),
    ],
)
def test_times_are_written_to_the_second_in_utc_as_minus_zero(moment: datetime, written: str) -> None:
    """CAP forbids "Z": UTC is written -00:00, without fractions of a second."""
    assert cap_time(moment) == written


@pytest.mark.parametrize(
    ("written", "moment"),
    [
        ("2026-12-04T10:30:15+01:00", datetime(2026, 12, 4, 9, 30, 15, tzinfo=UTC)),
        ("2026-12-04T09:30:15-00:00", datetime(2026, 12, 4, 9, 30, 15, tzinfo=UTC)),
        ("2026-12-04T04:00:00-05:30", datetime(2026, 12, 4, 9, 30, tzinfo=UTC)),
    ],
)
def test_times_are_read_with_their_offset(written: str, moment: datetime) -> None:
    assert parse_time(written) == moment


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("fr-BE", Language.FR),
        ("fr", Language.FR),
        ("FR-fr", Language.FR),
        ("nl-BE", Language.NL),
        ("nl-NL", Language.NL),
        ("de-BE", Language.DE),
        ("en", Language.EN),
        ("en-US", Language.EN),
        ("es-ES", None),
        ("frr", None),
        ("", None),
    ],
)
def test_a_language_is_read_by_its_primary_tag(code: str, language: Language | None) -> None:
    assert language_of(code) is language


def test_the_sender_is_named_after_the_public_host() -> None:
    assert sender_for("https://plp.example.be/") == "plp-dispatch@plp.example.be"
    assert sender_for("http://127.0.0.1:8080") == "plp-dispatch@127.0.0.1"


def test_characters_xml_cannot_hold_are_left_out_and_markup_is_escaped() -> None:
    """A text with control characters and markup still makes a valid document, read back as written."""
    text = "Voiture <grise> & \x01plaque\x0b 1-ABC-123\ttab\nligne"
    root = _valid(alert_document(_alert(texts={Language.FR: text}), sender=SENDER, areas=[CapArea("parc", "Parc")]))
    assert root.findtext("cap:info/cap:description", namespaces=NS) == "Voiture <grise> & plaque 1-ABC-123\ttab\nligne"


def test_a_long_text_has_a_short_headline() -> None:
    """The headline is the text on one line, cut at 160 characters; the description is the whole text."""
    text = "Cambriolage " * 100
    root = _valid(alert_document(_alert(texts={Language.FR: text}), sender=SENDER, areas=[CapArea("parc", "Parc")]))
    headline = root.findtext("cap:info/cap:headline", namespaces=NS)
    assert len(headline) == 160 and headline.endswith("…")
    assert root.findtext("cap:info/cap:description", namespaces=NS) == text


def test_a_sector_area_writes_its_polygons_then_its_geocodes_and_reads_back_as_the_sector() -> None:
    """A sector's area holds its description, its polygons, then the geocodes of its PLP and of the sector, as
    CAP orders them; the document reads back to the same PLP and the sector as the alert's area."""
    area = CapArea(
        "parc",
        "Nord, PLP Parc (Ixelles)",
        polygons=("50.82,4.36 50.83,4.37 50.82,4.38 50.82,4.36",),
        sector_id="s-nord",
    )
    root = _valid(alert_document(_alert(), sender=SENDER, areas=[area]))
    element = root.find("cap:info/cap:area", namespaces=NS)
    assert [etree.QName(c).localname for c in element] == ["areaDesc", "polygon", "geocode", "geocode"]
    assert element.xpath("cap:geocode/cap:valueName/text()", namespaces=NS) == ["PLP", "PLP-sector"]
    alert = read_alert(parse(etree.tostring(root)), sender=SENDER, now=NOW)
    assert [p.plp_id for p in alert.plps] == ["parc"]
    assert alert.area == AreaIn(sectors=["s-nord"])
    assert alert.sector_locations == ("/alert/info/area/geocode[2]/value",)


#: A square with a square hole, around the Grand-Place (GeoJSON: [lon, lat]).
HOLED = {
    "type": "Polygon",
    "coordinates": [
        [[4.35, 50.845], [4.354, 50.845], [4.354, 50.848], [4.35, 50.848], [4.35, 50.845]],
        [[4.351, 50.846], [4.352, 50.846], [4.352, 50.847], [4.351, 50.846]],
    ],
}


def test_a_sector_shape_is_written_lat_lon_by_its_exterior_rings() -> None:
    """GeoJSON's [lon, lat] become CAP's lat,lon pairs, the first repeated last; a hole is left out (CAP has
    none); a MultiPolygon is one polygon per part; no geometry, no polygon."""
    ring = "50.845,4.35 50.845,4.354 50.848,4.354 50.848,4.35 50.845,4.35"
    assert polygons_of(HOLED) == (ring,)
    multi = {"type": "MultiPolygon", "coordinates": [HOLED["coordinates"], [HOLED["coordinates"][1]]]}
    assert polygons_of(multi) == (ring, "50.846,4.351 50.846,4.352 50.847,4.352 50.846,4.351")
    assert polygons_of(None) == ()
    for polygon in polygons_of(multi):
        check_polygon(polygon)


@pytest.mark.parametrize(
    ("lat", "lon", "radius_m", "written"),
    [
        (50.8503, 4.3517, 500, "50.8503,4.3517 0.5"),
        (50.8503, 4.3517, 333.3, "50.8503,4.3517 0.3333"),
        (-33.9, -70.1, 50_000, "-33.9,-70.1 50"),
        (50.123456789012345, 4.1, 0.1, "50.123456789012344,4.1 0.0001"),
    ],
)
def test_a_circle_is_written_in_km_and_read_back_exactly(lat: float, lon: float, radius_m: float, written: str) -> None:
    """CAP's circle is "lat,lon radius_km" in decimals (never an exponent); read back, it is the same circle."""
    circle = Circle(center=Coordinates(lat=lat, lon=lon), radius_m=radius_m)
    assert circle_text(circle) == written
    assert read_circle(written).as_circle() == circle


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("50.85,4.35", "not a circle"),
        ("50.85,4.35 0", "radius '0'"),
        ("50.85,4.35 -1", "radius '-1'"),
        ("50.85,4.35 50.001", "at most 50"),
        ("50.85,4.35 km", "radius 'km'"),
        ("50.85,4.35 NaN", "radius 'NaN'"),
        ("4.35;50.85 1", "not a point"),
        ("95,4.35 1", "off the Earth"),
    ],
)
def test_a_circle_that_is_no_circle_is_refused_saying_why(text: str, words: str) -> None:
    with pytest.raises(ShapeRefused, match=re.escape(words)):
        read_circle(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("50.82,4.36 50.83,4.37 50.82,4.36", "3 points"),
        ("", "0 points"),
        ("50.82,4.36 50.83,4.37 50.82,4.38 50.83,4.36", "ends where it starts"),
        ("50.82,4.36 50.83 50.82,4.38 50.82,4.36", "'50.83' is not a point"),
        ("50.82,4.36 50.83,190 50.82,4.38 50.82,4.36", "off the Earth"),
    ],
)
def test_a_polygon_that_is_no_polygon_is_refused_saying_why(text: str, words: str) -> None:
    with pytest.raises(ShapeRefused, match=re.escape(words)):
        check_polygon(text)


def test_a_document_in_utf16_with_a_doctype_is_refused_too() -> None:
    """A DOCTYPE the byte search cannot see (UTF-16) is found once parsed."""
    text = (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE alert><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>'
    )
    with pytest.raises(CapRefused) as refused:
        parse(text.encode("utf-16"))
    assert [(f.location, "DOCTYPE" in f.reason) for f in refused.value.faults] == [("body", True)]


@pytest.mark.parametrize("expires", ["2026-12-04T24:00:00+01:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_the_schema_takes_but_no_calendar_holds_is_a_fault(expires: str) -> None:
    """An expires past the calendar is named, never an error of the service."""
    data = alert_document(_alert(), sender=SENDER, areas=[CapArea("parc", "Parc")])
    root = parse(data)
    root.find("cap:info/cap:expires", namespaces=NS).text = expires
    with pytest.raises(CapRefused) as refused:
        read_alert(root, sender=SENDER, now=NOW)
    assert refused.value.faults[0].location == "/alert/info/expires"
