"""SMS segments: how many messages a text costs, and an urgent SMS built to cost as few as possible.

A text written only with the GSM 03.38 alphabet travels as 7-bit characters (the codec
counts the extension characters, like €, as two): 160 in one message, 153 per part of a
longer one. Any other character (ç, ê, emoji...) turns the whole text into UCS-2: 70 in
one message, 67 per part, counted in UTF-16 code units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


_LIMITS = {Encoding.GSM7: (160, 153), Encoding.UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsSize:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def measure(text: str) -> SmsSize:
    """The encoding, length and number of segments of an SMS text."""
    try:
        encoding, units = Encoding.GSM7, len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        encoding, units = Encoding.UCS2, len(text.encode("utf-16-le")) // 2
    single, part = _LIMITS[encoding]
    segments = 1 if units <= single else math.ceil(units / part)
    return SmsSize(encoding=encoding, units=units, segments=segments)


def with_hint(text: str, hints: list[str]) -> str:
    """The alert text followed by the longest hint that adds no segment (else the shortest hint).

    ``hints`` go from the most explicit to the shortest; the alert text always comes first,
    whole.
    """
    base = measure(text).segments
    for hint in hints:
        candidate = f"{text}\n{hint}"
        if measure(candidate).segments == base:
            return candidate
    return f"{text}\n{hints[-1]}"
