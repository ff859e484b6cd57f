"""The provider limits a send must keep: its channel's rates, as its vendor class declares them.

Every rate is set ``PLP_LIMIT_MARGIN`` below the provider's (see ``dispatcher.storage.limits``,
which keeps the meters). A channel whose vendor is not configured is served by the outbox: no limits.
"""

from __future__ import annotations

from channels import rates_for
from config import Settings
from dispatcher.core.models import ChannelName
from dispatcher.storage.limits import Limit


def limits_for(settings: Settings, channel: ChannelName, address: str) -> list[Limit]:
    """The limits a send over ``channel`` to ``address`` must respect, the margin below each provider rate.

    SMS: one account-wide limit, the per-sender rate times the senders; voice: one per account;
    Telegram: the bot's and the chat's (``address`` is the chat id); e-mail: the relay's
    (``channels.base.VendorChannel.rates`` of each).
    """
    below = 1 - settings.limit_margin
    return [Limit(rate.name, rate.per_second * below) for rate in rates_for(settings, channel, address)]


def shared_rate(limits: list[Limit]) -> list[Limit]:
    """The limits a send written late departs again under (``channels.base.departing``): the provider's own rate,
    the first of ``limits`` (a bot's, a business number's, an account's), which a write late by a fraction of its
    interval can break. Not one recipient's (a chat's, a WhatsApp user's): its interval is seconds long, and
    departing again under it would hold the late write back that long."""
    return limits[:1]
