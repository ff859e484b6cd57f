"""Messages that answer a member (a Telegram chat linked, a reply thanked, a stranger told who we
are), sent by the workers in their turn under the provider's limits, retried until they go.

Answering Telegram's webhook with the message itself would save a request, but Telegram then
sends it outside our limiter: 171 chats linked in three seconds got 81 confirmations refused
by the bot's 30 a second and lost. So the webhook only queues the answer (``queue``), and a
worker sends it (``send``) like any delivery: it waits for its turn under the bot's and the
chat's limits (urgent: an answer is the reply to something a member just did), departs, and
sends. A refused or failed attempt is tried again after the provider's ``retry_after`` (or a
back-off), for up to ``GIVE_UP_AFTER`` seconds.

Crash safety, with the clock's timers: queuing an answer stores it (``reply:<id>``, which
lives ``GIVE_UP_AFTER`` seconds) and enqueues its job, and also sets a timer that runs the job
again one lease later, should the first be lost with its worker. A run claims the answer only
once its turn has come (``CLAIM``): the claim leases it and moves the timer to the lease's
end; a run that finds it claimed or gone does nothing. Each answer thus goes out once, or, if
a worker dies after handing it to the provider, at most once more.

SMS replies are answered in the webhook's TwiML: Twilio queues them on the sending number
itself, never refuses them for its rate, and their volume (a STOP, a thank-you) is small
beside the alerts'.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

import structlog
from redis.asyncio import Redis as AsyncRedis

from channels import Channel, ChannelError, OutboundMessage, PermanentError, TransientError, departing
from dispatcher.core.models import ChannelName, Language, Urgency
from dispatcher.pipeline import jobs
from dispatcher.pipeline.pacing import limits_for, shared_rate
from dispatcher.storage.limits import ProviderLimits
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import now_ts

log = structlog.get_logger(__name__)

#: Seconds after which an answer not sent yet is dropped: by then it answers nothing any more.
GIVE_UP_AFTER = 3600
#: Seconds before the first retry of a failed attempt without ``retry_after``; doubled each time.
FIRST_BACKOFF = 1.0

# KEYS: the answer, the clock's timers. ARGV: now, the lease's end, the timer's spec.
# Claims the answer if it is still there and nobody holds it; returns its fields, else nothing.
CLAIM = """
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease') or '-1')
if lease < 0 or lease > tonumber(ARGV[1]) then return false end
redis.call('HSET', KEYS[1], 'lease', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return redis.call('HGETALL', KEYS[1])
"""


@dataclass(frozen=True)
class Reply:
    """One answer waiting to go: over ``channel`` to ``address`` (a chat id), ``text`` in ``language``."""

    id: str
    channel: ChannelName
    address: str
    text: str
    language: Language
    attempts: int = 0
    subject: str = ""  # an e-mail's (the member's own link, sent at a coordinator's request)

    def message(self) -> OutboundMessage:
        return OutboundMessage(
            delivery_id=f"reply:{self.id}",
            alert_id="",
            member_id="",
            channel=self.channel,
            address=self.address,
            language=self.language,
            urgency=Urgency.URGENT,
            subject=self.subject,
            text=self.text,
        )


def queue(rt: Runtime, channel: ChannelName, address: str, text: str, language: Language, *, subject: str = "") -> str:
    """Store an answer (``subject``: an e-mail's) and enqueue its sending, with a timer that sends it should that
    job be lost; return its id. Synchronous (RQ's client): the API runs it off its event loop."""
    reply_id = uuid.uuid4().hex
    key = rt.keys.reply_out(reply_id)
    fields = {"channel": channel.value, "address": address, "text": text, "language": language.value, "lease": "0"}
    fields |= {"subject": subject} if subject else {}
    with rt.rq_connection.pipeline(transaction=True) as pipe:
        pipe.multi()  # RQ's enqueue on a pipeline expects the transaction started
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        pipe.expire(key, GIVE_UP_AFTER)
        jobs.schedule(rt, now_ts() + rt.settings.lease_seconds, jobs.SEND_REPLY, reply_id, urgent=True, pipe=pipe)
        jobs.enqueue(rt, pipe, jobs.SEND_REPLY, reply_id, lane=Urgency.URGENT)
        pipe.execute()
    return reply_id


async def send(rt: Runtime, redis: AsyncRedis, channels: dict[ChannelName, Channel], reply_id: str) -> str:
    """Send a queued answer in its turn; return what became of it ("sent", "retrying", "dropped", or
    "not mine" when it is gone or another run holds it)."""
    key = rt.keys.reply_out(reply_id)
    waiting = cast(dict[str, str], await redis.hgetall(key))  # a decoding client
    if not waiting:
        return "not mine"
    limits = limits_for(rt.settings, ChannelName(waiting["channel"]), waiting["address"])
    provider_limits = ProviderLimits(redis, rt.keys)
    await provider_limits.wait_turn(limits, urgent=True)
    lease = now_ts() + rt.settings.provider_timeout + rt.settings.lease_seconds
    spec = jobs.timer_spec(jobs.SEND_REPLY, reply_id, urgent=True)
    claimed = await redis.eval(CLAIM, 2, key, rt.keys.timers(), now_ts(), lease, spec)
    if not claimed:
        return "not mine"
    reply = _reply(reply_id, claimed)
    await provider_limits.depart(limits)
    try:
        with departing(lambda: provider_limits.depart(shared_rate(limits))):
            await channels[reply.channel].send(reply.message())
    except TransientError as exc:
        return await _again(rt, redis, reply, exc, spec)
    except ChannelError as exc:  # refused for good (blocked, no such chat, not configured)
        log.warning("reply.dropped", reply_id=reply_id, channel=reply.channel.value, error=_reason(exc))
        await _forget(rt, redis, reply_id, spec)
        return "dropped"
    await _forget(rt, redis, reply_id, spec)
    log.info("reply.sent", reply_id=reply_id, channel=reply.channel.value, attempts=reply.attempts + 1)
    return "sent"


async def _again(rt: Runtime, redis: AsyncRedis, reply: Reply, exc: TransientError, spec: str) -> str:
    """Try again after the provider's wait (or a back-off): the timer runs the job then; the lease ends then."""
    wait = exc.retry_after if exc.retry_after is not None else FIRST_BACKOFF * 2**reply.attempts
    at = now_ts() + wait
    if wait >= await redis.ttl(rt.keys.reply_out(reply.id)):  # it would go after GIVE_UP_AFTER
        log.warning("reply.dropped", reply_id=reply.id, channel=reply.channel.value, error=str(exc))
        await _forget(rt, redis, reply.id, spec)
        return "dropped"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(rt.keys.reply_out(reply.id), mapping={"lease": at, "attempts": reply.attempts + 1})
        pipe.zadd(rt.keys.timers(), {spec: at})
        await pipe.execute()
    log.info("reply.retrying", reply_id=reply.id, channel=reply.channel.value, wait=round(wait, 3), error=str(exc))
    return "retrying"


async def _forget(rt: Runtime, redis: AsyncRedis, reply_id: str, spec: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(rt.keys.reply_out(reply_id))
        pipe.zrem(rt.keys.timers(), spec)
        await pipe.execute()


def _reply(reply_id: str, claimed: list[str]) -> Reply:
    fields = dict(zip(claimed[::2], claimed[1::2], strict=True))
    return Reply(
        id=reply_id,
        channel=ChannelName(fields["channel"]),
        address=fields["address"],
        text=fields["text"],
        language=Language(fields["language"]),
        attempts=int(fields.get("attempts", 0)),
        subject=fields.get("subject", ""),
    )


def _reason(exc: ChannelError) -> str:
    return exc.reason if isinstance(exc, PermanentError) else type(exc).__name__
