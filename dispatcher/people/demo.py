"""The demo: a PLP with a few members (placed on its two sectors, but one) and one actor per role, so a new user
can send at once, to the whole PLP or to part of it; its join page is open (``/v1/join/demo``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dispatcher.core.models import Actor, Language, MemberIn, Plp, Role
from dispatcher.core.places import Coordinates, Sector
from dispatcher.people import joining
from dispatcher.people.joining import JoinPage
from dispatcher.people.membership import enroll
from dispatcher.storage.store import Conflict, Store, new_id

DEMO_PLP_ID = "demo"
DEMO_ZONE = "5342"


def _at(lat: float, lon: float) -> Coordinates:
    return Coordinates(lat=lat, lon=lon)


_MEMBERS = [
    MemberIn(name="Anne Dubois", phone="0470 00 00 01", email="anne.dubois@example.org", language=Language.FR,
             coordinates=_at(50.8035, 4.3420)),
    MemberIn(name="Pieter Janssens", phone="0470 00 00 02", language=Language.NL, coordinates=_at(50.8052, 4.3445)),
    MemberIn(name="Lea Schmitz", email="lea.schmitz@example.org", language=Language.DE,
             coordinates=_at(50.7990, 4.3560)),
    MemberIn(name="Karim Benali", phone="+32 471 00 00 03", email="karim.benali@example.org", language=Language.FR,
             coordinates=_at(50.7975, 4.3590)),
    MemberIn(name="Sofie Peeters", phone="0472 00 00 04", email="sofie.peeters@example.org", language=Language.NL,
             coordinates=_at(50.8040, 4.3480)),
    MemberIn(name="John Smith", email="john.smith@example.org", language=Language.EN),  # no known place
]  # fmt: skip


def _box(west: float, south: float, east: float, north: float) -> dict[str, object]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


#: The demo PLP's sectors: the park's side (north-west) and the observatory's (south-east).
_SECTORS = [
    ("Parc", _box(4.3380, 50.8010, 4.3510, 50.8080)),
    ("Observatoire", _box(4.3510, 50.7950, 4.3640, 50.8010)),
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


#: The demo PLP's privacy notice, on its join page (``/v1/join/demo``).
_NOTICE = {
    Language.FR: "Démo : le PLP garde votre nom, vos coordonnées et votre adresse tant que vous êtes membre, pour vous "
    "envoyer ses messages. Vous pouvez partir à tout moment depuis votre page.",
    Language.NL: "Demo: het BIN bewaart uw naam, contactgegevens en adres zolang u lid bent, om u zijn berichten te "
    "sturen. U kunt op elk moment vertrekken via uw pagina.",
    Language.DE: "Demo: Die PLP speichert Ihren Namen, Ihre Kontaktdaten und Ihre Adresse, solange Sie Mitglied sind, "
    "um Ihnen ihre Nachrichten zu senden. Sie können jederzeit über Ihre Seite austreten.",
    Language.EN: "Demo: the PLP keeps your name, contact details and address while you are a member, to send you its "
    "messages. You may leave at any time from your page.",
}


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
    if not await store.get_sectors(plp.id):
        for name, geometry in _SECTORS:
            sector = Sector(id=new_id(), plp_id=plp.id, name=name, geometry=geometry, created_at=datetime.now(UTC))
            await store.save_sector(sector)
    if not (await joining.join_page(store, plp.id)).privacy_notice:
        await joining.set_join_page(store, plp.id, JoinPage(enabled=True, privacy_notice=_NOTICE))
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
