"""An e-mail made from its frame (``channels.email.mime.MailFrame``) is, byte for byte, the email package's.

The reference is the package itself: ``SmtpChannel.compose`` (``mime.build_mail``) flattened as aiosmtplib
flattens it for a server that takes 8-bit data. Each comparison gives both the same Date and multipart boundary
(the package draws a random boundary for every message; nothing else may differ).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.base import OutboundMessage
from channels.email import SmtpChannel
from channels.email.mime import encode_text
from config import Settings, SmtpSecurity
from dispatcher.core.links import Links
from dispatcher.core.models import (
    Alert,
    AnswerOption,
    Category,
    ChannelName,
    FollowUpKind,
    Language,
    Member,
    Plp,
    Relay,
    RelayState,
    Role,
    Urgency,
)
from dispatcher.pipeline.compose import compose
from tests.simulators.smtp import SmtpSimulator

DATE = "Fri, 04 Dec 2026 18:00:00 +0000"
BOUNDARY = "===============1234567890123456789=="
NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
LONG = (
    "Cambriolage en cours rue de l'Église : deux individus, l'un portant une veste à capuche grise, l'autre un sac "
    "à dos noir, ont été vus près de la gare du Midi « vers 14 h 30 » & se dirigent vers la place Flagey. "
) * 4
TEXTS = {
    Language.FR: "Cambriolage rue de l'Église : soyez vigilants, fermez portes & fenêtres.",
    Language.NL: "Inbraak in de Baljuwstraat: wees waakzaam, sluit deuren en ramen (één verdachte).",
    Language.DE: "Einbruch in der Königstraße: Bitte wachsam sein, Türen und Fenster schließen. Grüße!",
    Language.EN: "Burglary in Church Street: please be vigilant, close doors & windows <now>.",
}


def channel(sender: str = "PLP Forêt-Église <alerts@plp.example>") -> SmtpChannel:
    return SmtpChannel(host="127.0.0.1", port=25, security=SmtpSecurity.NONE, sender=sender)


def reference(email: SmtpChannel, message: OutboundMessage) -> bytes:
    """What aiosmtplib sends today for the message the ``email`` package builds."""
    mail = email.compose(message, date=DATE)
    if mail.is_multipart():
        mail.set_boundary(BOUNDARY)
    return flatten_message(mail, cte_type="8bit")


def framed(email: SmtpChannel, message: OutboundMessage) -> bytes:
    return email.wire(message, date=DATE, boundary=BOUNDARY)


def composed(
    language: Language,
    *,
    base_url: str = "https://plp.example.be",
    plp_name: str = "PLP Forêt-Église",
    member_id: str = "m000001",
    texts: dict[Language, str] | None = None,
    answers: bool = False,
    exercise: bool = False,
    kind: FollowUpKind | None = None,
    relay: dict[Language, str] | None = None,
    reply_to: tuple[str, ...] = ("coordination@plp.example", "zoë.dupont@plp.example"),
) -> OutboundMessage:
    """A member's e-mail as the dispatcher composes it (the real links, signed)."""
    links = Links(Settings(secret_key="k" * 40, public_base_url=base_url))
    plp = Plp(id="p1", name=plp_name, commune="Forest", police_zone="5341", created_at=NOW, reply_to=list(reply_to))
    options = [
        AnswerOption(id="home", texts={Language.FR: "Je suis chez moi", Language.NL: "Ik ben thuis"}),
        AnswerOption(id="seen_something", texts={Language.FR: "J'ai vu quelque chose « d'étrange »"}),
    ]
    alert = Alert(
        id="a1b2c3",
        author_id="u1",
        author_role=Role.POLICE,
        urgency=Urgency.URGENT,
        category=Category.BURGLARY,
        plp_ids=["p1"],
        texts=texts or TEXTS,
        ttl_seconds=3600,
        created_at=NOW,
        exercise=exercise,
        kind=kind,
        follows="a0" if kind else None,
        answers=options if answers else [],
    )
    member = Member(
        id=member_id,
        name="Zoë Müller-Lefèvre",
        email="zoe.muller@example.org",
        language=language,
        channels=[ChannelName.EMAIL],
        consent_at=NOW,
        plp_ids=["p1"],
        created_at=NOW,
        updated_at=NOW,
    )
    edit = Relay(plp_id="p1", state=RelayState.APPROVED, texts=relay) if relay else None
    message = compose(alert=alert, plp=plp, relay=edit, member=member, channel=ChannelName.EMAIL, links=links)
    assert message is not None
    return message


CASES = {
    "an alert": {},
    "answer options": {"answers": True},
    "a drill": {"exercise": True, "answers": True},
    "an update": {"kind": FollowUpKind.UPDATE},
    "an all-clear": {"kind": FollowUpKind.ALL_CLEAR},
    "a coordinator's edit": {"relay": {Language.FR: "Texte revu par la coordinatrice : « prudence » à Saint-Gilles."}},
    "a long text that folds": {"texts": {language: LONG for language in Language}},
    "a long PLP name with accents": {"plp_name": "Partenariat local de prévention Forêt-Église Saint-Gilles Ixelles"},
    "a short link": {"base_url": "https://p.be"},
    "a long link": {"base_url": "https://alertes.partenariat-local-de-prevention.example.be/bruxelles/capitale/v2"},
    "a long member id": {"member_id": "m" + "x" * 60},
    "no reply-to": {"reply_to": ()},
}


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("case", list(CASES))
def test_an_alerts_email_from_its_frame_is_the_one_the_email_package_builds(language: Language, case: str) -> None:
    """In every language, for every kind of alert e-mail, the framed bytes are the email package's."""
    message = composed(language, **CASES[case])  # type: ignore[arg-type]
    email = channel()
    assert framed(email, message) == reference(email, message)


