"""The outbox: a channel that delivers into a local file, so the whole flow runs with no credentials.

It stands in for a vendor channel that has no credentials, where that is allowed (any in
development; in production only those of ``PLP_OUTBOX_CHANNELS``). Its messages reach nobody,
so they end in a status of their own, ``outbox``, never counted as sent or delivered. Each message becomes
one JSON line (delivery, member, masked address, text) in the outbox file, and
one log event. The file is opened once per channel instance and each line is
flushed as written, so a crash loses no line of a message reported kept.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, TextIO

import structlog

from channels.base import OutboundMessage, Receipt, ReceiptStatus
from dispatcher.core.logging import mask_address

log = structlog.get_logger(__name__)


class OutboxChannel:
    """Delivers messages of one channel name into the outbox file."""

    max_text_length: ClassVar[int | None] = None
    reports_delivery: ClassVar[bool] = False
    name: ClassVar[str] = "outbox"
    provider: ClassVar[str] = "outbox"

    def __init__(self, channel: str, *, path: Path, latency_ms: int = 0) -> None:
        self.channel = channel
        self._path = path
        self._latency = latency_ms / 1000
        self._file: TextIO | None = None

    def __repr__(self) -> str:
        return f"OutboxChannel(channel={self.channel!r}, path={str(self._path)!r})"

    async def prepare(self) -> None:
        """Nothing to build: the file opens with the first message."""

    async def send(self, message: OutboundMessage) -> Receipt:
        """Append the message to the outbox; its receipt says ``outbox``, not delivered."""
        if self._latency:
            # Stands for a provider's response time, for demos and load tests.
            await asyncio.sleep(self._latency)
        provider_id = f"outbox-{message.delivery_id}"
        line = {
            "at": datetime.now(UTC).isoformat(),
            "channel": message.channel.value,
            "delivery_id": message.delivery_id,
            "alert_id": message.alert_id,
            "member_id": message.member_id,
            "to": mask_address(message.address),
            "language": message.language.value,
            "urgency": message.urgency.value,
            "subject": message.subject,
            "text": message.text,
        }
        self._open().write(json.dumps(line, ensure_ascii=False) + "\n")
        self._open().flush()
        log.info("outbox.kept", channel=message.channel.value, delivery_id=message.delivery_id)
        return Receipt(provider_id=provider_id, status=ReceiptStatus.OUTBOX)

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> TextIO:
        if self._file is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("a", encoding="utf-8")
        return self._file
