"""The communication plan as data: charters, quiet hours, PLPs, members, and the texts of alerts."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest
from pydantic import ValidationError

from dispatcher.core.models import (
    Alert,
    Category,
    ChannelName,
    Charter,
    ClassPlan,
    DeliveryMode,
    Language,
    Member,
    MemberIn,
    PlpIn,
    QuietHours,
    Relay,
    RelayState,
    Role,
    Urgency,
)

SMS, EMAIL, TELEGRAM, VOICE = ChannelName.SMS, ChannelName.EMAIL, ChannelName.TELEGRAM, ChannelName.VOICE
EVERY_CHANNEL = [SMS, EMAIL, TELEGRAM, VOICE]
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def errors_of(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.value.errors())


# -- charter -------------------------------------------------------------------------------


def test_default_charter_is_valid() -> None:
    """A PLP created without a charter gets the default plan: urgent on every channel, never held."""
    charter = Charter()
    assert charter.urgent.mode is DeliveryMode.ALL
    assert charter.urgent.quiet_hours is None
    assert charter.non_urgent.mode is DeliveryMode.FIRST_THAT_WORKS


def held(start: str, end: str) -> dict[str, Any]:
    """A charter holding non-urgent messages during these quiet hours."""
    return {"non_urgent": {"channels": ["sms"], "ttl_seconds": 3600, "quiet_hours": {"start": start, "end": end}}}


@pytest.mark.parametrize(
    ("charter", "complaint"),
    [
        ({"urgent": {"channels": ["sms", "sms"], "ttl_seconds": 3600}}, "each channel may appear once"),
        ({"non_urgent": {"channels": ["email", "sms", "email"], "ttl_seconds": 3600}}, "each channel may appear once"),
        ({"urgent": {"channels": [], "ttl_seconds": 3600}}, "at least 1 item"),
        ({"urgent": {"channels": ["pigeon"], "ttl_seconds": 3600}}, "urgent.channels.0"),
        ({"urgent": {"channels": ["sms"], "ttl_seconds": 10}}, "greater than or equal to 60"),
        (
            {"urgent": {"channels": ["sms"], "ttl_seconds": 3600, "quiet_hours": {"start": "22:00", "end": "07:00"}}},
            "urgent messages are never held",
        ),
        (held("24:00", "07:00"), "must be a time written HH:MM"),
        (held("7:00", "08:00"), "must be a time written HH:MM"),
        (held("21:00", "07:60"), "must be a time written HH:MM"),
        (held("2100", "0700"), "must be a time written HH:MM"),
        ({"relay": "auto", "colour": "blue"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_charters_are_refused(charter: dict[str, Any], complaint: str) -> None:
    """A charter with a repeated channel, held urgent messages or a malformed time is refused, saying why."""
    with pytest.raises(ValidationError) as exc:
        Charter.model_validate(charter)
    assert complaint in errors_of(exc)


@pytest.mark.parametrize(("written", "kept"), [("00:00", "00:00"), ("23:59", "23:59"), (" 21:30 ", "21:30")])
def test_quiet_hours_accept_any_minute_of_the_day(written: str, kept: str) -> None:
    """Times from 00:00 to 23:59 are accepted (surrounding spaces stripped)."""
    assert QuietHours(start=written, end="08:00").start == kept


def test_plan_for_picks_the_class_of_the_urgency() -> None:
    """Urgent alerts follow the urgent plan, non-urgent ones the non-urgent plan."""
    charter = Charter(
        urgent=ClassPlan(channels=[VOICE], ttl_seconds=600),
        non_urgent=ClassPlan(channels=[EMAIL], ttl_seconds=86400),
    )
    assert charter.plan_for(Urgency.URGENT).channels == [VOICE]
    assert charter.plan_for(Urgency.NON_URGENT).channels == [EMAIL]


@pytest.mark.parametrize(
    ("start", "end", "moment", "inside"),
    [
        ("21:00", "08:00", time(21, 0), True),
        ("21:00", "08:00", time(23, 59), True),
        ("21:00", "08:00", time(0, 0), True),
        ("21:00", "08:00", time(7, 59), True),
        ("21:00", "08:00", time(8, 0), False),
        ("21:00", "08:00", time(12, 0), False),
        ("21:00", "08:00", time(20, 59), False),
        ("12:00", "14:00", time(12, 0), True),
        ("12:00", "14:00", time(13, 59), True),
        ("12:00", "14:00", time(14, 0), False),
        ("12:00", "14:00", time(11, 59), False),
        ("12:00", "14:00", time(23, 0), False),
    ],
)
def test_quiet_hours_contain_times_across_midnight(start: str, end: str, moment: time, inside: bool) -> None:
    """Quiet hours include their start, exclude their end, and may run past midnight."""
    assert QuietHours(start=start, end=end).contains(moment) is inside


# -- PLP -----------------------------------------------------------------------------------


def plp_in(**fields: Any) -> PlpIn:
    return PlpIn.model_validate({"name": "PLP Flagey", "commune": "Ixelles", "police_zone": "5340", **fields})


@pytest.mark.parametrize("zone", ["Europe/Brussels", "Europe/Amsterdam", "UTC"])
def test_plp_accepts_iana_time_zones(zone: str) -> None:
    """A PLP's time zone is any IANA name."""
    assert plp_in(timezone=zone).timezone == zone


