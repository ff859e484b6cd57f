"""The demo: a PLP with a few members and one actor per role, so a new user can send at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dispatcher.core.models import Actor, Language, MemberIn, Plp, Role
from dispatcher.people.membership import enroll
from dispatcher.storage.store import Conflict, Store

DEMO_PLP_ID = "demo"
DEMO_ZONE = "5342"
_MEMBERS = [
    MemberIn(name="Anne Dubois", phone="0470 00 00 01", email="anne.dubois@example.org", language=Language.FR),
    MemberIn(name="Pieter Janssens", phone="0470 00 00 02", language=Language.NL),
    MemberIn(name="Lea Schmitz", email="lea.schmitz@example.org", language=Language.DE),
    MemberIn(name="Karim Benali", phone="+32 471 00 00 03", email="karim.benali@example.org", language=Language.FR),
    MemberIn(name="Sofie Peeters", phone="0472 00 00 04", email="sofie.peeters@example.org", language=Language.NL),
    MemberIn(name="John Smith", email="john.smith@example.org", language=Language.EN),
]
_ACTORS = [
    Actor(id="demo-admin", name="Demo admin", role=Role.ADMIN),
    Actor(id="demo-police", name="Inspecteur Démo", role=Role.POLICE, police_zone=DEMO_ZONE),
    Actor(id="demo-coordinator", name="Coordinatrice Démo", role=Role.COORDINATOR, plp_ids=[DEMO_PLP_ID]),
]


@dataclass(frozen=True)
class Demo:
    plp: Plp
    members: int
    tokens: dict[Role, str]


async def seed_demo(store: Store, *, region: str) -> Demo:
    """Create the demo PLP, members and actors if missing; issue a fresh token per actor."""
    plp = await store.get_plp(DEMO_PLP_ID)
    if plp is None:
        plp = Plp(
            id=DEMO_PLP_ID,
            name="PLP Démo – Quartier du Parc",
            commune="Uccle",
            police_zone=DEMO_ZONE,
            created_at=datetime.now(UTC),
        )
        await store.save_plp(plp)
    for data in _MEMBERS:
        try:
            await enroll(store, plp, data, region=region)
        except Conflict:
            pass  # seeded by an earlier start
    tokens = {}
    for actor in _ACTORS:
        await store.save_actor(actor)
        tokens[actor.role] = (await store.issue_token(actor)).secret
    page = await store.list_members(plp.id, cursor=None, limit=1000)
    return Demo(plp=plp, members=len(page.items), tokens=tokens)
