"""Residents asking to join a PLP on its public join page, and its coordinators deciding.

A PLP's join page is off until a coordinator (or an admin) turns it on with a privacy notice in
each of the four languages (``JoinPage``). A resident gives their name, a mobile number and/or an
e-mail address, their language and, where the PLP has sectors, their address, and accepts the
notice (``start``): a one-time code goes to each contact point (``dispatcher.access.codes``: 10
minutes, ``CODES_PER_HOUR`` per contact point, five wrong codes lock it for an hour). With every
code right (``confirm``) the request waits for a coordinator, who approves it (``approve``: the
member is created, their consent recorded with its time and source ``join-page``) or declines it
with a reason (``decline``).

Nobody learns who is a member: a contact point that already belongs to a member of this PLP gets
the same answer on the page, but no code; that member is told instead, by that contact point
(``Started.already``), and the request can only expire.

A request holds personal data, so it does not stay: while codes are awaited, ``CODE_TTL``; waiting
for a coordinator, ``PENDING_DAYS``; declined, ``DECLINED_DAYS`` (so the coordinators can see what
was declined and why); approved, it is erased at once (the member's record holds what is needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, cast

from pydantic import BaseModel, Field, StrictBool, model_validator

from dispatcher.access import codes
from dispatcher.access.codes import CODE_TTL, CodeKeys, CodeRefused
from dispatcher.core.contacts import contact_digest, normalise_email, normalise_mobile
from dispatcher.core.models import Address, ChannelName, ConsentSource, Language, Member, MemberIn, Plp, Strict
from dispatcher.people import membership
from dispatcher.people.contact_change import ContactKind
from dispatcher.storage.store import Conflict as Taken
from dispatcher.storage.store import Store, new_id

#: Codes sent to one phone number or e-mail address for join requests, at most, an hour.
CODES_PER_HOUR = 3
#: Days a confirmed request waits for a coordinator before it is erased.
PENDING_DAYS = 60
#: Days a declined request is kept (with its reason) before it is erased.
DECLINED_DAYS = 30
#: Longest privacy notice, per language.
MAX_NOTICE = 8000

Notice = Annotated[str, Field(min_length=1, max_length=MAX_NOTICE)]


class JoinPage(Strict):
    """A PLP's public join page: on or off, and the privacy notice a resident accepts, per language."""

    enabled: StrictBool = Field(default=False, description="Whether the PLP's join page is open to residents")
    privacy_notice: dict[Language, Notice] = Field(
        default_factory=dict, description="The PLP's privacy notice, per language (all four to turn the page on)"
    )

    @model_validator(mode="after")
    def _notice_in_every_language(self) -> JoinPage:
        missing = [language.value for language in Language if not self.privacy_notice.get(language, "").strip()]
        if self.enabled and missing:
            raise ValueError(f"a join page needs its privacy notice in every language; missing: {', '.join(missing)}")
        return self


class JoinState(StrEnum):
    CONFIRMING = "confirming"  # codes sent, not all confirmed yet
    PENDING = "pending"  # confirmed: waits for a coordinator
    DECLINED = "declined"


class JoinRequest(BaseModel):
    """A resident's request to join a PLP (personal data: it expires, see the module)."""

    id: str
    plp_id: str
    state: JoinState
    name: str
    phone: str | None = None
    email: str | None = None
    language: Language
    address: Address | None = None
    privacy_accepted_at: datetime = Field(description="When the resident accepted the PLP's privacy notice")
    created_at: datetime
    confirmed: list[ContactKind] = Field(default_factory=list, description="The contact points confirmed by code")
    confirmed_at: datetime | None = Field(default=None, description="When every contact point was confirmed")
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None

    def contact(self, kind: ContactKind) -> str | None:
        return self.phone if kind is ContactKind.PHONE else self.email

    @property
    def kinds(self) -> list[ContactKind]:
        """The contact points the request gives."""
        return [kind for kind in ContactKind if self.contact(kind)]

    def told_by(self) -> tuple[ChannelName, str]:
        """The confirmed contact point the resident is told the decision by: their e-mail, else their phone."""
        if self.email:
            return ChannelName.EMAIL, self.email
        return ChannelName.SMS, cast(str, self.phone)


