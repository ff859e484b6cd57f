"""The geocoder: a Nominatim server's ``/search``, through geopy's Nominatim client (async, on aiohttp).

Transport only: one address in, one answer out (``Found``, ``NotFound``, ``Ambiguous``), or an
error saying whose problem it is. geopy's errors are translated here, in one place, and
re-raised from theirs:

    GeocoderError
    ├── GeocoderBusy     the provider's rate limit (HTTP 429): ask again after ``retry_after``
    ├── GeocoderDown     the provider failed (5xx, timeout, no connection): ask again later
    └── GeocoderRefused  the provider refuses us (400, 401, 403): the configuration must change

The rate (``PLP_GEOCODER_RATE``), when to ask and what becomes of the answer are the caller's
(``dispatcher.people.locating``). The base URL is ``PLP_GEOCODER_URL``: a self-hosted Nominatim
for volume, the public one (about one request a second, a User-Agent naming the application) for
a few members.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from geopy.adapters import AioHTTPAdapter
from geopy.exc import (
    GeocoderAuthenticationFailure,
    GeocoderInsufficientPrivileges,
    GeocoderQueryError,
    GeocoderQuotaExceeded,
    GeocoderRateLimited,
    GeopyError,
)
from geopy.geocoders import Nominatim

from dispatcher.core.places import Address
from dispatcher.geo.shapes import distance_m

#: Answers further apart than this are different places: the address is ambiguous.
AMBIGUOUS_M = 300.0
#: How many answers are asked for, to tell an ambiguous address.
CANDIDATES = 5
#: geopy's errors for a request the provider will not answer however often it is asked (400, 401, 402, 403).
_REFUSALS = (GeocoderQueryError, GeocoderAuthenticationFailure, GeocoderInsufficientPrivileges, GeocoderQuotaExceeded)


@dataclass(frozen=True)
class Found:
    lat: float
    lon: float


@dataclass(frozen=True)
class NotFound:
    reason: str


@dataclass(frozen=True)
class Ambiguous:
    reason: str
    candidates: int


Answer = Found | NotFound | Ambiguous


class GeocoderError(Exception):
    """The geocoder did not answer the question; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GeocoderBusy(GeocoderError):
    """The provider's rate limit: nothing is wrong with the address, ask again after ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class GeocoderDown(GeocoderError):
    """The provider failed (a 5xx, a timeout, no connection): ask again later."""


class GeocoderRefused(GeocoderError):
    """The provider refuses our requests (bad request, not allowed): its configuration must change."""


class Geocoder:
    """One Nominatim server, opened with ``async with`` (its HTTP session lives inside)."""

    def __init__(self, base_url: str, *, user_agent: str, timeout: float, countries: str = "be") -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the geocoder's URL must be http(s)://host[:port][/path], not {base_url!r}")
        self._client = Nominatim(
            domain=parts.netloc + parts.path.rstrip("/"),
            scheme=parts.scheme,
            user_agent=user_agent,
            timeout=timeout,
            adapter_factory=AioHTTPAdapter,
        )
        self._countries = countries

    async def __aenter__(self) -> Geocoder:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self._client.__aexit__(kind, value, traceback)

    async def locate(self, address: Address) -> Answer:
        """Where the address is: ``Found``, ``NotFound`` or ``Ambiguous``; raises a ``GeocoderError``."""
        try:
            places = await self._client.geocode(
                _query(address), exactly_one=False, limit=CANDIDATES, country_codes=self._countries
            )
        except GeocoderRateLimited as exc:
            raise GeocoderBusy("the geocoder's rate limit was reached", float(exc.retry_after or 60)) from exc
        except _REFUSALS as exc:
            raise GeocoderRefused(f"the geocoder refused the request: {exc}") from exc
        except GeopyError as exc:  # 5xx, timeouts, no connection, an answer that is not JSON
            raise GeocoderDown(f"the geocoder failed: {exc}") from exc
        return answer_of(list(places or []))


def _query(address: Address) -> dict[str, str]:
    """Nominatim's structured search: the street with its number first, the postcode, the commune."""
    query = {"street": f"{address.number} {address.street}" if address.number else address.street}
    if address.postcode:
        query["postalcode"] = address.postcode
    if address.commune:
        query["city"] = address.commune
    return query


def answer_of(places: list[Any]) -> Answer:
    """The answer a list of geopy ``Location``s gives: none, one place (answers close together), or several."""
    if not places:
        return NotFound("the geocoder knows no place at this address: check the street's spelling and the postcode")
    first = places[0]
    apart = [
        p for p in places[1:] if distance_m(first.latitude, first.longitude, p.latitude, p.longitude) > AMBIGUOUS_M
    ]
    if apart:
        return Ambiguous(
            f"{len(apart) + 1} different places match this address: add the postcode or the number",
            len(apart) + 1,
        )
    return Found(lat=float(first.latitude), lon=float(first.longitude))
