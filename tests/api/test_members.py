"""A PLP's members through the API: enrolment, linking across PLPs, changes, erasure, lists, bulk import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from dispatcher.api.app import create_app
from dispatcher.api.services import SERVICES
from dispatcher.core.models import ChannelName
from dispatcher.storage.runtime import Runtime
from tests.conftest import Cast
from tests.support import get_json, member_rows, post_json

ANNE = {"name": "Anne Dubois", "phone": "0470 12 34 56", "email": "anne@example.org", "language": "fr"}
MAX_IMPORT_ROWS = 3


def members_of(plp_id: str, member_id: str = "") -> str:
    return f"/v1/plps/{plp_id}/members" + (f"/{member_id}" if member_id else "")


def import_of(plp_id: str) -> str:
    return f"/v1/plps/{plp_id}/members/import"


async def keys_matching(client: TestClient, pattern: str) -> list[str]:
    redis = client.server.app[SERVICES].store.redis
    return [key async for key in redis.scan_iter(match=pattern)]


async def enroll_anne(client: TestClient, cast: Cast) -> dict[str, Any]:
    return await post_json(client, members_of(cast.plp_a), ANNE, headers=cast.auth("coordinator_a"), expect=201)


@pytest.fixture
async def small_import_client(settings: Settings, client: TestClient) -> AsyncIterator[TestClient]:
    """A second app on the same Redis (so the cast's tokens work) that imports at most MAX_IMPORT_ROWS rows."""
    runtime = Runtime.from_settings(settings.model_copy(update={"max_import_rows": MAX_IMPORT_ROWS}))
    async with TestClient(TestServer(create_app(runtime))) as small:
        yield small
    runtime.close()


# -- one member at a time --------------------------------------------------------------------


async def test_a_new_member_is_created_with_the_phone_in_e164_and_a_location(client: TestClient, cast: Cast) -> None:
    """Adding a member answers 201 with a Location, and the phone written nationally is stored in E.164."""
    response = await client.post(members_of(cast.plp_a), json=ANNE, headers=cast.auth("coordinator_a"))
    assert response.status == 201, await response.text()
    member = await response.json()
    assert member["phone"] == "+32470123456"
    assert member["plp_ids"] == [cast.plp_a]
    assert response.headers["Location"] == members_of(cast.plp_a, member["id"])
    assert await get_json(client, response.headers["Location"], headers=cast.auth("coordinator_a")) == member


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("12345", "not a valid phone number"),
        ("hello", "not a phone number"),
        ("02 511 22 33", "not a mobile number"),
    ],
)
async def test_an_unusable_phone_is_refused_naming_body_phone_and_why(
    client: TestClient, cast: Cast, phone: str, reason: str
) -> None:
    """A phone that is no number, invalid, or a fixed line gives a 422 problem naming body.phone with the reason."""
    response = await client.post(
        members_of(cast.plp_a), json={**ANNE, "phone": phone}, headers=cast.auth("coordinator_a")
    )
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    errors = (await response.json())["errors"]
    assert [e["field"] for e in errors] == ["body.phone"]
    assert reason in errors[0]["reason"]


async def test_unknown_fields_are_refused_by_name(client: TestClient, cast: Cast) -> None:
    """A field the API does not know is refused with a 422 naming it, rather than silently dropped."""
    response = await client.post(
        members_of(cast.plp_a), json={**ANNE, "nickname": "Annie"}, headers=cast.auth("coordinator_a")
    )
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert [e["field"] for e in (await response.json())["errors"]] == ["body.nickname"]


async def test_the_same_person_in_a_second_plp_is_linked_not_duplicated(client: TestClient, cast: Cast) -> None:
    """Enrolling someone whose phone is known links the existing member (200, same id) to the new PLP."""
    anne = await enroll_anne(client, cast)
    again = {"name": "Anne D.", "phone": "+32 470 12 34 56"}
    response = await client.post(members_of(cast.plp_b), json=again, headers=cast.auth("admin"))
    assert response.status == 200, await response.text()
    linked = await response.json()
    assert linked["id"] == anne["id"]
    assert sorted(linked["plp_ids"]) == sorted([cast.plp_a, cast.plp_b])
    assert len(await keys_matching(client, "plptest:member:*")) == 1


