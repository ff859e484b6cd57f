"""The ways members are reached: one module per vendor, all behind the ``Channel`` protocol.

``REGISTRY`` maps each channel name to the class that serves it. A channel with no
credentials in this deployment is served by the outbox where that is allowed (in development,
any; in production, those of ``PLP_OUTBOX_CHANNELS``), which the service says at start-up
(``announce_channels``); elsewhere it is ``unsendable``: a charter may not name it, and a send
on it fails as not configured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

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
from config.settings import environment_variable
from dispatcher.core.models import ChannelName

log = structlog.get_logger(__name__)

#: Channel name -> the vendor class that sends it, when the settings hold its credentials.
REGISTRY: dict[ChannelName, type[VendorChannel]] = {
    ChannelName.SMS: TwilioSmsChannel,
    ChannelName.VOICE: TwilioVoiceChannel,
    ChannelName.EMAIL: SmtpChannel,
    ChannelName.TELEGRAM: TelegramChannel,
}

#: What each channel needs, as the settings fields of each requirement (one of them is enough).
REQUIRES: dict[ChannelName, tuple[tuple[str, ...], ...]] = {
    ChannelName.SMS: (
        ("twilio_account_sid",),
        ("twilio_auth_token",),
        ("twilio_sms_from", "twilio_messaging_service_sid"),
    ),
    ChannelName.VOICE: (("twilio_account_sid",), ("twilio_auth_token",), ("twilio_voice_from",)),
    ChannelName.EMAIL: (("smtp_host",), ("smtp_from",)),
    ChannelName.TELEGRAM: (("telegram_bot_token",),),
}


def missing_variables(settings: Settings, channel: ChannelName) -> list[str]:
    """The variables to set for ``channel``'s vendor to be configured (alternatives joined by "or")."""
    return [
        " or ".join(environment_variable(field) for field in fields)
        for fields in REQUIRES[channel]
        if not any(getattr(settings, field) for field in fields)
    ]


def outbox_allowed(settings: Settings, channel: ChannelName) -> bool:
    """Whether the outbox may stand in for ``channel``: any in development, in production only as listed."""
    return not settings.production or channel.value in settings.outbox_channels


def unsendable(settings: Settings) -> dict[ChannelName, str]:
    """The channels nothing can send here (no credentials, no outbox allowed), each with what would enable it."""
    return {
        name: f"set {', '.join(missing_variables(settings, name))}, or allow the outbox with "
        f"PLP_OUTBOX_CHANNELS={name.value}"
        for name, cls in REGISTRY.items()
        if not cls.configured(settings) and not outbox_allowed(settings, name)
    }


class UnconfiguredChannel:
    """Stands for a channel nothing can send here: each send raises ``NotConfigured`` saying what would enable it."""

    max_text_length: ClassVar[int | None] = None
    reports_delivery: ClassVar[bool] = False
    name: ClassVar[str] = "unconfigured"

    def __init__(self, channel: ChannelName, to_enable: str) -> None:
        self.channel, self.to_enable = channel, to_enable

    async def send(self, message: OutboundMessage) -> Receipt:
        raise NotConfigured(f"{self.channel.value} is not configured here: {self.to_enable}")

    async def close(self) -> None:
        pass


def _served_by(settings: Settings, name: ChannelName) -> type[Channel]:
    cls = REGISTRY[name]
    if cls.configured(settings):
        return cls
    return OutboxChannel if outbox_allowed(settings, name) else UnconfiguredChannel


def build_channels(settings: Settings) -> dict[ChannelName, Channel]:
    """One channel per name: the vendor's when configured, else the outbox where allowed, else one that refuses."""
    channels: dict[ChannelName, Channel] = {}
    missing = unsendable(settings)
    for name in REGISTRY:
        served = _served_by(settings, name)
        if served is OutboxChannel:
            channels[name] = OutboxChannel(name.value, path=settings.outbox_file, latency_ms=settings.outbox_latency_ms)
        elif served is UnconfiguredChannel:
            channels[name] = UnconfiguredChannel(name, missing[name])
        else:
            channels[name] = REGISTRY[name].from_settings(settings)
    return channels


def describe_channels(settings: Settings) -> dict[str, str]:
    """Which class serves each channel here, for the start-up log and the readiness endpoint."""
    return {name.value: _served_by(settings, name).__name__ for name in REGISTRY}


def announce_channels(settings: Settings) -> None:
    """Say at start-up which channels the outbox stands in for, which nothing can send, and what would enable them."""
    missing = unsendable(settings)
    for name, cls in REGISTRY.items():
        if name in missing:
            log.warning("channel.unconfigured", channel=name.value, to_enable=missing[name])
        elif not cls.configured(settings):
            to_enable = f"set {', '.join(missing_variables(settings, name))}"
            log.warning("channel.outbox_fallback", channel=name.value, to_enable=to_enable)


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
    "UnconfiguredChannel",
    "announce_channels",
    "build_channels",
    "describe_channels",
    "missing_variables",
    "open_channels",
    "outbox_allowed",
    "unsendable",
]
