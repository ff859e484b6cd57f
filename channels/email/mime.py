"""The wire format of our e-mails: headers as the RFC say.

A display name or a subject with accents goes out in RFC 2047 encoded-words, folded at 78
characters; the ``<URL>`` lists of RFC 2369 (``List-Unsubscribe``) are never encoded and never
cut inside a URL, or mail clients offer no one-click unsubscribe (``UrlListHeader``).
``MAIL_POLICY`` is the ``email`` package's policy that writes them so.
"""

from __future__ import annotations

import re
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from typing import Any

#: Longest header line on the wire, CRLF excluded (RFC 5322 2.1.1).
MAX_HEADER_LINE = 998
#: Headers whose value is a list of ``<URL>`` (RFC 2369, RFC 8058).
URL_LIST_HEADERS = ("List-Unsubscribe", "List-Help", "List-Subscribe", "List-Post", "List-Owner", "List-Archive")

_URL_LIST = re.compile(r"\s*<[\x21-\x3b\x3d\x3f-\x7e]+>\s*(?:,\s*<[\x21-\x3b\x3d\x3f-\x7e]+>\s*)*")
_URL_ENTRY = re.compile(r"<[^>]+>")
_LONGEST_URL = MAX_HEADER_LINE - max(map(len, URL_LIST_HEADERS)) - len(": ,")


class UrlListHeader(UnstructuredHeader, BaseHeader):
    """A ``<URL>, <URL>`` header (RFC 2369): ASCII on the wire, never encoded, folded only between URLs.

    The ``email`` package folds any header over 78 characters, and a long URL, having no
    space to fold at, comes out as RFC 2047 encoded-words that no mail client reads as a URL.
    Setting a value that is not a list of printable-ASCII URLs in angle brackets, or one URL
    too long for a header line, raises ``ValueError``.
    """

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        if not _URL_LIST.fullmatch(value):
            raise ValueError("a URL list header holds printable-ASCII URLs in angle brackets, separated by commas")
        if any(len(url) > _LONGEST_URL for url in _URL_ENTRY.findall(value)):
            raise ValueError(f"a URL in a list header must fit one header line of {MAX_HEADER_LINE} characters")
        super().parse(value, kwds)

    def fold(self, *, policy: Policy) -> str:
        width = policy.max_line_length or MAX_HEADER_LINE
        urls = _URL_ENTRY.findall(str(self))
        lines = [f"{self.name}:"]
        for n, url in enumerate(urls):
            piece = f" {url}{',' if n < len(urls) - 1 else ''}"
            if n and len(lines[-1]) + len(piece) > width:
                lines.append("")  # the next line starts with the piece's space: folding whitespace
            lines[-1] += piece
        return policy.linesep.join(lines) + policy.linesep


def _header_policy() -> email_policy.EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    for name in URL_LIST_HEADERS:
        registry.map_to_type(name.lower(), UrlListHeader)
    return email_policy.default.clone(header_factory=registry)


#: The policy of the e-mails we compose: the standard one, with the URL list headers kept whole.
MAIL_POLICY = _header_policy()
