"""Sending one batch of deliveries, concurrently, each claimed at the moment it goes.

A delivery waits for its provider's turn (``dispatcher.storage.limits``) unclaimed, then is claimed by
an atomic script that refuses it if the alert was cancelled, its time-to-live has passed, or
the member opted out, and otherwise hands the send over: nothing starts too late or after a
stop, however long the turn took. The same step departs (``dispatcher.storage.limits``): the request
leaves one emission interval after the previous one left, whatever delayed either, and nothing
claimed waits behind a late neighbour. (The claim script checks once before the wait too, so
that a stopped delivery costs no turn.) A
batch lets only as many of a channel's sends wait for their turn as the channel's limit lets
out within a couple of seconds (``send_slots``).

A batch's first delivery leads: the others start once it has its claim's answer, or as soon as it
has to wait for its turn. Started together, a hundred sends' first steps would each come back to an
event loop with a hundred other answers to read before it; led, the batch's first request leaves
after a handful of round trips, whatever the batch's size (an urgent alert's first SMS).

A claim is a lease: the batch renews it while it works, so if its worker dies, the clock
(``dispatcher.pipeline.clock``) hands the delivery to another worker once the lease runs out. Within
the lease, exactly one worker owns the send. The batch holds the deliveries not claimed yet
the same way, from the moment its job starts.

The channel's answer moves the delivery forward; its typed error decides what comes next:
a permanent failure marks the contact point unusable and tries the charter's next channel
(for "first that works" plans); a transient one is retried later (``dispatcher.pipeline.retries``),
which the clock also takes care of.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import AsyncIterator

import structlog
from redis.asyncio import Redis as AsyncRedis

from channels import (
    Channel,
    ChannelError,
    OutboundMessage,
    PermanentError,
    ReceiptStatus,
    TransientError,
    departing,
    open_channels,
    vendor,
)
from config import Settings
from dispatcher.core.links import Links
from dispatcher.core.models import Alert, ChannelName, DeliveryMode, DeliveryStatus, Member, Plp, Relay, Urgency
from dispatcher.operations.metrics import SendAttempt, SendOutcome
from dispatcher.pipeline import dispatches
from dispatcher.pipeline.compose import compose
from dispatcher.pipeline.pacing import limits_for, shared_rate
from dispatcher.pipeline.retries import RetryPolicy, Verdict
from dispatcher.storage.batching import ScriptCalls
from dispatcher.storage.limits import RESERVE_AHEAD, Askers, Limit, ProviderLimits
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, delivery_id, now_ts

log = structlog.get_logger(__name__)

#: What the claim script answers to the one caller that now owns a send (handed to the provider).
CLAIMED = "claimed"
#: What it answers, when only asked to check, for a delivery that may still go.
READY = "ready"
#: What it answers when the send may not depart yet under its limits: ``depart-in:<microseconds>``.
DEPART_IN = "depart-in"
NO_CONTACT = "the member has no such contact point any more"
#: Seconds past the provider's timeout by which a send handed over has its answer (the event loop's lag).
HANDED_MARGIN = 1.0

#: The status a delivery takes from its channel's receipt: the outbox's is a final status of its own,
#: never counted as sent or delivered (no provider had the message).
DELIVERY_OF_RECEIPT = {
    ReceiptStatus.SENT: DeliveryStatus.SENT,
    ReceiptStatus.DELIVERED: DeliveryStatus.DELIVERED,
    ReceiptStatus.OUTBOX: DeliveryStatus.OUTBOX,
}


class BatchContext:
    """What every delivery of one batch shares: the alert, its PLP, the members, the channels."""

    def __init__(
        self,
        store: Store,
        *,
        alert: Alert,
        plp: Plp,
        relay: Relay | None,
        members: dict[str, Member],
        channels: dict[ChannelName, Channel],
        links: Links,
        settings: Settings,
        askers: Askers,
        calls: ScriptCalls,
    ) -> None:
        self.store, self.keys = store, store.keys
        self.askers, self.calls = askers, calls
        self.alert, self.plp, self.relay = alert, plp, relay
        self.members, self.channels, self.links = members, channels, links
        self.settings = settings
        # Sends waiting for their turn or in flight, per channel: deliveries waiting for a slow channel
        # (its rate, its connections) must not hold up the batch's deliveries on the other channels.
        self.slots = {channel: asyncio.Semaphore(send_slots(settings, channel)) for channel in ChannelName}
        self.reply_window = max(alert.ttl_seconds, 7 * 86400)
        self.urgent = alert.urgency is Urgency.URGENT
        self.policy = RetryPolicy.for_urgency(settings, alert.urgency)
        self.expires_at = alert.created_at.timestamp() + alert.ttl_seconds
        self.limits = ProviderLimits(store.redis, store.keys)
        self.held: set[str] = set()  # refs this batch holds, not done yet
        self.in_flight: set[str] = set()  # refs this batch has claimed and is sending
        self.leader: str | None = None  # the ref the others wait for (see the module's docstring)
        self.led = asyncio.Event()  # set once the leader has its claim's answer, has to wait, or is done
        self.led.set()

    def lead_with(self, ref: str) -> None:
        """Have ``ref`` go first: the batch's other deliveries start once it is claimed, or waits, or ends."""
        self.leader = ref
        self.led.clear()

    def delivery_keys(self, ref: str) -> list[str]:
        return self.keys.delivery_move(self.alert.id, ref)

    def leased(self, ref: str) -> str:
        return f"{self.alert.id}|{ref}"


