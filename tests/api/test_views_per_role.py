"""Each view per role and per field, over the whole route table: members' personal data stays with
their coordinators (and with themselves, through their signed links).

The neighbourhood of ``tests.world`` (PLP a, police zone 5340) gets a member whose data is easy to
recognise, Zénobie, on every channel; and a second PLP, b, in another zone, with its own coordinator
and member. An admin sends an urgent alert to both PLPs. Twilio refuses Zénobie's number naming it
in its error, her Telegram message is delivered (its provider id is ``<her chat id>:<message id>``),
and she replies on Telegram with her phone number and address. Then every GET operation of the route
table is read by the admin, the officer of zone 5340, the coordinator of PLP a, the coordinator of
PLP b, and (the signed-link pages) by Zénobie, and every answer is searched.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from dispatcher.access import policy
from dispatcher.api import app as _app  # noqa: F401  (registers every operation)
from dispatcher.api.routing import Operation
from dispatcher.api.services import SERVICES, api
from dispatcher.core.models import Actor, ActorIn, Role
from dispatcher.people.accounts import create_actor
from tests.simulators.twilio import Failure
from tests.support import post_json, run_queued
from tests.world import EVERY_CHANNEL, PEOPLE, TELEGRAM_CHATS, TEXTS, WEBHOOK_SECRET, World, link_in, open_world

ZENOBIE = {"name": "Zénobie Quarantotto", "phone": "0478 91 23 45", "email": "zenobie.q@example.net"}
PHONE, CHAT = "+32478912345", 910000001
REPLY = "Une camionnette blanche; rappelez-moi au 0478 91 23 45 ou zenobie.q@example.net"
BART = {"name": "Bartholomeus Vyncke", "phone": "0479 55 66 77", "email": "bart.vyncke@example.be", "language": "nl"}
BART_CHAT = 920000002

#: A member of PLP a in every form their data could take in an answer.
ZENOBIE_NEEDLES = (
    "Zénobie",
    "Quarantotto",
    PHONE,
    "478912345",
    "0478 91 23 45",
    "zenobie.q@example.net",
    "zenobie.q",
    str(CHAT),
)
#: The other members of PLP a (tests.world), likewise.
NEIGHBOUR_NEEDLES = tuple(
    needle
    for name, person in PEOPLE.items()
    for needle in (
        person["name"],
        person.get("email"),
        re.sub(r"\D", "", person.get("phone", ""))[-8:] or None,
        str(TELEGRAM_CHATS[name]) if name in TELEGRAM_CHATS else None,
    )
    if needle
)
PLP_A_NEEDLES = ZENOBIE_NEEDLES + NEIGHBOUR_NEEDLES
PLP_B_NEEDLES = (BART["name"], "Vyncke", "479556677", BART["email"], str(BART_CHAT))

ACTORS = ("admin", "police", "coordinator", "coordinator_b")
GET_OPERATIONS = [op for op in api.operations if op.method == "GET"]
#: Query parameters an operation needs.
REQUIRED_QUERY = {"plp_evaluation": {"year": str(datetime.now(UTC).year)}}
#: The signed link each {token} route is opened with: Zénobie's, from her e-mail.
LINKS = {
    "/v1/r/{token}": "/v1/r/",
    "/v1/u/{token}": "/v1/u/",
    "/v1/x/{token}": "/v1/x/",
    "/v1/p/{token}": "/v1/p/",
}


@dataclass
class Answer:
    status: int
    text: str
    op: Operation

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Answers:
    """Every GET view as each role got it: role -> operation id -> answer."""

    by_role: dict[str, dict[str, Answer]] = field(default_factory=dict)
    plp_b: str = ""

    def of(self, role: str) -> Iterator[tuple[str, Answer]]:
        yield from self.by_role[role].items()


async def _second_plp(world: World) -> tuple[str, str]:
    """PLP b, in police zone 5341, with its coordinator and Bartholomeus; returns its id and the coordinator's token."""
    store = world.client.server.app[SERVICES].store
    body = {"name": "PLP Bois", "commune": "Uccle", "police_zone": "5341", "charter": EVERY_CHANNEL}
    plp_b = (await post_json(world.client, "/v1/plps", body, headers=world.auth("admin"), expect=201))["id"]
    _, token = await create_actor(store, ActorIn(name="Coordinateur B", role=Role.COORDINATOR, plp_ids=[plp_b]))
    headers = {"Authorization": f"Bearer {token}"}
    await post_json(world.client, f"/v1/plps/{plp_b}/members", BART, headers=headers, expect=201)
    return plp_b, token