async def test_a_coordinator_sees_only_the_memberships_of_their_own_plps(client: TestClient, cast: Cast) -> None:
    """A member of PLPs a and b shows plp_ids [b] to b's coordinator and [a] to a's: no PLP learns of another."""
    anne = await enroll_anne(client, cast)
    await post_json(client, members_of(cast.plp_b), ANNE, headers=cast.auth("admin"), expect=200)
    seen_by_b = await get_json(client, members_of(cast.plp_b, anne["id"]), headers=cast.auth("coordinator_b"))
    seen_by_a = await get_json(client, members_of(cast.plp_a, anne["id"]), headers=cast.auth("coordinator_a"))
    assert seen_by_b["plp_ids"] == [cast.plp_b]
    assert seen_by_a["plp_ids"] == [cast.plp_a]


async def test_a_member_can_be_read_and_changed(client: TestClient, cast: Cast) -> None:
    """PATCH changes only the fields sent, and a new phone is normalised like on creation."""
    anne = await enroll_anne(client, cast)
    path = members_of(cast.plp_a, anne["id"])
    response = await client.patch(
        path, json={"language": "nl", "phone": "0471 23 45 67"}, headers=cast.auth("coordinator_a")
    )
    assert response.status == 200, await response.text()
    changed = await response.json()
    assert (changed["language"], changed["phone"]) == ("nl", "+32471234567")
    assert (changed["name"], changed["email"]) == (anne["name"], anne["email"])
    assert await get_json(client, path, headers=cast.auth("coordinator_a")) == changed


async def test_opting_out_records_when(client: TestClient, cast: Cast) -> None:
    """Setting status opted_out stamps opted_out_at and puts the member in the opt-out set."""
    anne = await enroll_anne(client, cast)
    assert anne["opted_out_at"] is None
    response = await client.patch(
        members_of(cast.plp_a, anne["id"]), json={"status": "opted_out"}, headers=cast.auth("coordinator_a")
    )
    assert response.status == 200, await response.text()
    changed = await response.json()
    assert changed["status"] == "opted_out"
    assert changed["opted_out_at"] is not None
    redis = client.server.app[SERVICES].store.redis
    assert await redis.sismember("plptest:optouts", anne["id"])


async def test_leaving_the_last_plp_erases_the_personal_data(client: TestClient, cast: Cast) -> None:
    """Removing a member from their only PLP deletes their record and contact index; only the id stays, opted out."""
    anne = await enroll_anne(client, cast)
    path = members_of(cast.plp_a, anne["id"])
    response = await client.delete(path, headers=cast.auth("coordinator_a"))
    assert response.status == 204
    await get_json(client, path, headers=cast.auth("coordinator_a"), expect=404)
    assert await keys_matching(client, f"plptest:member:{anne['id']}") == []
    assert await keys_matching(client, "plptest:contact:*") == []
    redis = client.server.app[SERVICES].store.redis
    assert await redis.sismember("plptest:optouts", anne["id"])
    page = await get_json(client, members_of(cast.plp_a), headers=cast.auth("coordinator_a"))
    assert page["items"] == []


