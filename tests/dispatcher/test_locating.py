"""Where members live: addresses and positions through the API, located in the background by the geocoder.

The geocoder is the loopback Nominatim of ``tests.simulators.nominatim``, asked by geopy's real client;
the background job is run here as a worker runs it (``locating.run``), on the test's Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.places import Address
from dispatcher.geo.geocoder import Ambiguous, Found, Geocoder, GeocoderBusy, GeocoderDown, NotFound
from dispatcher.operations.health import Concern, problems
from dispatcher.operations.queues import queue_health
from dispatcher.people import locating
from dispatcher.pipeline import jobs
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, now_ts
from tests.conftest import Cast
from tests.simulators.nominatim import NominatimSimulator
from tests.support import get_json, post_json

RATE = 20.0  # requests a second the service allows itself, and the simulated provider (below) enforces
GRAND_PLACE = {"street": "Grand-Place", "number": "1", "postcode": "1000", "commune": "Bruxelles"}
NOWHERE = {"street": "Rue des Licornes", "number": "9", "postcode": "1000", "commune": "Bruxelles"}
TWO_BRAINES = {"street": "Rue de la Station", "number": "3", "commune": "Braine"}
TWO_ENTRANCES = {"street": "Kerkstraat", "number": "5", "postcode": "9470"}


@pytest.fixture
async def nominatim() -> AsyncIterator[NominatimSimulator]:
    async with NominatimSimulator(per_second=RATE) as simulator:
        yield simulator


@pytest.fixture
def settings(settings: Settings, nominatim: NominatimSimulator) -> Settings:
    return settings.model_copy(update={"geocoder_url": nominatim.base_url, "geocoder_rate": RATE / 2})


def store_of(client: TestClient) -> Store:
    return client.server.app[SERVICES].store


async def enroll(client: TestClient, cast: Cast, name: str, **place: Any) -> dict[str, Any]:
    body = {"name": name, "email": f"{name.lower()}@example.org", **place}
    path = f"/v1/plps/{cast.plp_a}/members"
    return await post_json(client, path, body, headers=cast.auth("coordinator_a"), expect=201)


async def member(client: TestClient, cast: Cast, member_id: str) -> dict[str, Any]:
    return await get_json(client, f"/v1/plps/{cast.plp_a}/members/{member_id}", headers=cast.auth("coordinator_a"))


# -- the geocoder's client ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (GRAND_PLACE, Found(lat=50.84674, lon=4.35247)),
        (TWO_ENTRANCES, Found(lat=50.8857, lon=4.0717)),
        (NOWHERE, NotFound),
        (TWO_BRAINES, Ambiguous),
    ],
    ids=["found", "two-answers-one-place", "not-found", "ambiguous"],
)
async def test_the_geocoder_answers_found_not_found_or_ambiguous(
    nominatim: NominatimSimulator, address: dict[str, str], expected: Any
) -> None:
    """One place (answers a few metres apart are one place), none, or places far apart: each is told apart."""
    async with Geocoder(nominatim.base_url, user_agent="plp-dispatch tests", timeout=5) as geocoder:
        answer = await geocoder.locate(Address.model_validate(address))
    if isinstance(expected, Found):
        assert answer == expected
    else:
        assert isinstance(answer, expected)
        assert answer.reason
    assert nominatim.ledger[0].user_agent == "plp-dispatch tests"


@pytest.mark.parametrize(("status", "error"), [(429, GeocoderBusy), (500, GeocoderDown), (503, GeocoderDown)])
async def test_the_geocoders_failures_are_typed(nominatim: NominatimSimulator, status: int, error: type) -> None:
    """A 429 is the provider's rate limit (with its Retry-After), a 5xx the provider's failure."""
    nominatim.failures.append(status)
    async with Geocoder(nominatim.base_url, user_agent="plp-dispatch tests", timeout=5) as geocoder:
        with pytest.raises(error) as raised:
            await geocoder.locate(Address.model_validate(GRAND_PLACE))
    if status == 429:
        assert raised.value.retry_after == nominatim.retry_after


# -- members located in the background -----------------------------------------------------------


async def test_a_new_members_address_is_located_in_the_background_never_in_the_request(
    client: TestClient, cast: Cast, runtime: Runtime, nominatim: NominatimSimulator
) -> None:
    """Enrolling a member with an address asks nothing of the geocoder: they wait, a job is timed for now;
    the job locates them, and the member list shows their position."""
    anne = await enroll(client, cast, "Anne", address=GRAND_PLACE)
    assert anne["locating"]["state"] == "pending"
    assert anne["location"] is None
    assert nominatim.ledger == []
    timers = runtime.sync_redis.zrange(runtime.keys.timers(), 0, -1)
    assert jobs.timer_spec(jobs.LOCATE, urgent=False) in timers

    done = await locating.run(runtime, store_of(client))

    assert done == locating.Run(asked=1, located=1, not_located=0, left=0)
    located = await member(client, cast, anne["id"])
    assert located["location"] | {"at": None} == {"lat": 50.84674, "lon": 4.35247, "source": "geocoder", "at": None}
    assert located["locating"]["state"] == "located"


async def test_members_who_cannot_be_located_say_why_in_the_member_list(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Not found and ambiguous addresses, and a member with no address, are listed with the reason."""
    ids = {
        "nowhere": (await enroll(client, cast, "Nowhere", address=NOWHERE))["id"],
        "braine": (await enroll(client, cast, "Braine", address=TWO_BRAINES))["id"],
        "homeless": (await enroll(client, cast, "Homeless"))["id"],
    }
    await locating.run(runtime, store_of(client))

    listed = await get_json(client, f"/v1/plps/{cast.plp_a}/members", headers=cast.auth("coordinator_a"))
    states = {m["id"]: m["locating"] for m in listed["items"]}
    assert states[ids["nowhere"]]["state"] == "not_found"
    assert "no place at this address" in states[ids["nowhere"]]["reason"]
    assert states[ids["braine"]]["state"] == "ambiguous"
    assert "2 different places" in states[ids["braine"]]["reason"]
    assert states[ids["homeless"]]["state"] == "no_address"


