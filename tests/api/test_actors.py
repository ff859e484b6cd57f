"""Actors managed by admins: listed, their role and binding changed, removed (tokens revoked, sessions ended)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import Cast
from tests.support import get_json, post_json


async def test_admins_list_every_actor_by_name(client: TestClient, cast: Cast) -> None:
    """The list holds each actor with role and binding, by name."""
    listed = (await get_json(client, "/v1/actors", headers=cast.auth("admin")))["items"]
    assert [a["id"] for a in listed] == [a["id"] for a in sorted(listed, key=lambda a: a["name"].casefold())]
    by_id = {a["id"]: a for a in listed}
    assert by_id[cast.ids["police_a"]]["police_zone"] == "5340"
    assert by_id[cast.ids["coordinator_a"]]["plp_ids"] == [cast.plp_a]


async def test_a_new_role_takes_its_own_binding_only(client: TestClient, cast: Cast) -> None:
    """An officer made a coordinator of PLP A loses the zone and reads A's members with the same token."""
    path = f"/v1/actors/{cast.ids['police_b']}"
    changed = await client.patch(
        path, json={"role": "coordinator", "plp_ids": [cast.plp_a]}, headers=cast.auth("admin")
    )
    assert changed.status == 200
    assert (await changed.json()) | {"id": "", "name": ""} == {
        "id": "",
        "name": "",
        "role": "coordinator",
        "police_zone": None,
        "plp_ids": [cast.plp_a],
        "email": None,
    }
    members = await client.get(f"/v1/plps/{cast.plp_a}/members", headers=cast.auth("police_b"))
    assert members.status == 200
    entries = (await get_json(client, "/v1/audit?action=actor.changed", headers=cast.auth("admin")))["items"]
    assert [(e["target"], e["detail"]) for e in entries] == [({"actor": cast.ids["police_b"]}, "fields: plp_ids, role")]


async def test_a_role_without_its_binding_or_with_an_unknown_plp_is_refused(client: TestClient, cast: Cast) -> None:
    """A coordinator with no PLP, an unknown PLP or a police officer with no zone: 422 saying which."""
    path = f"/v1/actors/{cast.ids['coordinator_a']}"
    for body, words in (
        ({"role": "coordinator", "plp_ids": []}, "at least one PLP"),
        ({"plp_ids": ["no-such-plp"]}, "unknown PLP"),
        ({"role": "police"}, "police zone"),
    ):
        problem = await (await client.patch(path, json=body, headers=cast.auth("admin"))).json()
        assert problem["status"] == 422 and words in problem["detail"], problem


async def test_an_admin_neither_removes_nor_demotes_themselves(client: TestClient, cast: Cast) -> None:
    """So that an admin always remains: 409, another admin does it."""
    path = f"/v1/actors/{cast.ids['admin']}"
    assert (await client.delete(path, headers=cast.auth("admin"))).status == 409
    demoted = await client.patch(path, json={"role": "police", "police_zone": "5340"}, headers=cast.auth("admin"))
    assert demoted.status == 409
    assert (await client.patch(path, json={"name": "Chief"}, headers=cast.auth("admin"))).status == 200


async def test_a_removed_actor_is_refused_at_once(client: TestClient, cast: Cast) -> None:
    """Their tokens are revoked and they are gone from the list; the audit keeps the removal."""
    assert (await client.delete(f"/v1/actors/{cast.ids['police_b']}", headers=cast.auth("admin"))).status == 204
    assert (await client.get("/v1/me", headers=cast.auth("police_b"))).status == 401
    listed = (await get_json(client, "/v1/actors", headers=cast.auth("admin")))["items"]
    assert cast.ids["police_b"] not in {a["id"] for a in listed}
    tokens = await get_json(client, f"/v1/tokens?actor_id={cast.ids['police_b']}", headers=cast.auth("admin"))
    assert {t["status"] for t in tokens["items"]} == {"revoked"}
    entries = (await get_json(client, "/v1/audit?action=actor.removed", headers=cast.auth("admin")))["items"]
    assert [e["target"] for e in entries] == [{"actor": cast.ids["police_b"]}]


async def test_each_actor_issues_lists_and_revokes_their_own_tokens(client: TestClient, cast: Cast) -> None:
    """A coordinator's own token for a script: shown once, listed without its secret, revoked by them."""
    me = cast.ids["coordinator_a"]
    issued = await post_json(
        client, f"/v1/actors/{me}/tokens", {"ttl_days": 7}, headers=cast.auth("coordinator_a"), expect=201
    )
    listed = (await get_json(client, "/v1/tokens", headers=cast.auth("coordinator_a")))["items"]
    assert {t["actor_id"] for t in listed} == {me} and len(listed) == 2
    assert issued["token"] not in str(listed)
    revoked = await client.delete(f"/v1/tokens/{issued['token_id']}", headers=cast.auth("coordinator_a"))
    assert revoked.status == 204
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {issued['token']}"})).status == 401
    assert (await client.get("/v1/me", headers=cast.auth("coordinator_a"))).status == 200
