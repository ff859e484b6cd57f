"""The wire format of our e-mails: headers as the RFC say.

A display name or a subject with accents goes out in RFC 2047 encoded-words, folded at 78
characters; the ``<URL>`` lists of RFC 2369 (``List-Unsubscribe``) are never encoded and never
cut inside a URL, or mail clients offer no one-click unsubscribe (``UrlListHeader``).
``MAIL_POLICY`` is the ``email`` package's policy that writes them so.
"""

from __future__ import annotations

import binascii
import random
import re
import sys
from dataclasses import dataclass
from email import policy as email_policy
from email import quoprimime
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, MIMEPart
from email.policy import Policy
from functools import lru_cache
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
        _check_url_list(value)
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


def _check_url_list(value: str) -> list[str]:
    """The URLs of a URL list header's value; raises ``ValueError`` on a value ``UrlListHeader`` refuses."""
    if not _URL_LIST.fullmatch(value):
        raise ValueError("a URL list header holds printable-ASCII URLs in angle brackets, separated by commas")
    urls = _URL_ENTRY.findall(value)
    if any(len(url) > _LONGEST_URL for url in urls):
        raise ValueError(f"a URL in a list header must fit one header line of {MAX_HEADER_LINE} characters")
    return urls


def _header_policy() -> email_policy.EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    for name in URL_LIST_HEADERS:
        registry.map_to_type(name.lower(), UrlListHeader)
    return email_policy.default.clone(header_factory=registry)


#: The policy of the e-mails we compose: the standard one, with the URL list headers kept whole.
MAIL_POLICY = _header_policy()


#: The policy aiosmtplib flattens an ``EmailMessage`` with, for a server that takes 8-bit data (``8BITMIME``)
#: and an ASCII envelope: the standard one, lines ended by CRLF.
WIRE_POLICY = email_policy.SMTP
#: Headers that differ from one member to the next, in a message built once per alert and language.
MEMBER_HEADERS = ("To", "Date", "Message-ID", "List-Unsubscribe")
#: What the ``email`` package's generator draws a boundary from: a random number of as many digits as this.
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))
#: The longest line of headers and encoded bodies, both in ``MAIL_POLICY`` and ``WIRE_POLICY``.
_WIDTH = 78
_SLOT_BOUNDARY = "=" * 15 + "0" * _BOUNDARY_DIGITS + "=="
#: A header that the ``email`` package writes as it is: an address, or a Message-ID, that is a plain dot-atom.
_DOT_ATOM = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN = {"To": re.compile(_DOT_ATOM), "Message-ID": re.compile(f"<{_DOT_ATOM}>")}


def build_mail(
    *,
    sender: str,
    address: str,
    subject: str,
    date: str,
    message_id: str,
    language: str,
    text: str,
    html: str | None = None,
    reply_to: tuple[str, ...] = (),
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    """The e-mail as the ``email`` package builds it: text part, optional HTML alternative, reply and
    unsubscribe headers. The reference that ``MailFrame`` reproduces byte for byte, and the build for a
    server without ``8BITMIME`` or an address that needs ``SMTPUTF8``. Raises ``ValueError`` on a header
    value that cannot go out (see ``UrlListHeader``)."""
    mail = EmailMessage(policy=MAIL_POLICY)
    mail["From"] = sender
    mail["To"] = address
    mail["Subject"] = subject
    mail["Date"] = date
    mail["Message-ID"] = message_id
    if reply_to:
        mail["Reply-To"] = ", ".join(reply_to)
    if unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058 one-click
    mail.set_content(text)
    if html:
        mail.add_alternative(html, subtype="html")
    mail["Content-Language"] = language  # after the parts: set_content drops Content-* headers
    return mail


def encode_text(text: str) -> tuple[str, bytes]:
    """A text part's transfer encoding and its body on the wire, as ``EmailMessage.set_content`` chooses them
    under ``MAIL_POLICY`` and aiosmtplib writes them to an ``8BITMIME`` server.

    The ``email`` package's rule (``email.contentmanager``): lines of at most 78 bytes go as they are
    (``7bit``, or ``8bit`` with accents); otherwise the first ten lines decide between quoted-printable and
    base64, whichever is shorter, encoded at 78 characters a line.
    """
    lines = text.encode("utf-8").splitlines()
    if max(map(len, lines), default=0) <= _WIDTH:
        return ("7bit" if text.isascii() else "8bit"), b"\r\n".join(lines) + b"\r\n"
    sniff = b"\n".join(lines[:10]) + b"\n"
    data = quoprimime.body_encode(sniff.decode("latin-1"), _WIDTH)
    if len(data) > len(binascii.b2a_base64(sniff)):
        body = b"\n".join(lines) + b"\n"
        step = _WIDTH // 4 * 3
        data = "".join(binascii.b2a_base64(body[i : i + step]).decode("ascii") for i in range(0, len(body), step))
        return "base64", data.replace("\n", "\r\n").encode("ascii")
    if len(lines) > 10:  # the sniff was the whole text otherwise
        data = quoprimime.body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), _WIDTH)
    return "quoted-printable", data.replace("\n", "\r\n").encode("ascii")


def new_boundary() -> str:
    """A multipart boundary drawn as the ``email`` package's generator draws one."""
    return f"{'=' * 15}{random.randrange(sys.maxsize):0{_BOUNDARY_DIGITS}d}=="


def fold_header(name: str, value: str) -> bytes:
    """One header line (folded) as aiosmtplib writes it: parsed under ``MAIL_POLICY``, folded under ``WIRE_POLICY``.

    Raises ``ValueError`` where setting the header on the message would."""
    return WIRE_POLICY.fold_binary(*MAIL_POLICY.header_store_parse(name, value))


