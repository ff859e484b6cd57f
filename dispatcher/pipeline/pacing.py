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
