"""Links sent to members: signed, expiring, and bound to one purpose.

An e-mail's receipt, unsubscribe and data-export links carry a token signed with the
service's secret key (itsdangerous), so nobody can acknowledge, unsubscribe or read the
data of someone else by guessing, and a link stops working after ``PLP_LINK_TTL_DAYS``.
Telegram's ``/start`` parameter is limited to 64 characters, so its link token is a random
key kept in Redis.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from config import Settings


class Purpose(StrEnum):
    RECEIPT = "receipt"  # acknowledge a delivery, or reply to it (e-mail page)
    UNSUBSCRIBE = "unsubscribe"  # stop every message to a member
    EXPORT = "export"  # read everything stored about a member (GDPR right of access)
    PROFILE = "profile"  # the member's own page: see and change their choices, leave
    PROFILE_FORM = "profile-form"  # the per-form token of that page's forms (CSRF)
    JOIN_FORM = "join-form"  # the per-form token of a PLP's join page (its subject: the PLP id)
    JOIN = "join"  # a join request waiting for its codes, in the page's form (its subject: the request id)


class InvalidLink(Exception):
    """The token is forged, for another purpose, or expired."""


def secret_key(settings: Settings) -> str:
    """``PLP_SECRET_KEY``, or (in development only) a key generated once and kept in ``<data dir>/secret.key``.

    Raises ``RuntimeError`` in production without ``PLP_SECRET_KEY``: each host would sign with a key of its own.
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    if settings.production:
        raise RuntimeError("PLP_SECRET_KEY is not set: with PLP_ENV=production no per-host key file is used")
    path = settings.data_dir / "secret.key"
    if not path.exists():
        _create_key(path)
    return path.read_text(encoding="ascii").strip()


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process of the service made it first
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48))


class Links:
    """Builds and checks the URLs of the pages members reach from their messages."""

    def __init__(self, settings: Settings) -> None:
        self._base = settings.public_base_url.rstrip("/")
        self._max_age = settings.link_ttl_days * 86400
        self._serializer = URLSafeTimedSerializer(secret_key(settings), salt="plp-dispatch-links")

    def __repr__(self) -> str:
        return f"Links(base={self._base!r})"

    def token(self, purpose: Purpose, subject: str) -> str:
        return self._serializer.dumps({"p": purpose.value, "s": subject})

    def read(self, purpose: Purpose, token: str) -> str:
        """The subject a token was made for; raises ``InvalidLink``."""
        try:
            data = self._serializer.loads(token, max_age=self._max_age)
        except BadSignature:
            raise InvalidLink("this link is not valid or has expired") from None
        if not isinstance(data, dict) or data.get("p") != purpose.value:
            raise InvalidLink("this link is not valid here")
        return str(data["s"])

    def receipt_url(self, delivery_id: str) -> str:
        return f"{self._base}/v1/r/{self.token(Purpose.RECEIPT, delivery_id)}"

    def unsubscribe_url(self, member_id: str) -> str:
        return f"{self._base}/v1/u/{self.token(Purpose.UNSUBSCRIBE, member_id)}"

    def export_url(self, member_id: str) -> str:
        """The member's own link to everything stored about them, as JSON."""
        return f"{self._base}/v1/x/{self.token(Purpose.EXPORT, member_id)}"

    def profile_url(self, member_id: str) -> str:
        """The member's own page, where they change their language and channels or leave."""
        return f"{self._base}/v1/p/{self.token(Purpose.PROFILE, member_id)}"

    def public(self, path_qs: str) -> str:
        """The URL a provider used to reach ``path_qs``."""
        return f"{self._base}{path_qs}"


def telegram_link_token() -> str:
    """A random token for a Telegram ``/start`` deep link (fits its 64-character limit)."""
    return secrets.token_urlsafe(18)
