"""A charter's preview: what a proposed charter changes for the next alert of each class, saving nothing."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import Cast
from tests.support import get_json, member_rows, post_json

PROPOSED = {
    "urgent": {"channels": ["sms"], "mode": "all", "ttl_seconds": 1800},
    "non_urgent": {
        "channels": ["email"],
        "mode": "first_that_works",
        "ttl_seconds": 86400,
        "quiet_hours": {"start": "21:00", "end": "08:00"},
    },
    "police_feedback": {"channels": ["email", "telegram"], "mode": "first_that_works", "ttl_seconds": 86400},
    "relay": "auto",
}


async def test_the_preview_compares_each_class_before_and_after(client: TestClient, cast: Cast) -> None:
    """Urgent alerts by SMS only: three SMS instead of the default channels, a price for them; the settings that
    change are named; relay goes from coordinator to auto."""
    await post_json(
        client,
        f"/v1/plps/{cast.plp_a}/members/import",
        {"members": member_rows(3)},
        headers=cast.auth("admin"),
        expect=200,
    )
    path = f"/v1/plps/{cast.plp_a}/charter/preview"
    preview = await post_json(client, path, PROPOSED, headers=cast.auth("coordinator_a"), expect=200)
    urgent, non_urgent, feedback = preview["classes"]
    assert [c["message_class"] for c in preview["classes"]] == ["urgent", "non_urgent", "police_feedback"]
    assert urgent["after"]["by_channel"] == {"sms": 3} and urgent["after"]["members_reached"] == 3
    assert urgent["before"]["by_channel"] != urgent["after"]["by_channel"]
    assert float(urgent["after"]["estimated_cost"]) > 0
    assert set(urgent["changed"]) >= {"channels", "ttl_seconds"}
    assert non_urgent["changed"] == ["channels", "quiet_hours"]
    assert non_urgent["after"]["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    assert feedback["changed"] == []
    assert preview["relay"] == {"before": "coordinator", "after": "auto"}


async def test_the_preview_saves_nothing(client: TestClient, cast: Cast) -> None:
    """The PLP's charter is the same after a preview, and nothing is in the audit log."""
    before = await get_json(client, f"/v1/plps/{cast.plp_a}", headers=cast.auth("coordinator_a"))
    path = f"/v1/plps/{cast.plp_a}/charter/preview"
    await post_json(client, path, PROPOSED, headers=cast.auth("coordinator_a"), expect=200)
    after = await get_json(client, f"/v1/plps/{cast.plp_a}", headers=cast.auth("coordinator_a"))
    assert after["charter"] == before["charter"]
    changes = await get_json(client, "/v1/audit?action=charter.changed", headers=cast.auth("admin"))
    assert changes["items"] == []
