"""The member's own page, behind the signed link in every e-mail's footer: see their data, choose, leave;
and the coordinator's "send the member their link".

Opening the link changes nothing (mail scanners follow links). A POST changes something only
with the signed link in its path and the page's per-form token (signed for the same member, so a
page of another site cannot post one): without them it gets the page back with a 400. The page
has no script and no resource from elsewhere; it works without JavaScript.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, Field

from dispatcher.access.audit import Action
from dispatcher.api import guards
from dispatcher.api.audit import note
from dispatcher.api.pages import HEADERS, HTML, linked_member
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.core.links import InvalidLink, Links, Purpose
from dispatcher.core.models import ChannelName, Language, Member, QuietHours, Role
from dispatcher.core.wording import Words, emergency_reminder, say
from dispatcher.people import contact_change
from dispatcher.people.contact_change import ChangeRefused, ContactKind
from dispatcher.people.selfservice import (
    Choices,
    NoChannel,
    asks_whatsapp_consent,
    choose,
    leave,
    link_channel,
    offered_channels,
)
from dispatcher.pipeline import replies
from dispatcher.pipeline.compose import templates
from dispatcher.pipeline.notifications import (
    MemberChange,
    Notification,
    NotificationKind,
    Notifications,
    notification_id,
)
from dispatcher.pipeline.receipts import page_language
from dispatcher.storage.store import Store

log = structlog.get_logger(__name__)


class ProfileLinkSent(BaseModel):
    channel: ChannelName = Field(description="The channel the link is on its way over")


#: How the page names the channels: their own names, but the voice call's, which is said in the member's language.
CHANNEL_NAMES = {"sms": "SMS", "email": "E-mail", "telegram": "Telegram"}
VOICE = {Language.FR: "Appel vocal", Language.NL: "Spraakoproep", Language.DE: "Sprachanruf", Language.EN: "Voice call"}
LANGUAGE_NAMES = {Language.FR: "Français", Language.NL: "Nederlands", Language.DE: "Deutsch", Language.EN: "English"}


def _channel_name(channel: ChannelName, language: Language) -> str:
    return VOICE[language] if channel is ChannelName.VOICE else CHANNEL_NAMES.get(channel.value, channel.value)


def _expired(call: Call) -> Reply:
    language = page_language(call.request.headers.get("Accept-Language"))
    return _render(410, language, title=say(Words.PAGE_EXPIRED, language))


def _render(status: int, language: Language, **values: Any) -> Reply:
    body = templates().get_template("profile.html").render(language=language.value, **values)
    return Reply(status, body, HEADERS, media_type=HTML)


def _profile(
    links: Links, member: Member, *, status: int = 200, notice: str | None = None, pending: bool = False
) -> Reply:
    language = member.language
    offered = offered_channels(member)
    held = [
        (say(Words.PROFILE_NAME, language), member.name),
        (say(Words.PROFILE_PHONE, language), member.phone),
        (say(Words.PROFILE_EMAIL, language), member.email),
        (say(Words.PROFILE_TELEGRAM, language), "✔" if member.telegram_chat_id is not None else None),
        (say(Words.PROFILE_ADDRESS, language), member.address.one_line() if member.address else None),
        (say(Words.PROFILE_WHATSAPP_HELD, language), _since(member)),
    ]
    return _render(
        status,
        language,
        title=say(Words.PROFILE_TITLE, language),
        notice=notice,
        held_title=say(Words.PROFILE_HELD, language),
        held=[(label, value) for label, value in held if value],
        form_token=links.token(Purpose.PROFILE_FORM, member.id),
        language_label=say(Words.PROFILE_LANGUAGE, language),
        languages=[(lang.value, name, lang is language) for lang, name in LANGUAGE_NAMES.items()],
        channels_label=say(Words.PROFILE_CHANNELS, language),
        channels=[(c.value, _channel_name(c, language), c in member.channels) for c in offered],
        order_label=say(Words.PROFILE_ORDER, language),
        ranks=[(c.value, _channel_name(c, language), rank) for rank, c in enumerate(member.preferred(offered), 1)],
        quiet_label=say(Words.PROFILE_QUIET, language),
        quiet_from_label=say(Words.PROFILE_QUIET_FROM, language),
        quiet_to_label=say(Words.PROFILE_QUIET_TO, language),
        quiet=member.quiet_hours,
        non_urgent_label=say(Words.PROFILE_NON_URGENT, language),
        non_urgent=member.non_urgent,
        whatsapp_label=say(Words.PROFILE_WHATSAPP_CONSENT, language) if asks_whatsapp_consent(member) else None,
        whatsapp=member.whatsapp_consent is not None,
        save_label=say(Words.PROFILE_SAVE, language),
        contact_forms=[
            ("phone", "tel", say(Words.PROFILE_NEW_PHONE, language)),
            ("email", "email", say(Words.PROFILE_NEW_EMAIL, language)),
        ],
        send_code_label=say(Words.PROFILE_SEND_CODE, language),
        pending=pending,
        code_label=say(Words.PROFILE_CODE_LABEL, language),
        confirm_code_label=say(Words.PROFILE_CONFIRM_CODE, language),
        leave_label=say(Words.PROFILE_LEAVE, language),
        emergency=emergency_reminder(language),
    )


def _since(member: Member) -> str | None:
    """The day the member's consent to WhatsApp was given, as the page shows it; None without one."""
    consent = member.whatsapp_consent
    return f"✔ {consent.at.date().isoformat()}" if consent is not None else None


