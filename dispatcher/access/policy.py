"""Who may do what: the role rules of the PLP communication plan, in one place.

Each rule returns nothing when the action is allowed and raises ``Denied`` with a
reason a person can read otherwise. The API turns ``Denied`` into a 403.

- Admins run the platform: they create PLPs, issue tokens, and may do everything.
- Police officers act for their police zone: they send urgent and non-urgent alerts
  to the PLPs of their zone and follow them; they never see members' personal data.
- Coordinators act for their own PLPs: they manage members, adapt the charter, relay
  (or decline) non-urgent police messages and send non-urgent advice themselves.
- Residents ask to join a PLP on its public join page; its coordinators (and admins) turn that page
  on or off and approve or decline the requests (``dispatcher.api.joining``); the police never see them.
- Every actor may issue, list and revoke their own bearer tokens (for their scripts); admins anyone's.
- The audit log: admins read all of it; police officers and coordinators the entries about their part
  (the PLPs of their zone, their own PLPs: their members and alerts) and what they did themselves.
- Every actor with an e-mail address may sign in to the console by a one-time link and end
  their own sessions (``dispatcher.api.sessions``); a session acts with its actor's role.

What each role sees of an answer is declared here too, field by field (``OUTSIDER_FIELDS``):
those who may not see a member's personal data see only the fields listed there, and every
answer to an actor passes through ``visible_to`` (``dispatcher.api.routing``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel

from dispatcher.core.logging import mask_text
from dispatcher.core.models import Actor, Alert, Plp, Role, Urgency

M = TypeVar("M", bound=BaseModel)


class Denied(Exception):
    """The actor may not do this; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_admin(actor: Actor) -> bool:
    return actor.role is Role.ADMIN


def in_scope(actor: Actor, plp: Plp) -> bool:
    """Whether the PLP is within the actor's part: their zone, their PLPs, or everything."""
    if actor.role is Role.ADMIN:
        return True
    if actor.role is Role.POLICE:
        return plp.police_zone == actor.police_zone
    return plp.id in actor.plp_ids


def require_admin(actor: Actor, action: str) -> None:
    if not _is_admin(actor):
        raise Denied(f"only an admin may {action}")


def can_read_plp(actor: Actor, plp: Plp) -> None:
    if not in_scope(actor, plp):
        raise Denied(f"PLP {plp.id} is outside your {'police zone' if actor.role is Role.POLICE else 'PLPs'}")


def can_manage_tokens(actor: Actor, owner_id: str) -> None:
    """Tokens are issued, listed and revoked by their owner (for their own scripts) and by admins."""
    if _is_admin(actor) or actor.id == owner_id:
        return
    raise Denied("only an admin may manage another actor's tokens; you may manage your own")


def can_change_charter(actor: Actor, plp: Plp) -> None:
    if _is_admin(actor) or (actor.role is Role.COORDINATOR and plp.id in actor.plp_ids):
        return
    raise Denied("only an admin or a coordinator of this PLP may change its charter")


def can_schedule_drills(actor: Actor, plp: Plp) -> None:
    """Recurring drills of a PLP are scheduled (and deleted) by its coordinators, the police of its zone and admins;
    what lane a drill may take is ``can_send``'s rule: coordinators' drills are non-urgent."""
    if in_scope(actor, plp):
        return
    raise Denied(f"the drills of PLP {plp.id} are scheduled by its coordinators and the police of its zone")


def can_manage_members(actor: Actor, plp: Plp) -> None:
    if _is_admin(actor):
        return
    if actor.role is Role.POLICE:
        raise Denied("members' personal data stays with the PLP's coordinators; police see counts only")
    if plp.id not in actor.plp_ids:
        raise Denied(f"you coordinate other PLPs than {plp.id}")


