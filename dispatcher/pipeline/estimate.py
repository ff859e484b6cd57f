"""What an alert will cost, before it is sent: SMS segments per language, calls, members reached (per PLP,
and per sector when the PLP has sectors); for an alert to part of its PLPs (``Alert.area``), only the members
inside, and those whose place is unknown as their charter says (counted apart, see ``dispatcher.geo.areas``);
for a non-urgent alert, not the members who declined non-urgent messages on their own page (counted apart).

Prices come from the settings (``PLP_PRICE_SMS_SEGMENT``, ``PLP_PRICE_VOICE_MINUTE``): the
PLP pays for each SMS segment and each call minute, so a coordinator sees the price first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from config import Settings
from dispatcher.core import segments
from dispatcher.core.models import Alert, ChannelName, Language, Member, MemberStatus, Plp, Relay
from dispatcher.core.wording import exercise_text
from dispatcher.geo.areas import Reach, Targeting
from dispatcher.pipeline.compose import sms_text, voice_minutes, with_answers
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
    declined_non_urgent: int = 0  # members who take no non-urgent messages, for a non-urgent alert
    by_plp: dict[str, int] = field(default_factory=dict)
    by_sector: dict[tuple[str, str], int] = field(default_factory=dict)
    unlocated: int = 0  # reached, place unknown
    unlocated_left_out: int = 0  # place unknown, and the charter keeps area alerts from them

    def cost(self, settings: Settings) -> Decimal:
        return settings.price_sms_segment * self.sms_segments + settings.price_voice_minute * self.voice_minutes


def sms_texts(alert: Alert, plps: list[Plp], relay: Relay | None = None) -> list[SmsText]:
    """The SMS each language gets, with its encoding and segments."""
    fallback = plps[0].default_language if plps else Language.FR
    result = []
    for language in Language:
        text = alert.text_for(language, relay, fallback)
        text = exercise_text(text, language, gsm=True) if alert.exercise else text
        text = sms_text(with_answers(text, alert, language), language)
        size = segments.measure(text)
        result.append(SmsText(language=language, text=text, encoding=size.encoding.value, segments=size.segments))
    return result


async def estimate(store: Store, alert: Alert, plps: list[Plp], *, chunk: int = 1000) -> Estimate:
    """Who the alert would reach on which channel, and what it would cost, without sending anything."""
    result, seen, everyone, left_out = Estimate(), set[str](), set[str](), set[str]()
    sizes = {t.language: t.segments for t in sms_texts(alert, plps)}
    for plp in plps:
        targeting = Targeting.of(alert.area, plp, await store.get_sectors(plp.id))
        cursor = None
        while True:
            page = await store.list_members(plp.id, cursor=cursor, limit=chunk)
            for member, (reach, sector) in zip(page.items, targeting.place(page.items), strict=True):
                if reach is Reach.LEFT_OUT:
                    left_out.add(member.id)
                if reach in (Reach.REACHED, Reach.UNLOCATED):
                    everyone.add(member.id)
                    if member.id not in seen:
                        _count(result, seen, alert, targeting.plp, member, (reach, sector), sizes)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    result.unreachable = len(everyone - seen)
    result.unlocated_left_out = len(left_out - everyone)
    return result


def _count(
    result: Estimate,
    seen: set[str],
    alert: Alert,
    plp: Plp,
    member: Member,
    place: tuple[Reach, str | None],
    sizes: dict[Language, int],
) -> None:
    """Count one member the alert would reach through this PLP (not yet counted through another), placed
    (``place``: what the alert does for them, their sector)."""
    reach, sector = place
    if member.status is MemberStatus.OPTED_OUT:
        seen.add(member.id)
        result.opted_out += 1
        return
    if not member.accepts(alert.message_class):  # as the fan-out records them: opted out of this alert only
        seen.add(member.id)
        result.declined_non_urgent += 1
        return
    channels = member.reachable_channels(plp.charter.plan_of(alert.message_class))
    if not channels:
        return  # another PLP's plan may reach them
    seen.add(member.id)
    result.members += 1
    result.by_plp[plp.id] = result.by_plp.get(plp.id, 0) + 1
    if sector is not None:
        result.by_sector[plp.id, sector] = result.by_sector.get((plp.id, sector), 0) + 1
    result.unlocated += reach is Reach.UNLOCATED
    for channel in channels:
        result.by_channel[channel] = result.by_channel.get(channel, 0) + 1
    if ChannelName.SMS in channels:
        result.sms_segments += sizes[member.language]
    if ChannelName.VOICE in channels:
        text = alert.text_for(member.language, None, plp.default_language)
        result.voice_minutes += voice_minutes(text, member.language)
