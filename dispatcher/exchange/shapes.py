"""An alert's area in CAP 1.2's words, and back: a sector's shape as ``polygon`` strings, a circle as a
``circle`` string, and those strings read and checked.

CAP writes a point ``lat,lon`` in WGS 84 (GeoJSON, as sectors are stored, writes ``[lon, lat]``); a
``polygon`` is at least four such pairs, space-separated, its first pair also its last; a ``circle`` is a
centre and a radius in kilometres (``50.85,4.35 0.5``). CAP has no holes: a sector's polygon is its
exterior ring(s) only, and the sector's own ``PLP-sector`` geocode is what a document read back here
goes by (see ``docs/api.md``, CAP 1.2). Numbers are written in decimal, never in exponent form, each the
shortest that reads back to the same float, so that a round trip keeps a circle exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from dispatcher.core.places import Circle, Coordinates

#: ``geocode/valueName`` of an area that is one sector of a PLP; its ``value`` is the sector's id.
GEOCODE_SECTOR = "PLP-sector"
#: ``geocode/valueName`` of one street an alert's area is made of; its ``value`` is the street's name.
GEOCODE_STREET = "PLP-street"
#: The fewest pairs of a CAP polygon (a triangle, closed).
MIN_POLYGON_POINTS = 4
#: The largest circle an alert takes (``Circle.radius_m``), in kilometres as CAP writes it.
MAX_RADIUS_KM = Decimal(50)


class ShapeRefused(ValueError):
    """A ``polygon`` or ``circle`` string that is no shape; the message says why, in words a sender can act on."""


@dataclass(frozen=True)
class CapCircle:
    """A circle read from a document: its centre, its radius in metres."""

    lat: float
    lon: float
    radius_m: float

    def as_circle(self) -> Circle:
        return Circle(center=Coordinates(lat=self.lat, lon=self.lon), radius_m=self.radius_m)


def polygons_of(geometry: dict[str, Any] | None) -> tuple[str, ...]:
    """A sector's stored GeoJSON Polygon or MultiPolygon as CAP polygons: the exterior ring of each polygon,
    ``lat,lon`` pairs (holes left out: CAP cannot express them). No geometry: none."""
    if geometry is None:
        return ()
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return tuple(" ".join(f"{_decimal(p[1])},{_decimal(p[0])}" for p in polygon[0]) for polygon in polygons)


def circle_text(circle: Circle) -> str:
    """An alert's circle (its centre located) as CAP writes it: ``lat,lon radius_km``."""
    assert circle.center is not None, "an alert's circle is located before it is accepted"
    radius_km = Decimal(repr(float(circle.radius_m))).scaleb(-3)
    return f"{_decimal(circle.center.lat)},{_decimal(circle.center.lon)} {_plain(radius_km)}"


def read_circle(text: str) -> CapCircle:
    """A CAP ``circle`` string as a circle; raises ``ShapeRefused`` for one that is not ``lat,lon radius_km``
    with a point on the Earth and a radius above 0 and at most 50 km."""
    parts = text.split()
    if len(parts) != 2:
        raise ShapeRefused(f"{text!r} is not a circle: write its centre and its radius in km, as 50.85,4.35 0.5")
    lat, lon = read_point(parts[0])
    try:
        radius_km = Decimal(parts[1])
    except InvalidOperation:
        radius_km = Decimal("NaN")
    if not radius_km.is_finite() or not 0 < radius_km <= MAX_RADIUS_KM:
        raise ShapeRefused(f"radius {parts[1]!r}: a circle's radius is a number of km above 0, at most 50")
    return CapCircle(lat=lat, lon=lon, radius_m=float(radius_km.scaleb(3)))


def check_polygon(text: str) -> None:
    """Raises ``ShapeRefused`` for a CAP ``polygon`` string that is not at least four ``lat,lon`` points on
    the Earth, its first also its last."""
    points = [read_point(pair) for pair in text.split()]
    if len(points) < MIN_POLYGON_POINTS:
        raise ShapeRefused(
            f"{len(points)} points: a polygon has at least {MIN_POLYGON_POINTS} lat,lon pairs, the first repeated last"
        )
    if points[0] != points[-1]:
        raise ShapeRefused("a polygon ends where it starts: repeat its first lat,lon pair last")


def read_point(pair: str) -> tuple[float, float]:
    """A ``lat,lon`` pair; raises ``ShapeRefused`` unless it is two numbers on the Earth."""
    try:
        lat, lon = (float(part) for part in pair.split(","))
    except ValueError:
        raise ShapeRefused(f"{pair!r} is not a point: write lat,lon in degrees (WGS 84), as 50.85,4.35") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ShapeRefused(f"{pair!r} is off the Earth: latitude -90 to 90, then longitude -180 to 180")
    return lat, lon


def _decimal(value: float) -> str:
    """The shortest decimal that reads back as ``value`` (``repr``), never in exponent form."""
    return _plain(Decimal(repr(float(value))))


def _plain(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text
