"""The audit log: who did what to which ids, newest first, each reader their part, and never personal data."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.api.services import SERVICES
from dispatcher.core.models import Actor, Role
from dispatcher.storage.store import Store
from tests.conftest import Cast
from tests.support import get_json, member_rows, post_json

ANNE = {"name": "Anne Dubois", "phone": "0470 12 34 56", "email": "anne@example.org", "language": "fr"}
ANNE_CHANGED = {"phone": "+32 471 98 76 54", "language": "nl"}
IMPORTED = [*member_rows(2, start=20), {"name": "Bad Row", "phone": "12345", "email": "bad.row@example.org"}]
#: Every way the personal data of the scenario could have been written down.
PERSONAL = [
    "Anne Dubois",
    "0470 12 34 56",
    "+32470123456",
    "470123456",
    "anne@example.org",
    "+32 471 98 76 54",
    "+32471987654",
    "471987654",
    "Member 20",
    "Member 21",
    "+32470000020",
    "+32470000021",
    "member20@example.org",
    "member21@example.org",
    "Bad Row",
    "bad.row@example.org",
]


def store_of(client: TestClient) -> Store:
    return client.server.app[SERVICES].store


async def send(client: TestClient, cast: Cast, urgency: str) -> str:
    body = {"urgency": urgency, "category": "burglary", "plp_ids": [cast.plp_a], "texts": {"fr": "Cambriolage rue X"}}
    return str((await post_json(client, "/v1/alerts", body, headers=cast.auth("police_a"), expect=202))["id"])


async def scenario(client: TestClient, cast: Cast) -> list[tuple[str, str, dict[str, str]]]:
    """Run every audited action once; return the (actor, action, target) the log should hold, oldest first."""
    admin, coord_a, coord_b, police = (cast.auth(w) for w in ("admin", "coordinator_a", "coordinator_b", "police_a"))
    ids = cast.ids
    expected = [(ids["admin"], "plp.created", {"plp": cast.plp_a}), (ids["admin"], "plp.created", {"plp": cast.plp_b})]

    plp_c = await post_json(
        client, "/v1/plps", {"name": "C", "commune": "Uccle", "police_zone": "5342"}, headers=admin, expect=201
    )
    expected.append((ids["admin"], "plp.created", {"plp": plp_c["id"]}))
    response = await client.put(f"/v1/plps/{cast.plp_a}/charter", json={"relay": "coordinator"}, headers=coord_a)
    assert response.status == 200
    expected.append((ids["coordinator_a"], "charter.changed", {"plp": cast.plp_a}))

    members_a, members_b = f"/v1/plps/{cast.plp_a}/members", f"/v1/plps/{cast.plp_b}/members"
    anne = (await post_json(client, members_a, ANNE, headers=coord_a, expect=201))["id"]
    expected.append((ids["coordinator_a"], "member.created", {"plp": cast.plp_a, "member": anne}))
    await post_json(client, members_b, ANNE, headers=coord_b, expect=200)
    expected.append((ids["coordinator_b"], "member.linked", {"plp": cast.plp_b, "member": anne}))
    await post_json(client, f"{members_a}/import", {"members": IMPORTED}, headers=coord_a, expect=200)
    expected.append((ids["coordinator_a"], "member.imported", {"plp": cast.plp_a}))
    await get_json(client, members_a, headers=coord_a)
    expected.append((ids["coordinator_a"], "member.listed", {"plp": cast.plp_a}))
    await get_json(client, f"{members_a}/{anne}", headers=coord_a)
    expected.append((ids["coordinator_a"], "member.viewed", {"plp": cast.plp_a, "member": anne}))
    assert (await client.patch(f"{members_a}/{anne}", json=ANNE_CHANGED, headers=coord_a)).status == 200
    expected.append((ids["coordinator_a"], "member.changed", {"plp": cast.plp_a, "member": anne}))
    assert (await client.delete(f"{members_b}/{anne}", headers=coord_b)).status == 204
    expected.append((ids["coordinator_b"], "member.removed", {"plp": cast.plp_b, "member": anne}))
    assert (await client.delete(f"{members_a}/{anne}", headers=coord_a)).status == 204
    expected.append((ids["coordinator_a"], "member.erased", {"plp": cast.plp_a, "member": anne}))

    urgent = await send(client, cast, "urgent")
    expected.append((ids["police_a"], "alert.created", {"alert": urgent}))
    await post_json(client, f"/v1/alerts/{urgent}/cancel", None, headers=police, expect=200)
    expected.append((ids["police_a"], "alert.cancelled", {"alert": urgent}))
    for decision, body in (("approve", {}), ("decline", {"reason": "already said by the commune"})):
        advice = await send(client, cast, "non_urgent")
        expected.append((ids["police_a"], "alert.created", {"alert": advice}))
        path = f"/v1/alerts/{advice}/relays/{cast.plp_a}/{decision}"
        await post_json(client, path, body, headers=coord_a, expect=200)
        expected.append((ids["coordinator_a"], f"relay.{decision}d", {"alert": advice, "plp": cast.plp_a}))

    issued = await post_json(client, f"/v1/actors/{ids['police_b']}/tokens", None, headers=admin, expect=201)
    token = {"actor": ids["police_b"], "token": issued["token_id"]}
    expected.append((ids["admin"], "token.issued", token))
    assert (await client.delete(f"/v1/tokens/{issued['token_id']}", headers=admin)).status == 204
    expected.append((ids["admin"], "token.revoked", token))
    cast.tokens["issued"] = issued["token"]
    return expected


async def read_all(client: TestClient, cast: Cast, query: str = "") -> list[dict[str, Any]]:
    return list((await get_json(client, f"/v1/audit?limit=1000{query}", headers=cast.auth("admin")))["items"])


async def test_a_scenario_is_recorded_action_by_action(client: TestClient, cast: Cast) -> None:
    """Each audited action leaves one entry with its actor, role, action and target ids, newest first."""
    expected = await scenario(client, cast)
    items = await read_all(client, cast)
    assert [(i["actor_id"], i["action"], i["target"]) for i in reversed(items)] == expected
    roles = {cast.ids[who]: who.partition("_")[0] for who in cast.ids}
    assert all(item["role"] == roles[item["actor_id"]] for item in items)
    assert [item["id"] for item in items] == sorted((item["id"] for item in items), reverse=True)


async def test_details_say_what_without_saying_who(client: TestClient, cast: Cast) -> None:
    """Details are counts and field names: the import's counts, the page's size, the changed fields' names."""
    await scenario(client, cast)
    details = {item["action"]: item["detail"] for item in await read_all(client, cast)}
    assert details["member.imported"] == "2 imported, 1 rejected"
    assert details["member.listed"] == "3 members"
    assert details["member.changed"] == "fields: language, phone"
    assert details["alert.created"] in ("urgent burglary", "non_urgent burglary")


