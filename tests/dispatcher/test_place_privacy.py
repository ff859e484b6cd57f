"""A member's address and position are personal data: never in the logs (the geocoder's requests included,
with geopy's logger at DEBUG), never shown to the police, exported with the member and erased with them."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog
from aiohttp.test_utils import TestClient

from config import LogFormat, Settings
from dispatcher.api.services import SERVICES
from dispatcher.core.logging import configure_logging
from dispatcher.people import locating
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.redis_scan import everything
from tests.simulators.nominatim import NominatimSimulator
from tests.support import get_json, post_json

HOME = {"street": "Kerkstraat", "number": "5", "postcode": "9470", "commune": "Denderleeuw"}
NEEDLES = ("Kerkstraat", "9470", "Denderleeuw", "50.8857", "4.0717")
#: Each needle as a word of its own: "9470" inside a token's hex digest or a timestamp is not the postcode.
_WORDS = [re.compile(rf"(?<![0-9A-Za-z]){re.escape(needle)}(?![0-9A-Za-z])") for needle in NEEDLES]


def _found(text: str) -> str | None:
    """The needle that ``text`` holds as a word, if any."""
    return next((needle for needle, word in zip(NEEDLES, _WORDS, strict=True) if word.search(text)), None)


@pytest.fixture
async def nominatim() -> AsyncIterator[NominatimSimulator]:
    async with NominatimSimulator() as simulator:
        yield simulator


@pytest.fixture
def settings(settings: Settings, nominatim: NominatimSimulator) -> Settings:
    return settings.model_copy(update={"geocoder_url": nominatim.base_url, "geocoder_rate": 50.0})


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Everything logged, as the service renders it (JSON), with geopy's own logger turned up to DEBUG."""
    stream, saved, root = io.StringIO(), structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(Settings(redis_url=None, log_level="DEBUG", log_format=LogFormat.JSON))
    structlog.configure(cache_logger_on_first_use=False)
    logging.getLogger("geopy").setLevel(logging.DEBUG)
    yield stream
    structlog.configure(**saved)
    root.handlers[:], root.level = handlers, level
    logging.getLogger("geopy").setLevel(logging.NOTSET)


async def located_member(client: TestClient, cast: Cast, runtime: Runtime) -> dict[str, object]:
    body = {"name": "Piet", "email": "piet@example.org", "address": HOME}
    piet = await post_json(
        client, f"/v1/plps/{cast.plp_a}/members", body, headers=cast.auth("coordinator_a"), expect=201
    )
    await locating.run(runtime, client.server.app[SERVICES].store)
    return piet


async def test_the_address_and_position_are_never_logged(
    client: TestClient, cast: Cast, runtime: Runtime, nominatim: NominatimSimulator, logged: io.StringIO
) -> None:
    """Enrolling, geocoding (geopy logs each request's URL at DEBUG) and reading the member log no part of
    the address nor the position."""
    piet = await located_member(client, cast, runtime)
    await get_json(client, f"/v1/plps/{cast.plp_a}/members/{piet['id']}", headers=cast.auth("coordinator_a"))
    assert nominatim.ledger[0].status == 200

    output = logged.getvalue()
    assert "locating.run" in output and "street=***" in output  # geopy's request was logged, masked
    assert _found(output) is None, f"{_found(output)} is in the logs"


async def test_the_police_never_see_where_members_live(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """Police may not read members at all: their address stays with the coordinators."""
    piet = await located_member(client, cast, runtime)
    for path in (f"/v1/plps/{cast.plp_a}/members", f"/v1/plps/{cast.plp_a}/members/{piet['id']}"):
        response = await client.get(path, headers=cast.auth("police_a"))
        assert response.status == 403
        text = await response.text()
        assert _found(text) is None


async def test_the_address_is_exported_and_erased_with_the_member(
    client: TestClient, cast: Cast, runtime: Runtime, redis_url: str
) -> None:
    """The export holds the address and the position; once the member leaves their only PLP, nothing in
    Redis holds either, nor their id in the geocoder's queue."""
    piet = await located_member(client, cast, runtime)
    path = f"/v1/plps/{cast.plp_a}/members/{piet['id']}"
    exported = await get_json(client, f"{path}/export", headers=cast.auth("coordinator_a"))
    assert exported["member"]["address"] == HOME
    assert exported["member"]["location"]["lat"] == 50.8857
    runtime.sync_redis.zadd(runtime.keys.locate(), {str(piet["id"]): 0})  # as if waiting again

    assert (await client.delete(path, headers=cast.auth("coordinator_a"))).status == 204

    stored = list(everything(redis_url))
    for item in stored:
        for text in (item.key, *item.texts):
            assert _found(text) is None, f"{_found(text)!r} is still in {item.key}"
    assert runtime.sync_redis.zscore(runtime.keys.locate(), str(piet["id"])) is None


def test_an_address_or_a_position_logged_by_mistake_is_masked(logged: io.StringIO) -> None:
    """A member or an address logged whole (its repr, its JSON) shows none of the address's parts nor the position."""
    from datetime import UTC, datetime

    from dispatcher.core.models import Language, Member
    from dispatcher.core.places import Address, Location, LocationSource

    now = datetime.now(UTC)
    member = Member(
        id="m1",
        name="Piet",
        email="piet@example.org",
        language=Language.NL,
        channels=[],
        consent_at=now,
        plp_ids=["p"],
        created_at=now,
        updated_at=now,
        address=Address.model_validate(HOME),
        location=Location(lat=50.8857, lon=4.0717, source=LocationSource.GEOCODER, at=now),
    )
    log = structlog.get_logger("tests.places")
    log.warning("oops", member=member, as_json=member.model_dump_json(), street=HOME["street"])
    log.warning(f"member {member!r}")
    logging.getLogger("some.library").warning("placing %s", member.model_dump())
    output = logged.getvalue()
    assert output.count("oops") == 1 and "placing" in output
    assert _found(output) is None, f"{_found(output)} is in the logs"
