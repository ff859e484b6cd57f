"""What an alert will cost, before it is sent: SMS segments per language, calls, members reached.

Prices come from the settings (``PLP_PRICE_SMS_SEGMENT``, ``PLP_PRICE_VOICE_MINUTE``): the
PLP pays for each SMS segment and each call minute, so a coordinator sees the price first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from config import Settings
from dispatcher.core import segments
from dispatcher.core.models import Alert, ChannelName, Language, MemberStatus, Plp, Relay
from dispatcher.pipeline.compose import sms_text, voice_minutes
from dispatcher.storage.store import Store


@dataclass(frozen=True)
class SmsText:
    language: Language
    text: str
    encoding: str
    segments: int


@dataclass
class Estimate:
    members: int = 0
    by_channel: dict[ChannelName, int] = field(default_factory=dict)
    sms_segments: int = 0
    voice_minutes: int = 0
    unreachable: int = 0
    opted_out: int = 0

    def cost(self, settings: Settings) -> Decimal:
        return settings.price_sms_segment * self.sms_segments + settings.price_voice_minute * self.voice_minutes


def sms_texts(alert: Alert, plps: list[Plp], relay: Relay | None = None) -> list[SmsText]:
    """The SMS each language gets, with its encoding and segments."""
    fallback = plps[0].default_language if plps else Language.FR
    result = []
    for language in Language:
        text = sms_text(alert.text_for(language, relay, fallback), language)
        size = segments.measure(text)
        result.append(SmsText(language=language, text=text, encoding=size.encoding.value, segments=size.segments))
    return result


async def estimate(store: Store, alert: Alert, plps: list[Plp], *, chunk: int = 1000) -> Estimate:
    """Who the alert would reach on which channel, and what it would cost, without sending anything."""
    result, seen, everyone = Estimate(), set[str](), set[str]()
    sizes = {t.language: t.segments for t in sms_texts(alert, plps)}
    for plp in plps:
        plan = plp.charter.plan_of(alert.message_class)
        cursor = None
        while True:
            page = await store.list_members(plp.id, cursor=cursor, limit=chunk)
            for member in page.items:
                everyone.add(member.id)
                if member.id in seen:
                    continue
                channels = member.reachable_channels(plan)
                if member.status is MemberStatus.OPTED_OUT:
                    seen.add(member.id)
                    result.opted_out += 1
                    continue
                if not channels:
                    continue  # another PLP's plan may reach them
                seen.add(member.id)
                result.members += 1
                for channel in channels:
                    result.by_channel[channel] = result.by_channel.get(channel, 0) + 1
                if ChannelName.SMS in channels:
                    result.sms_segments += sizes[member.language]
                if ChannelName.VOICE in channels:
                    text = alert.text_for(member.language, None, plp.default_language)
                    result.voice_minutes += voice_minutes(text, member.language)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    result.unreachable = len(everyone - seen)
    return result
