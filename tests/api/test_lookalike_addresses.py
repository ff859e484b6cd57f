"""Look-alike e-mail addresses through the API and in imports: refused naming the field, and two
writings of one address recognised as one person."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import Cast
from tests.support import post_json

LOOK_ALIKE = "аnne.dubois@example.org"  # the first letter is Cyrillic


async def test_a_look_alike_address_is_refused_with_a_problem_naming_the_field(client: TestClient, cast: Cast) -> None:
    """POST a member whose address mixes Cyrillic and Latin letters: a 422 naming body.email and why."""
    body = {"name": "Anne Dubois", "email": LOOK_ALIKE}
    problem = await post_json(client, f"/v1/plps/{cast.plp_a}/members", body, headers=cast.auth("admin"), expect=422)
    assert [e["field"] for e in problem["errors"]] == ["body.email"]
    assert "mixes Latin and Cyrillic letters" in problem["errors"][0]["reason"]


async def test_two_writings_of_one_address_are_one_person(client: TestClient, cast: Cast) -> None:
    """An address in full-width letters, or with its IDN domain in punycode and capitals, links the member
    who has it (200, the same id) rather than creating a second person."""
    admin = cast.auth("admin")
    first = await post_json(
        client, f"/v1/plps/{cast.plp_a}/members", {"name": "Anne", "email": "anne@bücher.be"}, headers=admin, expect=201
    )
    again = {"name": "Anne", "email": "ＡＮＮＥ@XN--BCHER-KVA.BE"}
    linked = await post_json(client, f"/v1/plps/{cast.plp_b}/members", again, headers=admin, expect=200)
    assert linked["id"] == first["id"]
    assert linked["email"] == "anne@bücher.be" and linked["plp_ids"] == [cast.plp_a, cast.plp_b]


async def test_an_import_reports_look_alike_and_repeated_addresses_per_row(client: TestClient, cast: Cast) -> None:
    """In an import, a look-alike address rejects its row with the reason, another writing of an address
    already in the import is reported as the same, and the other rows are imported."""
    rows = [
        {"name": "Look-alike", "email": LOOK_ALIKE},
        {"name": "Zoé", "email": "zoe@example.org"},
        {"name": "Zoé again", "email": "ｚｏｅ@EXAMPLE.ORG"},
    ]
    path = f"/v1/plps/{cast.plp_a}/members/import"
    report = await post_json(client, path, {"members": rows}, headers=cast.auth("coordinator_a"), expect=200)
    assert [r["row"] for r in report["imported"]] == [1]
    rejected = {r["row"]: r["errors"] for r in report["rejected"]}
    assert rejected[0][0]["field"] == "email" and "mixes Latin and Cyrillic" in rejected[0][0]["reason"]
    assert rejected[2] == [{"field": "email", "reason": "same as row 1"}]
