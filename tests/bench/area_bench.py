"""Area alerts plan as fast as PLP alerts: the fan-out of a zone-wide alert to a circle or to sectors, timed
against the fan-out of the same alert to the same PLPs whole, in the same run.

A police zone of ``Size.area_plps`` PLPs side by side, ``Size.area_members`` members in all, each with a
position and an address, each PLP cut into four sectors (its quadrants). The fan-out (``fanout.fan_out``,
as a worker runs it: members read in chunks, placed, planned with their send jobs) is run in this process
on the stage's Redis, with no worker to take the sends: what is timed is the planning. Each alert is
planned ``ROUNDS`` times in turn (a new alert each time), and the best time of each kind is kept.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any

from dispatcher.core.models import Alert, Category, ChannelName, Language, Member, Plp, Relay, RelayState, Role, Urgency
from dispatcher.core.places import Address, AreaIn, Location, LocationSource, Sector
from dispatcher.pipeline import fanout, intake
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, new_id
from tests.bench.harness import Stage
from tests.bench.scenarios import Figure, Size, figure

ROUNDS = 2
#: The zone's corner, and the size of one PLP's square (about 1.1 km).
SOUTH, WEST, STEP = 50.80, 4.30, 0.01
ZONE = "5399"


def _square(west: float, south: float, side: float) -> dict[str, Any]:
    ring = [[west, south], [west + side, south], [west + side, south + side], [west, south + side], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


async def _zone(runtime: Runtime, size: Size) -> tuple[list[Plp], list[str]]:
    """The zone's PLPs in a row, their members spread over each square, four sectors each; the sector ids."""
    store, now = Store(runtime.async_redis(), runtime.keys), datetime.now(UTC)
    plps, sectors = [], []
    per_plp = size.area_members // size.area_plps
    try:
        for p in range(size.area_plps):
            plp = Plp.model_validate(
                {"id": new_id(), "name": f"Area {p}", "commune": "Bench", "police_zone": ZONE, "created_at": now}
                | {"charter": {"urgent": {"channels": ["sms"], "ttl_seconds": 3600}}}
            )
            await store.save_plp(plp)
            plps.append(plp)
            west = WEST + p * STEP
            for q in range(4):
                sector = Sector(
                    id=new_id(),
                    plp_id=plp.id,
                    name=f"Q{q}",
                    geometry=_square(west + (q % 2) * STEP / 2, SOUTH + (q // 2) * STEP / 2, STEP / 2),
                    created_at=now,
                )
                await store.save_sector(sector)
                sectors.append(sector.id)
            members = [_member(plp.id, p * per_plp + i, west, i, per_plp, now) for i in range(per_plp)]
            await store.add_new_members(members)
    finally:
        await store.redis.aclose()
    return plps, sectors


def _member(plp_id: str, number: int, west: float, i: int, count: int, now: datetime) -> Member:
    side = math.ceil(count**0.5)  # a grid of side x rows points over the PLP's square
    rows = math.ceil(count / side)
    lat, lon = SOUTH + (i // side + 0.5) * STEP / rows, west + (i % side + 0.5) * STEP / side
    return Member(
        id=new_id(),
        name=f"Member {number}",
        phone=f"+3249{number:07d}",
        language=Language.FR,
        channels=[ChannelName.SMS],
        consent_at=now,
        plp_ids=[plp_id],
        created_at=now,
        updated_at=now,
        address=Address(street=f"Rue {i % 40}", number=str(i), postcode="1000", commune="Bench"),
        location=Location(lat=lat, lon=lon, source=LocationSource.GIVEN, at=now),
    )


def _plan(runtime: Runtime, plps: list[Plp], area: AreaIn | None) -> tuple[float, int]:
    """Accept a new urgent alert to every PLP of the zone and plan it; the seconds the planning took."""
    alert = Alert(
        id=new_id(),
        author_id="bench",
        author_role=Role.POLICE,
        urgency=Urgency.URGENT,
        category=Category.BURGLARY,
        plp_ids=[p.id for p in plps],
        texts={Language.FR: "Cambriolage rue du Parc il y a 10 minutes"},
        ttl_seconds=3600,
        created_at=datetime.now(UTC),
        area=area,
    )
    intake.accept_alert(runtime, alert, [Relay(plp_id=p.id, state=RelayState.AUTO) for p in plps])
    started = time.perf_counter()
    planned = fanout.fan_out(runtime, alert.id, alert.plp_ids)
    return time.perf_counter() - started, planned


async def area_planning(stage: Stage, size: Size) -> list[Figure]:
    """A zone-wide alert to a circle and to every sector, against the same alert to the PLPs whole."""
    runtime = Runtime.from_settings(stage.settings())
    try:
        plps, sectors = await _zone(runtime, size)
        wide = (size.area_plps * STEP) * 111_320  # metres: the circle covers the whole row of PLPs
        center = {"lat": SOUTH + STEP / 2, "lon": WEST + size.area_plps * STEP / 2}
        kinds: dict[str, AreaIn | None] = {
            "plps": None,
            "circle": AreaIn.model_validate({"circle": {"center": center, "radius_m": wide}}),
            "sectors": AreaIn.model_validate({"sectors": sectors}),
        }
        best: dict[str, float] = {}
        planned: dict[str, int] = {}
        for _ in range(ROUNDS):
            for kind, area in kinds.items():
                seconds, planned[kind] = await asyncio.to_thread(_plan, runtime, plps, area)
                best[kind] = min(seconds, best.get(kind, seconds))
            runtime.rq_connection.delete(runtime.urgent_queue.key)  # no worker here: the sends are not the point
    finally:
        runtime.close()
    members = size.area_members // size.area_plps * size.area_plps
    named = {"circle": "a circle", "sectors": "every sector"}
    return [
        figure(
            "7. area planning",
            f"plan a zone-wide urgent alert to {named[kind]}, {members:,} members",
            best[kind],
            "s",
            f"the same alert to its {size.area_plps} PLPs whole",
            best["plps"],
            at_most=1.5,
            also=planned[kind] == planned["plps"],
            deliveries=planned[kind],
            deliveries_whole=planned["plps"],
        )
        for kind in ("circle", "sectors")
    ]