def can_send(actor: Actor, urgency: Urgency, plps: Iterable[Plp]) -> None:
    """May the actor send an alert of this urgency to all these PLPs?"""
    if _is_admin(actor):
        return
    if actor.role is Role.COORDINATOR and urgency is Urgency.URGENT:
        raise Denied("urgent alerts come from the police; coordinators send non-urgent messages")
    for plp in plps:
        if actor.role is Role.POLICE and plp.police_zone != actor.police_zone:
            raise Denied(f"PLP {plp.id} is in police zone {plp.police_zone}, not in yours ({actor.police_zone})")
        if actor.role is Role.COORDINATOR and plp.id not in actor.plp_ids:
            raise Denied(f"you do not coordinate PLP {plp.id}")


def can_send_police_feedback(actor: Actor) -> None:
    """Feedback about an earlier alert (what became of it) comes from the police."""
    if actor.role not in (Role.ADMIN, Role.POLICE):
        raise Denied("feedback about an earlier alert comes from the police")


def can_read_alert(actor: Actor, plps: Iterable[Plp]) -> None:
    """An alert is visible to whoever has one of its target PLPs in scope."""
    if not any(in_scope(actor, plp) for plp in plps):
        raise Denied("this alert targets no PLP of yours")


def can_cancel(actor: Actor, alert: Alert, plps: Iterable[Plp]) -> None:
    """The author, an admin, or a police officer of the alert's zone may cancel it."""
    if _is_admin(actor) or actor.id == alert.author_id:
        return
    if actor.role is Role.POLICE and all(in_scope(actor, plp) for plp in plps):
        return
    raise Denied("only the alert's author, a police officer of its zone or an admin may cancel it")


def can_follow_up(actor: Actor, alert: Alert, plps: Iterable[Plp]) -> None:
    """The police who may cancel the alert (its author, its zone's officers) and admins may send it an update
    or an all-clear; coordinators relay, they do not speak for the police."""
    if actor.role not in (Role.POLICE, Role.ADMIN):
        raise Denied("only the police (the alert's author or an officer of its zone) or an admin may follow it up")
    can_cancel(actor, alert, plps)


def plps_with_member_names(actor: Actor, plps: Iterable[Plp]) -> list[Plp]:
    """Of these PLPs, those whose members' names the actor may see: a coordinator's own, all for an admin.

    The police see counts only: members' personal data stays with the coordinators, and no
    charter setting changes that.
    """
    if actor.role is Role.POLICE:
        return []
    return [plp for plp in plps if _is_admin(actor) or plp.id in actor.plp_ids]


def can_read_evaluation(actor: Actor, plp: Plp) -> None:
    """A PLP's annual evaluation (counts only, no member's data) is for the parties of its yearly
    meeting: its coordinators, the police of its zone, and admins."""
    if in_scope(actor, plp):
        return
    if actor.role is Role.POLICE:
        raise Denied(f"the evaluation of PLP {plp.id} is for the police of zone {plp.police_zone}, not yours")
    raise Denied(f"the evaluation of PLP {plp.id} is for its own coordinators; you coordinate other PLPs")


def can_manage_join_page(actor: Actor, plp: Plp) -> None:
    """A PLP's public join page (on or off, its privacy notice) is its coordinators' (and admins')."""
    if _is_admin(actor) or (actor.role is Role.COORDINATOR and plp.id in actor.plp_ids):
        return
    raise Denied(f"only an admin or a coordinator of PLP {plp.id} may set its join page")


def can_decide_joins(actor: Actor, plp: Plp) -> None:
    """Residents' requests to join a PLP hold their personal data: its coordinators (and admins) read and decide
    them, never the police."""
    if _is_admin(actor):
        return
    if actor.role is Role.POLICE:
        raise Denied("requests to join a PLP hold residents' personal data; they are for its coordinators")
    if plp.id not in actor.plp_ids:
        raise Denied(f"you coordinate other PLPs than {plp.id}")


def can_decide_relay(actor: Actor, plp: Plp) -> None:
    if _is_admin(actor) or (actor.role is Role.COORDINATOR and plp.id in actor.plp_ids):
        return
    raise Denied(f"only a coordinator of PLP {plp.id} may relay or decline messages for it")


# -- what each role sees of an answer ----------------------------------------------------------------