async def _zenobie_lives_through_an_alert(world: World, plp_b: str) -> str:
    """The admin's alert to both PLPs: her SMS and call refused with her number in the error, her Telegram
    message delivered, and her reply on Telegram; returns the alert's id."""
    await world.enroll("zenobie", ZENOBIE, telegram_chat=CHAT)
    refusal = f"Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {PHONE}"
    world.twilio.failures[PHONE] = Failure(400, 21408, refusal)
    body = {"urgency": "urgent", "category": "burglary", "plp_ids": [world.plp, plp_b], "texts": TEXTS}
    alert = await world.alert(body, who="admin")
    await run_queued(world.runtime)
    await world.twilio.callbacks_done()
    status, _ = await world.telegram.member_sends(world.telegram_webhook, CHAT, REPLY, secret=WEBHOOK_SECRET)
    assert status == 200
    return str(alert["id"])


def _shows(text: str, needle: str) -> bool:
    """Whether the text shows the needle: as written, or (numbers) however spaced or dotted. A short number (a
    test chat id like 1002) counts only standing alone, not as digits of another figure (a metric's value)."""
    if needle.isdigit() and len(needle) < 6:
        return re.search(rf"(?<![\d.]){needle}(?![\d.])", text) is not None
    return needle.lower() in text.lower() or needle in re.sub(r"[ ./-]", "", text)


def _path(op: Operation, values: dict[str, str]) -> str:
    return re.sub(r"{([a-z_]+)}", lambda m: values[m.group(1)], op.path)


async def _read(world: World, op: Operation, path: str, headers: dict[str, str]) -> Answer:
    query = REQUIRED_QUERY.get(op.operation_id, {})
    async with world.client.get(path, params=query, headers=headers) as response:
        if response.content_type == "text/event-stream":  # the first event: the snapshot
            async with asyncio.timeout(10):
                text = (await response.content.readuntil(b"\n\n")).decode()
            return Answer(response.status, text.partition("data: ")[2], op)
        return Answer(response.status, await response.text(), op)


