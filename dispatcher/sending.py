"""Sending one batch of deliveries, concurrently, each claimed before it goes.

A delivery is claimed (queued -> sending) by an atomic script that refuses it if the
alert was cancelled, its time-to-live has passed, or the member opted out, so two
workers never send the same delivery and nothing starts too late or after a stop.
The channel's answer, or its typed error, then moves the delivery forward.
"""

from __future__ import annotations

import asyncio

import structlog

from channels import Channel, ChannelError, PermanentError, ReceiptStatus, open_channels
from dispatcher.compose import compose
from dispatcher.links import Links
from dispatcher.models import Alert, ChannelName, DeliveryStatus, Member, Plp, Relay
from dispatcher.runtime import Runtime
from dispatcher.store import Store, delivery_id, now_ts

log = structlog.get_logger(__name__)

#: What the claim script answers to the one caller that now owns a send.
CLAIMED = "claimed"

#: Channels on which a member's reply carries no reference: it is matched to the last message.
REPLYABLE = frozenset({ChannelName.SMS, ChannelName.TELEGRAM})


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
        concurrency: int,
    ) -> None:
        self.store, self.keys = store, store.keys
        self.alert, self.plp, self.relay = alert, plp, relay
        self.members, self.channels, self.links = members, channels, links
        self.slots = asyncio.Semaphore(concurrency)
        self.reply_window = max(alert.ttl_seconds, 7 * 86400)

    def delivery_keys(self, ref: str) -> list[str]:
        return self.keys.delivery_move(self.alert.id, ref)


async def send_batch(rt: Runtime, alert_id: str, plp_id: str, refs: list[str]) -> dict[str, int]:
    """Send the deliveries ``refs`` of an alert for one PLP; return how many ended in each status."""
    redis = rt.async_redis()
    try:
        store = Store(redis, rt.keys)
        alert, plp = await store.get_alert(alert_id), await store.get_plp(plp_id)
        if alert is None or plp is None:
            log.error("send.batch_orphaned", alert_id=alert_id, plp_id=plp_id)
            return {}
        relay_raw = await redis.hget(rt.keys.alert_relays(alert_id), plp_id)
        member_ids = sorted({ref.split(":", 1)[1] for ref in refs})
        found = await store.get_members(member_ids)
        members = {m.id: m for m in found if m is not None}
        async with open_channels(rt.settings) as channels:
            ctx = BatchContext(
                store,
                alert=alert,
                plp=plp,
                relay=Relay.model_validate_json(relay_raw) if relay_raw else None,
                members=members,
                channels=channels,
                links=rt.links,
                concurrency=rt.settings.send_concurrency,
            )
            outcomes = await asyncio.gather(*(deliver(ctx, ref) for ref in refs))
    finally:
        await redis.aclose()
    tally: dict[str, int] = {}
    for outcome in outcomes:
        tally[outcome] = tally.get(outcome, 0) + 1
    log.info("send.batch_done", alert_id=alert_id, plp_id=plp_id, **tally)
    return tally


async def deliver(ctx: BatchContext, ref: str) -> str:
    """Claim, send and record one delivery; return the status it is left in."""
    channel_name, member_id = ref.split(":", 1)
    bound = log.bind(alert_id=ctx.alert.id, delivery_id=delivery_id(ctx.alert.id, ref), channel=channel_name)
    async with ctx.slots:
        claimed = await ctx.store.scripts.claim(
            keys=[*ctx.delivery_keys(ref), ctx.keys.optouts()],
            args=[ctx.alert.id, ref, channel_name, member_id, now_ts()],
        )
        if claimed != CLAIMED:
            bound.info("send.not_claimed", status=claimed)
            return str(claimed)
        member = ctx.members.get(member_id)
        message = None
        if member is not None:
            channel = ChannelName(channel_name)
            message = compose(
                alert=ctx.alert, plp=ctx.plp, relay=ctx.relay, member=member, channel=channel, links=ctx.links
            )
        if message is None:
            return await _record(ctx, ref, DeliveryStatus.FAILED, error="the member has no such contact point any more")
        try:
            receipt = await ctx.channels[message.channel].send(message)
        except PermanentError as exc:
            bound.warning("send.permanent_failure", reason=exc.reason)
            return await _record(ctx, ref, DeliveryStatus.FAILED, error=exc.reason)
        except ChannelError as exc:
            # Retries, backoff and fallback belong to the delivery guarantees (issue #4).
            bound.warning("send.failed", error=str(exc), kind=type(exc).__name__)
            return await _record(ctx, ref, DeliveryStatus.FAILED, error=str(exc))
        except Exception as exc:  # a defect in a channel must not leave the delivery in "sending"
            bound.exception("send.crashed")
            return await _record(ctx, ref, DeliveryStatus.FAILED, error=f"internal error: {type(exc).__name__}")
        status = DeliveryStatus.DELIVERED if receipt.status is ReceiptStatus.DELIVERED else DeliveryStatus.SENT
        bound.debug("send.done", status=status.value)
        if message.channel in REPLYABLE:
            await ctx.store.remember_last_delivery(
                member_id, message.channel, message.delivery_id, ttl=ctx.reply_window
            )
        return await _record(ctx, ref, status, provider_id=receipt.provider_id)


async def _record(
    ctx: BatchContext, ref: str, status: DeliveryStatus, *, provider_id: str = "", error: str = ""
) -> str:
    channel = ref.split(":", 1)[0]
    result = await ctx.store.scripts.record(
        keys=ctx.delivery_keys(ref),
        args=[ctx.alert.id, ref, channel, status.value, now_ts(), provider_id, error, ""],
    )
    return str(result)
