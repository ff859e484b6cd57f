"""Nominatim's search API on loopback, for tests driven by the real ``geopy`` client.

It answers ``GET /search`` as Nominatim does (``format=json`` or ``jsonv2``): a structured query
(``street`` with its house number first, ``postalcode``, ``city``) or a free one (``q``), limited
to ``countrycodes``, as a JSON list of places with ``lat`` and ``lon`` as strings. Places come from
``PLACES``, a small gazetteer of Belgian addresses (or the one given). A test makes it fail with
``failures`` (HTTP statuses answered to the next requests, in order: 429 with ``Retry-After``,
500, 503...), and it enforces a provider's rate with a ``RateMeter`` (``per_second``): a request
over the rate is answered 429, as the public instance does. ``ledger`` holds every request
(its query, User-Agent, time and status)::

    async with NominatimSimulator(per_second=20) as sim:
        settings = Settings(geocoder_url=sim.base_url, ...)
        ...
        assert [r.status for r in sim.ledger] == [200]
"""

from __future__ import annotations

import time
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web

from tests.simulators.meter import RateMeter


@dataclass(frozen=True)
class Place:
    street: str
    number: str | None
    postcode: str
    city: str
    lat: float
    lon: float

    @property
    def display_name(self) -> str:
        number = f"{self.number}, " if self.number else ""
        return f"{number}{self.street}, {self.city}, {self.postcode}, België / Belgique / Belgien"


#: A few Belgian addresses. "Rue de la Station" is in two communes far apart (ambiguous without
#: a postcode); "Kerkstraat 5" in Denderleeuw has two entrances 40 m apart (one place).
PLACES = (
    Place("Grand-Place", "1", "1000", "Bruxelles", 50.84674, 4.35247),
    Place("Rue Neuve", "50", "1000", "Bruxelles", 50.85300, 4.35610),
    Place("Kerkstraat", "5", "9470", "Denderleeuw", 50.88570, 4.07170),
    Place("Kerkstraat", "5", "9470", "Denderleeuw", 50.88600, 4.07200),
    Place("Stationsstraat", "20", "1770", "Liedekerke", 50.87900, 4.08700),
    Place("Markt", "1", "9880", "Aalter", 51.08570, 3.44610),
    Place("Rue de la Station", "3", "1420", "Braine-l'Alleud", 50.68330, 4.37150),
    Place("Rue de la Station", "3", "7090", "Braine-le-Comte", 50.60900, 4.14020),
)


def _plain(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().split())


@dataclass(frozen=True)
class Request:
    query: dict[str, str]
    user_agent: str
    at: float  # monotonic
    status: int


@dataclass
class NominatimSimulator:
    """A Nominatim server on ``host`` and ``port`` (0: a free one), used as an async context manager."""

    places: tuple[Place, ...] = PLACES
    per_second: float | None = None
    host: str = "127.0.0.1"
    port: int = 0
    retry_after: int = 2
    failures: deque[int] = field(default_factory=deque)
    ledger: list[Request] = field(default_factory=list)
    base_url: str = ""

    def __post_init__(self) -> None:
        self.meter = RateMeter(self.per_second, burst=1) if self.per_second else None
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> NominatimSimulator:
        app = web.Application()
        app.router.add_get("/search", self._search)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.base_url = f"http://{self.host}:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _search(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        status, answer = self._answer(query)
        self.ledger.append(Request(query, request.headers.get("User-Agent", ""), time.monotonic(), status))
        if status == 429:
            return web.json_response(
                {"error": "Too Many Requests"}, status=429, headers={"Retry-After": str(self.retry_after)}
            )
        if status != 200:
            return web.Response(status=status, text="Internal error")
        return web.json_response(answer)

    def _answer(self, query: dict[str, str]) -> tuple[int, list[dict[str, object]]]:
        if self.meter is not None and not self.meter.admit():
            return 429, []
        if self.failures:
            return self.failures.popleft(), []
        if query.get("format") not in ("json", "jsonv2"):
            return 400, []
        found = [p for p in self.places if self._matches(p, query)][: int(query.get("limit", 10))]
        return 200, [self._place(i, p) for i, p in enumerate(found)]

    @staticmethod
    def _matches(place: Place, query: dict[str, str]) -> bool:
        if "be" not in query.get("countrycodes", "be").split(","):
            return False
        if "q" in query:
            text = _plain(query["q"])
            return _plain(place.street) in text and (_plain(place.city) in text or place.postcode in text)
        number, _, street = query.get("street", "").partition(" ")
        if not number.isdigit():
            number, street = "", query.get("street", "")
        if _plain(street) != _plain(place.street) or (number and number != place.number):
            return False
        if "postalcode" in query and query["postalcode"] != place.postcode:
            return False
        return "city" not in query or _plain(query["city"]) in _plain(place.city)

    @staticmethod
    def _place(index: int, place: Place) -> dict[str, object]:
        return {
            "place_id": 1000 + index,
            "licence": "Data © OpenStreetMap contributors, ODbL 1.0. https://osm.org/copyright",
            "osm_type": "node",
            "lat": f"{place.lat:.7f}",
            "lon": f"{place.lon:.7f}",
            "class": "place",
            "type": "house",
            "importance": 0.5,
            "display_name": place.display_name,
        }
