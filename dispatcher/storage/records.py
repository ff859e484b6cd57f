"""The records the ``Store`` reads back: what callers get of a delivery, an alert's progress, a token, a page.

Plain values, apart from the ``Store`` so that the modules that take them (erasure, views,
exports) need not import the ``Store`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dispatcher.core.models import AlertStatus, ChannelName, DeliveryStatus, Relay


@dataclass(frozen=True)
class Page:
    """One page of a listing, and the cursor of the next (None on the last)."""

    items: list[Any]
    next_cursor: str | None


@dataclass(frozen=True)
class AlertProgress:
    """An alert's mutable side: status and its times, relays, counters, quiet-hours hold."""

    status: AlertStatus
    times: dict[str, datetime]
    expires_at: datetime
    relays: list[Relay]
    counts: dict[str, int]
    held_until: datetime | None = None
    #: ids of the alert's follow-ups (updates, all-clear), oldest first
    follow_ups: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery as stored: to whom (the member's random id only), on which channel, where it stands and why."""

    id: str
    alert_id: str
    member_id: str
    channel: ChannelName
    status: DeliveryStatus
    times: dict[str, datetime]
    attempts: int
    failures: int
    possible_duplicates: int
    provider_id: str | None
    last_error: str | None
    cause: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


@dataclass(frozen=True)
class TokenRecord:
    """What is kept about a bearer token: never the token itself, nor its hash."""

    id: str
    actor_id: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def refusal(self, now: float) -> str | None:
        """Why the token may not be used at ``now`` (Unix time): "revoked", "expired"; None if it may."""
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at.timestamp():
            return "expired"
        return None


@dataclass(frozen=True)
class NewToken:
    """A token just issued: its secret, to show once, and its record."""

    secret: str = field(repr=False)
    record: TokenRecord