def send_slots(settings: Settings, channel: ChannelName) -> int:
    """How many sends of one batch may wait for their turn or be in flight on ``channel`` at once.

    What the channel's limit lets out within ``RESERVE_AHEAD`` seconds, plus one, at most
    PLP_SEND_CONCURRENCY (a channel without limits: that many). More would only queue on the
    limit, asking it again and again for a turn it cannot give yet.
    """
    limits = limits_for(settings, channel, "")
    if not limits:
        return settings.send_concurrency
    return max(1, min(settings.send_concurrency, math.ceil(limits[0].per_second * RESERVE_AHEAD) + 1))


class Connections:
    """A Redis client and the channels: opened per unit of work, or kept by a worker process between batches;
    with them, the batches' callers for provider turns, grouped per alert and limits (``Askers``), and their
    claims and records, sent together when made together (``ScriptCalls``)."""

    def __init__(self, redis: AsyncRedis, channels: dict[ChannelName, Channel]) -> None:
        self.redis, self.channels = redis, channels
        self.askers = Askers()
        self.calls = ScriptCalls(redis)


@contextlib.asynccontextmanager
async def connections(rt: Runtime) -> AsyncIterator[Connections]:
    """Open a Redis client and the channels in the running loop; close them when the block ends."""
    redis = rt.async_redis()
    try:
        async with open_channels(rt.settings) as channels:
            yield Connections(redis, channels)
    finally:
        await redis.aclose()


async def send_batch(
    rt: Runtime,
    alert_id: str,
    plp_id: str,
    refs: list[str],
    *,
    using: Connections | None = None,
    job_id: str | None = None,
    admitted: contextlib.AbstractAsyncContextManager[object] | None = None,
) -> dict[str, int]:
    """Send the deliveries ``refs`` of an alert for one PLP; return how many ended in each status.

    ``using``: connections kept open between batches (a worker's); by default, the batch opens its own.
    ``job_id``: the send job that carried them, whose record (``dispatcher.pipeline.dispatches``) the batch takes
    over. ``admitted``: entered before sending (a worker's turn to run a batch); the batch holds its
    deliveries while it waits for it.
    """
    if using is None:
        async with connections(rt) as opened:
            return await send_batch(rt, alert_id, plp_id, refs, using=opened, job_id=job_id, admitted=admitted)
    store = Store(using.redis, rt.keys)
    member_ids = sorted({ref.split(":", 1)[1] for ref in refs})
    # read at once, not one after the other: each is a round trip before the batch's first send
    alert, plp, found, relay = await asyncio.gather(
        store.get_alert(alert_id),
        store.get_plp(plp_id),
        store.get_members(member_ids),
        store.get_relay(alert_id, plp_id),
    )
    if alert is None or plp is None:
        log.error("send.batch_orphaned", alert_id=alert_id, plp_id=plp_id)
        await dispatches.take_over(using.redis, rt.keys, job_id, {})
        return {}
    ctx = BatchContext(
        store,
        alert=alert,
        plp=plp,
        relay=relay,
        members={m.id: m for m in found if m is not None},
        channels=using.channels,
        links=rt.links,
        settings=rt.settings,
        askers=using.askers,
        calls=using.calls,
    )
    if refs:
        ctx.lead_with(refs[0])
    async with _holding(ctx, refs, job_id), admitted or contextlib.nullcontext():
        outcomes = await asyncio.gather(*(deliver(ctx, ref) for ref in refs))
    tally: dict[str, int] = {}
    for outcome in outcomes:
        tally[outcome] = tally.get(outcome, 0) + 1
    log.info("send.batch_done", alert_id=alert_id, plp_id=plp_id, **tally)
    return tally


