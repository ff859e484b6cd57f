"""The ways members are reached: one module per vendor, all behind the ``Channel`` protocol.

``REGISTRY`` maps each channel name to the class that serves it. A channel with no
credentials in this deployment is served by the outbox, which the service says at
start-up (``announce_channels``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from channels.base import (
    Channel,
    ChannelError,
    NotConfigured,
    OutboundMessage,
    PermanentError,
    RateLimited,
    Receipt,
    ReceiptStatus,
    TransientError,
    VendorChannel,
)
from channels.email import SmtpChannel
from channels.outbox import OutboxChannel
from channels.telegram import TelegramChannel
from channels.twilio import TwilioSmsChannel, TwilioVoiceChannel
from config import Settings
from dispatcher.models import ChannelName

log = structlog.get_logger(__name__)

#: Channel name -> the vendor class that sends it, when the settings hold its credentials.
REGISTRY: dict[ChannelName, type[VendorChannel]] = {
    ChannelName.SMS: TwilioSmsChannel,
    ChannelName.VOICE: TwilioVoiceChannel,
    ChannelName.EMAIL: SmtpChannel,
    ChannelName.TELEGRAM: TelegramChannel,
}

#: What each channel needs, for the message saying why it falls back to the outbox.
NEEDS: dict[ChannelName, str] = {
    ChannelName.SMS: "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_SMS_FROM (or TWILIO_MESSAGING_SERVICE_SID)",
    ChannelName.VOICE: "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_VOICE_FROM",
    ChannelName.EMAIL: "SMTP_HOST and SMTP_FROM",
    ChannelName.TELEGRAM: "TELEGRAM_BOT_TOKEN",
}


def build_channels(settings: Settings) -> dict[ChannelName, Channel]:
    """One channel per name: the vendor's when configured, else the outbox standing in for it."""
    channels: dict[ChannelName, Channel] = {}
    for name, cls in REGISTRY.items():
        if cls.configured(settings):
            channels[name] = cls.from_settings(settings)
        else:
            channels[name] = OutboxChannel(name.value, path=settings.outbox_file, latency_ms=settings.outbox_latency_ms)
    return channels


def describe_channels(settings: Settings) -> dict[str, str]:
    """Which class serves each channel here, for the start-up log and the readiness endpoint."""
    served = {name: cls if cls.configured(settings) else OutboxChannel for name, cls in REGISTRY.items()}
    return {name.value: cls.__name__ for name, cls in served.items()}


def announce_channels(settings: Settings) -> None:
    """Say at start-up which channels fall back to the outbox, and what would enable them."""
    for name, cls in REGISTRY.items():
        if not cls.configured(settings):
            log.warning("channel.outbox_fallback", channel=name.value, to_enable=f"set {NEEDS[name]}")


@asynccontextmanager
async def open_channels(settings: Settings) -> AsyncIterator[dict[ChannelName, Channel]]:
    """The channels for one unit of work, closed when it ends."""
    channels = build_channels(settings)
    try:
        yield channels
    finally:
        for channel in channels.values():
            await channel.close()


__all__ = [
    "REGISTRY",
    "Channel",
    "ChannelError",
    "NotConfigured",
    "OutboundMessage",
    "PermanentError",
    "RateLimited",
    "Receipt",
    "ReceiptStatus",
    "TransientError",
    "announce_channels",
    "build_channels",
    "describe_channels",
    "open_channels",
]
