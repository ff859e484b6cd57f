"""What the service writes to members itself exists in every language, and SMS hints stay cheap."""

from __future__ import annotations

import pytest

from dispatcher.core.models import Language
from dispatcher.core.segments import Encoding, measure
from dispatcher.core.wording import Words, say
from dispatcher.pipeline.compose import sms_text
from dispatcher.pipeline.receipts import ReplyKind, classify


@pytest.mark.parametrize("key", list(Words))
@pytest.mark.parametrize("language", list(Language))
def test_every_text_exists_in_every_language(key: Words, language: Language) -> None:
    """French, Dutch, German and English: no member gets a message half in another language."""
    assert say(key, language, url="https://x", plp="PLP").strip()


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