@api.operation(
    "GET",
    "/v1/p/{token}",
    summary="The member's own page, from the link in their e-mails: their data, their choices, leaving",
    tag="members",
    public=True,
    responses={200: HTML, 410: HTML},
)
async def profile_page(call: Call) -> Reply:
    member = await linked_member(call, Purpose.PROFILE)
    if member is None:
        return _expired(call)
    store = services(call).store
    pending = bool(await store.redis.exists(store.keys.member_contact_change(member.id)))
    return _profile(services(call).runtime.links, member, pending=pending)


@api.operation(
    "POST",
    "/v1/p/{token}",
    summary="Save the member's choices (action=choose, language=..., channels=... repeated, non_urgent=yes or "
    "absent, whatsapp=yes or absent: their consent to WhatsApp, asked when they have a mobile number, "
    "rank_<channel>=1, 2, ...: the order their channels are tried in, quiet_start=HH:MM and quiet_end=HH:MM: "
    "their quiet hours for non-urgent messages, both empty for none), change "
    "their phone or e-mail (action=change_contact, kind=phone|email, value=...; then "
    "action=confirm_code, code=...) or leave every PLP (action=leave), from their own page; form_token is the page's",
    tag="members",
    public=True,
    responses={200: HTML, 400: HTML, 410: HTML, 429: HTML},
)
async def profile_submit(call: Call) -> Reply:
    member = await linked_member(call, Purpose.PROFILE)
    if member is None:
        return _expired(call)
    links, store = services(call).runtime.links, services(call).store
    form = await form_fields(call.request)
    action = form.get("action", [""])[0]
    if not _from_the_page(links, member, form) or action not in ("choose", "leave", "change_contact", "confirm_code"):
        return _profile(links, member, status=400)
    if action == "change_contact":
        return await _change_contact(call, member, form)
    if action == "confirm_code":
        return await _confirm_code(call, member, form)
    if form["action"][0] == "leave":
        await leave(store, member)
        await tell_coordinators(store, member, [MemberChange.LEFT])
        log.info("member.left", member_id=member.id, via="own page")
        return _render(200, member.language, title=say(Words.PROFILE_LEFT, member.language))
    try:
        quiet_hours = _quiet_hours(form)
    except ValueError:
        return _profile(links, member, status=400, notice=say(Words.PROFILE_QUIET_INVALID, member.language))
    try:
        choices = _choices(form, member, quiet_hours)
        updated = await choose(store, member, choices)
    except (ValueError, NoChannel):
        return _profile(links, member, status=400, notice=say(Words.PROFILE_NO_CHANNEL, member.language))
    await tell_coordinators(store, member, _changes(member, updated))
    log.info("member.chose", member_id=member.id, via="own page")
    return _profile(links, updated, notice=say(Words.PROFILE_SAVED, updated.language))


