"""Recurring drills: a coordinator (or the police of the zone) schedules a drill for a PLP on a rule in the PLP's
local time; the clock sends each occurrence once, as an exercise, through the alerts' intake, as its author.

The clock's time is driven by hand: ``drills.send_due(runtime, now)`` is what each clock sweep runs, given
the sweep's time, so the tests move time without waiting for it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from dispatcher.api.services import SERVICES
from dispatcher.core.drills import DrillRule, DrillSchedule
from dispatcher.pipeline import clock, drills
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import get_json, post_json

FIRST_MONDAY = {"frequency": "monthly", "weekday": "monday", "week": 1, "at": "18:00"}
TEXTS = {"fr": "Exercice mensuel du PLP", "nl": "Maandelijkse oefening van de BIN"}


def body(urgency: str = "non_urgent", **rule: Any) -> dict[str, Any]:
    return {"urgency": urgency, "texts": TEXTS, "rule": {**FIRST_MONDAY, **rule}}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("rule", "after", "expected"),
    [
        (FIRST_MONDAY, utc(2027, 2, 2), utc(2027, 3, 1, 17)),  # 18:00 in Brussels in winter (UTC+1)
        (FIRST_MONDAY, utc(2027, 3, 1, 17), utc(2027, 4, 5, 16)),  # after the change of 28 March: UTC+2
        (FIRST_MONDAY, utc(2027, 10, 2), utc(2027, 10, 4, 16)),
        (FIRST_MONDAY, utc(2027, 10, 4, 16), utc(2027, 11, 1, 17)),  # back to winter time on 31 October
        ({**FIRST_MONDAY, "week": 2, "weekday": "sunday", "at": "12:00"}, utc(2027, 1, 1), utc(2027, 1, 10, 11)),
        ({"frequency": "weekly", "weekday": "friday", "at": "09:30"}, utc(2027, 1, 1, 8, 30), utc(2027, 1, 8, 8, 30)),
        ({"frequency": "weekly", "weekday": "friday", "at": "09:30"}, utc(2027, 1, 1, 8, 29), utc(2027, 1, 1, 8, 30)),
        (FIRST_MONDAY, utc(2026, 12, 8), utc(2027, 1, 4, 17)),  # across the year
    ],
    ids=[
        "winter",
        "over-the-spring-change",
        "summer",
        "over-the-autumn-change",
        "second-sunday",
        "weekly-next",
        "weekly-same-day",
        "new-year",
    ],
)
def test_a_drill_comes_round_at_the_plps_local_time(rule: dict[str, Any], after: datetime, expected: datetime) -> None:
    """The next occurrence is the rule's day at its wall-clock time in Brussels, whatever the daylight saving."""
    assert DrillRule.model_validate(rule).next_after(after, "Europe/Brussels") == expected


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"week": None}, "body.rule"),  # monthly needs its week
        ({"frequency": "weekly"}, "body.rule"),  # weekly has none
        ({"week": 5}, "body.rule.week"),
        ({"at": "24:00"}, "body.rule.at"),
        ({"weekday": "mon"}, "body.rule.weekday"),
        ({"every": "day"}, "body.rule.every"),
    ],
)
async def test_a_bad_rule_is_a_422_naming_the_field(client: TestClient, cast: Cast, rule: dict, field: str) -> None:
    """A rule the clock could not follow is refused with the field that is wrong."""
    response = await client.post(f"/v1/plps/{cast.plp_a}/drills", json=body(**rule), headers=cast.auth("admin"))
    assert response.status == 422, await response.text()
    assert field in [e["field"] for e in (await response.json())["errors"]]