def test_plp_defaults_to_brussels_time_and_french() -> None:
    """Without a time zone or language, a PLP lives on Brussels time and writes in French."""
    plp = plp_in()
    assert (plp.timezone, plp.default_language) == ("Europe/Brussels", Language.FR)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "europe/brussels", "CET+1", "../etc/passwd", "", "/etc/localtime"])
def test_plp_refuses_unknown_time_zones(zone: str) -> None:
    """An unknown or malformed time zone is refused, with a hint at the expected form."""
    with pytest.raises(ValidationError) as exc:
        plp_in(timezone=zone)
    assert "use an IANA name like Europe/Brussels" in errors_of(exc)


# -- members -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "contact",
    [{"phone": "0470 12 34 56"}, {"email": "ann@example.org"}, {"phone": "0470 12 34 56", "email": "ann@example.org"}],
)
def test_member_with_a_phone_or_an_email_is_accepted(contact: dict[str, str]) -> None:
    """A member needs one contact point, either kind."""
    assert MemberIn.model_validate({"name": "Ann", **contact}).name == "Ann"


@pytest.mark.parametrize("contact", [{}, {"phone": ""}, {"phone": "   "}, {"phone": None, "email": None}])
def test_member_without_contact_point_is_refused(contact: dict[str, str | None]) -> None:
    """A member with neither a mobile phone nor an e-mail address is refused."""
    with pytest.raises(ValidationError) as exc:
        MemberIn.model_validate({"name": "Ann", **contact})
    assert "a member needs a mobile phone or an e-mail address" in errors_of(exc)


def test_member_accepts_every_channel_by_default() -> None:
    """Unless told otherwise, a member accepts every channel."""
    assert set(MemberIn(name="Ann", email="ann@example.org").channels) == set(ChannelName)


def member(
    *,
    phone: str | None = "+32470123456",
    email: str | None = "ann@example.org",
    telegram_chat_id: int | None = None,
    channels: list[ChannelName] | None = None,
) -> Member:
    return Member(
        id="m1",
        name="Ann",
        phone=phone,
        email=email,
        telegram_chat_id=telegram_chat_id,
        language=Language.FR,
        channels=EVERY_CHANNEL if channels is None else channels,
        consent_at=NOW,
        plp_ids=["p1"],
        created_at=NOW,
        updated_at=NOW,
    )


ALL, FIRST = DeliveryMode.ALL, DeliveryMode.FIRST_THAT_WORKS