@dataclass(frozen=True)
class JoinForm:
    """What the resident wrote on the page (contact points as written)."""

    name: str
    phone: str
    email: str
    language: Language
    address: Address | None
    privacy_accepted: bool


class JoinRefused(ValueError):
    """A form that cannot start a request; ``reason``: ``name``, ``contact``, ``privacy`` or ``invalid``
    (``detail`` then says why)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Started:
    """A request waiting for its codes: each code to send (None: not sent), and the contact points that belong to
    a member of the PLP already (to be told so instead)."""

    request: JoinRequest
    codes: dict[ContactKind, str | None]
    already: list[tuple[ContactKind, str, Member]]


class Conflict(Exception):
    """The request is not (or no longer) waiting for a decision, or the person cannot be added; says why."""


# -- the page's settings ---------------------------------------------------------------------------------


async def join_page(store: Store, plp_id: str) -> JoinPage:
    """The PLP's join page settings (off, with no notice, until set)."""
    raw = await store.redis.get(store.keys.join_page(plp_id))
    return JoinPage.model_validate_json(raw) if raw else JoinPage()


async def set_join_page(store: Store, plp_id: str, page: JoinPage) -> None:
    await store.redis.set(store.keys.join_page(plp_id), page.model_dump_json())


# -- the resident ----------------------------------------------------------------------------------------


def _code_keys(store: Store, request_id: str, kind: ContactKind, value: str) -> CodeKeys:
    digest = contact_digest(kind.value, value)
    keys = store.keys
    return CodeKeys(
        pending=keys.join_code(request_id, kind.value),
        sent=keys.join_contact_codes(digest),
        lock=keys.join_contact_lock(digest),
    )


def _checked(form: JoinForm, region: str) -> tuple[str, str | None, str | None]:
    """The name and the contact points, normalised; raises ``JoinRefused``."""
    name = " ".join(form.name.split())
    if not name or len(name) > 100:
        raise JoinRefused("name")
    if not form.phone.strip() and not form.email.strip():
        raise JoinRefused("contact")
    if not form.privacy_accepted:
        raise JoinRefused("privacy")
    try:
        phone = normalise_mobile(form.phone, region=region) if form.phone.strip() else None
        email = normalise_email(form.email) if form.email.strip() else None
    except ValueError as exc:  # InvalidContact
        raise JoinRefused("invalid", str(exc)) from None
    return name, phone, email


async def start(store: Store, plp: Plp, form: JoinForm, *, region: str) -> Started:
    """Keep a new request while its codes are awaited; return the codes to send.

    Raises ``JoinRefused`` for a form that cannot be used and ``CodeRefused`` (``rate``, ``locked``) when a
    contact point had too many codes or wrong codes.
    """
    name, phone, email = _checked(form, region)
    now = datetime.now(UTC)
    request = JoinRequest(
        id=new_id(),
        plp_id=plp.id,
        state=JoinState.CONFIRMING,
        name=name,
        phone=phone,
        email=email,
        language=form.language,
        address=form.address,
        privacy_accepted_at=now,
        created_at=now,
    )
    sent: dict[ContactKind, str | None] = {}
    already: list[tuple[ContactKind, str, Member]] = []
    for kind in request.kinds:
        value = cast(str, request.contact(kind))
        code = await codes.issue(
            store.redis, _code_keys(store, request.id, kind, value), salt=request.id, fields={}, per_hour=CODES_PER_HOUR
        )
        member = await _member_of(store, plp, kind, value)
        sent[kind] = None if member is not None else code
        if member is not None:
            already.append((kind, value, member))
    await _save(store, request, ttl=CODE_TTL)
    return Started(request, sent, already)


async def _member_of(store: Store, plp: Plp, kind: ContactKind, value: str) -> Member | None:
    """The member of this PLP who has this contact point, if any."""
    member_id = await store.find_member_by_contact(**{"phone": None, "email": None, kind.value: value})
    member = await store.get_member(member_id) if member_id else None
    return member if member is not None and plp.id in member.plp_ids else None


