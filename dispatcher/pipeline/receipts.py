"""What comes back: provider statuses, acknowledgements, replies, opt-outs, Telegram links.

One receipt model whatever the path: an acknowledgement (SMS "OK", key 1 in a call, the
Telegram button, the e-mail page) is recorded once on its delivery with the channel it
came by; any other reply is feedback on the alert it answers; a stop word, ``/stop`` or
the unsubscribe link opts the member out at once. Each path answers the member in their
language, and every answer to feedback reminds them that emergencies go to 101 or 112.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import cast

import structlog

from dispatcher.core.channel_names import Contact
from dispatcher.core.models import AnswerOption, ChannelName, DeliveryStatus, Language, Member, MemberStatus
from dispatcher.core.wording import ACK_WORDS, STOP_WORDS, Words, match_answer, normalise_reply, say
from dispatcher.storage import erasure
from dispatcher.storage.counters import Activity, activity_counter
from dispatcher.storage.store import Store, new_id, now_ts, split_delivery_id

log = structlog.get_logger(__name__)

MAX_FEEDBACK = 2000


class ReplyKind(StrEnum):
    ACK = "ack"
    STOP = "stop"
    FEEDBACK = "feedback"


def classify(text: str) -> ReplyKind:
    """What a member's free-text reply means."""
    words = normalise_reply(text)
    if words in STOP_WORDS or words == "/stop":
        return ReplyKind.STOP
    if words in ACK_WORDS:
        return ReplyKind.ACK
    return ReplyKind.FEEDBACK


class AnswerResult(IntEnum):
    """What became of a member's answer."""

    ENDED = -2  # the alert has ended (cancelled, all-clear, past its time-to-live): not recorded
    NO_DELIVERY = -1
    KEPT = 0  # logged; the tally unchanged (the same answer again, or a later one counts)
    COUNTS = 1  # it is the member's answer now


@dataclass(frozen=True)
class Feedback:
    id: str
    alert_id: str | None
    member_id: str
    plp_ids: list[str]
    channel: str
    text: str
    received_at: datetime

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "received_at": self.received_at.timestamp()}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> Feedback:
        data = json.loads(raw)
        return cls(**{**data, "received_at": datetime.fromtimestamp(data["received_at"], UTC)})


