"""Who may export a member's data, and what each sees: their part only."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.test_members import ANNE, members_of
from tests.conftest import Cast
from tests.support import get_json, post_json


def export_of(plp_id: str, member_id: str) -> str:
    return f"{members_of(plp_id, member_id)}/export"


async def anne_in_both_plps(client: TestClient, cast: Cast) -> dict[str, Any]:
    anne = await post_json(client, members_of(cast.plp_a), ANNE, headers=cast.auth("coordinator_a"), expect=201)
    await post_json(client, members_of(cast.plp_b), ANNE, headers=cast.auth("coordinator_b"), expect=200)
    return anne


async def test_a_coordinator_exports_only_what_concerns_their_plp(client: TestClient, cast: Cast) -> None:
    """A member of PLPs a and b exported by a's coordinator shows membership a only, and says it is partial."""
    anne = await anne_in_both_plps(client, cast)
    data = await get_json(client, export_of(cast.plp_a, anne["id"]), headers=cast.auth("coordinator_a"))
    assert data["member"]["plp_ids"] == [cast.plp_a]
    assert data["member"]["phone"] == "+32470123456"
    assert data["complete"] is False and data["left_plp_ids"] == []


async def test_an_admin_exports_everything(client: TestClient, cast: Cast) -> None:
    """An admin's export holds every membership, and the PLPs the member left."""
    anne = await anne_in_both_plps(client, cast)
    response = await client.delete(members_of(cast.plp_b, anne["id"]), headers=cast.auth("coordinator_b"))
    assert response.status == 204
    data = await get_json(client, export_of(cast.plp_a, anne["id"]), headers=cast.auth("admin"))
    assert data["complete"] is True
    assert (data["member"]["plp_ids"], data["left_plp_ids"]) == ([cast.plp_a], [cast.plp_b])
    assert (data["deliveries"], data["feedback"]) == ([], [])


@pytest.mark.parametrize(
    ("who", "status"),
    [("police_a", 403), ("coordinator_b", 403), ("police_b", 403)],
)
async def test_nobody_else_exports_a_member(client: TestClient, cast: Cast, who: str, status: int) -> None:
    """The police (even of the zone) and the coordinator of another PLP get a 403 with a reason."""
    anne = await post_json(client, members_of(cast.plp_a), ANNE, headers=cast.auth("coordinator_a"), expect=201)
    response = await client.get(export_of(cast.plp_a, anne["id"]), headers=cast.auth(who))
    assert response.status == status
    assert response.content_type == "application/problem+json"


async def test_a_member_of_another_plp_is_not_found_through_mine(client: TestClient, cast: Cast) -> None:
    """A coordinator asking for a member of another PLP through their own PLP gets a 404, learning nothing."""
    anne = await post_json(client, members_of(cast.plp_b), ANNE, headers=cast.auth("coordinator_b"), expect=201)
    response = await client.get(export_of(cast.plp_a, anne["id"]), headers=cast.auth("coordinator_a"))
    assert response.status == 404


async def test_an_export_is_recorded_in_the_audit_log(client: TestClient, cast: Cast) -> None:
    """Exporting a member leaves an audit entry: who, which member, which PLP; no personal data."""
    anne = await post_json(client, members_of(cast.plp_a), ANNE, headers=cast.auth("coordinator_a"), expect=201)
    await get_json(client, export_of(cast.plp_a, anne["id"]), headers=cast.auth("coordinator_a"))
    audit = await get_json(client, "/v1/audit?action=member.exported", headers=cast.auth("admin"))
    [entry] = audit["items"]
    assert entry["actor_id"] == cast.ids["coordinator_a"]
    assert entry["target"] == {"member": anne["id"], "plp": cast.plp_a}
