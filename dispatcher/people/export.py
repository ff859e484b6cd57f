"""Everything stored about one member, as JSON: the GDPR right of access (their record, the messages sent
to them, their replies, their answers to alerts with each change).

The member reaches it through the signed link in every e-mail's footer; a coordinator of
one of their PLPs (or an admin) through the API. A coordinator's export holds what
concerns their PLPs only (``complete`` is false): memberships, deliveries of alerts to
those PLPs, replies sent to those PLPs. The member's own export holds everything.

Deliveries are found through the alerts of the member's PLPs (no per-member index of
deliveries is kept), so deliveries already purged by the retention job are not in it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import cast

from pydantic import BaseModel, Field

from dispatcher.core.models import ChannelName, DeliveryStatus, Member
from dispatcher.pipeline.receipts import Receipts
from dispatcher.storage.records import DeliveryRecord
from dispatcher.storage.store import Store


class ExportedDelivery(BaseModel):
    """One message sent to the member: which alert, on which channel, what became of it."""

    alert_id: str
    channel: ChannelName
    status: DeliveryStatus
    status_times: dict[str, datetime]
    attempts: int
    cause: str | None
    last_error: str | None
    acknowledged_at: datetime | None
    acknowledged_via: str | None

    @classmethod
    def of(cls, record: DeliveryRecord) -> ExportedDelivery:
        return cls(
            alert_id=record.alert_id,
            channel=record.channel,
            status=record.status,
            status_times=record.times,
            attempts=record.attempts,
            cause=record.cause,
            last_error=record.last_error,
            acknowledged_at=record.acknowledged_at,
            acknowledged_via=record.acknowledged_by,
        )


class ExportedFeedback(BaseModel):
    """One reply the member sent."""

    id: str
    alert_id: str | None
    plp_ids: list[str]
    channel: str
    text: str
    received_at: datetime


class AnswerChange(BaseModel):
    """One answer the member gave to an alert (they may change it while the alert is live)."""

    answer: str = Field(description="The answer option's id")
    answered_at: datetime
    via: str = Field(description="The channel it came by")


class ExportedAnswer(BaseModel):
    """The member's answer to one alert: the one that counts, and every answer they gave, in the order received."""

    alert_id: str
    answer: str | None = Field(description="The option that counts (their latest); None if none counts")
    answer_text: str | None = Field(description="Its words in the member's language")
    answered_at: datetime | None
    history: list[AnswerChange] = Field(description="Every answer given, changes included, in the order received")


class TelegramState(BaseModel):
    """The member's Telegram link."""

    chat_id: int | None = Field(description="The linked chat, if any")
    pending_links_expire_at: list[datetime] = Field(description="Personal links issued and not used yet")


class MemberExport(BaseModel):
    """Everything stored about one member: their record, the messages sent to them, their replies."""

    exported_at: datetime
    complete: bool = Field(
        description="False in a coordinator's export of a member of other PLPs too: only what concerns theirs"
    )
    retention_days: int = Field(description="Deliveries and replies are deleted this many days after the alert")
    member: Member
    left_plp_ids: list[str] = Field(description="PLPs the member left while staying in others")
    deliveries: list[ExportedDelivery] = Field(description="Oldest alert first")
    feedback: list[ExportedFeedback] = Field(description="Oldest first")
    answers: list[ExportedAnswer] = Field(
        default_factory=list, description="Their answers to the alerts of their deliveries, oldest alert first"
    )
    telegram: TelegramState


async def export_member(
    store: Store, member: Member, *, retention_days: int, plp_ids: Collection[str] | None = None
) -> MemberExport:
    """What is stored about ``member``; only what concerns ``plp_ids`` if given (a coordinator's export)."""
    left = sorted(cast(set[str], await store.redis.smembers(store.keys.member_left(member.id))))
    if plp_ids is None:
        scope, shown, left_shown = [*member.plp_ids, *left], member, left
    else:
        scope = [p for p in member.plp_ids if p in plp_ids]
        shown, left_shown = member.model_copy(update={"plp_ids": scope}), []
    deliveries = await store.member_deliveries(member.id, dict.fromkeys(scope))
    replies = [
        f for f in await Receipts(store).member_feedback(member.id) if plp_ids is None or set(f.plp_ids) & set(scope)
    ]
    return MemberExport(
        exported_at=datetime.now(UTC),
        complete=plp_ids is None or (set(member.plp_ids) <= set(plp_ids) and not left),
        retention_days=retention_days,
        member=shown,
        left_plp_ids=left_shown,
        deliveries=[ExportedDelivery.of(d) for d in deliveries],
        feedback=[
            ExportedFeedback(
                id=f.id,
                alert_id=f.alert_id,
                plp_ids=[p for p in f.plp_ids if p in scope],
                channel=f.channel,
                text=f.text,
                received_at=f.received_at,
            )
            for f in replies
        ],
        answers=await _answers(store, member, dict.fromkeys(d.alert_id for d in deliveries)),
        telegram=TelegramState(
            chat_id=member.telegram_chat_id, pending_links_expire_at=await _pending_links(store, member.id)
        ),
    )


async def _answers(store: Store, member: Member, alert_ids: Collection[str]) -> list[ExportedAnswer]:
    """The member's answers to these alerts, with the history of their changes; alerts they did not answer left
    out."""
    found = []
    for alert_id in alert_ids:
        history = [
            AnswerChange(answer=a, answered_at=datetime.fromtimestamp(t, UTC), via=c)
            for m, a, t, c in await store.answer_log(alert_id)
            if m == member.id
        ]
        if not history:
            continue
        counts = (await store.answers(alert_id)).get(member.id)
        alert = await store.get_alert(alert_id)
        option = next((o for o in alert.answers if counts and o.id == counts[0]), None) if alert else None
        found.append(
            ExportedAnswer(
                alert_id=alert_id,
                answer=counts[0] if counts else None,
                answer_text=option.text_for(member.language) if option else None,
                answered_at=datetime.fromtimestamp(counts[1], UTC) if counts else None,
                history=history,
            )
        )
    return found


async def _pending_links(store: Store, member_id: str) -> list[datetime]:
    tokens = sorted(cast(set[str], await store.redis.smembers(store.keys.member_telegram_links(member_id))))
    async with store.redis.pipeline(transaction=False) as pipe:
        for token in tokens:
            pipe.ttl(store.keys.telegram_link(token))
        ttls = await pipe.execute()
    now = datetime.now(UTC)
    return sorted(now + timedelta(seconds=int(ttl)) for ttl in ttls if int(ttl) > 0)