async def test_leaving_one_of_two_plps_keeps_the_member_in_the_other(client: TestClient, cast: Cast) -> None:
    """Removing a member from PLP a leaves them, with their data, in PLP b."""
    anne = await enroll_anne(client, cast)
    await post_json(client, members_of(cast.plp_b), ANNE, headers=cast.auth("admin"), expect=200)
    response = await client.delete(members_of(cast.plp_a, anne["id"]), headers=cast.auth("coordinator_a"))
    assert response.status == 204
    await get_json(client, members_of(cast.plp_a, anne["id"]), headers=cast.auth("coordinator_a"), expect=404)
    kept = await get_json(client, members_of(cast.plp_b, anne["id"]), headers=cast.auth("admin"))
    assert (kept["plp_ids"], kept["phone"]) == ([cast.plp_b], "+32470123456")
    redis = client.server.app[SERVICES].store.redis
    assert not await redis.sismember("plptest:optouts", anne["id"])


async def test_the_member_list_is_paginated_with_a_cursor(client: TestClient, cast: Cast) -> None:
    """Seven members listed three at a time come in pages of 3, 3 and 1, each once, the last without a cursor."""
    created = set()
    for row in member_rows(7):
        created.add((await enroll(client, cast, row))["id"])
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = f"?limit=3&cursor={cursor}" if cursor else "?limit=3"
        page = await get_json(client, members_of(cast.plp_a) + query, headers=cast.auth("coordinator_a"))
        pages.append([m["id"] for m in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "the cursor does not advance"
    assert [len(p) for p in pages] == [3, 3, 1]
    assert {i for p in pages for i in p} == created


async def enroll(client: TestClient, cast: Cast, row: dict[str, Any]) -> dict[str, Any]:
    return await post_json(client, members_of(cast.plp_a), row, headers=cast.auth("coordinator_a"), expect=201)


# -- bulk import -------------------------------------------------------------------------------

GOOD_BEFORE = {"name": "Before", "phone": "0470 00 00 01", "email": "before@example.org"}
GOOD_AFTER = {"name": "After", "phone": "0470 00 00 03", "email": "after@example.org"}


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        pytest.param({"name": "Bad phone", "phone": "12345"}, "phone", "not a valid phone number", id="bad-phone"),
        pytest.param({"phone": "0470 00 00 02"}, "name", "Field required", id="missing-name"),
        pytest.param({"name": "X", "email": "x@example.org", "language": "xx"}, "language", "'fr'", id="language"),
        pytest.param({"name": "Nobody"}, "row", "mobile phone or an e-mail", id="no-contact-point"),
        pytest.param({"name": "Twin", "phone": "+32470000001"}, "phone", "same as row 0", id="duplicate-phone"),
        pytest.param("Jan Peeters;0470000002", "row", "must be an object", id="not-an-object"),
    ],
)
async def test_a_bad_json_row_is_rejected_alone(
    client: TestClient, cast: Cast, bad: Any, field: str, reason: str
) -> None:
    """A bad row is reported with its index, field and reason; the good rows before and after it are imported."""
    body = {"members": [GOOD_BEFORE, bad, GOOD_AFTER]}
    report = await post_json(client, import_of(cast.plp_a), body, headers=cast.auth("coordinator_a"), expect=200)
    assert [r["row"] for r in report["imported"]] == [0, 2]
    assert [r["row"] for r in report["rejected"]] == [1]
    errors = report["rejected"][0]["errors"]
    assert [e["field"] for e in errors] == [field]
    assert reason in errors[0]["reason"]
    page = await get_json(client, members_of(cast.plp_a), headers=cast.auth("coordinator_a"))
    assert sorted(m["name"] for m in page["items"]) == ["After", "Before"]