def member_header(name: str, value: str) -> bytes:
    """A per-member header line, byte for byte as ``fold_header`` writes it, without the parsing where the
    ``email`` package writes the value as it is: a plain address or Message-ID that fits the line, a date
    (as ``email.utils.format_datetime`` writes one), one URL in angle brackets. Raises ``ValueError`` as
    ``fold_header`` does."""
    plain = _PLAIN.get(name)
    if name == "Date" or (plain and len(name) + 2 + len(value) <= _WIDTH and plain.fullmatch(value)):
        return f"{name}: {value}\r\n".encode("ascii")
    if name in URL_LIST_HEADERS and "," not in value and "=?" not in value:  # "=?": what could read as encoded
        (url,) = _check_url_list(value)  # one URL: never folded (``UrlListHeader.fold``)
        return f"{name}: {url}\r\n".encode("ascii")
    return fold_header(name, value)


@dataclass(frozen=True, slots=True)
class MailFrame:
    """An e-mail built once for every member who gets the same subject, language and headers but for
    ``MEMBER_HEADERS``: its other headers folded, its MIME structure laid out. ``fill`` adds one member's.

    ``fill`` gives the bytes aiosmtplib sends for ``build_mail`` with the same values to a server that
    takes 8-bit data (``8BITMIME``) with an ASCII envelope, but for the multipart boundary: drawn afresh,
    as the ``email`` package draws one (``tests/channels/test_email_frame.py`` compares them).
    """

    headers: tuple[bytes | str, ...]  # each folded, or the name of one filled per member
    parts: tuple[tuple[bytes | str, ...], ...]  # a multipart's: each part's headers; a single part: none
    content_type: bytes = b""  # a multipart's Content-Type, with a stand-in boundary

    @classmethod
    def of(cls, mail: EmailMessage) -> MailFrame:
        """The frame of a message of ``build_mail`` (its ``MEMBER_HEADERS`` and bodies whatever they are)."""
        if not mail.is_multipart():
            return cls(headers=_slots(mail), parts=())
        mail.set_boundary(_SLOT_BOUNDARY)
        return cls(
            headers=_slots(mail, "Content-Type"),
            parts=tuple(_slots(part) for part in mail.iter_parts()),
            content_type=WIRE_POLICY.fold_binary("Content-Type", mail["Content-Type"]),
        )

    def fill(self, *, values: dict[str, str], bodies: tuple[str, ...], boundary: str | None = None) -> bytes:
        """One member's e-mail on the wire. ``values``: its ``MEMBER_HEADERS`` (those the frame has);
        ``bodies``: the text, then the HTML if the frame has it. Raises ``ValueError`` on a header value
        that cannot go out."""
        encoded = [encode_text(body) for body in bodies]
        if not self.parts:
            cte, body = encoded[0]
            return self._head(self.headers, values, cte=cte) + b"\r\n" + body
        chosen = _fresh(boundary, [body for _, body in encoded])
        pieces = [
            self._head(h, values, cte=cte) + b"\r\n" + body for h, (cte, body) in zip(self.parts, encoded, strict=True)
        ]
        delimiter = b"\r\n--" + chosen
        return (
            self._head(self.headers, values, boundary=chosen)
            + delimiter
            + b"\r\n"
            + (delimiter + b"\r\n").join(pieces)
            + delimiter
            + b"--\r\n"
        )

    def _head(
        self, headers: tuple[bytes | str, ...], values: dict[str, str], *, cte: str = "", boundary: bytes = b""
    ) -> bytes:
        lines = []
        for header in headers:
            if isinstance(header, bytes):
                lines.append(header)
            elif header == "Content-Transfer-Encoding":
                lines.append(f"{header}: {cte}\r\n".encode("ascii"))
            elif header == "Content-Type":
                lines.append(self.content_type.replace(_SLOT_BOUNDARY.encode("ascii"), boundary))
            else:
                lines.append(member_header(header, values[header]))
        return b"".join(lines)


def _slots(mail: MIMEPart, *named: str) -> tuple[bytes | str, ...]:
    """A message's (or part's) headers in order: folded, or named where they are filled per member."""
    slots = {*MEMBER_HEADERS, "Content-Transfer-Encoding", *named}
    return tuple(name if name in slots else WIRE_POLICY.fold_binary(name, value) for name, value in mail.raw_items())


def _fresh(boundary: str | None, bodies: list[bytes]) -> bytes:
    """A boundary no body's line starts with (as the generator checks), drawn again in the unlikely other case."""
    while True:
        chosen = (boundary or new_boundary()).encode("ascii")
        if not any(body.startswith(b"--" + chosen) or b"\n--" + chosen in body for body in bodies):
            return chosen
        boundary = None


@lru_cache(maxsize=64)
def frame_for(
    *, sender: str, subject: str, language: str, reply_to: tuple[str, ...], html: bool, unsubscribe: bool
) -> MailFrame:
    """The frame of every e-mail with these values (kept for the 64 latest): an alert's, in one language."""
    mail = build_mail(
        sender=sender,
        address="member@frame.invalid",
        subject=subject,
        date="Thu, 01 Jan 1970 00:00:00 +0000",
        message_id="<member@frame.invalid>",
        language=language,
        text="text",
        html="html" if html else None,
        reply_to=reply_to,
        unsubscribe_url="https://frame.invalid/" if unsubscribe else None,
    )
    return MailFrame.of(mail)
