"""Who is where: a member's sector in a PLP, and whether a member is inside the area an alert targets.

A member's sector in a PLP is, in this order: the one set by hand (if the PLP still has it), the
first sector (by name) whose shape covers their position (its edge included), the first sector
whose street list holds their street; else none.

An alert's area is some sectors of its PLPs, a circle, or a list of streets (an area of sectors
restricts the PLPs whose sectors it names; a target PLP none of whose sectors it names is reached
whole, so that one alert can go to a sector of one PLP and the whole of its neighbour). Each member is
``INSIDE``, ``OUTSIDE``, or ``UNKNOWN`` when their place does not tell (no position for a circle,
no address for streets, neither a position, an address in a sector's streets nor a sector set by
hand for sectors). The charter decides whether area alerts reach the ``UNKNOWN`` ones
(``Charter.area_reaches_unlocated``), and they are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from dispatcher.core.models import Member, Plp
from dispatcher.core.places import AreaIn, Sector, street_key
from dispatcher.geo.shapes import Shape, distance_m, read_shape

#: Stands for "the member's sector, still to be found" where a caller may give it found already (or None).
FIND = "\0find"


class Placement(StrEnum):
    INSIDE = "inside"
    OUTSIDE = "outside"
    UNKNOWN = "unknown"  # the member's place does not tell


@dataclass(frozen=True)
class Sectors:
    """One PLP's sectors, their shapes read and prepared once, their streets in one written form."""

    plp_id: str
    sectors: list[Sector]
    shapes: dict[str, Shape] = field(default_factory=dict)
    streets: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, plp_id: str, sectors: Iterable[Sector]) -> Sectors:
        ordered = sorted(sectors, key=lambda s: (s.name, s.id))
        return cls(
            plp_id=plp_id,
            sectors=ordered,
            shapes={s.id: read_shape(s.geometry) for s in ordered if s.geometry is not None},
            streets={s.id: frozenset(street_key(name) for name in s.streets) for s in ordered if s.streets},
        )

    @property
    def ids(self) -> set[str]:
        return {s.id for s in self.sectors}

    def sector_of(self, member: Member) -> str | None:
        """The member's sector in this PLP: set by hand, else by position, else by street; None if none."""
        return self.sectors_of([member])[0]

    def sectors_of(self, members: Sequence[Member]) -> list[str | None]:
        """Each member's sector (as ``sector_of``), the positions tested against each shape at once."""
        ids = self.ids
        found: list[str | None] = [
            chosen if (chosen := m.sector_ids.get(self.plp_id)) in ids else None for m in members
        ]
        located = [i for i, m in enumerate(members) if found[i] is None and m.location is not None]
        if located and self.shapes:
            points = [members[i].location for i in located]
            lons = np.array([p.lon for p in points if p is not None], dtype=np.float64)
            lats = np.array([p.lat for p in points if p is not None], dtype=np.float64)
            for sector_id, shape in self.shapes.items():  # by name: the first that covers a position keeps it
                for j in np.flatnonzero(shape.covers_all(lons, lats)):
                    found[located[j]] = found[located[j]] or sector_id
        if self.streets:
            for i, m in enumerate(members):
                if found[i] is None and m.address is not None:
                    key = street_key(m.address.street)
                    found[i] = next((sid for sid, streets in self.streets.items() if key in streets), None)
        return found

    def placement(self, member: Member, wanted: set[str], sector: str | None = FIND) -> Placement:
        """Whether the member (in ``sector``, found if not given) is in one of the ``wanted`` sectors; UNKNOWN when
        nothing places them."""
        sector = self.sector_of(member) if sector == FIND else sector
        if sector is not None:
            return Placement.INSIDE if sector in wanted else Placement.OUTSIDE
        # Placed nowhere: a known position outside every shape is outside; otherwise nothing tells.
        return Placement.OUTSIDE if member.location is not None and self.shapes else Placement.UNKNOWN


