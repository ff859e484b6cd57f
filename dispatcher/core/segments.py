"""SMS segments: how many messages a text costs, and an urgent SMS built to cost as few as possible.

A text written only with the GSM 03.38 alphabet travels as 7-bit characters (the ``gsm0338``
codec encodes each one, the extension characters like € as two septets): 160 in one message,
153 per part of a longer one. Any other character (ç, ê, emoji...) turns the whole text into
UCS-2: 70 in one message, 67 per part, counted in UTF-16 code units.

A longer text is cut into parts as Twilio and the handsets cut it: a character is never split
between two parts, so an extension character (two septets) or an emoji (two UTF-16 units)
that does not fit at the end of a part starts the next one, and a part may carry 152 septets
or 66 units. Counting ``ceil(units / 153)`` instead is wrong at those edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


#: Per encoding: units in a message of one segment, and per segment of a longer one (after its header).
_LIMITS = {Encoding.GSM7: (160, 153), Encoding.UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsSize:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def encoding_of(text: str) -> Encoding:
    """GSM-7 when the codec can write every character, else UCS-2."""
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError:
        return Encoding.UCS2
    return Encoding.GSM7


def split(text: str) -> list[str]:
    """The parts a carrier sends the text in, in order: one for a text that fits a single SMS."""
    encoding = encoding_of(text)
    single, part = _LIMITS[encoding]
    if _total(text, encoding) <= single:  # the whole text at once: the codec is slow a character at a time
        return [text]
    sizes = [_units(char, encoding) for char in text]
    parts, start, used = [], 0, 0
    for index, size in enumerate(sizes):
        if used + size > part:  # the character does not fit: it opens the next part, whole
            parts.append(text[start:index])
            start, used = index, 0
        used += size
    parts.append(text[start:])
    return parts


def measure(text: str) -> SmsSize:
    """The encoding, length and number of segments of an SMS text."""
    encoding = encoding_of(text)
    units = _total(text, encoding)
    return SmsSize(encoding=encoding, units=units, segments=len(split(text)))


def with_hint(text: str, hints: list[str]) -> str:
    """The alert text followed by the longest hint that adds no segment; the text alone if none fits.

    ``hints`` go from the most explicit to the shortest; the alert text always comes first,
    whole. A hint never costs the PLP a segment: when even the shortest would, it is left out.
    """
    base = measure(text).segments
    for hint in hints:
        candidate = f"{text}\n{hint}"
        if measure(candidate).segments == base:
            return candidate
    return text


def _total(text: str, encoding: Encoding) -> int:
    """The text's units: each character's (``_units``) added up, the codec having no state between characters."""
    if encoding is Encoding.GSM7:
        return len(text.encode("gsm03.38"))
    return len(text.encode("utf-16-le")) // 2


def _units(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return len(char.encode("gsm03.38"))
    return len(char.encode("utf-16-le")) // 2
