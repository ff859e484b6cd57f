"""A member's own choices, made on their own page through their signed link: language, channels, whether
non-urgent messages reach them, their consent to WhatsApp, leaving.

The link comes in every e-mail's footer, and as the answer to a reply PROFIL / PROFIEL / PROFILE (SMS,
Telegram, where ``/profile`` works too).

The member orders their channels (``Member.channel_order``): the charter's plan still decides which
channels a message may take and whether all of them or only the first that works; the member's order
decides which of those is tried first. Their quiet hours (``Member.quiet_hours``, in the PLP's time
zone) hold non-urgent messages for them until they end, as the charter's quiet hours hold a PLP's.

Each change is saved on the member's record (so the next alert's fan-out follows it) and
audited with the member as actor (``dispatcher.access.audit.record_member``). The detail
names fields only, never the values, so the audit log holds no personal data.

WhatsApp is not one of the page's channel boxes: it reaches a member only with their explicit
consent (``Member.whatsapp_consent``), which the page asks for in words of its own. Giving it
records its time and the source ``self-service`` and puts WhatsApp among the member's channels;
withdrawing it takes their WhatsApp address away, so nothing more goes there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dispatcher.access import audit
from dispatcher.access.audit import Action
from dispatcher.core.links import Links
from dispatcher.core.models import ChannelName, Consent, ConsentSource, Contact, Language, Member, QuietHours
from dispatcher.core.wording import PROFILE_WORDS, Words, normalise_reply, say
from dispatcher.storage.store import Store


class NoChannel(ValueError):
    """The member chose no channel they can be reached on: urgent alerts would reach them nowhere."""


@dataclass(frozen=True)
class Choices:
    """What the member's page lets them choose."""

    language: Language
    channels: list[ChannelName]
    non_urgent: bool = True  # whether non-urgent messages reach them (urgent ones always do)
    whatsapp: bool | None = None  # their consent to WhatsApp given (True) or withdrawn (False); None: not asked
    order: list[ChannelName] | None = None  # the order they want their channels tried in; None: as it was
    quiet_hours: QuietHours | None = None  # their own quiet hours for non-urgent messages (None: none)
    sets_quiet_hours: bool = False  # whether this choice sets them (``quiet_hours`` then, None clearing them)


def offered_channels(member: Member) -> list[ChannelName]:
    """The channels the member has a contact point for, in the service's order: those the page offers a box for
    (WhatsApp has its consent instead, see ``asks_whatsapp_consent``)."""
    return [c for c in ChannelName if c.contact is not Contact.WHATSAPP and member.address_for(c)]


def asks_whatsapp_consent(member: Member) -> bool:
    """Whether the page asks for the member's consent to WhatsApp: they have a mobile number it would reach."""
    return member.phone is not None


def profile_answer(links: Links, member: Member, text: str) -> str | None:
    """The answer to a reply asking for the member's page (PROFIL, PROFIEL, PROFILE, ``/profile``): their link,
    in their language; None for any other reply."""
    if normalise_reply(text) not in PROFILE_WORDS:
        return None
    return say(Words.PROFILE_REPLY, member.language, url=links.profile_url(member.id))


#: The channels the member's link is sent over at a coordinator's request, in this order of preference.
LINK_CHANNELS = (ChannelName.EMAIL, ChannelName.TELEGRAM, ChannelName.SMS)


def link_channel(member: Member) -> ChannelName | None:
    """The channel to send the member their link over: the first of ``LINK_CHANNELS`` they accept and can be
    reached on (else the first they can be reached on at all); None if there is none."""
    usable = [c for c in LINK_CHANNELS if member.address_for(c) and c not in member.unusable]
    accepted = [c for c in usable if c in member.channels]
    chosen = accepted or usable
    return chosen[0] if chosen else None


async def choose(store: Store, member: Member, choices: Choices) -> Member:
    """Save the member's choices and audit them as the member; return the member as saved.

    Raises ``NoChannel`` when none of the chosen channels (WhatsApp with the consent) has a contact point of the
    member's.
    """
    offered = offered_channels(member)
    consent = _whatsapp_consent(member, choices.whatsapp)
    channels = [c for c in dict.fromkeys(choices.channels) if c in offered]
    if not channels and not (consent is not None and member.phone):
        raise NoChannel("choose at least one channel you can be reached on")
    # channels the page does not offer (Telegram not linked yet) stay as they were: linking it later turns it on
    kept = set(channels) | {c for c in member.channels if c not in offered}
    if consent is not None:
        kept |= {c for c in ChannelName if c.contact is Contact.WHATSAPP}
    channels = [c for c in ChannelName if c in kept]  # the charter's plan orders the channels, not this list
    now: dict[str, object] = {
        "language": choices.language,
        "channels": channels,
        "non_urgent": choices.non_urgent,
        "whatsapp_consent": consent,
    }
    order = list(dict.fromkeys(choices.order or []))
    if order and order != member.preferred(offered):  # the order the page showed, saved as is, changes nothing
        now["channel_order"] = order
    if choices.sets_quiet_hours:
        now["quiet_hours"] = choices.quiet_hours
    changed = [field for field, value in now.items() if getattr(member, field) != value]
    if not changed:
        return member
    updated = member.model_copy(update={**now, "updated_at": datetime.now(UTC)})
    await store.save_member(updated, previous=member)
    await audit.record_member(
        store.redis, store.keys, member_id=member.id, action=Action.MEMBER_CHOSE, detail=",".join(changed)
    )
    return updated


def _whatsapp_consent(member: Member, given: bool | None) -> Consent | None:
    """The member's consent to WhatsApp after their choice: given again, it keeps its first time."""
    if given is None or given == (member.whatsapp_consent is not None):
        return member.whatsapp_consent
    return Consent(at=datetime.now(UTC), source=ConsentSource.SELF_SERVICE) if given else None


async def leave(store: Store, member: Member) -> None:
    """Take the member out of every PLP (their personal data is then erased), audited as the member."""
    current: Member | None = member
    for plp_id in list(member.plp_ids):
        if current is None:
            break
        current = await store.remove_member(current, plp_id)
    await store.redis.delete(store.keys.member_contact_change(member.id))  # it holds a contact point
    await audit.record_member(store.redis, store.keys, member_id=member.id, action=Action.MEMBER_LEFT)