class Sight(StrEnum):
    """How a field of an answer is shown to someone who may not see members' personal data."""

    SHOWN = "shown"
    MASKED = "masked"  # a free text, with the phone numbers, e-mail addresses and chat ids in it masked


def _shown(names: str) -> dict[str, Sight]:
    return dict.fromkeys(names.split(), Sight.SHOWN)


#: What those who may not see a member's personal data see of each view, field by field: the police
#: always, and a coordinator for the members of PLPs not theirs. Every field not listed here (a new
#: one too) and every view not listed is hidden from them: answered as null. Admins, and coordinators
#: for their own PLPs' members, see every field of the views they may read.
#: A provider's message id is never listed: Telegram's embeds the member's chat id.
OUTSIDER_FIELDS: Mapping[str, Mapping[str, Sight]] = {
    "ActorView": _shown("id name role police_zone plp_ids"),
    "SessionView": _shown("actor csrf_token"),  # one's own session: an officer resumes it after a reload too
    "PlpList": _shown("items"),
    # reply_to: the coordinators' addresses, for the PLP's partners; no member's
    "PlpView": _shown("id name commune police_zone kind default_language timezone charter created_at reply_to"),
    "Charter": _shown("urgent non_urgent police_feedback relay area_reaches_unlocated"),
    "ClassPlan": _shown(
        "channels mode ttl_seconds quiet_hours escalate_after_seconds escalate_to ack_check_after_seconds ack_threshold"
    ),
    "QuietHours": _shown("start end"),
    # a PLP's sectors are outlines and street names, no member's data: the police draw their alerts on them
    "SectorList": _shown("items"),
    "SectorView": _shown("id plp_id name geometry streets created_at"),
    "AlertSectors": _shown("items elsewhere"),
    "SectorReach": _shown("plp_id sector_id name geometry members reached acknowledged answers"),  # counts
    "AlertList": _shown("items"),
    # a drill schedule: its texts, its rule and who scheduled it; no member's data
    "DrillList": _shown("items"),
    "DrillSchedule": _shown("id plp_id author_id author_role urgency category texts rule created_at next_at"),
    "DrillRule": _shown("frequency weekday week at"),
    # a reach report's counts and times: no member's data; its not_reached list is hidden
    "ReachReport": _shown(
        "alert_id exercise members reached acknowledged channels acknowledged_over_time members_not_reached"
    ),
    "ChannelReach": _shown("channel deliveries by_status to_hand_over to_delivery"),
    "Timing": _shown("count p50 p90 max"),
    "AcknowledgedBy": _shown("after_seconds acknowledged share"),
    "AlertView": _shown(
        "id author_id author_role urgency category plp_ids texts ttl_seconds created_at about_alert_id "
        "expires_at status status_times relays counts cost held_until area follows kind follow_ups exercise answers "
        "answer_tally consenting"
    ),
    "AnswerOption": _shown("id texts consent"),
    "AnswerCount": _shown("id members"),
    # the member chose an answer that consents to be contacted by the police about this alert (and only this one)
    "ConsentingMember": _shown("member_id name phone answer answered_at"),
    # the area the police drew: their own input, no member's data
    "AreaIn": _shown("sectors circle streets"),
    "Circle": _shown("center address radius_m"),
    "Address": _shown("street number postcode commune"),  # an alert's circle's: where the offence was, no member's
    "Coordinates": _shown("lat lon"),
    "SectorCount": _shown("plp_id sector_id members"),
    "Relay": _shown("plp_id state decided_by decided_at reason texts"),
    "AlertCounts": _shown(
        "total by_status by_channel acknowledged members_unreachable members_opted_out escalated possible_duplicates "
        "members_unlocated by_sector"
    ),
    "StatusCounts": _shown("queued sending sent delivered outbox failed expired cancelled"),
    "AlertCost": _shown("sms_segments voice_minutes estimated currency"),
    "AlertPreview": _shown(
        "sms members_reached by_channel members_unreachable members_opted_out cost by_plp by_sector "
        "members_unlocated members_unlocated_left_out members_declined_non_urgent"
    ),
    "SmsTextView": _shown("language text encoding segments"),
    "AlertSnapshot": _shown("alert members members_acknowledged members_unreachable at acknowledgements"),
    "DeliveryPage": _shown("items next_cursor"),
    "DeliveryView": _shown(
        "id alert_id member_id channel status status_times attempts failures acknowledged_at acknowledged_via "
        "possible_duplicates"
    )
    | {"last_error": Sight.MASKED, "cause": Sight.MASKED},
    "FeedbackList": _shown("items"),
    # consented_name: only set for a member whose answer to the alert consents to be contacted by the police
    "FeedbackView": _shown("id alert_id plp_ids member_id channel received_at consented_name") | {"text": Sight.MASKED},
    "AlertAudience": _shown(
        "members reached acknowledged unreachable names_shown not_reached not_acknowledged unreachable_members "
        "truncated"
    ),
    "AudienceMember": _shown("member_id deliveries"),
    # the audit log holds ids, counts and field names only (``dispatcher.access.audit``); details masked again
    "AuditPage": _shown("items next_before"),
    # actor_name: an admin's, officer's or coordinator's name, never a member's
    "AuditEntryView": _shown("id at actor_id actor_name role action target") | {"detail": Sight.MASKED},
    "TokenList": _shown("items"),  # their own tokens: ids, owner, validity; never a secret
    "TokenView": _shown("id actor_id actor_name role issued_at expires_at revoked_at status"),
    "TokenIssued": _shown("actor token token_id expires_at"),  # their own new token, shown once
    "NotificationList": _shown("items"),
    "NotificationView": _shown(
        "id kind alert_id plp_id created_at language subject text planned acknowledged threshold read changes"
    ),
    "Evaluation": _shown(
        "plp_id plp_name commune police_zone year timezone period_start period_end complete generated_at members "
        "alerts reach urgent_first_acknowledgement feedback_replies cost months sectors"
    ),
    "SectorFigures": _shown("sector_id name alerts aimed members_targeted"),
    "MemberFigures": _shown("start end joined left opted_out"),
    "AlertTotals": _shown("total urgent non_urgent police_feedback by_category by_sender relays exercises"),
    "RelayCounts": _shown("approved declined expired awaiting"),
    "ReachFigures": _shown("urgent non_urgent exercises"),
    "Reach": _shown("members_targeted members_reached members_outbox reach members_acknowledged acknowledgement_rate"),
    "FirstAcknowledgement": _shown("alerts median_seconds"),
    "CostFigures": _shown("currency sms_segments voice_minutes estimated by_channel"),
    "ChannelCost": _shown("deliveries estimated"),
    "MonthFigures": _shown(
        "month members_joined members_left members_opted_out alerts urgent non_urgent police_feedback by_category "
        "feedback_replies exercises"
    ),
}


def sees_personal_data(actor: Actor) -> bool:
    """Whether the actor's role may see members' personal data at all (within their part)."""
    return actor.role is not Role.POLICE


def visible_to(actor: Actor, answer: M) -> M:
    """The answer as the actor may see it: whole, or for the police without members' personal data."""
    return answer if sees_personal_data(actor) else without_personal_data(answer)


def without_personal_data(view: M) -> M:
    """A copy of the view (and of the views in it) with only the fields of ``OUTSIDER_FIELDS``; the other
    fields are None, the masked ones have their contact points masked."""
    sights = OUTSIDER_FIELDS.get(type(view).__name__, {})
    update: dict[str, Any] = {}
    for name in type(view).model_fields:
        sight = sights.get(name)
        value = getattr(view, name)
        update[name] = None if sight is None else _masked(value) if sight is Sight.MASKED else _outsider(value)
    return view.model_copy(update=update)


def _outsider(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return without_personal_data(value)
    if isinstance(value, list):
        return [_outsider(v) for v in value]
    if isinstance(value, dict):
        return {k: _outsider(v) for k, v in value.items()}
    return value


def _masked(value: Any) -> Any:
    return mask_text(value) if isinstance(value, str) else value