@api.operation(
    "POST",
    "/v1/plps/{plp_id}/members/{member_id}/profile-link",
    summary="Send the member the link to their own page (by e-mail, else Telegram, else SMS), in their language; "
    "the link itself is never shown to the caller",
    tag="members",
    authorize=guards.member_keeper,
    responses={202: ProfileLinkSent},
)
async def send_profile_link(call: Call) -> Reply:
    plp, member = call.scope
    svc = services(call)
    channel = link_channel(member)
    if channel is None:
        raise Problem(409, "Conflict", "this member has no contact point the link could be sent to")
    language, url = member.language, svc.runtime.links.profile_url(member.id)
    text = say(Words.PROFILE_REPLY, language, url=url)
    subject = say(Words.PROFILE_SUBJECT, language) if channel is ChannelName.EMAIL else ""
    address = member.address_for(channel) or ""
    await svc.blocking(replies.queue, svc.runtime, channel, address, text, language, subject=subject)
    await note(call, Action.MEMBER_LINK_SENT, detail=f"via {channel.value}", plp=plp.id, member=member.id)
    return Reply(202, ProfileLinkSent(channel=channel))


REFUSALS = {
    "rate": Words.PROFILE_CODE_RATE,
    "locked": Words.PROFILE_CODE_LOCKED,
    "wrong": Words.PROFILE_CODE_WRONG,
    "expired": Words.PROFILE_CODE_EXPIRED,
}


async def _change_contact(call: Call, member: Member, form: dict[str, list[str]]) -> Reply:
    """Start a change of phone or e-mail: a code goes to the new contact point (never said whether it is taken)."""
    svc, language = services(call), member.language
    links, region = svc.runtime.links, svc.runtime.settings.default_region
    try:
        kind = ContactKind(form.get("kind", [""])[0])
        started = await contact_change.start(svc.store, member, kind, form.get("value", [""])[0], region=region)
    except ChangeRefused as exc:
        return _profile(links, member, status=429, notice=say(REFUSALS[exc.reason], language))
    except ValueError as exc:  # an unknown kind, or InvalidContact
        notice = say(Words.PROFILE_CONTACT_INVALID, language, reason=str(exc))
        return _profile(links, member, status=400, notice=notice)
    if started.code is not None:
        channel = ChannelName.SMS if started.kind is ContactKind.PHONE else ChannelName.EMAIL
        text = say(Words.PROFILE_CODE_TEXT, language, code=started.code)
        subject = say(Words.PROFILE_CODE_SUBJECT, language) if channel is ChannelName.EMAIL else ""
        await svc.blocking(replies.queue, svc.runtime, channel, started.value, text, language, subject=subject)
    log.info("member.contact_change_started", member_id=member.id, kind=started.kind.value)
    notice = say(Words.PROFILE_CODE_SENT, language, value=started.value)
    return _profile(links, member, notice=notice, pending=True)


async def _confirm_code(call: Call, member: Member, form: dict[str, list[str]]) -> Reply:
    svc, language = services(call), member.language
    try:
        updated = await contact_change.confirm(svc.store, member, form.get("code", [""])[0])
    except ChangeRefused as exc:
        pending = exc.reason == "wrong"
        status = 400 if exc.reason in ("wrong", "expired") else 429
        return _profile(
            svc.runtime.links, member, status=status, notice=say(REFUSALS[exc.reason], language), pending=pending
        )
    await tell_coordinators(svc.store, member, [MemberChange.CONTACT])
    log.info("member.contact_changed", member_id=member.id)
    return _profile(svc.runtime.links, updated, notice=say(Words.PROFILE_CONTACT_CHANGED, language))


#: The member's fields a change of which their coordinators hear of as a change of "channels and preferences".
CHANNEL_FIELDS = ("channels", "channel_order", "quiet_hours", "non_urgent", "whatsapp_consent")


def _changes(before: Member, after: Member) -> list[MemberChange]:
    changes = [MemberChange.LANGUAGE] if before.language != after.language else []
    if any(getattr(before, field) != getattr(after, field) for field in CHANNEL_FIELDS):
        changes.append(MemberChange.CHANNELS)
    return changes


