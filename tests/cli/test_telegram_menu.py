"""``plp telegram-webhook``: the bot's webhook and its menu of commands in each language, set through the real
python-telegram-bot client against the Telegram simulator."""

from __future__ import annotations

import asyncio

from dispatcher.core.wording import PROFILE_WORDS, normalise_reply
from tests.cli.conftest import PlpCommand
from tests.simulators.telegram import TelegramSimulator

TOKEN, SECRET = "4242:cli-bot-token", "cli-webhook-secret"


async def test_the_webhook_command_sets_the_bots_menu_in_each_language(plp: PlpCommand) -> None:
    """Each language's menu offers its own word for the member's page, then /stop; users of another language get the
    English menu. Every command of every menu is one the webhook understands."""
    async with TelegramSimulator(token=TOKEN) as telegram:
        env = {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": telegram.base_url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "PLP_PUBLIC_BASE_URL": "https://plp.example.org",
        }
        result = await asyncio.to_thread(plp, "telegram-webhook", **env)
        assert result.exit_code == 0, result.output
        assert telegram.webhook_url == "https://plp.example.org/v1/webhooks/telegram"
        menus = {language: [command for command, _ in menu] for language, menu in telegram.commands.items()}
    assert menus == {
        None: ["profile", "stop"],
        "fr": ["profil", "stop"],
        "nl": ["profiel", "stop"],
        "de": ["profil", "stop"],
        "en": ["profile", "stop"],
    }
    assert dict(telegram.commands["nl"])["profiel"] == "Mijn pagina: mijn gegevens en keuzes"
    assert all(normalise_reply(f"/{c}") in PROFILE_WORDS for menu in menus.values() for c in menu if c != "stop")
    assert "menu" in result.output


def test_without_a_bot_token_the_command_is_a_short_error(plp: PlpCommand) -> None:
    result = plp("telegram-webhook", TELEGRAM_BOT_TOKEN="", TELEGRAM_WEBHOOK_SECRET="")
    assert result.exit_code != 0 and "TELEGRAM_BOT_TOKEN" in result.output
