"""Which class serves each channel: the vendor's when configured, else the outbox where allowed (any channel in
development, those of PLP_OUTBOX_CHANNELS in production), else one that refuses every send; said at start-up."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from channels import (
    REGISTRY,
    NotConfigured,
    UnconfiguredChannel,
    announce_channels,
    build_channels,
    describe_channels,
    missing_variables,
    unsendable,
)
from channels.base import VendorChannel
from channels.email import SmtpChannel
from channels.outbox import OutboxChannel
from channels.telegram import TelegramChannel
from channels.twilio import TwilioSmsChannel, TwilioVoiceChannel
from channels.whatsapp import WhatsAppChannel
from config import Environment, Settings
from config.settings import CHANNEL_NAMES
from dispatcher.core.models import ChannelName
from tests.channels.test_outbox import message


async def test_without_credentials_every_channel_is_the_outbox_and_the_service_says_so() -> None:
    """No credentials: the outbox stands in for each channel, and start-up names what would enable it."""
    settings = Settings()
    channels = build_channels(settings)
    assert {type(c) for c in channels.values()} == {OutboxChannel}
    with capture_logs() as events:
        announce_channels(settings)
    fallbacks = {e["channel"]: e["to_enable"] for e in events if e["event"] == "channel.outbox_fallback"}
    assert set(fallbacks) == {"sms", "voice", "email", "telegram", "whatsapp"}
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
        whatsapp_token="wa",
        whatsapp_phone_id="1001",
    )
    channels = build_channels(settings)
    expected = {
        ChannelName.SMS: TwilioSmsChannel,
        ChannelName.VOICE: TwilioVoiceChannel,
        ChannelName.EMAIL: SmtpChannel,
        ChannelName.TELEGRAM: TelegramChannel,
        ChannelName("whatsapp"): WhatsAppChannel,
    }
    assert {name: type(c) for name, c in channels.items()} == expected
    assert describe_channels(settings) == {name.value: cls.__name__ for name, cls in expected.items()}
    with capture_logs() as events:
        announce_channels(settings)
    assert events == []
    for channel in channels.values():
        await channel.close()


def test_only_twilio_and_whatsapp_report_each_messages_fate() -> None:
    """Twilio calls back with each message's and call's fate, and WhatsApp's webhook with each message's, so a
    send in doubt waits for that report; SMTP, Telegram and the outbox never report, so waiting for one would
    avoid nothing."""
    reporting = {cls.__name__: cls.reports_delivery for cls in (*REGISTRY.values(), OutboxChannel)}
    assert reporting == {
        "TwilioSmsChannel": True,
        "TwilioVoiceChannel": True,
        "SmtpChannel": False,
        "TelegramChannel": False,
        "WhatsAppChannel": True,
        "OutboxChannel": False,
    }


def test_the_settings_know_every_channel_name() -> None:
    """PLP_OUTBOX_CHANNELS accepts exactly the channels a charter may name."""
    assert set(CHANNEL_NAMES) == {c.value for c in ChannelName}


async def test_in_production_the_outbox_stands_in_only_for_the_channels_allowed() -> None:
    """In production without credentials, PLP_OUTBOX_CHANNELS's channels get the outbox; the others refuse each
    send as not configured, naming the variables to set, and start-up says so."""
    settings = Settings(environment=Environment.PRODUCTION, outbox_channels=("email",))
    channels = build_channels(settings)
    assert {name: type(c) for name, c in channels.items()} == {
        ChannelName.SMS: UnconfiguredChannel,
        ChannelName.VOICE: UnconfiguredChannel,
        ChannelName.EMAIL: OutboxChannel,
        ChannelName.TELEGRAM: UnconfiguredChannel,
        ChannelName("whatsapp"): UnconfiguredChannel,
    }
    assert set(unsendable(settings)) == {
        ChannelName.SMS,
        ChannelName.VOICE,
        ChannelName.TELEGRAM,
        ChannelName("whatsapp"),
    }
    with pytest.raises(NotConfigured, match="sms is not configured here: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"):
        await channels[ChannelName.SMS].send(message())
    with capture_logs() as events:
        announce_channels(settings)
    unconfigured = {e["channel"]: e["to_enable"] for e in events if e["event"] == "channel.unconfigured"}
    assert set(unconfigured) == {"sms", "voice", "telegram", "whatsapp"}
    assert "PLP_OUTBOX_CHANNELS=telegram" in unconfigured["telegram"]
    for channel in channels.values():
        await channel.close()


def test_in_development_no_channel_is_unsendable() -> None:
    """In development the outbox stands in for every channel without credentials."""
    assert unsendable(Settings(environment=Environment.DEVELOPMENT)) == {}


@pytest.mark.parametrize(
    ("given", "channel", "missing"),
    [
        ({}, ChannelName.SMS, ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                               "TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID"]),
        ({"twilio_account_sid": "AC1", "twilio_auth_token": "t"}, ChannelName.VOICE, ["TWILIO_VOICE_FROM"]),
        ({"twilio_account_sid": "AC1", "twilio_messaging_service_sid": "MG1"}, ChannelName.SMS,
         ["TWILIO_AUTH_TOKEN"]),
        ({"smtp_host": "mail.example"}, ChannelName.EMAIL, ["SMTP_FROM"]),
        ({}, ChannelName.TELEGRAM, ["TELEGRAM_BOT_TOKEN"]),
        ({"telegram_bot_token": "1:a"}, ChannelName.TELEGRAM, []),
    ],
)  # fmt: skip
def test_what_a_channel_misses_is_exactly_what_its_vendor_needs(
    given: dict[str, object], channel: ChannelName, missing: list[str]
) -> None:
    """The variables named as missing are those still unset, and none are missing once the vendor is configured."""
    settings = Settings(**given)  # type: ignore[arg-type]
    assert missing_variables(settings, channel) == missing
    assert REGISTRY[channel].configured(settings) is (missing == [])


@pytest.mark.parametrize("cls", [TwilioSmsChannel, TwilioVoiceChannel, SmtpChannel, TelegramChannel])
def test_a_vendor_built_without_its_settings_says_what_to_set_in_the_registrys_words(cls: type[VendorChannel]) -> None:
    """What a vendor needs is said once, by its class: building it without raises NotConfigured naming the same
    variables the registry names when the outbox stands in for it."""
    settings = Settings()
    with pytest.raises(NotConfigured) as refused:
        cls.from_settings(settings)
    missing = missing_variables(settings, ChannelName(cls.name))
    assert missing and str(refused.value) == f"{cls.name} is not configured: set {', '.join(missing)}"
