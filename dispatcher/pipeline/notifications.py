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


class Notification(BaseModel):
    """Something the service tells actors about an alert and one of its PLPs."""

    id: str
    kind: NotificationKind
    alert_id: str
    plp_id: str
    created_at: datetime
    language: Language = Field(description="The language of subject and text: the PLP's default language")
    subject: str
    text: str
    planned: int = Field(description="Members the alert was planned for, through this PLP")
    acknowledged: int = Field(description="Of them, those who acknowledged it")
    threshold: float = Field(description="The share of members acknowledging that the charter expects")


def notification_id(kind: NotificationKind, alert_id: str, plp_id: str) -> str:
    """The id of the one notification of this kind about an alert and a PLP: 16 hex digits."""
    return hashlib.sha256(f"{kind.value}:{alert_id}:{plp_id}".encode()).hexdigest()[:16]


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