@pytest.fixture
async def answers(redis_url: str, tmp_path: Path) -> AsyncIterator[Answers]:
    # Every GET of the route table, read by five readers from one address in a second or two: the API's rate limits
    # (which have their own tests) would answer the last ones 429.
    async with open_world(redis_url, tmp_path, rate_limit_per_token=0, rate_limit_per_address=0) as world:
        plp_b, coordinator_b = await _second_plp(world)
        world.tokens["coordinator_b"] = coordinator_b
        alert_id = await _zenobie_lives_through_an_alert(world, plp_b)
        mail = next(m.message for m in world.smtp.messages if m.message["To"] == ZENOBIE["email"])
        links = {route: link_in(mail, prefix).rsplit("/", 1)[1] for route, prefix in LINKS.items()}
        links["/v1/u/{token}"] = mail["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
        values = {"alert_id": alert_id, "plp_id": world.plp, "member_id": world.members["zenobie"]["id"]}
        found = Answers(plp_b=plp_b)
        for role in ACTORS:
            found.by_role[role] = {
                op.operation_id: await _read(world, op, _path(op, values), world.auth(role))
                for op in GET_OPERATIONS
                if op.path not in LINKS
            }
        found.by_role["member"] = {
            op.operation_id: await _read(world, op, _path(op, {"token": links[op.path]}), {})
            for op in GET_OPERATIONS
            if op.path in LINKS
        }
        yield found


def _fields(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every field of a JSON answer that is not null, as ``(path, value)``; list items as ``[]``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if item is not None:
                yield f"{path}.{key}".lstrip("."), item
                yield from _fields(item, f"{path}.{key}".lstrip("."))
    elif isinstance(value, list):
        for item in value:
            yield from _fields(item, f"{path}[]")


def _shown(answer: Answer, wanted: str) -> list[str]:
    """The values of the field at ``wanted`` in the answer, as text."""
    if answer.status != 200:
        return []
    return [json.dumps(v, ensure_ascii=False) for path, v in _fields(answer.json()) if path == wanted]


def test_every_get_operation_can_be_read_by_the_table() -> None:
    """The reading covers the whole route table: every path parameter and required query of a GET is known."""
    known = {"alert_id", "plp_id", "member_id", "token"}
    for op in GET_OPERATIONS:
        params = set(re.findall(r"{([a-z_]+)}", op.path))
        assert params <= known, f"{op.operation_id}: no value for {params - known}"
        assert ("token" in params) == (op.path in LINKS), op.operation_id
        required = set(op.query.model_json_schema().get("required", [])) if op.query else set()
        assert required <= set(REQUIRED_QUERY.get(op.operation_id, {})), f"{op.operation_id} needs {required}"


async def test_no_member_data_appears_in_any_police_view(answers: Answers) -> None:
    """No name, phone number (any form), e-mail address or chat id of any member is in any answer to the
    police, whatever the view (the alert's deliveries, replies, audience, follow-up stream included)."""
    found = [
        (operation, needle)
        for operation, answer in answers.of("police")
        for needle in PLP_A_NEEDLES + PLP_B_NEEDLES
        if _shows(answer.text, needle)
    ]
    assert found == []
    assert answers.by_role["police"]["list_deliveries"].status == 200  # they do follow the alert


async def test_a_coordinator_sees_no_member_data_of_other_plps(answers: Answers) -> None:
    """The coordinator of PLP b follows the same alert without seeing anything of PLP a's members."""
    found = [
        (operation, needle)
        for operation, answer in answers.of("coordinator_b")
        for needle in PLP_A_NEEDLES
        if _shows(answer.text, needle)
    ]
    assert found == []
    deliveries = answers.by_role["coordinator_b"]["list_deliveries"].json()["items"]
    assert any(d["provider_id"] for d in deliveries)  # those of Bartholomeus, their own member


#: view, field, what to look for in it (None: any value) -> the roles that see it.
SEEN_BY: list[tuple[str, str, str | None, set[str]]] = [
    ("list_deliveries", "items[].provider_id", f"{CHAT}:", {"admin", "coordinator"}),
    ("list_deliveries", "items[].provider_id", None, {"admin", "coordinator", "coordinator_b"}),
    ("list_deliveries", "items[].last_error", PHONE, {"admin", "coordinator"}),
    ("list_deliveries", "items[].last_error", "21408", {"admin", "coordinator", "coordinator_b", "police"}),
    ("list_deliveries", "items[].status", None, {"admin", "coordinator", "coordinator_b", "police"}),
    ("alert_feedback", "items[].member_name", ZENOBIE["name"], {"admin", "coordinator"}),
    ("alert_feedback", "items[].text", "0478 91 23 45", {"admin", "coordinator"}),
    ("alert_feedback", "items[].text", "camionnette blanche", {"admin", "coordinator", "police"}),
    ("plp_feedback", "items[].text", "zenobie.q@example.net", {"admin", "coordinator"}),
    ("plp_feedback", "items[].text", "camionnette blanche", {"admin", "coordinator", "police"}),
    ("alert_audience", "not_acknowledged[].name", ZENOBIE["name"], {"admin", "coordinator"}),
    ("alert_audience", "members", None, {"admin", "coordinator", "coordinator_b", "police"}),
    ("get_member", "name", ZENOBIE["name"], {"admin", "coordinator"}),
    ("get_member", "phone", PHONE, {"admin", "coordinator"}),
    ("get_member", "email", ZENOBIE["email"], {"admin", "coordinator"}),
    ("get_member", "telegram_chat_id", str(CHAT), {"admin", "coordinator"}),
    ("list_members", "items[].phone", PHONE, {"admin", "coordinator"}),
    ("export_member", "member.telegram_chat_id", str(CHAT), {"admin", "coordinator"}),
    ("export_member", "deliveries[].last_error", PHONE, {"admin", "coordinator"}),
    ("member_data", "member.phone", PHONE, {"member"}),
    ("member_data", "member.email", ZENOBIE["email"], {"member"}),
    ("member_data", "telegram.chat_id", str(CHAT), {"member"}),
    ("get_alert", "texts.fr", "Cambriolage", {"admin", "coordinator", "coordinator_b", "police"}),
    ("get_alert", "counts.total", None, {"admin", "coordinator", "coordinator_b", "police"}),
    ("alert_events", "alert.status", None, {"admin", "coordinator", "coordinator_b", "police"}),
    ("get_plp", "charter.urgent.channels", None, {"admin", "coordinator", "police"}),
    ("service_status", "lanes[].workers_alive", None, {"admin"}),
    ("service_status", "channels.sms", None, {"admin"}),
]


async def test_each_role_sees_exactly_the_fields_of_the_table(answers: Answers) -> None:
    """Role × view × field: a field (holding what is looked for) appears in the answers of exactly the roles
    of the table."""
    wrong = []
    for view, path, needle, seen_by in SEEN_BY:
        seeing = {
            role
            for role, views in answers.by_role.items()
            if view in views and any(needle is None or needle in v for v in _shown(views[view], path))
        }
        if seeing != seen_by:
            statuses = {role: views[view].status for role, views in answers.by_role.items() if view in views}
            wrong.append(f"{view} {path} {needle or ''}: seen by {sorted(seeing)}, not {sorted(seen_by)} {statuses}")
    assert wrong == [], "\n".join(wrong)


def _model_fields(value: Any) -> Iterator[tuple[str, str]]:
    """``(view, field)`` of every field that is not None in a parsed answer."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            item = getattr(value, name)
            if item is not None:
                yield type(value).__name__, name
                yield from _model_fields(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _model_fields(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _model_fields(item)


async def test_the_police_get_only_the_fields_the_policy_shows_them(answers: Answers) -> None:
    """Every field the police get in a JSON view is one ``policy.OUTSIDER_FIELDS`` declares for them."""
    read = 0
    for operation, answer in answers.of("police"):
        model = answer.op.responses.get(200)
        if answer.op.public or answer.status != 200 or not isinstance(model, type) or not issubclass(model, BaseModel):
            continue
        parsed = model.model_validate(answer.json())
        extra = {f"{v}.{f}" for v, f in _model_fields(parsed) if f not in policy.OUTSIDER_FIELDS.get(v, {})}
        assert extra == set(), operation
        read += 1
    assert read >= 10


class NewView(BaseModel):
    """A view someone adds later, with a field nobody declared for the police."""

    alert_id: str | None
    contact: str | None


def test_a_view_or_field_not_declared_is_hidden_from_the_police() -> None:
    """Fields default to hidden: what ``OUTSIDER_FIELDS`` does not list is answered as null to the police,
    and left alone for the other roles."""
    officer = Actor(id="officer", name="Inspecteur", role=Role.POLICE, police_zone="5340")
    admin = Actor(id="admin", name="Admin", role=Role.ADMIN)
    view = NewView(alert_id="a1", contact=PHONE)
    assert policy.visible_to(officer, view) == NewView(alert_id=None, contact=None)
    assert policy.visible_to(admin, view) == view