@contextlib.asynccontextmanager
async def _holding(ctx: BatchContext, refs: list[str], job_id: str | None) -> AsyncIterator[None]:
    """Hold the batch's deliveries, and renew the holds and the leases of those not done, until it ends.

    A hold says "a live worker will send this": taken over from the job's record as the batch
    starts, and renewed while the worker lives, even while the batch waits for its turn to run.
    If it runs out, the worker died, and the clock dispatches the delivery again. A lease says
    "this batch is sending this now"; the claim script refuses a delivery whose lease runs.
    """
    lease, redis, keys = ctx.settings.lease_seconds, ctx.store.redis, ctx.keys
    ctx.held = set(refs)
    await dispatches.take_over(redis, keys, job_id, {ctx.leased(r): now_ts() + lease for r in refs})

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease / 3)  # a heartbeat, not a wait for an event
            until = now_ts() + lease
            if ctx.held:
                await redis.zadd(keys.holds(), {ctx.leased(r): until for r in ctx.held}, xx=True, gt=True)
            if ctx.in_flight:
                await redis.zadd(keys.leases(), {ctx.leased(r): until for r in ctx.in_flight}, xx=True, gt=True)

    heartbeat = asyncio.create_task(renew())
    try:
        yield
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await redis.zrem(keys.holds(), *(ctx.leased(r) for r in refs))


async def deliver(ctx: BatchContext, ref: str) -> str:
    """Send one delivery when the provider's turn comes, if it may still go; return the status it is left
    in (or "waiting" for a retry).

    The claim script checks the alert (cancelled? past its time-to-live?) and the member (opted
    out?) twice: before the delivery waits for its turn, so that a stopped one costs no turn; and
    once the turn has come, at the last moment, where it hands the send over atomically. A send
    thus never leaves after the cancel, the opt-out or the TTL it waited through.
    """
    channel_name, member_id = ref.split(":", 1)
    channel = ChannelName(channel_name)
    bound = log.bind(alert_id=ctx.alert.id, delivery_id=delivery_id(ctx.alert.id, ref), channel=channel_name)
    member = ctx.members.get(member_id)
    address = member.address_for(channel) if member is not None else None
    leading = ref == ctx.leader
    try:
        if not leading:
            await ctx.led.wait()
        async with ctx.slots[channel]:
            ready = await _claim(ctx, ref, member_id, mode=READY)
            if ready != READY:
                bound.debug("send.not_claimed", status=ready)
                if ready == DeliveryStatus.SENDING:  # another batch's: its lease holds it, not this hold
                    await ctx.store.redis.zrem(ctx.keys.holds(), ctx.leased(ref))
                return ready
            limits = limits_for(ctx.settings, channel, address) if address is not None else []
            group = (ctx.alert.id, *(limit.name for limit in limits))
            asking = ctx.askers.one_at_a_time(group)
            await ctx.limits.wait_turn(
                limits, urgent=ctx.urgent, asking=asking, waiting=ctx.led.set if leading else None
            )
            # Composed before the claim: what follows the claim, which departs, is only the request.
            message = _compose(ctx, member, channel)
            claimed, departure = await _claim_to_depart(ctx, ref, member_id, limits)
            ctx.led.set()
            if claimed != CLAIMED:
                bound.debug("send.not_claimed", status=claimed)
                if claimed == DeliveryStatus.SENDING:  # another batch's: its lease holds it, not this hold
                    await ctx.store.redis.zrem(ctx.keys.holds(), ctx.leased(ref))
                return claimed
            ctx.in_flight.add(ref)
            if member is None or message is None:
                return await _record(ctx, ref, DeliveryStatus.FAILED, error=NO_CONTACT)
            if departure is None:
                return await _attempt(ctx, ref, channel, member, message, bound)
            message = dataclasses.replace(message, slot=departure)
            with departing(lambda: ctx.limits.depart(shared_rate(limits))):
                return await _attempt(ctx, ref, channel, member, message, bound)
    finally:
        if leading:
            ctx.led.set()
        ctx.held.discard(ref)
        ctx.in_flight.discard(ref)