@pytest.mark.parametrize(
    ("who", "urgency", "status"),
    [
        ("coordinator_a", "non_urgent", 201),
        ("coordinator_a", "urgent", 403),  # coordinators send non-urgent messages, drills too
        ("coordinator_b", "non_urgent", 403),
        ("police_a", "urgent", 201),
        ("police_b", "urgent", 403),
        ("admin", "urgent", 201),
    ],
)
async def test_who_may_schedule_a_drill_on_which_lane(
    client: TestClient, cast: Cast, who: str, urgency: str, status: int
) -> None:
    """The PLP's coordinators schedule non-urgent drills; the police of its zone and admins urgent ones too."""
    response = await client.post(f"/v1/plps/{cast.plp_a}/drills", json=body(urgency), headers=cast.auth(who))
    assert response.status == status, await response.text()


async def test_a_coordinator_schedules_lists_and_deletes_a_drill(client: TestClient, cast: Cast) -> None:
    """The schedule says when it goes next; the PLP's police read it; deleting it stops it; both are audited."""
    path = f"/v1/plps/{cast.plp_a}/drills"
    made = await post_json(client, path, body(), headers=cast.auth("coordinator_a"), expect=201)
    assert made["author_id"] == cast.ids["coordinator_a"] and made["author_role"] == "coordinator"
    next_at = datetime.fromisoformat(made["next_at"])
    assert next_at > datetime.now(UTC) and next_at.astimezone().weekday() == 0
    listed = await get_json(client, path, headers=cast.auth("police_a"))
    assert [d["id"] for d in listed["items"]] == [made["id"]]
    await get_json(client, path, headers=cast.auth("coordinator_b"), expect=403)
    response = await client.delete(f"{path}/{made['id']}", headers=cast.auth("coordinator_a"))
    assert response.status == 204
    assert (await get_json(client, path, headers=cast.auth("admin")))["items"] == []
    response = await client.delete(f"{path}/{made['id']}", headers=cast.auth("coordinator_a"))
    assert response.status == 404
    audit = await get_json(client, "/v1/audit?limit=20", headers=cast.auth("admin"))
    actions = [e["action"] for e in audit["items"]]
    assert "drill.scheduled" in actions and "drill.deleted" in actions


async def _scheduled(client: TestClient, cast: Cast, next_at: datetime, who: str = "coordinator_a") -> DrillSchedule:
    """A schedule of PLP a as ``who`` made it, its next occurrence moved to ``next_at`` (the clock's past)."""
    urgency = "non_urgent" if who.startswith("coordinator") else "urgent"
    made = await post_json(client, f"/v1/plps/{cast.plp_a}/drills", body(urgency), headers=cast.auth(who), expect=201)
    schedule = DrillSchedule.model_validate(made).model_copy(update={"next_at": next_at})
    await drills.save(client.server.app[SERVICES].store, schedule)
    return schedule


async def _exercises(client: TestClient, cast: Cast) -> list[dict[str, Any]]:
    found = await get_json(client, "/v1/alerts?limit=100", headers=cast.auth("admin"))
    return [a for a in found["items"] if a["exercise"]]


