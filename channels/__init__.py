"""The ways members are reached: one module per vendor, all behind the ``Channel`` protocol.

``REGISTRY`` maps each channel name to the class that serves it. A channel with no
credentials in this deployment is served by the outbox, which the service says at
start-up (see ``open_channels``).
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
)
from channels.outbox import OutboxChannel
from config import Settings
from dispatcher.models import ChannelName

log = structlog.get_logger(__name__)

#: Channel name -> the class that sends it. The vendor channels join in as they are built.
REGISTRY: dict[ChannelName, type[OutboxChannel]] = {name: OutboxChannel for name in ChannelName}


def build_channels(settings: Settings) -> dict[ChannelName, Channel]:
    """One channel instance per channel name, as this deployment is configured."""
    return {
        name: cls(name.value, path=settings.outbox_file, latency_ms=settings.outbox_latency_ms)
        for name, cls in REGISTRY.items()
    }


def describe_channels(settings: Settings) -> dict[str, str]:
    """Which class serves each channel here, for the start-up log and the health endpoint."""
    return {name.value: cls.__name__ for name, cls in REGISTRY.items()}


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
    "build_channels",
    "describe_channels",
    "open_channels",
]
