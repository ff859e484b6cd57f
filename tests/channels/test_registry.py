"""Which class serves each channel: the vendor's when configured, else the outbox, said at start-up."""

from __future__ import annotations

from structlog.testing import capture_logs

from channels import REGISTRY, announce_channels, build_channels, describe_channels
from channels.email import SmtpChannel
from channels.outbox import OutboxChannel
from channels.telegram import TelegramChannel
from channels.twilio import TwilioSmsChannel, TwilioVoiceChannel
from config import Settings
from dispatcher.models import ChannelName


async def test_without_credentials_every_channel_is_the_outbox_and_the_service_says_so() -> None:
    """No credentials: the outbox stands in for each channel, and start-up names what would enable it."""
    settings = Settings()
    channels = build_channels(settings)
    assert {type(c) for c in channels.values()} == {OutboxChannel}
    with capture_logs() as events:
        announce_channels(settings)
    fallbacks = {e["channel"]: e["to_enable"] for e in events if e["event"] == "channel.outbox_fallback"}
    assert set(fallbacks) == {"sms", "voice", "email", "telegram"}
    assert "TWILIO_AUTH_TOKEN" in fallbacks["sms"] and "SMTP_HOST" in fallbacks["email"]
    for channel in channels.values():
        await channel.close()


async def test_configured_vendors_serve_their_channels() -> None:
    """With credentials, each channel is its vendor's class."""
    settings = Settings(
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token="t",
        twilio_sms_from=("+3225550001",),
        twilio_voice_from="+3225550002",
        smtp_host="127.0.0.1",
        smtp_from="alerts@plp.example",
        telegram_bot_token="1:abc",
    )
    channels = build_channels(settings)
    expected = {
        ChannelName.SMS: TwilioSmsChannel,
        ChannelName.VOICE: TwilioVoiceChannel,
        ChannelName.EMAIL: SmtpChannel,
        ChannelName.TELEGRAM: TelegramChannel,
    }
    assert {name: type(c) for name, c in channels.items()} == expected
    assert describe_channels(settings) == {name.value: cls.__name__ for name, cls in expected.items()}
    with capture_logs() as events:
        announce_channels(settings)
    assert events == []
    for channel in channels.values():
        await channel.close()


def test_only_twilios_channels_report_each_messages_fate() -> None:
    """Twilio calls back with each message's and call's fate, so a send in doubt waits for that report; SMTP,
    Telegram and the outbox never report, so waiting for one would avoid nothing."""
    reporting = {cls.__name__: cls.reports_delivery for cls in (*REGISTRY.values(), OutboxChannel)}
    assert reporting == {
        "TwilioSmsChannel": True,
        "TwilioVoiceChannel": True,
        "SmtpChannel": False,
        "TelegramChannel": False,
        "OutboxChannel": False,
    }