async def test_a_json_import_mixing_good_and_bad_rows_imports_every_good_one(client: TestClient, cast: Cast) -> None:
    """Every good row of a mixed import is imported, whatever bad rows sit between them."""
    good = member_rows(5)
    rows: list[Any] = [
        good[0],
        {"name": "Bad phone", "phone": "12345"},
        {"name": "Bad phone", "phone": "12345"},
        good[1],
        {"phone": "0470 99 99 01"},
        good[2],
        {"name": "Twin", "phone": good[0]["phone"]},
        42,
        good[3],
        {"name": "Nobody", "language": "xx"},
        good[4],
    ]
    report = await post_json(
        client, import_of(cast.plp_a), {"members": rows}, headers=cast.auth("coordinator_a"), expect=200
    )
    assert [r["row"] for r in report["imported"]] == [0, 3, 5, 8, 10]
    assert [r["row"] for r in report["rejected"]] == [1, 2, 4, 6, 7, 9]
    assert all(r["existing"] is False for r in report["imported"])
    assert {e["field"] for e in report["rejected"][-1]["errors"]} >= {"language"}
    page = await get_json(client, members_of(cast.plp_a), headers=cast.auth("coordinator_a"))
    assert {m["id"] for m in page["items"]} == {r["member_id"] for r in report["imported"]}


async def test_an_import_links_people_already_known_in_another_plp(client: TestClient, cast: Cast) -> None:
    """A row whose phone belongs to a member of another PLP is imported as that member (existing: true)."""
    anne = await post_json(client, members_of(cast.plp_b), ANNE, headers=cast.auth("coordinator_b"), expect=201)
    report = await post_json(
        client,
        import_of(cast.plp_a),
        {"members": [{"name": "Anne", "phone": "+32470123456"}]},
        headers=cast.auth("coordinator_a"),
        expect=200,
    )
    assert report["imported"] == [{"row": 0, "member_id": anne["id"], "existing": True}]


CSV_IMPORT = (
    "name,phone,email,language,channels\n"
    "Anne Dubois,0470 11 22 33,anne@example.org,fr,sms;email\n"
    "Bad Phone,12345,,fr,sms\n"
    ",0470 11 22 44,,nl,\n"
    "Carl Schmitz,,carl@example.org,de,email;telegram\n"
)


async def test_a_csv_import_reports_spreadsheet_line_numbers(client: TestClient, cast: Cast) -> None:
    """A CSV import numbers rows by spreadsheet line (the header is line 1) and splits channels on ';'."""
    response = await client.post(
        import_of(cast.plp_a),
        data=CSV_IMPORT.encode(),
        headers={**cast.auth("coordinator_a"), "Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status == 200, await response.text()
    report = await response.json()
    assert [r["row"] for r in report["imported"]] == [2, 5]
    assert [(r["row"], [e["field"] for e in r["errors"]]) for r in report["rejected"]] == [
        (3, ["phone"]),
        (4, ["name"]),
    ]
    anne_id = report["imported"][0]["member_id"]
    anne = await get_json(client, members_of(cast.plp_a, anne_id), headers=cast.auth("coordinator_a"))
    assert (anne["phone"], anne["channels"], anne["language"]) == ("+32470112233", ["sms", "email"], "fr")


async def test_a_csv_with_an_unknown_column_is_refused_naming_it(client: TestClient, cast: Cast) -> None:
    """A CSV header with a column the service does not know is refused (422) before any row is imported."""
    response = await client.post(
        import_of(cast.plp_a),
        data=b"name,phone,nickname\nAnne,0470 11 22 33,Annie\n",
        headers={**cast.auth("coordinator_a"), "Content-Type": "text/csv"},
    )
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert any("nickname" in e["reason"] for e in problem["errors"])
    assert await keys_matching(client, "plptest:member:*") == []


async def test_an_import_larger_than_the_limit_is_refused(small_import_client: TestClient, cast: Cast) -> None:
    """More rows than max_import_rows gives a 413 problem and imports nothing; exactly the limit is accepted."""
    path, headers = import_of(cast.plp_a), cast.auth("coordinator_a")
    response = await small_import_client.post(path, json={"members": member_rows(MAX_IMPORT_ROWS + 1)}, headers=headers)
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert await keys_matching(small_import_client, "plptest:member:*") == []
    report = await post_json(
        small_import_client, path, {"members": member_rows(MAX_IMPORT_ROWS)}, headers=headers, expect=200
    )
    assert len(report["imported"]) == MAX_IMPORT_ROWS


# -- who may -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("GET", "list", None),
        ("POST", "list", {"name": "Jan", "phone": "0470 55 55 55"}),
        ("GET", "member", None),
        ("PATCH", "member", {"language": "nl"}),
        ("DELETE", "member", None),
        ("POST", "import", {"members": [{"name": "Jan", "phone": "0470 55 55 55"}]}),
    ],
)
async def test_the_police_never_reach_members(
    client: TestClient, cast: Cast, method: str, route: str, body: Any
) -> None:
    """Even in their own zone, the police get a 403 with a reason on every member route."""
    anne = await enroll_anne(client, cast)
    path = {
        "list": members_of(cast.plp_a),
        "member": members_of(cast.plp_a, anne["id"]),
        "import": import_of(cast.plp_a),
    }[route]
    response = await client.request(method, path, json=body, headers=cast.auth("police_a"))
    assert response.status == 403
    assert response.content_type == "application/problem+json"
    assert "coordinators" in (await response.json())["detail"]
    assert await get_json(client, members_of(cast.plp_a, anne["id"]), headers=cast.auth("coordinator_a")) == anne