async def confirm(store: Store, request: JoinRequest, entered: dict[ContactKind, str]) -> JoinRequest:
    """Check the code of each contact point not confirmed yet; once all are, the request waits for a coordinator.

    Raises ``CodeRefused`` as ``dispatcher.access.codes.check`` does, for the first code that is not right (the
    codes right before it stay confirmed).
    """
    for kind in request.kinds:
        if kind in request.confirmed:
            continue
        keys = _code_keys(store, request.id, kind, cast(str, request.contact(kind)))
        await codes.check(store.redis, keys, salt=request.id, code=entered.get(kind, ""))
        request = request.model_copy(update={"confirmed": [*request.confirmed, kind]})
        await _save(store, request, ttl=CODE_TTL)
    waiting = request.model_copy(update={"state": JoinState.PENDING, "confirmed_at": datetime.now(UTC)})
    await _save(store, waiting, ttl=PENDING_DAYS * 86400)
    return waiting


# -- the coordinators ------------------------------------------------------------------------------------


#: Seconds a request is kept in each state.
KEPT = {
    JoinState.CONFIRMING: CODE_TTL,
    JoinState.PENDING: PENDING_DAYS * 86400,
    JoinState.DECLINED: DECLINED_DAYS * 86400,
}


async def save(store: Store, request: JoinRequest) -> None:
    """Keep the request (and file it in its PLP's list) for as long as its state allows (``KEPT``)."""
    await _save(store, request, ttl=KEPT[request.state])


async def _save(store: Store, request: JoinRequest, *, ttl: int) -> None:
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.set(store.keys.join_request(request.id), request.model_dump_json(), ex=ttl)
        pipe.zadd(store.keys.join_requests(request.plp_id), {request.id: request.created_at.timestamp()})
        await pipe.execute()


async def get(store: Store, request_id: str) -> JoinRequest | None:
    raw = await store.redis.get(store.keys.join_request(request_id))
    return JoinRequest.model_validate_json(raw) if raw else None


async def requests_of(store: Store, plp_id: str) -> list[JoinRequest]:
    """The PLP's requests waiting for a decision or declined, newest first (those expired are dropped)."""
    index = store.keys.join_requests(plp_id)
    ids = cast(list[str], await store.redis.zrange(index, 0, -1, desc=True))
    raws = await store.redis.mget([store.keys.join_request(i) for i in ids]) if ids else []
    gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
    if gone:
        await store.redis.zrem(index, *gone)
    found = [JoinRequest.model_validate_json(raw) for raw in raws if raw]
    return [r for r in found if r.state is not JoinState.CONFIRMING]


async def approve(store: Store, plp: Plp, request: JoinRequest, *, region: str, geocoder: bool) -> tuple[Member, bool]:
    """Add the resident to the PLP (consent: its time and source ``join-page``) and erase the request; return the
    member and whether they existed already (in another PLP). Raises ``Conflict``."""
    if request.state is not JoinState.PENDING:
        raise Conflict(f"this request is {request.state.value}, not waiting for a decision")
    data = MemberIn(
        name=request.name,
        phone=request.phone,
        email=request.email,
        language=request.language,
        consent_at=request.privacy_accepted_at,
        address=request.address,
    )
    try:
        member, existed = await membership.enroll(
            store, plp, data, region=region, geocoder=geocoder, source=ConsentSource.JOIN_PAGE
        )
    except Taken as exc:
        raise Conflict(str(exc)) from None
    await _erase(store, request)
    return member, existed


async def decline(store: Store, request: JoinRequest, *, actor_id: str, reason: str) -> JoinRequest:
    """Mark the request declined with its reason, kept ``DECLINED_DAYS``; raises ``Conflict``."""
    if request.state is not JoinState.PENDING:
        raise Conflict(f"this request is {request.state.value}, not waiting for a decision")
    declined = request.model_copy(
        update={"state": JoinState.DECLINED, "decided_by": actor_id, "decided_at": datetime.now(UTC), "reason": reason}
    )
    await _save(store, declined, ttl=DECLINED_DAYS * 86400)
    return declined


async def _erase(store: Store, request: JoinRequest) -> None:
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.delete(store.keys.join_request(request.id))
        pipe.zrem(store.keys.join_requests(request.plp_id), request.id)
        await pipe.execute()


__all__ = [
    "CODE_TTL",
    "CodeRefused",
    "Conflict",
    "ContactKind",
    "JoinForm",
    "JoinPage",
    "JoinRefused",
    "JoinRequest",
    "JoinState",
    "Started",
    "approve",
    "confirm",
    "decline",
    "get",
    "join_page",
    "requests_of",
    "save",
    "set_join_page",
    "start",
]