@pytest.mark.parametrize(
    "sender",
    ["alerts@plp.example", "PLP Flagey <alerts@plp.example>", "Partenariat local de prévention Forêt <a@plp.example>"],
)
def test_the_sender_is_written_as_the_email_package_writes_it(sender: str) -> None:
    """A sender with or without a display name, accented and long enough to fold, comes out the same."""
    message = composed(Language.FR, answers=True)
    email = channel(sender)
    assert framed(email, message) == reference(email, message)


def test_many_members_share_one_frame_and_each_gets_their_own_links() -> None:
    """Members of one language get their own links and Message-ID from one frame, each byte-identical."""
    email = channel()
    messages = [composed(Language.NL, member_id=f"m{n:06d}", answers=True) for n in range(1, 6)]
    wires = [framed(email, message) for message in messages]
    assert wires == [reference(email, message) for message in messages]
    assert len(set(wires)) == len(wires)


@pytest.mark.parametrize(
    ("text", "cte"),
    [
        ("Short and plain.", "7bit"),
        ("Court, accentué : é à ç.", "8bit"),
        ("x" * 79, "quoted-printable"),
        ("Ελληνικά και Кириллица, πολύ μεγάλη γραμμή χωρίς τέλος, " * 3, "base64"),
        ("", "7bit"),
    ],
)
def test_each_body_gets_the_transfer_encoding_the_email_package_chooses(text: str, cte: str) -> None:
    """Short lines go as they are (7bit, or 8bit with accents); longer ones in quoted-printable or base64."""
    message = OutboundMessage(**{**_fields(composed(Language.FR)), "text": text, "html": None})
    email = channel()
    assert encode_text(text)[0] == cte
    assert framed(email, message) == reference(email, message)


def _fields(message: OutboundMessage) -> dict[str, object]:
    return {name: getattr(message, name) for name in OutboundMessage.__dataclass_fields__}


LINE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)
ADDRESS = st.one_of(
    st.from_regex(r"[a-z0-9_+-]{1,20}(\.[a-z0-9_+-]{1,20}){0,2}@[a-z0-9-]{1,20}\.(be|org)", fullmatch=True),
    st.sampled_from(
        ["A.B@X.ORG", "a..b@example.org", "o'brien@example.be", "x/y=z@example.org", "l" * 80 + "@example.org"]
    ),
)
URL = st.from_regex(r"https://[a-z]{1,20}\.be/v1/u/[A-Za-z0-9_.?=&,-]{0,120}", fullmatch=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=160),
    text=st.lists(LINE, max_size=14).map("\n".join),
    html=st.none() | st.lists(LINE, min_size=1, max_size=14).map("\n".join),
    address=ADDRESS,
    unsubscribe_url=st.none() | URL,
    member_id=st.from_regex(r"[A-Za-z0-9_-]{1,70}", fullmatch=True),
    language=st.sampled_from(list(Language)),
)
def test_any_email_from_its_frame_is_the_one_the_email_package_builds(
    subject: str,
    text: str,
    html: str | None,
    address: str,
    unsubscribe_url: str | None,
    member_id: str,
    language: Language,
) -> None:
    """Whatever the texts (any script, long lines, any length), subject, address, Message-ID and unsubscribe link,
    the framed bytes are the email package's, or both refuse the message."""
    message = OutboundMessage(
        **{
            **_fields(composed(language)),
            "delivery_id": f"a1:email:{member_id}",
            "address": address,
            "subject": subject,
            "text": text,
            "html": html,
            "unsubscribe_url": unsubscribe_url,
        }
    )
    email = channel()
    try:
        expected = reference(email, message)
    except ValueError:
        with pytest.raises(ValueError):
            framed(email, message)
        return
    assert framed(email, message) == expected


async def test_the_server_receives_the_bytes_the_email_package_builds() -> None:
    """Over SMTP, the message the server takes is the email package's, with the Date and boundary it carries."""
    message = composed(Language.DE, answers=True, exercise=True)
    async with SmtpSimulator() as smtp:
        email = SmtpChannel(host=smtp.host, port=smtp.port, security=SmtpSecurity.NONE, sender="PLP <a@plp.be>")
        try:
            await email.send(message)
        finally:
            await email.close()
        [mail] = await smtp.wait_for(1)
    expected = email.compose(message, date=mail.message["Date"])
    expected.set_boundary(mail.message.get_boundary())
    assert mail.raw == flatten_message(expected, cte_type="8bit")


async def test_a_server_without_8bitmime_gets_the_message_the_email_package_writes_for_it() -> None:
    """A server that takes 7-bit data only gets the email package's message flattened for it (accents in base64)."""
    message = OutboundMessage(**{**_fields(composed(Language.FR)), "text": "Court, accentué : é à ç.", "html": None})
    async with SmtpSimulator(eight_bit=False) as smtp:
        email = SmtpChannel(host=smtp.host, port=smtp.port, security=SmtpSecurity.NONE, sender="PLP <a@plp.be>")
        try:
            await email.send(message)
        finally:
            await email.close()
        [mail] = await smtp.wait_for(1)
    expected = email.compose(message, date=mail.message["Date"])
    assert mail.raw == flatten_message(expected, cte_type="7bit")
    assert b"Content-Transfer-Encoding: base64" in mail.raw