@dataclass(frozen=True)
class Area:
    """An alert's area, ready to place members: ``placement(member, plp_id)``."""

    spec: AreaIn
    sectors: dict[str, Sectors]  # per PLP id: the alert's PLPs' sectors (for an area of sectors)
    streets: frozenset[str] = frozenset()

    @classmethod
    def of(cls, spec: AreaIn, sectors: dict[str, list[Sector]]) -> Area:
        return cls.placed(spec, {plp_id: Sectors.of(plp_id, found) for plp_id, found in sectors.items()})

    @classmethod
    def placed(cls, spec: AreaIn, sectors: dict[str, Sectors]) -> Area:
        """The area over sectors already read (their shapes prepared once)."""
        return cls(spec=spec, sectors=sectors, streets=frozenset(street_key(s) for s in spec.streets or ()))

    def placement(self, member: Member, plp_id: str, sector: str | None = FIND) -> Placement:
        """Whether the member (reached through ``plp_id``; in ``sector`` of it, found if not given) is inside."""
        if self.spec.circle is not None:
            center = self.spec.circle.center
            if member.location is None or center is None:  # an alert's circle is located before it is accepted
                return Placement.UNKNOWN
            inside = distance_m(center.lat, center.lon, member.location.lat, member.location.lon)
            return Placement.INSIDE if inside <= self.spec.circle.radius_m else Placement.OUTSIDE
        if self.spec.streets is not None:
            if member.address is None:
                return Placement.UNKNOWN
            return Placement.INSIDE if street_key(member.address.street) in self.streets else Placement.OUTSIDE
        wanted, sectors = set(self.spec.sectors or ()), self.sectors.get(plp_id)
        if sectors is None or not wanted & sectors.ids:
            return Placement.INSIDE  # a PLP none of whose sectors are named is targeted whole
        return sectors.placement(member, wanted, sector)


def unknown_sectors(spec: AreaIn, sectors: dict[str, list[Sector]]) -> list[int]:
    """The positions in ``spec.sectors`` of the ids that are no sector of the given PLPs."""
    known = {s.id for found in sectors.values() for s in found}
    return [i for i, sector_id in enumerate(spec.sectors or ()) if sector_id not in known]


class Reach(StrEnum):
    """What an alert does for one member of one of its PLPs."""

    REACHED = "reached"  # inside the area, or the alert has none
    UNLOCATED = "unlocated"  # place unknown; the charter reaches them, counted apart
    LEFT_OUT = "left_out"  # place unknown; the charter keeps area alerts from them
    OUTSIDE = "outside"


@dataclass(frozen=True)
class Targeting:
    """One PLP's part of an alert: its sectors, and the alert's area (None: the whole PLP)."""

    plp: Plp
    sectors: Sectors
    area: Area | None

    @classmethod
    def of(cls, spec: AreaIn | None, plp: Plp, sectors: Iterable[Sector]) -> Targeting:
        found = Sectors.of(plp.id, sectors)
        area = Area.placed(spec, {plp.id: found}) if spec is not None else None
        return cls(plp=plp, sectors=found, area=area)

    def reach(self, member: Member) -> Reach:
        return self.place([member])[0][0]

    def place(self, members: Sequence[Member]) -> list[tuple[Reach, str | None]]:
        """What the alert does for each member through this PLP, and the member's sector (if the PLP has sectors)."""
        sectors = self.sectors.sectors_of(members) if self.sectors.sectors else [None] * len(members)
        return [(self._reach(m, sector), sector) for m, sector in zip(members, sectors, strict=True)]

    def _reach(self, member: Member, sector: str | None) -> Reach:
        if self.area is None:
            return Reach.REACHED
        placement = self.area.placement(member, self.plp.id, sector)
        if placement is Placement.UNKNOWN:
            return Reach.UNLOCATED if self.plp.charter.area_reaches_unlocated else Reach.LEFT_OUT
        return Reach.REACHED if placement is Placement.INSIDE else Reach.OUTSIDE

    def sector_of(self, member: Member) -> str | None:
        return self.sectors.sector_of(member) if self.sectors.sectors else None
