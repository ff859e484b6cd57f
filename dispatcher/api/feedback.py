"""Members' replies, for the alert's author and the PLP's coordinators; Telegram links for members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from dispatcher.api import guards
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Query
from dispatcher.core.links import telegram_link_token
from dispatcher.core.models import Actor, Alert, Member, Plp, Role
from dispatcher.pipeline.receipts import Feedback, Receipts
from dispatcher.storage.store import Store


class FeedbackQuery(Query):
    limit: int = Field(default=50, ge=1, le=500)
    before: float | None = Field(
        default=None, allow_inf_nan=False, description="Replies received before this Unix time"
    )


class FeedbackView(BaseModel):
    """A member's reply: what they saw, or anything else they wrote back."""

    id: str
    alert_id: str | None
    plp_ids: list[str]
    member_id: str
    member_name: str | None = Field(description="Shown to the PLP's coordinators only")
    consented_name: str | None = Field(
        default=None,
        description="On an alert's replies, the member's name when their answer to that alert consents to be "
        "contacted by the police about it (shown to the police too, as the alert's consenting members are)",
    )
    channel: str
    text: str
    received_at: datetime


class FeedbackList(BaseModel):
    """Replies, newest first."""

    items: list[FeedbackView]


class TelegramLink(BaseModel):
    """A personal link that binds the member's Telegram chat to their membership, once."""

    url: str | None = Field(description="t.me deep link (needs TELEGRAM_BOT_USERNAME)")
    start_command: str = Field(description="What the member sends the bot if they cannot open the link")
    expires_at: datetime


async def _views(call: Call, items: list[Feedback], *, consenting: frozenset[str] = frozenset()) -> FeedbackList:
    """The replies the caller may see, with the member's name (the police see only ``consented_name``: that of
    the ``consenting`` members, who consented to be contacted about the alert)."""
    actor: Actor = call.who
    visible = [f for f in items if actor.role is not Role.COORDINATOR or set(f.plp_ids) & set(actor.plp_ids)]
    members = await services(call).store.get_members(sorted({f.member_id for f in visible}))
    names = {m.id: m.name for m in members if m is not None}
    return FeedbackList(
        items=[
            FeedbackView(
                **{
                    **f.__dict__,
                    "member_name": names.get(f.member_id),  # erased: no name
                    "consented_name": names.get(f.member_id) if f.member_id in consenting else None,
                }
            )
            for f in visible
        ]
    )


@api.operation(
    "GET",
    "/v1/alerts/{alert_id}/feedback",
    summary="Members' replies to an alert, newest first",
    tag="feedback",
    query=FeedbackQuery,
    authorize=guards.alert_reader,
    responses={200: FeedbackList},
)
async def alert_feedback(call: Call) -> Reply:
    alert, _ = call.scope
    svc = services(call)
    items = await Receipts(svc.store).list_feedback(
        svc.runtime.keys.alert_feedback(alert.id), limit=call.query.limit, before=call.query.before
    )
    return Reply(200, await _views(call, items, consenting=await _consenting(svc.store, alert)))


async def _consenting(store: Store, alert: Alert) -> frozenset[str]:
    """The members whose answer that counts on ``alert`` consents to be contacted by the police about it."""
    consent = {a.id for a in alert.answers if a.consent}
    if not consent:
        return frozenset()
    return frozenset(m for m, (a, _) in (await store.answers(alert.id)).items() if a in consent)


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/feedback",
    summary="Replies from a PLP's members, newest first",
    tag="feedback",
    query=FeedbackQuery,
    authorize=guards.plp_reader,
    responses={200: FeedbackList},
)
async def plp_feedback(call: Call) -> Reply:
    plp: Plp = call.scope
    svc = services(call)
    items = await Receipts(svc.store).list_feedback(
        svc.runtime.keys.plp_feedback(plp.id), limit=call.query.limit, before=call.query.before
    )
    return Reply(200, await _views(call, items))


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/members/{member_id}/telegram-link",
    summary="Issue the member's personal Telegram link (valid once, for PLP_LINK_TTL_DAYS)",
    tag="members",
    authorize=guards.member_keeper,
    responses={201: TelegramLink},
)
async def telegram_link(call: Call) -> Reply:
    member: Member = call.scope[1]
    svc = services(call)
    token, ttl = telegram_link_token(), svc.runtime.settings.link_ttl_days * 86400
    await Receipts(svc.store).issue_telegram_link(member, token, ttl=ttl)
    username = svc.runtime.settings.telegram_bot_username
    return Reply(
        201,
        TelegramLink(
            url=f"https://t.me/{username}?start={token}" if username else None,
            start_command=f"/start {token}",
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        ),
    )