async def test_a_whatsapp_consent_is_recorded_with_its_time_and_source_and_can_be_withdrawn(
    client: TestClient, cast: Cast
) -> None:
    """``whatsapp: true`` records the member's WhatsApp consent, when, and from where (the API, or the console's
    form, which says so in X-PLP-Client); true again keeps the first date; false withdraws it. Without it the
    member cannot be reached on WhatsApp; a non-boolean is refused naming the field."""
    auth = cast.auth("coordinator_a")
    plain = await post_json(client, members_of(cast.plp_a), ANNE, headers=auth, expect=201)
    assert plain["whatsapp_consent"] is None and "whatsapp" not in plain["working_channels"]
    path = members_of(cast.plp_a, plain["id"])
    response = await client.patch(path, json={"whatsapp": True}, headers={**auth, "X-PLP-Client": "console"})
    given = (await response.json())["whatsapp_consent"]
    assert given["source"] == "console" and given["at"]
    response = await client.patch(path, json={"whatsapp": True}, headers=auth)
    member = await response.json()
    assert member["whatsapp_consent"] == given and "whatsapp" in member["working_channels"]
    response = await client.patch(path, json={"whatsapp": False}, headers=auth)
    member = await response.json()
    assert member["whatsapp_consent"] is None and "whatsapp" not in member["working_channels"]
    response = await client.patch(path, json={"whatsapp": "yes"}, headers=auth)
    assert response.status == 422 and "body.whatsapp" in await response.text()

    other = {**ANNE, "phone": "0470 99 88 77", "email": None, "whatsapp": True}
    created = await post_json(client, members_of(cast.plp_a), other, headers=auth, expect=201)
    assert created["whatsapp_consent"]["source"] == "api"


async def test_a_new_mobile_number_gets_a_new_chance_on_whatsapp_too(client: TestClient, cast: Cast) -> None:
    """WhatsApp failed for good on the member's number (they have no WhatsApp): a new number clears that, as it
    does for SMS and calls, and their consent stays."""
    auth = cast.auth("coordinator_a")
    member = await post_json(client, members_of(cast.plp_a), {**ANNE, "whatsapp": True}, headers=auth, expect=201)
    store = client.server.app[SERVICES].store
    await store.mark_unusable(member["id"], ChannelName("whatsapp"), "this number has no WhatsApp account")
    seen = await get_json(client, members_of(cast.plp_a, member["id"]), headers=auth)
    assert "whatsapp" not in seen["working_channels"]
    response = await client.patch(members_of(cast.plp_a, member["id"]), json={"phone": "0470 65 43 21"}, headers=auth)
    changed = await response.json()
    assert changed["unusable"] == {} and "whatsapp" in changed["working_channels"]
    assert changed["whatsapp_consent"] == member["whatsapp_consent"]
