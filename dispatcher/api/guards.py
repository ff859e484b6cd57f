"""Who may call each operation: the checks the routing layer runs before a request's input is read.

Each guard loads what the path names (a 404 if it does not exist), applies the rule of
``dispatcher.access.policy`` (``Denied``: a 403) and returns what it loaded, which the handler
finds in ``Call.scope``. Running them first means an actor outside a resource's scope gets
the same 403 or 404 whatever body or query they send (``dispatcher.api.routing``).
"""

from __future__ import annotations

from typing import Any

from dispatcher import exchange
from dispatcher.access import policy
from dispatcher.api.problems import Problem, cap_problem
from dispatcher.api.routing import Authorize, Call, read_cap, read_json
from dispatcher.api.services import alert_or_404, plp_or_404, services
from dispatcher.core.models import Alert, Member, Plp, Urgency
from dispatcher.storage.records import TokenRecord

#: At most this many PLPs of a body are looked up to check its scope (AlertIn allows as many).
_MAX_TARGETS = 500


async def anyone(call: Call) -> None:
    """Every actor: the answer is limited to their own part (their zone, their PLPs, their notifications)."""


def admin(action: str) -> Authorize:
    """Admins only; ``action`` completes the refusal ("only an admin may ...")."""

    async def authorize(call: Call) -> None:
        policy.require_admin(call.who, action)

    return authorize


async def token_owner(call: Call) -> None:
    """The actor of the path (issuing themselves a token) or an admin."""
    policy.can_manage_tokens(call.who, call.path("actor_id"))


async def token_revoker(call: Call) -> TokenRecord:
    """The owner of the path's token or an admin; returns the token's record (unknown: 404)."""
    found = await services(call).store.get_tokens([call.path("token_id")])
    if not found:
        raise Problem(404, "Not found", f"no token {call.path('token_id')!r}")
    policy.can_manage_tokens(call.who, found[0].actor_id)
    return found[0]


async def plp_reader(call: Call) -> Plp:
    plp = await plp_or_404(call, call.path("plp_id"))
    policy.can_read_plp(call.who, plp)
    return plp


async def drill_scheduler(call: Call) -> Plp:
    plp = await plp_or_404(call, call.path("plp_id"))
    policy.can_schedule_drills(call.who, plp)
    return plp


async def charter_editor(call: Call) -> Plp:
    plp = await plp_or_404(call, call.path("plp_id"))
    policy.can_change_charter(call.who, plp)
    return plp


async def evaluation_reader(call: Call) -> Plp:
    plp = await plp_or_404(call, call.path("plp_id"))
    policy.can_read_evaluation(call.who, plp)
    return plp


async def join_page_editor(call: Call) -> Plp:
    """Those who set the path's PLP's join page: its coordinators and admins."""
    plp = await plp_or_404(call, call.path("plp_id"))
    policy.can_manage_join_page(call.who, plp)
    return plp


async def join_decider(call: Call) -> Plp:
    """Those who read and decide the path's PLP's join requests: its coordinators and admins."""
    plp = await plp_or_404(call, call.path("plp_id"))
    policy.can_decide_joins(call.who, plp)
    return plp


async def member_manager(call: Call) -> Plp:
    """Those who manage the members of the path's PLP."""
    plp = await plp_or_404(call, call.path("plp_id"))
    policy.can_manage_members(call.who, plp)
    return plp


async def member_keeper(call: Call) -> tuple[Plp, Member]:
    """Those who manage the members of the path's PLP, when the path's member is one of them (else 404)."""
    plp = await member_manager(call)
    member_id = call.path("member_id")
    member = await services(call).store.get_member(member_id)
    if member is None or plp.id not in member.plp_ids:
        raise Problem(404, "Not found", f"no member {member_id!r} in PLP {plp.id}")
    return plp, member


async def alert_reader(call: Call) -> tuple[Alert, list[Plp]]:
    """Those with one of the alert's PLPs in their part; returns the alert and its (existing) PLPs."""
    alert, plps = await alert_or_404(call, call.path("alert_id"))
    policy.can_read_alert(call.who, plps)
    return alert, plps


async def alert_canceller(call: Call) -> tuple[Alert, list[Plp]]:
    alert, plps = await alert_reader(call)
    policy.can_cancel(call.who, alert, plps)
    return alert, plps


async def alert_follower(call: Call) -> tuple[Alert, list[Plp]]:
    """Those who may send the alert an update or an all-clear (as ``policy.can_follow_up``)."""
    alert, plps = await alert_reader(call)
    policy.can_follow_up(call.who, alert, plps)
    return alert, plps


async def relay_decider(call: Call) -> tuple[Alert, Plp]:
    """A coordinator of the path's PLP (or an admin), for an alert that targets it."""
    alert, plps = await alert_or_404(call, call.path("alert_id"))
    plp_id = call.path("plp_id")
    plp = next((p for p in plps if p.id == plp_id), None)
    if plp is None:
        raise Problem(404, "Not found", f"the alert does not target PLP {plp_id!r}")
    policy.can_decide_relay(call.who, plp)
    return alert, plp


async def alert_sender(call: Call) -> None:
    """Those who may send to the PLPs a body names, at its urgency, as far as the raw body says.

    An alert's scope is in its body, so this reads the JSON before it is validated, leniently:
    the ids that are strings, the urgency if it is one (else the least demanding, non-urgent).
    The full check runs again once the body is valid; a body that is not JSON is refused first.
    """
    raw = await read_json(call.request)
    fields: dict[str, Any] = raw if isinstance(raw, dict) else {}
    named = fields.get("plp_ids")
    ids = [i for i in named[:_MAX_TARGETS] if isinstance(i, str)] if isinstance(named, list) else []
    named_urgency = fields.get("urgency")
    urgent = isinstance(named_urgency, str) and named_urgency == Urgency.URGENT.value
    found = await services(call).store.get_plps(ids) if ids else {}
    plps = [p for p in found.values() if p is not None]
    policy.can_send(call.who, Urgency.URGENT if urgent else Urgency.NON_URGENT, plps)


async def cap_sender(call: Call) -> exchange.Posted:
    """Those who may do what a posted CAP document asks, as far as the parsed document says before its
    schema is checked: send to its ``PLP`` geocodes at its urgency (as ``alert_sender`` for JSON), or, for a
    ``Cancel``, cancel the alert of ours it refers to (as ``alert_canceller``; 404 naming ``references`` for an
    alert we do not have). A body that is no XML, or no CAP 1.2 alert, is refused first; returns the parsed
    document."""
    data = await read_cap(call.request)
    try:
        root = exchange.parse(data)
    except exchange.CapRefused as exc:
        raise cap_problem(exc) from None
    store = services(call).store
    scope = exchange.scope_of(root, sender=exchange.sender_for(services(call).runtime.settings.public_base_url))
    if scope.cancels is not None:
        alert = await store.get_alert(scope.cancels)
        if alert is None:
            error = {"field": "/alert/references", "reason": f"no alert {scope.cancels!r}"}
            raise Problem(404, "Not found", f"no alert {scope.cancels!r} to cancel", errors=[error])
        plps = [p for p in (await store.get_plps(alert.plp_ids)).values() if p is not None]
        policy.can_read_alert(call.who, plps)
        policy.can_cancel(call.who, alert, plps)
        return exchange.Posted(data=data, root=root, cancels=alert.id)
    found = await store.get_plps(scope.plp_ids) if scope.plp_ids else {}
    plps = [p for p in found.values() if p is not None]
    policy.can_send(call.who, Urgency.URGENT if scope.urgent else Urgency.NON_URGENT, plps)
    return exchange.Posted(data=data, root=root)