def _compose(ctx: BatchContext, member: Member | None, channel: ChannelName) -> OutboundMessage | None:
    if member is None:
        return None
    return compose(alert=ctx.alert, plp=ctx.plp, relay=ctx.relay, member=member, channel=channel, links=ctx.links)


async def _claim_to_depart(ctx: BatchContext, ref: str, member_id: str, limits: list[Limit]) -> tuple[str, int | None]:
    """Claim the send at the moment it may depart under its limits: the claim script checks cancel, opt-out
    and TTL, and departs, in one step; while a late neighbour holds the limit back, it says how long to wait.
    Returns the script's answer and the departure's number (under the first limit; None without limits)."""
    while True:
        answer = await _claim(ctx, ref, member_id, mode=CLAIMED, limits=limits)
        kind, _, value = answer.partition(":")
        if kind == DEPART_IN:
            await asyncio.sleep(int(value) / 1_000_000)
        elif kind == CLAIMED:
            return CLAIMED, int(value) if value else None
        else:
            return answer, None


async def _claim(ctx: BatchContext, ref: str, member_id: str, *, mode: str, limits: list[Limit] | None = None) -> str:
    """Run the claim script: ``READY`` checks only, ``CLAIMED`` hands the send over and departs under
    ``limits`` (see ``dispatcher.storage.scripts``)."""
    now = now_ts()
    meters = limits or []
    answer = await ctx.calls(
        ctx.store.scripts.claim,
        keys=[*ctx.delivery_keys(ref), ctx.keys.optouts(), *(ctx.keys.departures(limit.name) for limit in meters)],
        args=[
            ctx.alert.id,
            ref,
            ref.split(":", 1)[0],
            member_id,
            now,
            now + ctx.settings.lease_seconds,
            "check" if mode == READY else "go",
            now + ctx.settings.provider_timeout + HANDED_MARGIN,
            *(limit.interval_us for limit in meters),
        ],
    )
    return str(answer)


async def _attempt(
    ctx: BatchContext,
    ref: str,
    channel: ChannelName,
    member: Member,
    message: OutboundMessage,
    bound: structlog.BoundLogger,
) -> str:
    provider = ctx.channels[channel]
    started = time.perf_counter()
    try:
        receipt = await provider.send(message)
    except Exception as exc:  # counted with the provider's time; what it means is decided below
        attempt = SendAttempt.of(provider, SendOutcome.of(exc), time.perf_counter() - started)
        return await _failed_attempt(ctx, ref, member, channel, exc, attempt, bound)
    attempt = SendAttempt.of(provider, SendOutcome.OK, time.perf_counter() - started)
    status = DELIVERY_OF_RECEIPT[receipt.status]
    if vendor(channel).takes_replies:  # a reply there carries no reference: it is matched to the last message
        await ctx.store.remember_last_delivery(member.id, channel, message.delivery_id, ttl=ctx.reply_window)
    return await _record(ctx, ref, status, provider_id=receipt.provider_id, attempt=attempt)


