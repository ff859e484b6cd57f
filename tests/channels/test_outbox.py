"""The outbox channel: delivers into a local file, one JSON line per message, personal data masked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels import REGISTRY, Channel, ReceiptStatus, build_channels, open_channels
from channels.base import OutboundMessage, Receipt
from channels.outbox import OutboxChannel
from config import Settings
from dispatcher.core.models import ChannelName, Language, Urgency

PHONE, EMAIL = "+32470123456", "ann.peeters@example.org"


def message(*, channel: ChannelName = ChannelName.SMS, address: str = PHONE, n: int = 1) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=f"a1:{channel.value}:m{n}",
        alert_id="a1",
        member_id=f"m{n}",
        channel=channel,
        address=address,
        language=Language.NL,
        urgency=Urgency.URGENT,
        subject="[PLP Flagey] DRINGEND: inbraak",
        text="Inbraak in de Baljuwstraat",
    )


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[OutboxChannel]:
    channel = OutboxChannel("sms", path=tmp_path / "out" / "outbox.jsonl")
    yield channel
    await channel.close()


def lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_send_returns_an_outbox_receipt_never_a_delivered_one(outbox: OutboxChannel) -> None:
    """Sending answers a receipt saying the message was kept in the outbox (it reached nobody, so it is not
    delivered), with the outbox's id for it."""
    receipt = await outbox.send(message())
    assert receipt == Receipt(provider_id="outbox-a1:sms:m1", status=ReceiptStatus.OUTBOX)


async def test_each_send_appends_one_line(outbox: OutboxChannel, tmp_path: Path) -> None:
    """Each message becomes one JSON line, appended, the folder created on first use."""
    await outbox.send(message(n=1))
    await outbox.send(message(channel=ChannelName.EMAIL, address=EMAIL, n=2))
    written = lines(tmp_path / "out" / "outbox.jsonl")
    assert [(w["delivery_id"], w["channel"]) for w in written] == [("a1:sms:m1", "sms"), ("a1:email:m2", "email")]
    assert written[0]["text"] == "Inbraak in de Baljuwstraat"
    assert (written[0]["language"], written[0]["urgency"]) == ("nl", "urgent")


async def test_each_line_is_on_disk_as_soon_as_it_is_sent(outbox: OutboxChannel, tmp_path: Path) -> None:
    """A message reported delivered is already readable in the file, before the channel is closed."""
    await outbox.send(message())
    assert len(lines(tmp_path / "out" / "outbox.jsonl")) == 1


async def test_an_existing_outbox_is_appended_to(tmp_path: Path) -> None:
    """Lines already in the outbox (from earlier runs) are kept."""
    path = tmp_path / "outbox.jsonl"
    path.write_text('{"earlier": true}\n', encoding="utf-8")
    channel = OutboxChannel("sms", path=path)
    await channel.send(message())
    await channel.close()
    assert [("earlier" in w) for w in lines(path)] == [True, False]


@pytest.mark.parametrize(("channel", "address"), [(ChannelName.SMS, PHONE), (ChannelName.EMAIL, EMAIL)])
async def test_the_line_holds_a_masked_address(
    outbox: OutboxChannel, tmp_path: Path, channel: ChannelName, address: str
) -> None:
    """The outbox never holds the contact point in clear, only its masked form."""
    await outbox.send(message(channel=channel, address=address))
    text = (tmp_path / "out" / "outbox.jsonl").read_text(encoding="utf-8")
    assert address not in text
    assert "470123456" not in text
    assert "ann.peeters" not in text
    assert lines(tmp_path / "out" / "outbox.jsonl")[0]["to"] in ("+324******56", "a***@example.org")


def test_outbound_message_repr_hides_the_address() -> None:
    """A message's repr (as a log line or a traceback would show it) does not contain the address."""
    for address in (PHONE, EMAIL):
        shown = repr(message(address=address))
        assert address not in shown
        assert "a1:sms:m1" in shown


def test_channel_repr_names_the_channel_not_an_address(tmp_path: Path) -> None:
    """A channel's repr says which channel it is and holds no address."""
    shown = repr(OutboxChannel("email", path=tmp_path / "outbox.jsonl"))
    assert "email" in shown
    assert "@" not in shown


async def test_close_is_safe_before_any_send_and_twice(tmp_path: Path) -> None:
    """Closing a channel that never sent, or closing it twice, is harmless and creates no file."""
    channel = OutboxChannel("sms", path=tmp_path / "outbox.jsonl")
    await channel.close()
    await channel.close()
    assert not (tmp_path / "outbox.jsonl").exists()


def test_outbox_satisfies_the_channel_protocol(tmp_path: Path) -> None:
    """The outbox declares what every channel declares: a name and its text length limit."""
    channel: Channel = OutboxChannel("sms", path=tmp_path / "outbox.jsonl")
    assert channel.name == "outbox"
    assert channel.max_text_length is None


async def test_without_credentials_every_channel_is_served_by_the_outbox(tmp_path: Path) -> None:
    """In a deployment without vendor credentials, each channel name has an outbox writing to the configured file."""
    settings = Settings(redis_url=None, data_dir=tmp_path)
    assert set(REGISTRY) == set(ChannelName)
    channels = build_channels(settings)
    assert set(channels) == set(ChannelName)
    async with open_channels(settings) as opened:
        await opened[ChannelName.VOICE].send(message(channel=ChannelName.VOICE))
    assert [w["channel"] for w in lines(settings.outbox_file)] == ["voice"]
    assert settings.outbox_file == tmp_path / "outbox.jsonl"
