"""Which class serves each channel: the registry of vendor channels, and what stands in for one.

``VENDORS`` lists the vendor channel classes, one line each, and ``REGISTRY`` maps each channel
name to its class. A new vendor is a package under ``channels/`` and one line in ``VENDORS``
(with its settings in ``config``): the dispatcher, the API's webhooks, the metrics and the
provider limits read everything else from the class (``channels.base.VendorChannel``).
``register`` adds a class at run time, as the list does at import (a channel under test).

A channel with no credentials in this deployment is served by the outbox where that is allowed
(in development, any; in production, those of ``PLP_OUTBOX_CHANNELS``), which the service says at
start-up (``announce_channels``); elsewhere it is ``unsendable``: a charter may not name it, and a
send on it fails as not configured, in the words of what its class ``requires``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

import structlog

from channels.base import Channel, NotConfigured, OutboundMessage, Rate, Receipt, VendorChannel
from channels.email import SmtpChannel
from channels.inbound import Inbound
from channels.outbox import OutboxChannel
from channels.telegram import TelegramChannel
from channels.twilio import TwilioSmsChannel, TwilioVoiceChannel
from channels.whatsapp import WhatsAppChannel
from config import Settings
from dispatcher.core.models import ChannelName

log = structlog.get_logger(__name__)

#: The vendor channels of the service, one line each, in the order the service lists them.
VENDORS: tuple[type[VendorChannel], ...] = (
    TwilioSmsChannel,
    TwilioVoiceChannel,
    SmtpChannel,
    TelegramChannel,
    WhatsAppChannel,
)

#: Channel name -> the vendor class that sends it, when the settings hold its credentials.
REGISTRY: dict[ChannelName, type[VendorChannel]] = {}


def register(cls: type[VendorChannel]) -> ChannelName:
    """Serve ``cls.name`` with ``cls`` (defining the name if new); raises ``ValueError`` if another class serves it."""
    name = ChannelName.define(cls.name, contact=cls.contact)
    if REGISTRY.setdefault(name, cls) is not cls:
        raise ValueError(f"channel {name.value!r} is served by {REGISTRY[name].__name__} already")
    return name


def unregister(name: ChannelName) -> None:
    """Serve ``name`` no more; a name a vendor brought is then no channel name at all."""
    REGISTRY.pop(name, None)
    ChannelName.forget(name.value)


for _vendor in VENDORS:
    register(_vendor)


def vendor(channel: ChannelName) -> type[VendorChannel]:
    """The vendor class of a channel, whether or not it is configured here. Raises ``KeyError``."""
    return REGISTRY[channel]


def inbound_vendors() -> list[type[Inbound]]:
    """The vendors' webhooks, each once (a vendor may serve several channels), in the registry's order."""
    found: list[type[Inbound]] = []
    for cls in REGISTRY.values():
        if cls.inbound is not None and cls.inbound not in found:
            found.append(cls.inbound)
    return found


def rates_for(settings: Settings, channel: ChannelName, address: str) -> list[Rate]:
    """The provider's rates a send over ``channel`` to ``address`` must keep: none when the outbox serves it."""
    cls = REGISTRY[channel]
    return cls.rates(settings, address) if cls.configured(settings) else []


def missing_variables(settings: Settings, channel: ChannelName) -> list[str]:
    """The variables to set for ``channel``'s vendor to be configured (alternatives joined by "or")."""
    return REGISTRY[channel].missing(settings)


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
    provider: ClassVar[str] = "unconfiguredchannel"  # the metrics' label, as it has always been

    def __init__(self, channel: ChannelName, to_enable: str) -> None:
        self.channel, self.to_enable = channel, to_enable

    async def prepare(self) -> None:
        pass

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
        await asyncio.gather(*(channel.prepare() for channel in channels.values()))
        yield channels
    finally:
        for channel in channels.values():
            await channel.close()
