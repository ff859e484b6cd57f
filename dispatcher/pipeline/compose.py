"""Composing what a member receives on each channel: the sender's text, then our words.

The alert text always comes first and whole. Then, in the member's language, as the form of
the channel's messages asks (``MessageForm``, declared by its vendor class): a short text (SMS)
gets the longest acknowledgement hint that adds no segment (none if even the shortest would); a
call says the message twice and asks to press 1 (a ``CallScript``, which the vendor writes in its
own format); an e-mail gets its receipt, unsubscribe, data-export and own-page links (text and HTML, the
HTML escaped by Jinja; rendered once for every member who reads the same words, each member's links
put in afterwards); a chat message (Telegram) gets a "received" button. A drill's text is marked
as an exercise first, in the member's language, on every channel (in GSM 03.38 for an SMS). An
alert's answer options follow the text of an SMS, numbered (a reply "1" or the option's words
answers), and are buttons of their own under a chat message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import escape

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


@dataclass(frozen=True, slots=True)
class EmailLinks:
    """One member's links in an e-mail: receipt (each answer opens it with that answer chosen), unsubscribe,
    data export, own page."""

    receipt: str
    unsubscribe: str
    export: str
    profile: str

    def substitute(self, text: str, *, html: bool) -> str:
        """``text`` with ``PLACEHOLDERS``' stand-ins replaced by these links, HTML-escaped as Jinja escapes them."""
        for stand_in, url in zip(PLACEHOLDERS.urls(), self.urls(), strict=True):
            text = text.replace(stand_in, str(escape(url)) if html else url)
        return text

    def urls(self) -> tuple[str, str, str, str]:
        return (self.receipt, self.unsubscribe, self.export, self.profile)


#: Stand-ins for a member's links in an e-mail rendered once for all: NUL never comes out of a template, a
#: format or HTML escaping changed, and a text that holds one is rendered for each member instead.
PLACEHOLDERS = EmailLinks(receipt="\x00r\x00", unsubscribe="\x00u\x00", export="\x00x\x00", profile="\x00p\x00")


def email_texts(
    *,
    language: Language,
    plp_name: str,
    subject: str,
    text: str,
    answers: tuple[tuple[str, str], ...],
    links: EmailLinks,
) -> tuple[str, str]:
    """An e-mail's plain text and HTML (Jinja, ``email.html``) for one member's links; ``answers``: (label, id)
    of each answer option, in the member's language."""
    answer_links = [(label, f"{links.receipt}?answer={answer_id}") for label, answer_id in answers]
    footer = say(Words.EMAIL_FOOTER, language, plp=plp_name)
    plain = "\n\n".join(
        [
            text,
            say(Words.EMAIL_ACK_LINK, language, url=links.receipt),
            *(f"{label}: {url}" for label, url in answer_links),
            footer,
            say(Words.EMAIL_UNSUBSCRIBE, language, url=links.unsubscribe),
            say(Words.EMAIL_EXPORT, language, url=links.export),
            say(Words.EMAIL_PROFILE, language, url=links.profile),
        ]
    )
    html = (
        templates()
        .get_template("email.html")
        .render(
            language=language.value,
            plp_name=plp_name,
            subject=subject,
            text=text,
            receipt_url=links.receipt,
            ack_label=say(Words.PAGE_CONFIRM, language),
            answer_links=answer_links,
            footer=footer,
            unsubscribe_url=links.unsubscribe,
            unsubscribe_label=say(Words.PAGE_UNSUBSCRIBE_TITLE, language),
            export_url=links.export,
            export_label=say(Words.EMAIL_EXPORT_LABEL, language),
            profile_url=links.profile,
            profile_label=say(Words.EMAIL_PROFILE_LABEL, language),
        )
    )
    return plain, html


@lru_cache(maxsize=64)
def _email_skeleton(
    *, language: Language, plp_name: str, subject: str, text: str, answers: tuple[tuple[str, str], ...]
) -> tuple[str, str]:
    # keyed by everything the e-mail's words depend on, so no alert, relay edit or PLP rename can go out stale
    return email_texts(
        language=language, plp_name=plp_name, subject=subject, text=text, answers=answers, links=PLACEHOLDERS
    )


def email_for_member(
    *,
    language: Language,
    plp_name: str,
    subject: str,
    text: str,
    answers: tuple[tuple[str, str], ...],
    links: EmailLinks,
) -> tuple[str, str]:
    """``email_texts``, the same strings, from a rendering shared by every member who reads the same words
    (the 64 latest kept): only the links are put in per member."""
    words = (plp_name, subject, text, *(part for answer in answers for part in answer))
    if any("\x00" in word for word in words):
        return email_texts(
            language=language, plp_name=plp_name, subject=subject, text=text, answers=answers, links=links
        )
    plain, html = _email_skeleton(language=language, plp_name=plp_name, subject=subject, text=text, answers=answers)
    return links.substitute(plain, html=False), links.substitute(html, html=True)


def _email(base: OutboundMessage, *, alert: Alert, plp: Plp, member: Member, links: Links) -> OutboundMessage:
    member_links = EmailLinks(
        receipt=links.receipt_url(base.delivery_id),
        unsubscribe=links.unsubscribe_url(member.id),
        export=links.export_url(member.id),
        profile=links.profile_url(member.id),
    )
    plain, html = email_for_member(
        language=base.language,
        plp_name=plp.name,
        subject=base.subject,
        text=base.text,
        answers=tuple((a.text_for(base.language), a.id) for a in alert.answers),
        links=member_links,
    )
    return replace(
        base,
        text=plain,
        html=html,
        reply_to=tuple(str(a) for a in plp.reply_to),
        unsubscribe_url=member_links.unsubscribe,
    )