async def test_given_coordinates_are_the_position_and_the_geocoder_is_not_asked(
    client: TestClient, cast: Cast, runtime: Runtime, nominatim: NominatimSimulator
) -> None:
    """Coordinates given with the address are the member's position: nothing waits for the geocoder."""
    bob = await enroll(client, cast, "Bob", address=GRAND_PLACE, coordinates={"lat": 50.85, "lon": 4.35})
    assert bob["locating"]["state"] == "located"
    assert bob["location"]["source"] == "given"
    await locating.run(runtime, store_of(client))
    assert nominatim.ledger == []


async def test_a_new_address_forgets_the_old_position_and_is_located_again(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """A coordinator's new address drops the position found for the old one, until the geocoder finds the new one."""
    anne = await enroll(client, cast, "Anne", address=GRAND_PLACE)
    await locating.run(runtime, store_of(client))
    path = f"/v1/plps/{cast.plp_a}/members/{anne['id']}"
    moved = {"address": {"street": "Rue Neuve", "number": "50", "postcode": "1000", "commune": "Bruxelles"}}
    response = await client.patch(path, json=moved, headers=cast.auth("coordinator_a"))
    assert response.status == 200, await response.text()
    changed = await response.json()
    assert (changed["location"], changed["locating"]["state"]) == (None, "pending")

    await locating.run(runtime, store_of(client))
    assert (await member(client, cast, anne["id"]))["location"]["lat"] == 50.853


async def test_the_providers_429_and_5xx_leave_members_waiting_with_the_reason(
    client: TestClient, cast: Cast, runtime: Runtime, nominatim: NominatimSimulator
) -> None:
    """A 429 or a 5xx stops the run: the member waits, says why, and is asked again later; then located."""
    anne = await enroll(client, cast, "Anne", address=GRAND_PLACE)
    for status in (429, 503):
        nominatim.failures.append(status)
        done = await locating.run(runtime, store_of(client))
        assert (done.asked, done.located, done.left) == (1, 0, 1)
        waiting = (await member(client, cast, anne["id"]))["locating"]
        assert waiting["state"] == "pending"
        assert "asked again later" in waiting["reason"]
        assert await locating.run(runtime, store_of(client)) == locating.Run(left=1)  # not due yet
        runtime.sync_redis.zadd(runtime.keys.locate(), {anne["id"]: 0})  # the wait is over
    await locating.run(runtime, store_of(client))
    assert (await member(client, cast, anne["id"]))["locating"]["state"] == "located"


async def test_the_geocoders_rate_is_respected(
    client: TestClient, cast: Cast, runtime: Runtime, nominatim: NominatimSimulator
) -> None:
    """Eight members located in one run: the provider, which refuses anything over its rate, refused nothing."""
    for i in range(8):
        await enroll(client, cast, f"Member{i}", address=GRAND_PLACE)

    done = await locating.run(runtime, store_of(client))

    assert (done.asked, done.located) == (8, 8)
    assert [r.status for r in nominatim.ledger] == [200] * 8
    assert nominatim.meter is not None and nominatim.meter.refused == 0
    gaps = [b.at - a.at for a, b in zip(nominatim.ledger, nominatim.ledger[1:], strict=False)]
    assert min(gaps) >= 0.9 / (RATE / 2)


async def test_without_a_geocoder_a_member_with_an_address_says_so(
    client: TestClient, cast: Cast, settings: Settings
) -> None:
    """With no PLP_GEOCODER_URL, a member's address is kept and the member list says no geocoder is configured."""
    plain = Runtime.from_settings(settings.model_copy(update={"geocoder_url": None}))
    try:
        async with TestClient(TestServer(create_app(plain))) as other:
            anne = await enroll(other, cast, "Anne", address=GRAND_PLACE)
    finally:
        plain.close()
    assert anne["locating"]["state"] == "no_geocoder"
    assert "PLP_GEOCODER_URL" in anne["locating"]["reason"]
    assert anne["address"] == GRAND_PLACE


@pytest.mark.parametrize(
    ("place", "field"),
    [
        ({"address": {"street": "Grand-Place"}}, "body.address"),
        ({"address": {"street": "Grand-Place", "postcode": "10000"}}, "body.address.postcode"),
        ({"coordinates": {"lat": 91, "lon": 4}}, "body.coordinates.lat"),
        ({"coordinates": {"lat": 50}}, "body.coordinates.lon"),
    ],
)
async def test_a_bad_address_or_position_is_a_422_naming_the_field(
    client: TestClient, cast: Cast, place: dict[str, Any], field: str
) -> None:
    """An address without postcode or commune, a bad postcode, a latitude off the Earth: 422, the field named."""
    body = {"name": "Anne", "email": "anne@example.org", **place}
    answer = await post_json(
        client, f"/v1/plps/{cast.plp_a}/members", body, headers=cast.auth("coordinator_a"), expect=422
    )
    assert field in [e["field"] for e in answer["errors"]]


async def test_an_import_takes_address_and_coordinates_columns(client: TestClient, cast: Cast) -> None:
    """A sheet's street, number, postcode, commune, lat and lon columns (in French here) become the member's place;
    a cell that is no number of degrees, a postcode of five digits: the row is rejected, naming the column."""
    sheet = "Nom;E-mail;Rue;Numéro;Code postal;Localité;Latitude;Longitude\n"
    sheet += "Anne;anne@example.org;Grand-Place;1;1000;Bruxelles;50,8467;4,3525\n"
    sheet += "Piet;piet@example.org;Kerkstraat;5;9470;Denderleeuw;;\n"
    sheet += "Bad;bad@example.org;Kerkstraat;5;9470;Denderleeuw;north;4,1\n"
    sheet += "Far;far@example.org;Kerkstraat;5;99999;Denderleeuw;;\n"
    response = await client.post(
        f"/v1/plps/{cast.plp_a}/members/import",
        data=sheet.encode(),
        headers={**cast.auth("coordinator_a"), "Content-Type": "text/csv"},
    )
    assert response.status == 200, await response.text()
    report = await response.json()
    assert [(r["row"], [e["field"] for e in r["errors"]]) for r in report["rejected"]] == [
        (4, ["lat"]),
        (5, ["address.postcode"]),
    ]
    listed = await get_json(client, f"/v1/plps/{cast.plp_a}/members", headers=cast.auth("coordinator_a"))
    by_name = {m["name"]: m for m in listed["items"]}
    assert by_name["Anne"]["location"]["lat"] == 50.8467
    assert by_name["Anne"]["address"]["commune"] == "Bruxelles"
    assert by_name["Piet"]["locating"]["state"] == "pending"


async def test_the_job_times_its_next_run_and_hands_over_a_long_queue(
    client: TestClient, cast: Cast, runtime: Runtime, settings: Settings
) -> None:
    """The worker's job schedules its next run first; a queue longer than a batch is taken up again soon."""
    for i in range(3):
        await enroll(client, cast, f"Member{i}", address=GRAND_PLACE)
    small = Runtime.from_settings(settings.model_copy(update={"geocoder_batch": 2}))
    try:
        done = await locating.run_scheduled(small)
    finally:
        small.close()
    assert (done.located, done.left) == (2, 1)
    [(_, at)] = runtime.sync_redis.zrange(runtime.keys.timers(), 0, -1, withscores=True)
    assert at <= now_ts() + 1  # soon, not in EVERY seconds: the same timer, moved


# -- an alert around an address -------------------------------------------------------------------


async def test_an_alert_around_an_address_waits_for_the_background_geocoder_then_goes(
    client: TestClient, cast: Cast, runtime: Runtime, nominatim: NominatimSimulator
) -> None:
    """An alert "500 m around Grand-Place 1": the first preview is a 422 saying it is being located (the geocoder is not
    asked in the request); once the job has run, the preview and the alert have the circle's center."""
    circle = {"address": GRAND_PLACE, "radius_m": 500}
    body = {
        "urgency": "urgent",
        "category": "burglary",
        "plp_ids": [cast.plp_a],
        "texts": {"fr": "Cambriolage Grand-Place"},
        "area": {"circle": circle},
    }
    waiting = await post_json(client, "/v1/alerts/preview", body, headers=cast.auth("police_a"), expect=422)
    assert waiting["errors"][0]["field"] == "body.area.circle.address"
    assert "preview again in a few seconds" in waiting["errors"][0]["reason"]
    assert nominatim.ledger == []

    done = await locating.run(runtime, store_of(client))

    assert done.places == 1
    await post_json(client, "/v1/alerts/preview", body, headers=cast.auth("police_a"), expect=200)
    sent = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202)
    assert sent["area"]["circle"]["center"] == {"lat": 50.84674, "lon": 4.35247}
    assert sent["area"]["circle"]["address"] == GRAND_PLACE
    assert len(nominatim.ledger) == 1  # the next alerts find it kept


