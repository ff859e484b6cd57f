"""Telegram: chat messages from one bot, through the Bot API, and the updates it receives.

- ``bot``: the channel (``TelegramChannel``), the Bot API's errors translated into the channel
  errors, the bot's and each chat's rates, the deep links that open the bot, the filter that
  keeps the bot token out of the library's logs;
- ``transport``: python-telegram-bot's HTTP layer on aiohttp (``AiohttpRequest``), which the channel
  sends through in place of PTB's default on httpx;
- ``inbound``: the webhook (the bot's updates), its secret-header check, messages, ``/start``
  links and the "received" button in the dispatcher's words, answered with Bot API methods.

Configured by ``TELEGRAM_BOT_TOKEN`` (the channel's ``requires``); the webhook needs
``TELEGRAM_WEBHOOK_SECRET`` (``plp telegram-webhook`` registers it), the members' links
``TELEGRAM_BOT_USERNAME``; ``TELEGRAM_API_BASE_URL`` and the ``PLP_LIMIT_TELEGRAM_*`` rates are optional.
"""

from channels.telegram.bot import (
    MAX_TEXT_LENGTH,
    POOL_SIZE,
    HideBotToken,
    TelegramChannel,
    deep_link,
    hide_tokens_in_library_logs,
    translate,
)
from channels.telegram.inbound import TelegramInbound

__all__ = [
    "MAX_TEXT_LENGTH",
    "POOL_SIZE",
    "HideBotToken",
    "TelegramChannel",
    "TelegramInbound",
    "deep_link",
    "hide_tokens_in_library_logs",
    "translate",
]