class Receipts:
    """Records what members and providers send back, on the deliveries they concern."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.keys = store.keys

    # -- provider statuses -------------------------------------------------------------------

    async def provider_status(
        self, delivery: str, status: DeliveryStatus, *, provider_id: str = "", error: str = "", cause: str = ""
    ) -> str:
        """Move a delivery forward from a provider's report; a late or repeated report changes nothing."""
        alert_id, channel, member_id = split_delivery_id(delivery)
        ref = f"{channel}:{member_id}"
        result = await self.store.scripts.record(
            keys=self.keys.delivery_move(alert_id, ref),
            args=[alert_id, ref, channel, status.value, now_ts(), provider_id, error, cause],
        )
        return str(result)

    # -- members -----------------------------------------------------------------------------

    async def acknowledge(self, delivery: str, *, via: ChannelName) -> bool:
        """Record the member's acknowledgement; True the first time."""
        alert_id, channel, member_id = split_delivery_id(delivery)
        first = await self.store.acknowledge(alert_id, f"{channel}:{member_id}", via=via.value)
        log.info("receipt.acknowledged", delivery_id=delivery, via=via.value, first=first)
        return first

    async def answer(
        self, delivery: str, answer: AnswerOption, *, via: ChannelName, at: datetime | None = None
    ) -> AnswerResult:
        """Record the member's answer to the alert of ``delivery`` (at ``at``, default now) while the alert is live;
        it also acknowledges. The latest answer counts, each one is kept."""
        alert_id, channel, member_id = split_delivery_id(delivery)
        when = (at or datetime.now(UTC)).timestamp()
        ref = f"{channel}:{member_id}"
        result = AnswerResult(await self.store.answer(alert_id, ref, answer_id=answer.id, via=via.value, at=when))
        if result in (AnswerResult.COUNTS, AnswerResult.KEPT):
            await self.store.acknowledge(alert_id, ref, via=via.value, at=when)
        log.info("receipt.answered", delivery_id=delivery, via=via.value, answer=answer.id, result=result.name)
        return result

    async def answer_from_reply(self, member: Member, delivery: str, text: str, *, via: ChannelName) -> str | None:
        """If a reply names one of the answers of the delivery's alert (its number, its words) while the alert is
        live, record it and return the thanks to send back; else None."""
        alert = await self.store.get_alert(split_delivery_id(delivery)[0])
        option = match_answer(text, alert.answers, member.language) if alert is not None else None
        if option is None or await self.answer(delivery, option, via=via) is AnswerResult.ENDED:
            return None
        return say(Words.ANSWER_THANKS, member.language, answer=option.text_for(member.language))

    async def opt_out(self, member: Member, *, via: ChannelName | str) -> Member:
        """Stop every message to the member from now on; sends already queued for them are dropped.

        Returns once the sends to them already with a provider have their answer: after it, nothing reaches them.
        """
        if member.status is MemberStatus.OPTED_OUT:
            return member
        now = datetime.now(UTC)
        stopped = member.model_copy(update={"status": MemberStatus.OPTED_OUT, "opted_out_at": now, "updated_at": now})
        await self.store.save_member(stopped, previous=member)
        unanswered = await self.store.sends_landed(member_id=member.id)
        log.info("receipt.opted_out", member_id=member.id, via=str(via), sends_unanswered=unanswered)
        return stopped

    async def feedback(
        self, member: Member, text: str, *, via: ChannelName, delivery: str | None, at: datetime | None = None
    ) -> Feedback:
        """Store a member's reply, received at ``at`` (default now), as feedback on the alert it answers
        (or on their PLPs).

        The reply is indexed under the alert, the PLPs and the member, and counted per alert
        and per PLP and month (UTC, and the PLP's own month for its evaluation): the counts
        stay when erasure or retention take the text.
        """
        alert_id = split_delivery_id(delivery)[0] if delivery else None
        plp_ids = list(member.plp_ids)
        if alert_id is not None:
            alert = await self.store.get_alert(alert_id)
            if alert is not None:
                plp_ids = [p for p in alert.plp_ids if p in member.plp_ids] or plp_ids
        item = Feedback(
            id=new_id(),
            alert_id=alert_id,
            member_id=member.id,
            plp_ids=plp_ids,
            channel=via.value,
            text=text.strip()[:MAX_FEEDBACK],
            received_at=(at or datetime.now(UTC)).astimezone(UTC),
        )
        score, month = item.received_at.timestamp(), item.received_at.strftime("%Y-%m")
        plps = await self.store.get_plps(plp_ids)
        redis = self.store.redis
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.feedback(item.id), item.to_json())
            pipe.zadd(self.keys.member_feedback(member.id), {item.id: score})
            if alert_id is not None:
                pipe.zadd(self.keys.alert_feedback(alert_id), {item.id: score})
                pipe.hincrby(self.keys.alert_counts(alert_id), "feedback", 1)
            for plp_id in plp_ids:
                pipe.zadd(self.keys.plp_feedback(plp_id), {item.id: score})
                pipe.hincrby(self.keys.plp_feedback_counts(plp_id), month, 1)
                if (plp := plps[plp_id]) is not None:
                    counter, name = activity_counter(self.keys, plp, Activity.REPLIES, item.received_at)
                    pipe.hincrby(counter, name, 1)
            await pipe.execute()
        if await self.store.get_member(member.id) is None:
            await erasure.erase_replies(redis, self.keys, member.id)  # erased meanwhile: the count alone stays
        log.info("receipt.feedback", feedback_id=item.id, alert_id=alert_id, via=via.value)
        return item

    async def reply(self, member: Member, channel: ChannelName, text: str) -> str:
        """Handle a free-text reply on SMS or Telegram; return the answer to send back."""
        kind = classify(text)
        if kind is ReplyKind.STOP:
            await self.opt_out(member, via=channel)
            return say(Words.OPTED_OUT, member.language)
        last = await self.store.last_delivery(member.id, channel)
        if last is not None and (thanks := await self.answer_from_reply(member, last, text, via=channel)):
            return thanks
        if kind is ReplyKind.ACK and last is not None:
            await self.acknowledge(last, via=channel)
            return say(Words.ACK_THANKS, member.language)
        await self.feedback(member, text, via=channel, delivery=last)
        return say(Words.FEEDBACK_THANKS, member.language)

    async def member_by_address(self, channel: ChannelName, address: str) -> Member | None:
        """The member whose contact point on ``channel`` is ``address`` (a phone, a chat id), if any."""
        if channel.contact is Contact.WHATSAPP:  # a WhatsApp number is the member's mobile number (a STOP counts
            return await self._member_by("phone", address)  # even after the consent is withdrawn)
        return await self._member_by(channel.contact.value, address)

    async def member_by_phone(self, phone: str) -> Member | None:
        return await self._member_by("phone", phone)

    async def member_by_chat(self, chat_id: int) -> Member | None:
        return await self._member_by("telegram", str(chat_id))

    async def _member_by(self, kind: str, value: str) -> Member | None:
        contact = {"phone": None, "email": None, "telegram": None, kind: value}
        member_id = await self.store.find_member_by_contact(**contact)
        return await self.store.get_member(member_id) if member_id else None

    # -- Telegram linking ----------------------------------------------------------------------

    async def issue_telegram_link(self, member: Member, token: str, *, ttl: int) -> None:
        """Keep a deep-link token for the member, and index it under them (erasure revokes it)."""
        async with self.store.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.telegram_link(token), member.id, ex=ttl)
            pipe.sadd(self.keys.member_telegram_links(member.id), token)
            pipe.expire(self.keys.member_telegram_links(member.id), ttl)  # the newest token's lifetime
            await pipe.execute()

    async def link_telegram(self, token: str, chat_id: int) -> Member | None:
        """Bind a Telegram chat to the member a deep-link token was issued for (once); None if invalid."""
        member_id = await self.store.redis.getdel(self.keys.telegram_link(token))
        if member_id:
            await self.store.redis.srem(self.keys.member_telegram_links(str(member_id)), token)
        member = await self.store.get_member(str(member_id)) if member_id else None
        if member is None:
            return None
        unusable = {c: r for c, r in member.unusable.items() if c is not ChannelName.TELEGRAM}
        linked = member.model_copy(
            update={"telegram_chat_id": chat_id, "unusable": unusable, "updated_at": datetime.now(UTC)}
        )
        await self.store.save_member(linked, previous=member)
        log.info("receipt.telegram_linked", member_id=member.id)
        return linked

    # -- reading feedback ----------------------------------------------------------------------

    async def feedback_counts(self, plp_id: str) -> dict[str, int]:
        """Replies received from a PLP's members per month (``YYYY-MM``): kept after erasure and purges."""
        raw = cast(dict[str, str], await self.store.redis.hgetall(self.keys.plp_feedback_counts(plp_id)))
        return {month: int(count) for month, count in sorted(raw.items())}

    async def list_feedback(self, key: str, *, limit: int, before: float | None) -> list[Feedback]:
        """Newest first, from an alert's or a PLP's feedback index."""
        top = f"({before}" if before is not None else "+inf"
        ids = await self.store.redis.zrange(key, top, "-inf", desc=True, byscore=True, offset=0, num=limit)
        return await self.get_feedback(cast(list[str], ids))

    async def member_feedback(self, member_id: str) -> list[Feedback]:
        """A member's replies, oldest first."""
        ids = await self.store.redis.zrange(self.keys.member_feedback(member_id), 0, -1)
        return await self.get_feedback(cast(list[str], ids))

    async def get_feedback(self, ids: list[str]) -> list[Feedback]:
        """The replies with these ids, in their order; those gone are left out."""
        raws = await self.store.redis.mget([self.keys.feedback(i) for i in ids]) if ids else []
        return [Feedback.from_json(str(raw)) for raw in raws if raw]


def page_language(accept_language: str | None) -> Language:
    """The page language for someone we do not know: the browser's first supported language."""
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in {language.value for language in Language}:
            return Language(code)
    return Language.FR