async def test_an_alert_around_an_address_the_geocoder_cannot_find_is_a_422_with_the_reason(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """An address the geocoder knows no place for stays refused, with the geocoder's reason."""
    body = {
        "urgency": "urgent",
        "category": "burglary",
        "plp_ids": [cast.plp_a],
        "texts": {"fr": "Cambriolage"},
        "area": {"circle": {"address": NOWHERE, "radius_m": 500}},
    }
    await post_json(client, "/v1/alerts/preview", body, headers=cast.auth("police_a"), expect=422)
    await locating.run(runtime, store_of(client))
    answer = await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=422)
    [error] = answer["errors"]
    assert error["field"] == "body.area.circle.address"
    assert "no place at this address" in error["reason"]


async def test_while_the_geocoder_cannot_answer_the_next_run_waits_for_the_first_member_due(
    client: TestClient, cast: Cast, runtime: Runtime, nominatim: NominatimSimulator
) -> None:
    """After a 503 the member waits; the job's next run is timed for when they are due, not every second."""
    await enroll(client, cast, "Anne", address=GRAND_PLACE)
    nominatim.failures.append(503)
    await locating.run_scheduled(runtime)
    [(_, at)] = runtime.sync_redis.zrange(runtime.keys.timers(), 0, -1, withscores=True)
    assert at == pytest.approx(now_ts() + locating.AFTER_FAILURE, abs=5)


async def test_a_geocoder_that_keeps_failing_is_shown_where_operators_look(
    client: TestClient, cast: Cast, runtime: Runtime, nominatim: NominatimSimulator
) -> None:
    """Three failed calls in a row make the geocoder a failing provider (plp status, /v1/status, /metrics); a
    rate limit is no failure, and an answer clears them."""
    anne = await enroll(client, cast, "Anne", address=GRAND_PLACE)
    for status in (503, 500, 429, 503):
        nominatim.failures.append(status)
        await locating.run(runtime, store_of(client))
        runtime.sync_redis.zadd(runtime.keys.locate(), {anne["id"]: 0})
    found = [p for p in problems(queue_health(runtime), runtime.settings) if p.concern is Concern.PROVIDER_FAILING]
    assert [p.sentence.split(":")[0] for p in found] == ["nominatim is failing for geocoder"]
    assert "its last 3 calls failed (transient" in found[0].sentence

    await locating.run(runtime, store_of(client))
    assert not [p for p in problems(queue_health(runtime), runtime.settings) if p.concern is Concern.PROVIDER_FAILING]
