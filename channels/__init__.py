"""The ways members are reached: one package per vendor, all behind the ``Channel`` protocol.

Each vendor has its room: ``twilio`` (SMS and calls), ``email`` (SMTP), ``telegram`` (a bot),
and ``outbox`` (a local file that stands in for a vendor without credentials). A room holds
everything about its vendor: sending, its errors, its wire formats, the settings it needs, its
rates, its webhooks (parsing, signature checks, answers) and its provider's name.

The dispatcher and the API see only what is common to them: ``channels.base`` (the ``Channel``
protocol, what a vendor class declares, the error tree), ``channels.inbound`` (the webhooks'
events) and ``channels.registry`` (which class serves each channel), re-exported here.
"""

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
    departing,
)
from channels.registry import (
    REGISTRY,
    VENDORS,
    UnconfiguredChannel,
    announce_channels,
    build_channels,
    describe_channels,
    inbound_vendors,
    missing_variables,
    open_channels,
    outbox_allowed,
    rates_for,
    register,
    unregister,
    unsendable,
    vendor,
)

__all__ = [
    "REGISTRY",
    "VENDORS",
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
    "VendorChannel",
    "announce_channels",
    "build_channels",
    "departing",
    "describe_channels",
    "inbound_vendors",
    "missing_variables",
    "open_channels",
    "outbox_allowed",
    "rates_for",
    "register",
    "unregister",
    "unsendable",
    "vendor",
]
