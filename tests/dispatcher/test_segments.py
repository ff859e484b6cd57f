"""SMS segments are counted as Twilio cuts a message, and the acknowledgement hint never adds one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dispatcher.core.models import Language
from dispatcher.core.segments import Encoding, measure, split
from dispatcher.core.wording import Words, say
from dispatcher.pipeline.compose import sms_text

GSM, UCS2 = Encoding.GSM7, Encoding.UCS2


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        pytest.param("a" * 160, GSM, 160, 1, id="gsm-160-one-sms"),
        pytest.param("a" * 161, GSM, 161, 2, id="gsm-161"),
        pytest.param("a" * 306, GSM, 306, 2, id="gsm-2x153"),
        pytest.param("a" * 307, GSM, 307, 3, id="gsm-2x153+1"),
        pytest.param("€" * 80, GSM, 160, 1, id="gsm-80-euro-signs-count-double"),
        pytest.param("a" * 159 + "€", GSM, 161, 2, id="gsm-one-euro-sign-tips-over"),
        pytest.param("[" * 153, GSM, 306, 3, id="gsm-extension-chars-never-split-152-per-part"),
        pytest.param("a" * 152 + "€" + "a" * 152, GSM, 306, 3, id="gsm-euro-sign-on-the-border"),
        pytest.param("a" * 153 + "€" + "a" * 151, GSM, 306, 2, id="gsm-euro-sign-after-the-border"),
        pytest.param("Größe, Straße, été, à l'Église" * 5, GSM, 150, 1, id="gsm-german-and-french-letters"),
        pytest.param("ê" * 70, UCS2, 70, 1, id="ucs2-70-one-sms"),
        pytest.param("ê" * 71, UCS2, 71, 2, id="ucs2-71"),
        pytest.param("ç" + "a" * 133, UCS2, 134, 2, id="ucs2-2x67"),
        pytest.param("ç" + "a" * 134, UCS2, 135, 3, id="ucs2-2x67+1"),
        pytest.param("🚨" * 35, UCS2, 70, 1, id="ucs2-35-emoji-count-double"),
        pytest.param("ê" * 66 + "🚨" + "ê" * 66, UCS2, 134, 3, id="ucs2-emoji-on-the-border"),
        pytest.param("a" * 159 + "ç", UCS2, 160, 3, id="one-c-cedilla-makes-it-ucs2"),
    ],
)
def test_segments_are_counted_as_twilio_cuts_the_message(
    text: str, encoding: Encoding, units: int, segments: int
) -> None:
    """160/153 septets (extension characters count two) or 70/67 UTF-16 units; a character is never split."""
    size = measure(text)
    assert (size.encoding, size.units, size.segments) == (encoding, units, segments)
    parts = split(text)
    assert "".join(parts) == text and len(parts) == segments
    if segments > 1:
        per_part = 153 if encoding is GSM else 67
        assert all(measure(part).units <= per_part for part in parts)


def hint(language: Language) -> int:
    """Length of the long hint, with the line break before it."""
    return len(say(Words.SMS_ACK_HINT, language)) + 1


def short(language: Language) -> int:
    """Length of the short hint, with the line break before it."""
    return len(say(Words.SMS_ACK_HINT_SHORT, language)) + 1


Text = Callable[[Language], str]
CASES: list[tuple[str, Text, int, str | None]] = [
    # GSM-7: 160 in one SMS
    ("gsm-long-hint-fills-160", lambda lang: "a" * (160 - hint(lang)), 1, "long"),
    ("gsm-one-more-takes-the-short-hint", lambda lang: "a" * (161 - hint(lang)), 1, "short"),
    ("gsm-short-hint-fills-160", lambda lang: "a" * (160 - short(lang)), 1, "short"),
    ("gsm-no-room-left-no-hint", lambda lang: "a" * (161 - short(lang)), 1, None),
    ("gsm-exactly-160", lambda lang: "a" * 160, 1, None),
    ("gsm-exactly-2x153", lambda lang: "a" * 306, 2, None),
    ("gsm-161-room-for-the-long-hint", lambda lang: "a" * 161, 2, "long"),
    ("gsm-euro-signs-count-double", lambda lang: "€" * ((161 - short(lang)) // 2 + 1), 1, None),
    ("gsm-euro-sign-on-the-border", lambda lang: "a" * 152 + "€" + "a" * 152, 3, "long"),
    ("gsm-extension-chars-fill-two-parts", lambda lang: "{" * 152, 2, None),
    # UCS-2: 70 in one SMS
    ("ucs2-long-hint-fills-70", lambda lang: "ê" * (70 - hint(lang)), 1, "long"),
    ("ucs2-exactly-70", lambda lang: "ê" * 70, 1, None),
    ("ucs2-71-room-for-the-long-hint", lambda lang: "ê" * 71, 2, "long"),
    ("ucs2-128-no-room-for-a-hint", lambda lang: "ç" * 128, 2, None),
    ("ucs2-short-hint-fills-2x67", lambda lang: "ê" * (134 - short(lang)), 2, "short"),
    ("ucs2-one-more-no-hint", lambda lang: "ê" * (135 - short(lang)), 2, None),
    ("ucs2-exactly-2x67", lambda lang: "ê" * 134, 2, None),
    ("ucs2-emoji-on-the-border", lambda lang: "ê" * 66 + "🚨" + "ê" * 66, 3, "long"),
]


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize(("text", "segments", "expected_hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_hint_never_adds_a_segment(
    language: Language, text: Text, segments: int, expected_hint: str | None
) -> None:
    """The SMS is the text whole, then the long hint, else the short one, else nothing: never one segment more."""
    alert_text = text(language)
    assert measure(alert_text).segments == segments  # the table's own arithmetic
    sms = sms_text(alert_text, language)
    hints = {"long": say(Words.SMS_ACK_HINT, language), "short": say(Words.SMS_ACK_HINT_SHORT, language)}
    assert sms == (f"{alert_text}\n{hints[expected_hint]}" if expected_hint else alert_text)
    assert measure(sms).segments == segments
