"""Members' health from a seeded delivery history: not reachable for months, never acknowledging, no working
channel; as JSON and as CSV, for the PLP's coordinators only."""

from __future__ import annotations

import csv
import io

from aiohttp.test_utils import TestClient

from dispatcher.api.services import SERVICES
from tests.conftest import Cast
from tests.history import seed_health_history
from tests.support import get_json, member_rows, post_json

NAMES = ("steady", "silent", "lost", "newcomer", "mute")


async def seeded(client: TestClient, cast: Cast) -> dict[str, str]:
    """PLP A's five members of ``tests.history`` with their history; returns name -> id."""
    ids = {}
    for i, name in enumerate(NAMES):
        row = member_rows(1, start=i)[0] | {"name": name}
        if name == "mute":
            row = row | {"channels": ["telegram"]}  # no Telegram chat linked: no channel works
        made = await post_json(client, f"/v1/plps/{cast.plp_a}/members", row, headers=cast.auth("admin"), expect=201)
        ids[name] = made["id"]
    await seed_health_history(client.server.app[SERVICES].store, cast.plp_a, ids)
    return ids


async def health(client: TestClient, cast: Cast, query: str = "") -> dict[str, dict]:
    found = await get_json(client, f"/v1/plps/{cast.plp_a}/member-health{query}", headers=cast.auth("coordinator_a"))
    return {row["name"]: row for row in found["items"]}


async def test_each_problem_comes_from_the_history(client: TestClient, cast: Cast) -> None:
    """Steady and the newcomer are fine; silent never acknowledges; lost is not reachable; mute has no channel."""
    await seeded(client, cast)
    rows = await health(client, cast)
    assert {name: row["problems"] for name, row in rows.items()} == {
        "steady": [],
        "silent": ["never_acknowledges"],
        "lost": ["not_reachable"],
        "newcomer": [],
        "mute": ["no_working_channel"],
    }
    assert {k: rows["silent"][k] for k in ("alerts_planned", "alerts_reached", "alerts_acknowledged")} == {
        "alerts_planned": 4,
        "alerts_reached": 4,
        "alerts_acknowledged": 0,
    }
    assert rows["lost"]["last_reached_at"] < rows["steady"]["last_reached_at"]
    assert rows["mute"]["working_channels"] == [] and rows["mute"]["alerts_planned"] == 0


async def test_the_filter_keeps_one_problem_and_says_its_thresholds(client: TestClient, cast: Cast) -> None:
    """``problem=`` keeps the members with that problem; the answer carries the thresholds it used."""
    await seeded(client, cast)
    for problem, names in (
        ("not_reachable", ["lost"]),
        ("never_acknowledges", ["silent"]),
        ("no_working_channel", ["mute"]),
    ):
        assert list(await health(client, cast, f"?problem={problem}")) == names
    found = await get_json(client, f"/v1/plps/{cast.plp_a}/member-health", headers=cast.auth("admin"))
    assert found["thresholds"] == {
        "unreachable_days": 90,
        "unreachable_after": 2,
        "never_acknowledges_after": 3,
        "history_alerts": 200,
    }


async def test_the_csv_export_holds_the_same_rows_and_no_contact_point(client: TestClient, cast: Cast) -> None:
    """An attachment with a header row and a row per member; no phone number nor e-mail address in it."""
    await seeded(client, cast)
    response = await client.get(
        f"/v1/plps/{cast.plp_a}/member-health?format=csv&problem=never_acknowledges", headers=cast.auth("coordinator_a")
    )
    assert response.status == 200 and response.content_type == "text/csv"
    assert "member-health-" in response.headers["Content-Disposition"]
    text = await response.text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["name"], r["problems"], r["alerts_reached"]) for r in rows] == [("silent", "never_acknowledges", "4")]
    assert "@" not in text and "+32" not in text


async def test_the_police_and_other_coordinators_are_refused(client: TestClient, cast: Cast) -> None:
    """Members' health is members' data: 403 for the police of the zone and for B's coordinator."""
    for who in ("police_a", "coordinator_b"):
        response = await client.get(f"/v1/plps/{cast.plp_a}/member-health", headers=cast.auth(who))
        assert response.status == 403, who