async def test_the_clock_sends_each_occurrence_once_as_its_author_at_the_plps_local_time(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """At 18:00 in Brussels on the first Monday of March (17:00 UTC) the drill goes, as an exercise on the
    coordinator's lane, audited as theirs; the same sweep again sends nothing; the next goes on the first Monday
    of April at 18:00 Brussels summer time (16:00 UTC)."""
    schedule = await _scheduled(client, cast, utc(2027, 3, 1, 17))
    assert drills.send_due(runtime, utc(2027, 3, 1, 16, 59).timestamp()) == 0  # not yet
    assert drills.send_due(runtime, utc(2027, 3, 1, 17, 0, 5).timestamp()) == 1
    assert drills.send_due(runtime, utc(2027, 3, 1, 17, 0, 6).timestamp()) == 0
    [alert] = await _exercises(client, cast)
    assert (alert["urgency"], alert["author_id"], alert["plp_ids"]) == (
        "non_urgent",
        cast.ids["coordinator_a"],
        [cast.plp_a],
    )
    assert alert["texts"] == TEXTS
    audit = await get_json(client, "/v1/audit?action=alert.created", headers=cast.auth("admin"))
    [entry] = [e for e in audit["items"] if e["target"] == {"alert": alert["id"]}]
    assert entry["actor_id"] == cast.ids["coordinator_a"] and schedule.id in entry["detail"]
    [moved] = (await get_json(client, f"/v1/plps/{cast.plp_a}/drills", headers=cast.auth("admin")))["items"]
    assert datetime.fromisoformat(moved["next_at"]) == utc(2027, 4, 5, 16)
    assert drills.send_due(runtime, utc(2027, 4, 5, 16, 0, 1).timestamp()) == 1
    assert len(await _exercises(client, cast)) == 2


async def test_a_clock_that_dies_after_sending_does_not_send_the_occurrence_twice(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """A clock that sent an occurrence and died before moving the schedule on leaves it due: the next clock
    (or a second one sweeping at once) finds the occurrence sent and sends nothing more."""
    schedule = await _scheduled(client, cast, utc(2027, 3, 1, 17), who="police_a")
    at = utc(2027, 3, 1, 17, 0, 5).timestamp()
    assert drills.send_due(runtime, at) == 1
    await drills.save(client.server.app[SERVICES].store, schedule)  # as it was before the sweep moved it on
    assert drills.send_due(runtime, at + 1) == 0
    [alert] = await _exercises(client, cast)
    assert alert["urgency"] == "urgent"


async def test_an_occurrence_found_an_hour_late_is_skipped_not_sent_late(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Every clock down over the drill's hour: it is not sent at the wrong hour; the schedule moves on."""
    await _scheduled(client, cast, utc(2027, 3, 1, 17))
    assert drills.send_due(runtime, utc(2027, 3, 1, 18, 0, 1).timestamp()) == 0
    assert await _exercises(client, cast) == []
    [moved] = (await get_json(client, f"/v1/plps/{cast.plp_a}/drills", headers=cast.auth("admin")))["items"]
    assert datetime.fromisoformat(moved["next_at"]) == utc(2027, 4, 5, 16)


async def test_a_drill_whose_author_is_gone_sends_nothing(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """The author's rights are checked at each occurrence: an author who is no actor any more sends nothing."""
    await _scheduled(client, cast, utc(2027, 3, 1, 17))
    runtime.rq_connection.delete(runtime.keys.actor(cast.ids["coordinator_a"]))
    assert drills.send_due(runtime, utc(2027, 3, 1, 17, 0, 1).timestamp()) == 0
    assert await _exercises(client, cast) == []


async def test_the_clocks_sweep_sends_a_drill_that_is_due(client: TestClient, cast: Cast, runtime: Runtime) -> None:
    """The clock's sweep (``clock.tick``) runs the drills: one due a second ago goes."""
    await _scheduled(client, cast, datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) - 1, UTC))
    assert clock.tick(runtime).drills == 1
    assert len(await _exercises(client, cast)) == 1


async def test_two_clocks_sweeping_at_once_send_the_occurrence_once(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """Four clocks (threads here) take the same due drill in the same instant: one alert, accepted by one
    transaction (one audit entry), and the schedule moved on."""
    await _scheduled(client, cast, utc(2027, 3, 1, 17))
    at = utc(2027, 3, 1, 17, 0, 2).timestamp()
    with ThreadPoolExecutor(max_workers=4) as clocks:
        sent = list(clocks.map(lambda _: drills.send_due(runtime, at), range(4)))
    assert sum(sent) >= 1  # a clock that lost the race in the same instant finds the one alert and says so
    [alert] = await _exercises(client, cast)
    audit = await get_json(client, "/v1/audit?action=alert.created", headers=cast.auth("admin"))
    assert [e["target"] for e in audit["items"]].count({"alert": alert["id"]}) == 1
    [moved] = (await get_json(client, f"/v1/plps/{cast.plp_a}/drills", headers=cast.auth("admin")))["items"]
    assert datetime.fromisoformat(moved["next_at"]) == utc(2027, 4, 5, 16)
