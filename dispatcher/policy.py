"""Who may do what: the role rules of the PLP communication plan, in one place.

Each rule returns nothing when the action is allowed and raises ``Denied`` with a
reason a person can read otherwise. The API turns ``Denied`` into a 403.

- Admins run the platform: they create PLPs, issue tokens, and may do everything.
- Police officers act for their police zone: they send urgent and non-urgent alerts
  to the PLPs of their zone and follow them; they never see members' personal data.
- Coordinators act for their own PLPs: they manage members, adapt the charter, relay
  (or decline) non-urgent police messages and send non-urgent advice themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from dispatcher.models import Actor, Alert, Plp, Role, Urgency


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


def can_change_charter(actor: Actor, plp: Plp) -> None:
    if _is_admin(actor) or (actor.role is Role.COORDINATOR and plp.id in actor.plp_ids):
        return
    raise Denied("only an admin or a coordinator of this PLP may change its charter")


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


def can_decide_relay(actor: Actor, plp: Plp) -> None:
    if _is_admin(actor) or (actor.role is Role.COORDINATOR and plp.id in actor.plp_ids):
        return
    raise Denied(f"only a coordinator of PLP {plp.id} may relay or decline messages for it")
