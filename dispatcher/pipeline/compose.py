"""Composing what a member receives on each channel: the sender's text, then our words.

The alert text always comes first and whole. Then, in the member's language, as the form of
the channel's messages asks (``MessageForm``, declared by its vendor class): a short text (SMS)
gets the longest acknowledgement hint that adds no segment (none if even the shortest would); a
call says the message twice and asks to press 1 (a ``CallScript``, which the vendor writes in its
own format); an e-mail gets its receipt, unsubscribe, data-export and own-page links (text and HTML, the
HTML escaped by Jinja); a chat message (Telegram) gets a "received" button. A drill's text is marked
as an exercise first, in the member's language, on every channel (in GSM 03.38 for an SMS). An
alert's answer options follow the text of an SMS, numbered (a reply "1" or the option's words
answers), and are buttons of their own under a chat message.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape

from channels import vendor
from channels.base import CallScript, MessageForm, OutboundMessage, Purpose
from channels.inbound import ACK_PREFIX, ANSWER_PREFIX
from dispatcher.core import segments
from dispatcher.core.links import Links
from dispatcher.core.models import Alert, AnswerOption, ChannelName, Language, Member, Plp, Relay, Urgency
from dispatcher.core.wording import (
    Words,
    answer_choices,
    exercise_text,
    follow_up_text,
    say,
    subject,
    voice_answer_keys,
)
from dispatcher.storage.store import delivery_id


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
    text = message_text(alert, language, relay, plp.default_language)
    title = subject(
        plp_name=plp.name,
        urgency=alert.urgency,
        category=alert.category,
        language=language,
        feedback=alert.about_alert_id is not None,
        follow_up=alert.kind,
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
        purpose=purpose(alert),
    )
    form = vendor(channel).form
    if alert.exercise:
        text = exercise_text(text, language, gsm=form is MessageForm.TEXT)
        base = replace(base, text=text)
    if form is MessageForm.TEXT:
        return replace(base, text=sms_text(with_answers(text, alert, language), language))
    if form is MessageForm.CALL:
        return replace(base, call=call_script(text, language, alert.answers))
    if form is MessageForm.MAIL:
        return _email(base, alert=alert, plp=plp, member=member, links=links)
    label = say(Words.TELEGRAM_ACK_BUTTON, language)
    buttons = tuple((a.text_for(language), f"{ANSWER_PREFIX}{n}:{did}") for n, a in enumerate(alert.answers, start=1))
    return replace(base, text=f"{title}\n\n{text}", ack_label=label, ack_data=f"{ACK_PREFIX}{did}", buttons=buttons)


def purpose(alert: Alert) -> Purpose:
    """What an alert's message is for: a drill, a follow-up, the police's feedback, else its urgency."""
    if alert.exercise:
        return Purpose.DRILL
    if alert.kind is not None:
        return Purpose.FOLLOW_UP
    if alert.about_alert_id is not None:
        return Purpose.POLICE_FEEDBACK
    return Purpose.URGENT if alert.urgency is Urgency.URGENT else Purpose.NON_URGENT


def with_answers(text: str, alert: Alert, language: Language) -> str:
    """A short text (SMS) followed by the alert's answer options, numbered, when it offers some."""
    return f"{text}\n{answer_choices(alert.answers, language)}" if alert.answers else text


def message_text(alert: Alert, language: Language, relay: Relay | None, fallback: Language) -> str:
    """The alert's text for a member of ``language`` (as ``Alert.text_for``); a follow-up's marked as an update or
    an all-clear of its alert, in the language of that text."""
    text = alert.text_for(language, relay, fallback)
    if alert.kind is None:
        return text
    return follow_up_text(alert.kind, alert.category, text, alert.language_for(language, relay, fallback))


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


def call_script(text: str, language: Language, answers: list[AnswerOption] | None = None) -> CallScript:
    """The call: an introduction, the message said twice, press 1 to acknowledge (then 2, 3... to answer), goodbye."""
    keys = voice_answer_keys(answers or [], language)
    return CallScript(
        intro=say(Words.VOICE_INTRO, language),
        text=text,
        prompt=f"{say(Words.VOICE_PRESS_1, language)} {keys}".rstrip(),
        goodbye=say(Words.VOICE_GOODBYE, language),
    )


def _email(base: OutboundMessage, *, alert: Alert, plp: Plp, member: Member, links: Links) -> OutboundMessage:
    language = base.language
    receipt_url, unsubscribe_url = links.receipt_url(base.delivery_id), links.unsubscribe_url(member.id)
    # each answer opens the receipt page with it chosen; only the page's button (a POST) records it
    answer_links = [(a.text_for(language), f"{receipt_url}?answer={a.id}") for a in alert.answers]
    export_url, profile_url = links.export_url(member.id), links.profile_url(member.id)
    footer = say(Words.EMAIL_FOOTER, language, plp=plp.name)
    plain = "\n\n".join(
        [
            base.text,
            say(Words.EMAIL_ACK_LINK, language, url=receipt_url),
            *(f"{label}: {url}" for label, url in answer_links),
            footer,
            say(Words.EMAIL_UNSUBSCRIBE, language, url=unsubscribe_url),
            say(Words.EMAIL_EXPORT, language, url=export_url),
            say(Words.EMAIL_PROFILE, language, url=profile_url),
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
            answer_links=answer_links,
            footer=footer,
            unsubscribe_url=unsubscribe_url,
            unsubscribe_label=say(Words.PAGE_UNSUBSCRIBE_TITLE, language),
            export_url=export_url,
            export_label=say(Words.EMAIL_EXPORT_LABEL, language),
            profile_url=profile_url,
            profile_label=say(Words.EMAIL_PROFILE_LABEL, language),
        )
    )
    return replace(
        base, text=plain, html=html, reply_to=tuple(str(a) for a in plp.reply_to), unsubscribe_url=unsubscribe_url
    )
