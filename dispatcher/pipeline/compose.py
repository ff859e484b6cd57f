"""Composing what a member receives on each channel: the sender's text, then our words.

The alert text always comes first and whole. Then, in the member's language: an SMS gets
the longest acknowledgement hint that adds no segment (none if even the shortest would); a
call says the message twice and asks to press 1; an e-mail gets its receipt, unsubscribe and
data-export links (text and HTML, the HTML escaped by Jinja); a Telegram message gets a
"received" button.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape
from twilio.twiml.voice_response import VoiceResponse

from channels.base import OutboundMessage
from dispatcher.core import segments
from dispatcher.core.links import Links
from dispatcher.core.models import Alert, ChannelName, Language, Member, Plp, Relay
from dispatcher.core.wording import VOICES, Words, say, subject
from dispatcher.storage.store import delivery_id

#: Telegram callback data of a "received" button: ``ack:<delivery id>``.
ACK_PREFIX = "ack:"


@lru_cache(maxsize=1)
def templates() -> Environment:
    """The Jinja environment of the e-mails and pages; autoescaping on, so no text is markup."""
    return Environment(loader=PackageLoader("dispatcher", "templates"), autoescape=select_autoescape(default=True))


def compose(
    *, alert: Alert, plp: Plp, relay: Relay | None, member: Member, channel: ChannelName, links: Links
) -> OutboundMessage | None:
    """The message for one delivery, or None if the member has no contact point on that channel."""
    address = member.address_for(channel)
    if address is None:
        return None
    language = member.language
    did = delivery_id(alert.id, f"{channel.value}:{member.id}")
    text = alert.text_for(language, relay, plp.default_language)
    title = subject(
        plp_name=plp.name,
        urgency=alert.urgency,
        category=alert.category,
        language=language,
        feedback=alert.about_alert_id is not None,
    )
    base = OutboundMessage(
        delivery_id=did,
        alert_id=alert.id,
        member_id=member.id,
        channel=channel,
        address=address,
        language=language,
        urgency=alert.urgency,
        subject=title,
        text=text,
    )
    if channel is ChannelName.SMS:
        return replace(base, text=sms_text(text, language), status_callback=links.twilio_status_url(did))
    if channel is ChannelName.VOICE:
        twiml = voice_twiml(text, language, links.twilio_gather_url(did))
        return replace(base, twiml=twiml, status_callback=links.twilio_status_url(did))
    if channel is ChannelName.EMAIL:
        return _email(base, plp=plp, member=member, links=links)
    label = say(Words.TELEGRAM_ACK_BUTTON, language)
    return replace(base, text=f"{title}\n\n{text}", ack_label=label, ack_data=f"{ACK_PREFIX}{did}")


@lru_cache(maxsize=256)
def sms_text(text: str, language: Language) -> str:
    """The SMS: the sender's text whole, then the longest acknowledgement hint that adds no segment.

    Every member of an alert who reads the same language gets the same SMS: computed once per process.
    """
    return segments.with_hint(text, [say(Words.SMS_ACK_HINT, language), say(Words.SMS_ACK_HINT_SHORT, language)])


def voice_minutes(text: str, language: Language) -> int:
    """Estimated billed minutes of an alert call: the message said twice, at about 14 characters a second."""
    spoken = len(say(Words.VOICE_INTRO, language)) + 2 * len(text) + len(say(Words.VOICE_PRESS_1, language))
    return max(1, math.ceil((spoken / 14 + 10) / 60))  # plus ringing and the wait for a key


def voice_twiml(text: str, language: Language, gather_url: str) -> str:
    """The call: an introduction, the message said twice, press 1 to acknowledge, goodbye."""
    lang, voice = VOICES[language]
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=gather_url, method="POST", timeout=8)
    gather.say(f"{say(Words.VOICE_INTRO, language)} {text}", language=lang, voice=voice)
    gather.pause(length=1)
    gather.say(text, language=lang, voice=voice)
    gather.say(say(Words.VOICE_PRESS_1, language), language=lang, voice=voice)
    response.say(say(Words.VOICE_GOODBYE, language), language=lang, voice=voice)
    return str(response)


def _email(base: OutboundMessage, *, plp: Plp, member: Member, links: Links) -> OutboundMessage:
    language = base.language
    receipt_url, unsubscribe_url = links.receipt_url(base.delivery_id), links.unsubscribe_url(member.id)
    export_url = links.export_url(member.id)
    footer = say(Words.EMAIL_FOOTER, language, plp=plp.name)
    plain = "\n\n".join(
        [
            base.text,
            say(Words.EMAIL_ACK_LINK, language, url=receipt_url),
            footer,
            say(Words.EMAIL_UNSUBSCRIBE, language, url=unsubscribe_url),
            say(Words.EMAIL_EXPORT, language, url=export_url),
        ]
    )
    html = (
        templates()
        .get_template("email.html")
        .render(
            language=language.value,
            plp_name=plp.name,
            subject=base.subject,
            text=base.text,
            receipt_url=receipt_url,
            ack_label=say(Words.PAGE_CONFIRM, language),
            footer=footer,
            unsubscribe_url=unsubscribe_url,
            unsubscribe_label=say(Words.PAGE_UNSUBSCRIBE_TITLE, language),
            export_url=export_url,
            export_label=say(Words.EMAIL_EXPORT_LABEL, language),
        )
    )
    return replace(
        base, text=plain, html=html, reply_to=tuple(str(a) for a in plp.reply_to), unsubscribe_url=unsubscribe_url
    )
