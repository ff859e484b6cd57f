"""What the console's members screen reads: an import's preview (dry run), and each member's reachability."""

from __future__ import annotations

from datetime import datetime

from aiohttp.test_utils import TestClient

from dispatcher.api.services import SERVICES
from dispatcher.core.models import ChannelName
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import get_json, post_json, run_queued

CSV = (
    "name,phone,email,language,channels\n"
    "Marie Leroy,0471 55 66 77,marie@example.org,fr,sms;email\n"
    "Bad Row,02 555 12 34,,fr,sms\n"
    "Jan De Smet,,jan@example.org,nl,email\n"
)


async def _csv(client: TestClient, path: str, headers: dict[str, str]) -> dict:
    response = await client.post(path, data=CSV, headers={**headers, "Content-Type": "text/csv"})
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def _names(client: TestClient, cast: Cast) -> set[str]:
    page = await get_json(client, f"/v1/plps/{cast.plp_a}/members", headers=cast.auth("coordinator_a"))
    return {m["name"] for m in page["items"]}


async def test_a_dry_run_reports_like_the_import_and_writes_nothing(client: TestClient, cast: Cast) -> None:
    """dry_run=true: the same rows imported and rejected, with reasons, no member ids for new people, nothing stored."""
    path = f"/v1/plps/{cast.plp_a}/members/import"
    preview = await _csv(client, f"{path}?dry_run=true", cast.auth("coordinator_a"))
    assert preview["dry_run"] is True
    assert [(r["row"], r["member_id"], r["existing"]) for r in preview["imported"]] == [
        (2, None, False),
        (4, None, False),
    ]
    [bad] = preview["rejected"]
    assert (bad["row"], bad["errors"][0]["field"]) == (3, "phone")
    assert bad["errors"][0]["reason"].startswith("not a mobile number")
    assert await _names(client, cast) == set()

    report = await _csv(client, path, cast.auth("coordinator_a"))
    assert report["dry_run"] is False
    assert [r["row"] for r in report["imported"]] == [2, 4] and all(r["member_id"] for r in report["imported"])
    assert report["rejected"] == preview["rejected"]
    assert await _names(client, cast) == {"Marie Leroy", "Jan De Smet"}


async def test_a_dry_run_sees_people_known_elsewhere_and_already_here(client: TestClient, cast: Cast) -> None:
    """A person known in another PLP would be linked (existing, with their id); one already here is rejected."""
    await _csv(client, f"/v1/plps/{cast.plp_a}/members/import", cast.auth("admin"))
    again = await _csv(client, f"/v1/plps/{cast.plp_a}/members/import?dry_run=true", cast.auth("admin"))
    assert again["imported"] == []
    assert {r["row"] for r in again["rejected"]} == {2, 3, 4}
    elsewhere = await _csv(client, f"/v1/plps/{cast.plp_b}/members/import?dry_run=true", cast.auth("admin"))
    assert [(r["row"], r["existing"], bool(r["member_id"])) for r in elsewhere["imported"]] == [
        (2, True, True),
        (4, True, True),
    ]
    page = await get_json(client, f"/v1/plps/{cast.plp_b}/members", headers=cast.auth("admin"))
    assert page["items"] == []


async def test_a_dry_run_is_not_an_audited_import(client: TestClient, cast: Cast) -> None:
    """Only the real import is in the audit log."""
    path = f"/v1/plps/{cast.plp_a}/members/import"
    await _csv(client, f"{path}?dry_run=true", cast.auth("coordinator_a"))
    await _csv(client, path, cast.auth("coordinator_a"))
    log = await get_json(client, "/v1/audit?action=member.imported", headers=cast.auth("admin"))
    assert len(log["items"]) == 1


async def test_each_member_shows_the_channels_that_work_and_the_last_acknowledgement(
    client: TestClient, cast: Cast, runtime: Runtime
) -> None:
    """working_channels: accepted, with a contact point, not failed for good; the last acknowledged alert's time."""
    people = {
        "anne": {
            "name": "Anne",
            "phone": "0470 11 11 11",
            "email": "anne@example.org",
            "channels": ["sms", "email", "telegram"],
        },
        "piet": {"name": "Piet", "email": "piet@example.org"},
    }
    ids = {}
    for key, body in people.items():
        member = await post_json(
            client, f"/v1/plps/{cast.plp_a}/members", body, headers=cast.auth("coordinator_a"), expect=201
        )
        ids[key] = member["id"]
        assert member["last_acknowledged_at"] is None
    store = client.server.app[SERVICES].store
    await store.mark_unusable(ids["anne"], ChannelName.EMAIL, "the mailbox does not exist")
    urgent = {"urgency": "urgent", "category": "burglary", "texts": {"fr": "Test"}, "plp_ids": [cast.plp_a]}
    first = await post_json(client, "/v1/alerts", urgent, headers=cast.auth("police_a"), expect=202)
    await run_queued(runtime)
    assert await store.acknowledge(first["id"], f"sms:{ids['anne']}", via="sms")
    second = await post_json(client, "/v1/alerts", urgent, headers=cast.auth("police_a"), expect=202)
    await run_queued(runtime)

    page = await get_json(client, f"/v1/plps/{cast.plp_a}/members", headers=cast.auth("coordinator_a"))
    found = {m["name"]: m for m in page["items"]}
    assert found["Anne"]["working_channels"] == ["sms"]  # e-mail failed for good; no Telegram chat linked
    assert found["Anne"]["unusable"] == {"email": "the mailbox does not exist"}
    assert found["Anne"]["last_acknowledged_via"] == "sms"
    acknowledged = datetime.fromisoformat(found["Anne"]["last_acknowledged_at"])
    assert datetime.fromisoformat(first["created_at"]) <= acknowledged <= datetime.fromisoformat(second["created_at"])
    assert found["Piet"]["working_channels"] == ["email"]
    assert found["Piet"]["last_acknowledged_at"] is None
    one = await get_json(client, f"/v1/plps/{cast.plp_a}/members/{ids['anne']}", headers=cast.auth("coordinator_a"))
    assert one["last_acknowledged_at"] == found["Anne"]["last_acknowledged_at"]


async def test_a_member_who_opted_out_works_on_no_channel(client: TestClient, cast: Cast) -> None:
    """Once opted out, nothing reaches them: no working channel."""
    body = {"name": "Lea", "email": "lea@example.org"}
    member = await post_json(
        client, f"/v1/plps/{cast.plp_a}/members", body, headers=cast.auth("coordinator_a"), expect=201
    )
    path = f"/v1/plps/{cast.plp_a}/members/{member['id']}"
    response = await client.patch(path, json={"status": "opted_out"}, headers=cast.auth("coordinator_a"))
    assert response.status == 200
    assert (await response.json())["working_channels"] == []
