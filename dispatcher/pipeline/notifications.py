"""What the service tells the people who use the API: notifications, kept per actor.

A notification is stored once (``notification:<id>``) and filed, by time, in the feed of
each actor it concerns (``actor:<id>:notifications``). Its id is derived from what it is
about, so that a job run twice (after a crash, or the clock handing it out again) never
tells anyone twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import cast

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from dispatcher.core.models import Language
from dispatcher.storage.keys import Keys


class NotificationKind(StrEnum):
    FEW_ACKNOWLEDGEMENTS = "few_acknowledgements"  # too few members acknowledged an urgent alert
    JOIN_REQUEST = "join_request"  # a resident asks to join a PLP (its coordinators approve or decline)
    MEMBER_CHANGED = "member_changed"  # a member changed their choices or contact point, or left, on their own page


class MemberChange(StrEnum):
    """What a member changed on their own page, as their coordinators are told (never the values themselves)."""

    LANGUAGE = "language"
    CHANNELS = "channels"  # which channels, their order, quiet hours, non-urgent messages, WhatsApp consent
    CONTACT = "contact"  # their phone number or e-mail address
    LEFT = "left"  # they left the PLP: their personal data is erased


class Notification(BaseModel):
    """Something the service tells actors about one of their PLPs: an alert's acknowledgements, a join request, a
    member's change on their own page (which names no one: the member's name is looked up when read, and is gone
    once they left)."""

    id: str
    kind: NotificationKind
    alert_id: str | None = Field(default=None, description="The alert it is about (few_acknowledgements)")
    join_request_id: str | None = Field(default=None, description="The join request it is about (join_request)")
    member_id: str | None = Field(default=None, description="The member it is about (member_changed)")
    changes: list[MemberChange] = Field(
        default_factory=list, description="What the member changed (member_changed); never the new values"
    )
    plp_id: str
    created_at: datetime
    language: Language = Field(description="The language of subject and text: the PLP's default language")
    subject: str
    text: str
    planned: int | None = Field(default=None, description="Members the alert was planned for, through this PLP")
    acknowledged: int | None = Field(default=None, description="Of them, those who acknowledged it")
    threshold: float | None = Field(
        default=None, description="The share of members acknowledging that the charter expects"
    )


def notification_id(kind: NotificationKind, about: str, plp_id: str) -> str:
    """The id of the one notification of this kind about an alert (or a join request) and a PLP: 16 hex digits."""
    return hashlib.sha256(f"{kind.value}:{about}:{plp_id}".encode()).hexdigest()[:16]


class Notifications:
    """Notifications in Redis, on an asyncio client that decodes responses."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def publish(self, notification: Notification, actor_ids: list[str]) -> bool:
        """Store the notification and file it for these actors; False if it existed already.

        Filing is idempotent: an actor keeps the notification once, at its first time.
        """
        score = notification.created_at.timestamp()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.notification(notification.id), notification.model_dump_json(), nx=True)
            for actor_id in actor_ids:
                pipe.zadd(self.keys.actor_notifications(actor_id), {notification.id: score}, nx=True)
            created, *_ = await pipe.execute()
        return bool(created)

    async def get(self, notification_id: str) -> Notification | None:
        raw = await self.redis.get(self.keys.notification(notification_id))
        return Notification.model_validate_json(raw) if raw else None

    async def for_actor(self, actor_id: str, *, limit: int, before: float | None = None) -> list[Notification]:
        """The actor's notifications, newest first (created before ``before``, if given)."""
        top = f"({before}" if before is not None else "+inf"
        ids = cast(
            list[str],
            await self.redis.zrange(
                self.keys.actor_notifications(actor_id), top, "-inf", desc=True, byscore=True, offset=0, num=limit
            ),
        )
        raws = await self.redis.mget([self.keys.notification(i) for i in ids]) if ids else []
        return [Notification.model_validate_json(raw) for raw in raws if raw]

    async def files(self, actor_id: str, notification_id: str) -> bool:
        """Whether the notification is in the actor's feed."""
        return await self.redis.zscore(self.keys.actor_notifications(actor_id), notification_id) is not None

    async def mark(self, actor_id: str, notification_id: str, *, read: bool) -> None:
        """Mark the notification read (or unread again) for this actor only."""
        key = self.keys.actor_notifications_read(actor_id)
        await (self.redis.sadd(key, notification_id) if read else self.redis.srem(key, notification_id))

    async def read_among(self, actor_id: str, notification_ids: list[str]) -> set[str]:
        """Those of these notifications the actor marked read."""
        if not notification_ids:
            return set()
        flags = await self.redis.smismember(self.keys.actor_notifications_read(actor_id), notification_ids)
        return {i for i, flag in zip(notification_ids, flags, strict=True) if flag}
