"""Where things are, as data: a member's address and position, a PLP's sectors, the area an alert targets.

These are plain models; the geometry itself (GeoJSON read and checked, points in polygons,
distances) is ``dispatcher.geo``'s. A member's address and position are personal data, as their
phone number is: shown to their coordinators only, exported and erased with the member.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Words written in many ways in a street's name, in one form each: ``av.`` and ``avenue`` are one street.
_STREET_WORDS = {
    "av": "avenue",
    "bd": "boulevard",
    "bld": "boulevard",
    "ch": "chaussee",
    "chee": "chaussee",
    "pl": "place",
    "st": "saint",
    "ste": "sainte",
    "str": "straat",
}
_NOT_A_LETTER = re.compile(r"[^a-z0-9]+")


def street_key(name: str) -> str:
    """A street's name in one written form, for comparing streets: no accents, no case, no punctuation,
    common abbreviations spelt out (``Av. du Parc`` and ``avenue du parc`` are the same street)."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = [_STREET_WORDS.get(w, w) for w in _NOT_A_LETTER.split(plain) if w]
    return " ".join(words)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


StreetName = Annotated[str, Field(min_length=2, max_length=120)]


class Address(_Strict):
    """Where a member lives, as they write it: a street, and a postcode or a commune (or both)."""

    street: StreetName = Field(examples=["Rue du Parc"])
    number: str | None = Field(default=None, max_length=12, pattern=r"^[0-9A-Za-z /.-]+$", examples=["12", "12A"])
    postcode: str | None = Field(default=None, pattern=r"^[0-9]{4}$", examples=["1080"], description="4 digits")
    commune: str | None = Field(default=None, min_length=2, max_length=80, examples=["Molenbeek-Saint-Jean"])

    @model_validator(mode="after")
    def _findable(self) -> Address:
        if not self.postcode and not self.commune:
            raise ValueError("an address needs a postcode or a commune besides its street")
        return self

    def one_line(self) -> str:
        """The address written on one line, as a geocoder reads it."""
        street = f"{self.street} {self.number}" if self.number else self.street
        place = " ".join(p for p in (self.postcode, self.commune) if p)
        return f"{street}, {place}"


class Coordinates(_Strict):
    """A point in WGS 84 degrees."""

    lat: float = Field(ge=-90, le=90, examples=[50.8503])
    lon: float = Field(ge=-180, le=180, examples=[4.3517])


class LocationSource(StrEnum):
    GIVEN = "given"  # by the coordinator: in the console, the API or an import's columns
    GEOCODER = "geocoder"  # found from the address by the geocoder


class Location(BaseModel):
    """A member's position, and where it came from."""

    lat: float
    lon: float
    source: LocationSource
    at: datetime


class LocatingState(StrEnum):
    """Where the search for a member's position stands."""

    LOCATED = "located"
    PENDING = "pending"  # waiting for the geocoder, in the background
    NOT_FOUND = "not_found"
    AMBIGUOUS = "ambiguous"
    NO_ADDRESS = "no_address"
    NO_GEOCODER = "no_geocoder"


class Locating(BaseModel):
    """Whether a member could be located, and why not in plain words."""

    state: LocatingState
    reason: str | None = None
    at: datetime


class SectorIn(_Strict):
    """A named part of a PLP: a GeoJSON polygon or multipolygon (a geometry, or a Feature holding one), and the
    streets whose residents belong to it when their position is unknown."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    geometry: dict[str, Any] | None = Field(
        default=None, description="GeoJSON Polygon or MultiPolygon (or a Feature of one), WGS 84 lon/lat"
    )
    streets: list[StreetName] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _somewhere(self) -> SectorIn:
        if self.geometry is None and not self.streets:
            raise ValueError("a sector needs a geometry, a list of streets, or both")
        return self


class Sector(BaseModel):
    """A PLP's sector as stored: its geometry (a GeoJSON geometry, never a Feature) and its streets."""

    id: str
    plp_id: str
    name: str
    geometry: dict[str, Any] | None = None
    streets: list[str] = Field(default_factory=list)
    created_at: datetime

    def has_street(self, street: str) -> bool:
        key = street_key(street)
        return any(street_key(s) == key for s in self.streets)


class Circle(_Strict):
    """Every member within ``radius_m`` metres of a point: its coordinates, or an address (an alert's is located
    before it is accepted: see ``dispatcher.people.locating``)."""

    center: Coordinates | None = None
    address: Address | None = Field(
        default=None, description='Instead of center: the address the circle is around ("500 m around rue du Parc 12")'
    )
    radius_m: float = Field(gt=0, le=50_000, examples=[500])

    @model_validator(mode="after")
    def _one_center(self) -> Circle:
        if self.center is None and self.address is None:
            raise ValueError("a circle needs its center (lat, lon) or an address")
        return self


def place_key(address: Address) -> str:
    """An address in one written form, for finding it again: its street as ``street_key`` writes it, its number,
    postcode and commune without case or accents."""
    parts = (
        street_key(address.street),
        address.number or "",
        address.postcode or "",
        street_key(address.commune or ""),
    )
    return "|".join(p.strip().lower() for p in parts)


class AreaIn(_Strict):
    """Where inside its PLPs an alert goes: some of their sectors, a circle, or a list of streets (one of them)."""

    sectors: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=200, description="Sector ids of the target PLPs"
    )
    circle: Circle | None = None
    streets: list[StreetName] | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_kind(self) -> AreaIn:
        given = [name for name in ("sectors", "circle", "streets") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("an area is one of: sectors, circle, streets")
        return self

    @field_validator("sectors", "streets")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len({v.casefold() for v in value}) != len(value):
            raise ValueError("each may appear once")
        return value