@pytest.mark.parametrize(
    ("plan", "mode", "who", "reached_on"),
    [
        ([SMS, EMAIL, VOICE], ALL, member(), [SMS, EMAIL, VOICE]),
        ([VOICE, EMAIL, SMS], ALL, member(), [VOICE, EMAIL, SMS]),
        ([SMS, EMAIL, VOICE], FIRST, member(), [SMS]),
        ([EMAIL, SMS], FIRST, member(), [EMAIL]),
        # the member's own choice of channels
        ([SMS, EMAIL], ALL, member(channels=[EMAIL]), [EMAIL]),
        ([SMS, EMAIL], FIRST, member(channels=[EMAIL]), [EMAIL]),
        ([SMS, VOICE], ALL, member(channels=[EMAIL]), []),
        # missing contact points
        ([SMS, EMAIL, VOICE], ALL, member(phone=None), [EMAIL]),
        ([SMS, VOICE, EMAIL], FIRST, member(phone=None), [EMAIL]),
        ([SMS, EMAIL], ALL, member(email=None), [SMS]),
        ([EMAIL], FIRST, member(email=None), []),
        # telegram only once the member has linked a chat
        ([TELEGRAM, EMAIL], ALL, member(), [EMAIL]),
        ([TELEGRAM, EMAIL], FIRST, member(), [EMAIL]),
        ([TELEGRAM, EMAIL], ALL, member(telegram_chat_id=42), [TELEGRAM, EMAIL]),
        ([TELEGRAM, EMAIL], FIRST, member(telegram_chat_id=42), [TELEGRAM]),
        ([TELEGRAM], ALL, member(telegram_chat_id=42, channels=[SMS, EMAIL]), []),
    ],
)
def test_reachable_channels(
    plan: list[ChannelName], mode: DeliveryMode, who: Member, reached_on: list[ChannelName]
) -> None:
    """A member is reached on the plan's channels they accept and have a contact for, in plan order; or the first."""
    assert who.reachable_channels(ClassPlan(channels=plan, mode=mode, ttl_seconds=3600)) == reached_on


@pytest.mark.parametrize(
    ("channel", "address"),
    [(SMS, "+32470123456"), (VOICE, "+32470123456"), (EMAIL, "ann@example.org"), (TELEGRAM, "42")],
)
def test_address_for_each_channel(channel: ChannelName, address: str) -> None:
    """SMS and voice use the mobile number, e-mail the address, Telegram the linked chat id."""
    assert member(telegram_chat_id=42).address_for(channel) == address


# -- alert texts ---------------------------------------------------------------------------


def alert(texts: dict[Language, str]) -> Alert:
    return Alert(
        id="a1",
        author_id="x",
        author_role=Role.POLICE,
        urgency=Urgency.NON_URGENT,
        category=Category.BURGLARY,
        plp_ids=["p1"],
        texts=texts,
        ttl_seconds=3600,
        created_at=NOW,
    )


FR, NL, DE, EN = Language.FR, Language.NL, Language.DE, Language.EN
FR_NL = {FR: "texte", NL: "tekst"}
EDIT_NL = Relay(plp_id="p1", state=RelayState.APPROVED, texts={NL: "tekst van de coördinator"})
EDIT_DE = Relay(plp_id="p1", state=RelayState.APPROVED, texts={DE: "Text der Koordinatorin"})
NO_EDIT = Relay(plp_id="p1", state=RelayState.APPROVED)


@pytest.mark.parametrize(
    ("texts", "language", "relay", "plp_default", "expected"),
    [
        (FR_NL, NL, None, FR, "tekst"),  # the member's language
        (FR_NL, FR, None, NL, "texte"),
        (FR_NL, DE, None, NL, "tekst"),  # else the PLP's default language
        (FR_NL, DE, None, FR, "texte"),
        ({NL: "tekst", EN: "text"}, DE, None, FR, "tekst"),  # else any, in a fixed order
        ({EN: "text"}, FR, None, NL, "text"),
        (FR_NL, NL, EDIT_NL, FR, "tekst van de coördinator"),  # the relay's edit first
        (FR_NL, FR, EDIT_NL, FR, "texte"),  # an edit in another language leaves this one
        (FR_NL, DE, EDIT_DE, FR, "Text der Koordinatorin"),  # an edit may add a language
        (FR_NL, NL, NO_EDIT, FR, "tekst"),  # a relay without edits keeps the police's texts
    ],
)
def test_text_for(
    texts: dict[Language, str], language: Language, relay: Relay | None, plp_default: Language, expected: str
) -> None:
    """The text a member gets: the relay's edit, then the alert's text in their language, the PLP's default, any."""
    assert alert(texts).text_for(language, relay, plp_default) == expected
