"""Erasing a member's personal data, at once, when they leave their last PLP or are deleted.

``Store.remove_member`` deletes the member record, its contact index and the last-delivery
pointers; this module removes the traces kept elsewhere:

- pending Telegram link tokens issued for them;
- their replies: the texts and their entries in the alert, PLP and member indexes (the
  anonymous counters of replies per alert and per PLP and month stay, so figures stay right);
- contact points a provider wrote into their deliveries: a Telegram chat id in the
  provider's message id, a phone number or address in a provider's error text;
- their answers to alerts: the one that counts and every change in the alert's answer log (the
  alert's tally per option stays, as the counters of replies do).

The deliveries themselves stay, named by the member's random id only, so an alert's counts
and a PLP's yearly figures stay right. Deletions go through pipelines, a chunk at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, cast

from redis.asyncio import Redis

from dispatcher.core.logging import mask_text
from dispatcher.core.models import ChannelName, Member
from dispatcher.storage.keys import Keys
from dispatcher.storage.records import DeliveryRecord

#: What replaces a contact point found in a delivery.
ERASED = "erased"

_CHUNK = 500
#: A Telegram delivery's provider id: ``<chat id>:<message id>``.
_TELEGRAM_MESSAGE = re.compile(r"^-?\d+:(\d+)$")


def drop_feedback(pipe: Any, keys: Keys, feedback_id: str, raw: str | None) -> None:
    """Queue on ``pipe`` the deletion of one reply and of its entries in every index; counts stay.

    ``raw`` is the stored reply (``dispatcher.pipeline.receipts.Feedback`` JSON), None if already gone.
    Works on a pipeline of either client, sync or asyncio.
    """
    pipe.delete(keys.feedback(feedback_id))
    if raw is None:
        return
    data = json.loads(raw)
    pipe.zrem(keys.member_feedback(data["member_id"]), feedback_id)
    if data.get("alert_id"):
        pipe.zrem(keys.alert_feedback(data["alert_id"]), feedback_id)
    for plp_id in data.get("plp_ids", []):
        pipe.zrem(keys.plp_feedback(plp_id), feedback_id)


async def erase_replies(redis: Redis, keys: Keys, member_id: str) -> int:
    """Delete a member's replies and their index entries; return how many went."""
    index = keys.member_feedback(member_id)
    ids = cast(list[str], await redis.zrange(index, 0, -1))
    for start in range(0, len(ids), _CHUNK):
        part = ids[start : start + _CHUNK]
        raws = cast(list[str | None], await redis.mget([keys.feedback(i) for i in part]))
        async with redis.pipeline(transaction=False) as pipe:
            for feedback_id, raw in zip(part, raws, strict=True):
                drop_feedback(pipe, keys, feedback_id, raw)
            await pipe.execute()
    await redis.delete(index)
    return len(ids)


async def erase_answers(redis: Redis, keys: Keys, member_id: str, alert_ids: Iterable[str]) -> int:
    """Delete a member's answers to these alerts (the one that counts, and each entry of the answer log); the
    tallies stay. Returns how many answers (log entries) went."""
    erased = 0
    for alert_id in dict.fromkeys(alert_ids):
        log = keys.alert_answer_log(alert_id)
        theirs = [raw for raw in cast(list[str], await redis.lrange(log, 0, -1)) if json.loads(raw)[0] == member_id]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.alert_answers(alert_id), member_id)
            for raw in dict.fromkeys(theirs):
                pipe.lrem(log, 0, raw)
            await pipe.execute()
        erased += len(theirs)
    return erased


async def erase_telegram_links(redis: Redis, keys: Keys, member_id: str) -> int:
    """Revoke the Telegram link tokens issued to a member and not used yet; return how many."""
    index = keys.member_telegram_links(member_id)
    tokens = cast(set[str], await redis.smembers(index))
    async with redis.pipeline(transaction=True) as pipe:
        for token in tokens:
            pipe.delete(keys.telegram_link(token))
        pipe.delete(index)
        await pipe.execute()
    return len(tokens)


def contact_forms(member: Member) -> list[str]:
    """The member's contact points as they may appear in a provider's text, longest first."""
    forms = [member.phone, member.email]
    if member.phone and member.phone.startswith("+32"):
        forms.append("0" + member.phone.removeprefix("+32"))  # the Belgian national form
    if member.telegram_chat_id is not None:
        forms.append(str(member.telegram_chat_id))
    return sorted({f for f in forms if f}, key=len, reverse=True)


def scrub(text: str, forms: Iterable[str]) -> str:
    """``text`` without the member's contact points, and with any other one masked."""
    for form in forms:
        text = text.replace(form, ERASED)
    return mask_text(text)


async def scrub_deliveries(redis: Redis, keys: Keys, member: Member, deliveries: Iterable[DeliveryRecord]) -> int:
    """Take the member's contact points out of their deliveries' provider ids, errors and causes.

    Returns how many deliveries were changed.
    """
    forms = contact_forms(member)
    changed = 0
    async with redis.pipeline(transaction=False) as pipe:
        for record in deliveries:
            fields = _scrubbed_fields(record, forms)
            if fields:
                key = keys.delivery(record.alert_id, f"{record.channel.value}:{record.member_id}")
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                changed += 1
        await pipe.execute()
    return changed


def _scrubbed_fields(record: DeliveryRecord, forms: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    telegram = _TELEGRAM_MESSAGE.match(record.provider_id or "")
    if record.channel is ChannelName.TELEGRAM and telegram:
        fields["provider_id"] = f"{ERASED}:{telegram.group(1)}"  # the message id alone, without the chat
    for name in ("last_error", "cause"):
        value = getattr(record, name) or ""
        cleaned = scrub(value, forms)
        if cleaned != value:
            fields[name] = cleaned
    return fields
