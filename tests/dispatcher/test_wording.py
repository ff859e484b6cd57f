"""What the service writes to members itself exists in every language, and SMS hints stay cheap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatcher.core.models import Category, ChannelName, FollowUpKind, Language, Member, Urgency
from dispatcher.core.segments import Encoding, measure
from dispatcher.core.wording import Words, follow_up_text, say, subject
from dispatcher.pipeline.compose import sms_text
from dispatcher.pipeline.fanout import follow_up_channel
from dispatcher.pipeline.receipts import ReplyKind, classify

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("key", list(Words))
@pytest.mark.parametrize("language", list(Language))
def test_every_text_exists_in_every_language(key: Words, language: Language) -> None:
    """French, Dutch, German and English: no member gets a message half in another language."""
    values = {"url": "https://x", "plp": "PLP", "answer": "Rien vu", "choices": "2: Rien vu", "name": "Anne"}
    assert say(
        key,
        language,
        **values,
        value="+32470999888",
        code="123456",
        reason="not a mobile number",
        minutes="15",
        link="x",
        what="la langue",
    ).strip()


@pytest.mark.parametrize("key", [Words.SMS_ACK_HINT, Words.SMS_ACK_HINT_SHORT])
@pytest.mark.parametrize("language", list(Language))
def test_sms_hints_keep_a_message_in_the_gsm_alphabet(key: Words, language: Language) -> None:
    """A hint never turns a 160-character SMS into a 70-character UCS-2 one."""
    assert measure(say(key, language)).encoding is Encoding.GSM7


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("Cambriolage rue du Parc, voiture grise 1-ABC-123.", "Répondez OK pour confirmer"),  # room for the long hint
        ("x" * 149, "Rép. OK=lu"),  # only the short one fits in one segment
        ("y" * 160, None),  # nothing fits: no hint, rather than one more segment
    ],
)
def test_an_sms_gets_the_longest_hint_that_adds_no_segment(text: str, hint: str | None) -> None:
    """The alert text comes first and whole; the hint is the longest that costs no extra segment, or none."""
    sms = sms_text(text, Language.FR)
    if hint is None:
        assert sms == text
    else:
        assert sms.startswith(text + "\n") and hint in sms and measure(sms).segments == measure(text).segments


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("OK", ReplyKind.ACK),
        (" oui. ", ReplyKind.ACK),
        ("Ja!", ReplyKind.ACK),
        ("1", ReplyKind.ACK),
        ("STOP", ReplyKind.STOP),
        ("Arrêt", ReplyKind.STOP),
        ("stoppen", ReplyKind.STOP),
        ("/stop", ReplyKind.STOP),
        ("ok, j'ai vu une voiture grise", ReplyKind.FEEDBACK),
        ("Stop aan de hoek, twee mannen", ReplyKind.FEEDBACK),
    ],
)
def test_replies_are_read_in_any_case(reply: str, kind: ReplyKind) -> None:
    """One word acknowledges or stops, in any case and language; anything longer is feedback."""
    assert classify(reply) is kind


@pytest.mark.parametrize("kind", list(FollowUpKind))
@pytest.mark.parametrize("category", list(Category))
@pytest.mark.parametrize("language", list(Language))
def test_a_follow_up_is_marked_in_every_language_within_the_gsm_alphabet(
    kind: FollowUpKind, category: Category, language: Language
) -> None:
    """An update or an all-clear says what it is and of which alert before the sender's words, in the member's
    language, without turning a GSM-7 text into UCS-2; the e-mail subject says it too."""
    text = follow_up_text(kind, category, "OK merci", language)
    assert text.endswith(": OK merci") and text != "OK merci"
    assert measure(text).encoding is Encoding.GSM7
    title = subject(plp_name="PLP", urgency=Urgency.URGENT, category=category, language=language, follow_up=kind)
    assert title.startswith(f"[PLP] {text.split(' (')[0]}: ")


def test_a_follow_up_goes_on_the_first_channel_of_the_plan_that_reached_the_member() -> None:
    """Of the channels that reached a member, the plan's order decides; one the member no longer accepts, has no
    address on or that failed for good since is passed over; none left: no channel."""
    member = Member(
        id="m1",
        name="Anne",
        phone="+32470111111",
        email="anne@example.org",
        language=Language.FR,
        channels=[ChannelName.SMS, ChannelName.EMAIL, ChannelName.VOICE],
        consent_at=NOW,
        plp_ids=["parc"],
        created_at=NOW,
        updated_at=NOW,
    )
    order = [ChannelName.SMS, ChannelName.EMAIL, ChannelName.TELEGRAM, ChannelName.VOICE]
    assert follow_up_channel(member, {ChannelName.VOICE, ChannelName.EMAIL}, order) == [ChannelName.EMAIL]
    assert follow_up_channel(member, {ChannelName.VOICE}, [ChannelName.SMS]) == [ChannelName.VOICE]
    broken = member.model_copy(update={"unusable": {ChannelName.EMAIL: "mailbox unknown"}})
    assert follow_up_channel(broken, {ChannelName.VOICE, ChannelName.EMAIL}, order) == [ChannelName.VOICE]
    assert follow_up_channel(broken, {ChannelName.EMAIL, ChannelName.TELEGRAM}, order) == []