async def _failed_attempt(
    ctx: BatchContext,
    ref: str,
    member: Member,
    channel: ChannelName,
    exc: Exception,
    attempt: SendAttempt,
    bound: structlog.BoundLogger,
) -> str:
    """What a channel's error means for the delivery: fail it, retry it later, or try the next channel."""
    if isinstance(exc, PermanentError):
        bound.warning("send.permanent_failure", reason=exc.reason)
        await ctx.store.mark_unusable(member.id, channel, exc.reason)
        return await _fail(ctx, ref, member, channel, exc.reason, attempt=attempt)
    if isinstance(exc, TransientError):
        return await _retry_or_fail(ctx, ref, member, channel, exc, bound, attempt=attempt)
    if isinstance(exc, ChannelError):  # not configured: no retry will help
        bound.error("send.not_configured", error=str(exc))
        return await _fail(ctx, ref, member, channel, str(exc), attempt=attempt)
    # a defect in a channel must not leave the delivery in "sending"
    bound.error("send.crashed", exc_info=exc)
    return await _fail(ctx, ref, member, channel, f"internal error: {type(exc).__name__}", attempt=attempt)


async def _retry_or_fail(
    ctx: BatchContext,
    ref: str,
    member: Member,
    channel: ChannelName,
    exc: TransientError,
    bound: structlog.BoundLogger,
    *,
    attempt: SendAttempt,
) -> str:
    failures = int(await ctx.store.redis.hget(ctx.keys.delivery(ctx.alert.id, ref), "failures") or 0)
    reported = ctx.channels[channel].reports_delivery
    decision = ctx.policy.decide(exc, failures=failures, now=now_ts(), expires_at=ctx.expires_at, reported=reported)
    bound.warning("send.transient_failure", error=str(exc), verdict=decision.verdict.value, failures=failures)
    if decision.verdict is Verdict.TOO_LATE:
        cause = "time-to-live passed while retrying"
        return await _record(ctx, ref, DeliveryStatus.EXPIRED, error=str(exc), cause=cause, attempt=attempt)
    if decision.verdict is Verdict.GIVE_UP:
        return await _fail(ctx, ref, member, channel, f"gave up after {failures + 1} attempts: {exc}", attempt=attempt)
    await ctx.store.scripts.retry(
        keys=ctx.delivery_keys(ref),
        args=[
            ctx.alert.id,
            ref,
            decision.at,
            str(exc),
            "1" if decision.counts else "0",
            "1" if exc.may_have_sent else "0",
            channel.value,
            *attempt.script_args(),
        ],
    )
    return "waiting"


async def _fail(
    ctx: BatchContext, ref: str, member: Member, channel: ChannelName, error: str, *, attempt: SendAttempt | None = None
) -> str:
    """Fail the delivery; for a "first that works" plan, queue the member's next channel first."""
    plan = ctx.plp.charter.plan_of(ctx.alert.message_class)
    if plan.mode is DeliveryMode.FIRST_THAT_WORKS:
        order = member.preferred(plan.channels)
        remaining = order[order.index(channel) + 1 :] if channel in order else []
        usable = [c for c in remaining if c in member.channels and c not in member.unusable and member.address_for(c)]
        if usable:
            # Added before the failure is recorded, so that the alert cannot complete in between.
            await ctx.store.scripts.add_delivery(
                keys=[
                    ctx.keys.alert_counts(ctx.alert.id),
                    ctx.keys.alert_deliveries(ctx.alert.id),
                    ctx.keys.delivery(ctx.alert.id, ""),
                    ctx.keys.alert_deliveries_in(ctx.alert.id, ""),
                    ctx.keys.leases(),
                ],
                args=[ctx.alert.id, member.id, usable[0].value, ctx.plp.id, now_ts()],
            )
            log.info("send.fallback", alert_id=ctx.alert.id, member_id=member.id, to=usable[0].value)
    return await _record(ctx, ref, DeliveryStatus.FAILED, error=error, attempt=attempt)


async def _record(
    ctx: BatchContext,
    ref: str,
    status: DeliveryStatus,
    *,
    provider_id: str = "",
    error: str = "",
    cause: str = "",
    attempt: SendAttempt | None = None,
) -> str:
    """Move the delivery to ``status``; the provider call that led there, if any, is counted by the same script."""
    channel = ref.split(":", 1)[0]
    counted = attempt.script_args() if attempt is not None else []
    result = await ctx.calls(
        ctx.store.scripts.record,
        keys=ctx.delivery_keys(ref),
        args=[ctx.alert.id, ref, channel, status.value, now_ts(), provider_id, error, cause, *counted],
    )
    return str(result)
