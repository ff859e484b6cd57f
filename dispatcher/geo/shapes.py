"""Sectors' shapes: GeoJSON polygons and multipolygons read into shapely, checked, and asked what they cover.

GeoJSON writes positions as ``[longitude, latitude]`` (RFC 7946); a shape is checked as a whole
(types, rings closed, at least four positions a ring, coordinates in range) and then for validity
(no self-intersection, holes inside their shell), each error naming where it is
(``geometry.coordinates[0][3]``) and what is wrong, in words a coordinator can act on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

#: The geometry types a sector may have.
AREA_TYPES = ("Polygon", "MultiPolygon")
#: Mean radius of the Earth, metres (distances over a few km: the error stays well below a street's width).
EARTH_RADIUS_M = 6_371_008.8


class ShapeError(ValueError):
    """A GeoJSON shape that cannot be a sector: ``field`` says where, the message what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Shape:
    """A checked sector shape: its GeoJSON geometry (never a Feature) and its shapely form, prepared."""

    geojson: dict[str, Any]
    geometry: BaseGeometry

    def covers(self, lon: float, lat: float) -> bool:
        """Whether the point is inside or on the edge (a member on a sector's border belongs to it)."""
        return bool(shapely.intersects_xy(self.geometry, lon, lat))

    def covers_all(self, lons: Any, lats: Any) -> Any:
        """``covers`` for arrays of positions at once: an array of booleans."""
        return shapely.intersects_xy(self.geometry, lons, lats)


def read_shape(data: Any, field: str = "geometry") -> Shape:
    """A GeoJSON Polygon or MultiPolygon (or a Feature holding one) as a checked ``Shape``.

    Raises ``ShapeError`` naming the place in ``data`` (under ``field``) that is wrong.
    """
    if isinstance(data, dict) and data.get("type") == "Feature":
        data, field = data.get("geometry"), f"{field}.geometry"
    if not isinstance(data, dict):
        raise ShapeError(field, "must be a GeoJSON object with a type and coordinates")
    kind = data.get("type")
    if kind not in AREA_TYPES:
        raise ShapeError(f"{field}.type", f"must be Polygon or MultiPolygon, not {kind!r}")
    coordinates = data.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise ShapeError(f"{field}.coordinates", "must be a non-empty list")
    for i, polygon in enumerate(polygons):
        _check_polygon(polygon, f"{field}.coordinates" if kind == "Polygon" else f"{field}.coordinates[{i}]")
    geometry = shape({"type": kind, "coordinates": coordinates})
    _check_valid(geometry, field)
    shapely.prepare(geometry)
    return Shape(geojson={"type": kind, "coordinates": coordinates}, geometry=geometry)


def _check_polygon(polygon: Any, field: str) -> None:
    if not isinstance(polygon, list) or not polygon:
        raise ShapeError(field, "a polygon is a non-empty list of rings: its outline, then its holes")
    for r, ring in enumerate(polygon):
        where = f"{field}[{r}]"
        if not isinstance(ring, list) or len(ring) < 4:
            raise ShapeError(where, "a ring needs at least 4 positions, the last the same as the first")
        for p, position in enumerate(ring):
            _check_position(position, f"{where}[{p}]")
        if ring[0] != ring[-1]:
            raise ShapeError(where, "a ring must end where it starts (close it with its first position)")


def _check_position(position: Any, field: str) -> None:
    numbers = isinstance(position, list) and len(position) in (2, 3)
    if not numbers or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in position):
        raise ShapeError(field, "a position is [longitude, latitude], two numbers")
    lon, lat = position[0], position[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not all(map(math.isfinite, (lon, lat))):
        raise ShapeError(field, f"[{lon}, {lat}] is off the Earth: [longitude, latitude] in degrees")


def _check_valid(geometry: BaseGeometry, field: str) -> None:
    if geometry.is_valid and not geometry.is_empty:
        return
    reason = explain_validity(geometry)  # e.g. "Self-intersection[4.35 50.85]"
    what, _, where = reason.partition("[")
    polygons = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]
    index = next((i for i, p in enumerate(polygons) if isinstance(p, Polygon) and not p.is_valid), 0)
    place = f"{field}.coordinates" + (f"[{index}]" if isinstance(geometry, MultiPolygon) else "")
    near = f" near [{where.rstrip(']').replace(' ', ', ')}]" if where else ""
    raise ShapeError(place, f"not a valid area: {what.lower() or 'empty'}{near}")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