async def test_the_log_holds_no_personal_data_nor_tokens(client: TestClient, cast: Cast) -> None:
    """No value in the stream holds a name, phone number (any form), e-mail address or token of the scenario."""
    expected = await scenario(client, cast)
    store = store_of(client)
    entries = await store.redis.xrange(store.keys.audit())
    values = [value for _, fields in entries for item in fields.items() for value in item]
    assert len(entries) == len(expected)
    for value in values:
        assert "@" not in value, value
        for secret in [*PERSONAL, *cast.tokens.values(), "plp_"]:
            assert secret not in value, (secret, value)


async def test_filters_and_pages(client: TestClient, cast: Cast) -> None:
    """``action=`` and ``actor_id=`` filter; ``limit`` and ``before`` page through without overlap or gap."""
    await scenario(client, cast)
    everything = await read_all(client, cast)
    viewed = await read_all(client, cast, "&action=member.viewed")
    assert [i["action"] for i in viewed] == ["member.viewed"]
    mine = await read_all(client, cast, f"&actor_id={cast.ids['coordinator_b']}")
    assert [i["action"] for i in mine] == ["member.removed", "member.linked"]
    paged, before = [], ""
    while True:
        page = await get_json(client, f"/v1/audit?limit=7{before}", headers=cast.auth("admin"))
        paged += page["items"]
        if page["next_before"] is None:
            break
        before = f"&before={page['next_before']}"
    assert [i["id"] for i in paged] == [i["id"] for i in everything]


async def test_police_and_coordinators_read_their_part_and_their_own_doing(client: TestClient, cast: Cast) -> None:
    """Admins read every entry; the others those about their PLPs (named, or through the alert or member named)
    and those they did themselves, nothing else."""
    expected = await scenario(client, cast)
    alerts_to_a = {target["alert"] for _, _, target in expected if "alert" in target}
    part = {
        "admin": lambda actor, target: True,
        "coordinator_a": lambda actor, target: (
            target.get("plp") == cast.plp_a or target.get("alert") in alerts_to_a or actor == cast.ids["coordinator_a"]
        ),
        "coordinator_b": lambda actor, target: target.get("plp") == cast.plp_b or actor == cast.ids["coordinator_b"],
        "police_a": lambda actor, target: target.get("plp") == cast.plp_a or target.get("alert") in alerts_to_a,
        "police_b": lambda actor, target: target.get("plp") == cast.plp_b or actor == cast.ids["police_b"],
    }
    for who, keeps in part.items():
        items = (await get_json(client, "/v1/audit?limit=1000", headers=cast.auth(who)))["items"]
        read = [(i["actor_id"], i["action"], i["target"]) for i in reversed(items)]
        assert read == [(a, action, t) for a, action, t in expected if keeps(a, t)], who