async def tell_coordinators(store: Store, member: Member, changes: list[MemberChange]) -> None:
    """Tell the coordinators of each of the member's PLPs what the member changed on their own page (a
    notification in the PLP's language naming neither the member nor any value: the member's id, looked up when
    read). Nothing when nothing changed."""
    if not changes:
        return
    kind, now, feed = NotificationKind.MEMBER_CHANGED, datetime.now(UTC), Notifications(store.redis, store.keys)
    about = f"{member.id}:{now.timestamp()}:{','.join(changes)}"
    plps = [plp for plp in (await store.get_plps(member.plp_ids)).values() if plp is not None]
    coordinators: dict[str, list[str]] = {plp.id: [] for plp in plps}
    async for actors in store.all_actors():
        for actor in actors:
            if actor.role is Role.COORDINATOR:
                for plp_id in set(actor.plp_ids) & coordinators.keys():
                    coordinators[plp_id].append(actor.id)
    for plp in plps:
        language = plp.default_language
        if MemberChange.LEFT in changes:
            subject = say(Words.MEMBER_NOTICE_LEFT_SUBJECT, language, plp=plp.name)
            text = say(Words.MEMBER_NOTICE_LEFT_TEXT, language, plp=plp.name)
        else:
            what = ", ".join(say(CHANGE_WORDS[change], language) for change in changes)
            subject = say(Words.MEMBER_NOTICE_SUBJECT, language, plp=plp.name)
            text = say(Words.MEMBER_NOTICE_TEXT, language, plp=plp.name, what=what)
        notice = Notification(
            id=notification_id(kind, about, plp.id),
            kind=kind,
            member_id=member.id,
            changes=changes,
            plp_id=plp.id,
            created_at=now,
            language=language,
            subject=subject,
            text=text,
        )
        await feed.publish(notice, coordinators[plp.id])


CHANGE_WORDS = {
    MemberChange.LANGUAGE: Words.MEMBER_CHANGED_LANGUAGE,
    MemberChange.CHANNELS: Words.MEMBER_CHANGED_CHANNELS,
    MemberChange.CONTACT: Words.MEMBER_CHANGED_CONTACT,
}


async def form_fields(request: web.Request) -> dict[str, list[str]]:
    """The form's fields, each with all its values (the channel boxes repeat ``channels``); unreadable: none."""
    try:
        data = await request.post()
    except ValueError:
        return {}
    return {key: [str(v) for v in data.getall(key)] for key in data}


def _from_the_page(links: Links, member: Member, form: dict[str, list[str]]) -> bool:
    """Whether the post carries the per-form token of this member's page (CSRF)."""
    try:
        return links.read(Purpose.PROFILE_FORM, form.get("form_token", [""])[0]) == member.id
    except InvalidLink:
        return False


def _choices(form: dict[str, list[str]], member: Member, quiet_hours: QuietHours | None) -> Choices:
    """The choices posted; raises ``ValueError`` for a language or channel the page does not offer."""
    language = Language(form.get("language", [member.language.value])[0])
    channels = [ChannelName(c) for c in form.get("channels", [])]
    whatsapp = form.get("whatsapp") == ["yes"] if asks_whatsapp_consent(member) else None
    return Choices(
        language=language,
        channels=channels,
        non_urgent=form.get("non_urgent") == ["yes"],
        whatsapp=whatsapp,
        order=_order(form),
        quiet_hours=quiet_hours,
        sets_quiet_hours="quiet_start" in form or "quiet_end" in form,
    )


def _order(form: dict[str, list[str]]) -> list[ChannelName] | None:
    """The channels in the order the member ranked them (``rank_<channel>=<n>``); None when the form ranks none."""
    ranks = {
        ChannelName(key.removeprefix("rank_")): int(values[0])
        for key, values in form.items()
        if key.startswith("rank_")
    }
    return sorted(ranks, key=lambda c: ranks[c]) if ranks else None


def _quiet_hours(form: dict[str, list[str]]) -> QuietHours | None:
    """The member's quiet hours from the form (``quiet_start``, ``quiet_end``, HH:MM); both empty: none."""
    start, end = form.get("quiet_start", [""])[0].strip(), form.get("quiet_end", [""])[0].strip()
    if not start and not end:
        return None
    return QuietHours(start=start[:5], end=end[:5])  # a browser may add seconds
