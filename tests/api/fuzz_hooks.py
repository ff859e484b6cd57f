"""schemathesis hooks of ``tests/api/test_fuzz.py``: one generated request body in three goes out in another
encoding, or as broken bytes, under the media type the document names, so that the service's decoding of
bodies is fuzzed with the rest. ``st`` loads this module through ``SCHEMATHESIS_HOOKS``.

The variants: UTF-16 (with and without a byte-order mark, declared or not), Windows-1252 and Latin-1, UTF-8
with a byte-order mark, a byte-order mark alone, UTF-16 cut in the middle of a character, UTF-8 cut and
followed by bytes no encoding reads, a charset nobody knows, a non-text codec, random bytes. The service must
answer each with a 2xx (a body it could read) or a 4xx naming the problem; schemathesis' checks say 5xx never.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from typing import Any

import schemathesis
from schemathesis.core import NotSet

_COUNTER = itertools.count()
_RANDOM = random.Random(20261124)

#: text → (bytes sent, charset declared or None)
VARIANTS: list[Callable[[str], tuple[bytes, str | None]]] = [
    lambda text: (text.encode("utf-16"), None),
    lambda text: (text.encode("utf-16-le"), "utf-16-le"),
    lambda text: (text.encode("utf-16-be"), None),
    lambda text: (text.encode("cp1252", "replace"), "windows-1252"),
    lambda text: ((text + "é").encode("latin-1", "replace"), None),
    lambda text: (b"\xef\xbb\xbf" + text.encode(), None),
    lambda text: (b"\xef\xbb\xbf", None),
    lambda text: (text.encode("utf-16")[:-1], "utf-16"),
    lambda text: (text.encode()[: len(text) // 2] + b"\xc3\x28\xff\xfe\x00", None),
    lambda text: (text.encode(), "x-klingon"),
    lambda text: (text.encode(), "base64"),
    lambda text: (_RANDOM.randbytes(96), None),
]


def _text(body: Any) -> str | None:
    if isinstance(body, bytes | bytearray):
        return None
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Send one body in three re-encoded (or broken), with the case's media type and the variant's charset."""
    if isinstance(case.body, NotSet) or not case.media_type or "multipart" in case.media_type:
        return
    count = next(_COUNTER)
    if count % 3:
        return
    text = _text(case.body)
    if text is None:  # a binary body (a workbook): a zip's signature on bytes that are no zip
        data, charset = b"PK\x03\x04" + bytes(case.body)[:200], None
    else:
        data, charset = VARIANTS[(count // 3) % len(VARIANTS)](text)
    kwargs["data"] = data  # sent instead of the generated body (schemathesis then serialises none)
    # The charset goes in the media type, which becomes the Content-Type: the case's headers stay as generated
    # (the checks compare them with what was sent, e.g. a deliberately missing Authorization header).
    case.media_type = case.media_type.split(";")[0] + (f"; charset={charset}" if charset else "")