async def test_entries_name_the_people_of_the_service_never_a_member(client: TestClient, cast: Cast) -> None:
    """An entry by an admin, officer or coordinator carries their name; one by a member acting on their own page
    carries none (their id only), whoever reads it."""
    await scenario(client, cast)
    store = store_of(client)
    await audit.record_member(store.redis, store.keys, member_id="0123456789abcdef", action=Action.MEMBER_CHOSE)
    for who in ("admin", "police_a", "coordinator_a"):
        items = (await get_json(client, "/v1/audit?limit=1000", headers=cast.auth(who)))["items"]
        names = {(i["role"], i["actor_name"]) for i in items}
        assert {("coordinator", "Coordinatrice A"), ("police", "Inspecteur A")} <= names, (who, names)
        assert all(i["actor_name"] is None for i in items if i["role"] == "member")
    admin_read = (await get_json(client, "/v1/audit?action=member.chose", headers=cast.auth("admin")))["items"]
    assert [(i["actor_id"], i["actor_name"]) for i in admin_read] == [("0123456789abcdef", None)]


async def test_a_plp_outside_ones_part_is_refused(client: TestClient, cast: Cast) -> None:
    """Asking for the entries of a PLP not one's own is a 403 that says so, not an empty page."""
    response = await client.get(f"/v1/audit?plp_id={cast.plp_b}", headers=cast.auth("coordinator_a"))
    assert response.status == 403
    assert cast.plp_b in (await response.json())["detail"]


async def test_filter_by_plp_and_by_time(client: TestClient, cast: Cast) -> None:
    """``plp_id=`` keeps the entries about that PLP; ``since`` (inclusive) and ``until`` (exclusive) bound the time."""
    await scenario(client, cast)
    everything = await read_all(client, cast)
    about_b = await read_all(client, cast, f"&plp_id={cast.plp_b}")
    assert [i["action"] for i in about_b] == ["member.removed", "member.linked", "plp.created"]
    middle = everything[len(everything) // 2]
    since = await read_all(client, cast, f"&since={middle['at'].replace('+', '%2B')}")
    assert {i["id"] for i in since} == {i["id"] for i in everything if i["at"] >= middle["at"]}
    until = await read_all(client, cast, f"&until={middle['at'].replace('+', '%2B')}")
    assert {i["id"] for i in until} == {i["id"] for i in everything if i["at"] < middle["at"]}


@pytest.mark.parametrize(
    "target",
    [{"member": "+32 470 12 34 56"}, {"member": "anne@example.org"}, {"name": "abc"}, {"plp": ""}],
    ids=["phone", "e-mail", "unknown-kind", "empty"],
)
async def test_a_target_is_ids_only(client: TestClient, target: dict[str, str]) -> None:
    """A target that is not ``{kind: id}`` of a known kind is refused before anything is written."""
    store = store_of(client)
    with pytest.raises(ValueError, match="audit target"):
        await audit.record(store.redis, store.keys, actor=None, action=Action.MEMBER_VIEWED, target=target)
    assert await store.redis.exists(store.keys.audit()) == 0


async def test_a_detail_is_masked_like_a_log_line(client: TestClient) -> None:
    """Should a phone number, e-mail address or token slip into a detail, it is stored masked."""
    store, admin = store_of(client), Actor(id="a1", name="A", role=Role.ADMIN)
    detail = "call 0470 12 34 56, write anne@example.org, token plp_abcdefghijklmnopqrstuvwxyz"
    await audit.record(store.redis, store.keys, actor=admin, action=Action.MEMBER_CHANGED, target={}, detail=detail)
    [entry] = (await audit.read(store.redis, store.keys)).entries
    assert "0470 12 34 56" not in entry.detail and "anne@" not in entry.detail and "plp_abc" not in entry.detail
    assert (entry.actor_id, entry.role, entry.action) == ("a1", "admin", "member.changed")


async def test_a_read_before_the_first_possible_id_is_empty(client: TestClient, cast: Cast) -> None:
    """``before=0-0`` (nothing can be older) is an empty page, not an error."""
    page = await get_json(client, "/v1/audit?before=0-0", headers=cast.auth("admin"))
    assert page == {"items": [], "next_before": None}
