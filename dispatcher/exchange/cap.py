"""Our words in CAP 1.2, and back: the one place the mapping is written (docs/api.md shows it as a table).

CAP describes an alert with urgency, severity and certainty, a category from a fixed list, a status
and a message type; ours has an urgency, a category, and whether it is police feedback about an
earlier alert. Each mapping below is a table; the reverse ones are what a police system's document
is read as. The exact category travels as an ``eventCode`` of ours (``PLP-category``), each
target PLP as a ``geocode`` of its area (``PLP``), and the part of it an alert targets as geocodes and
shapes (``dispatcher.exchange.shapes``), so that a document we write reads back the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from dispatcher.core.models import Category, Language, MessageClass, Urgency

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
#: The media type of a CAP document (RFC 6838 registration by OASIS).
CAP_MEDIA_TYPE = "application/cap+xml"
#: The media types a CAP document may be posted with.
MEDIA_TYPES = frozenset({CAP_MEDIA_TYPE, "application/xml", "text/xml"})
#: The largest CAP document read: a few languages of 1,600 characters and their areas fit many times over.
MAX_DOCUMENT_BYTES = 256 * 1024

#: ``geocode/valueName`` of an area that is one of our PLPs; its ``value`` is the PLP's id.
GEOCODE_PLP = "PLP"
#: ``eventCode/valueName`` carrying our category exactly (CAP's categories are coarser).
EVENT_CODE_CATEGORY = "PLP-category"
#: The ``sender`` of our documents is this name at the service's host (CAP: globally unique, by domain name).
SENDER_NAME = "plp-dispatch"


class CapStatus(StrEnum):
    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class CapMsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


@dataclass(frozen=True)
class Assessment:
    """What CAP says of an alert beside its text: how soon to act, how bad, how sure, what to do."""

    urgency: str
    severity: str
    certainty: str
    response: str


#: An urgent alert is an offence that just happened (seen: Observed, act now: Immediate); prevention
#: advice is for later (Future) and possible; police feedback tells what became of an earlier alert
#: (no action any more: Past). Members never act as police: at most they watch (Monitor) or prepare.
ASSESSMENT: dict[MessageClass, Assessment] = {
    MessageClass.URGENT: Assessment("Immediate", "Moderate", "Observed", "Monitor"),
    MessageClass.NON_URGENT: Assessment("Future", "Minor", "Possible", "Prepare"),
    MessageClass.POLICE_FEEDBACK: Assessment("Past", "Minor", "Observed", "None"),
}
#: An all-clear of an alert: the event is over (Past), nothing more to do (CAP's own ``AllClear`` response).
ALL_CLEAR = Assessment("Past", "Minor", "Observed", "AllClear")
#: A document's ``urgency`` read back: action within the hour is urgent for us, anything later is not.
URGENCY_OF: dict[str, Urgency] = {
    "Immediate": Urgency.URGENT,
    "Expected": Urgency.URGENT,
    "Future": Urgency.NON_URGENT,
    "Past": Urgency.NON_URGENT,
    "Unknown": Urgency.NON_URGENT,
}

#: Our categories in CAP's list (burglary and suspects: law enforcement, "Security"; incivilities
#: in a PLP are environmental ones: "Env"; advice is general safety: "Safety").
CATEGORY: dict[Category, str] = {
    Category.BURGLARY: "Security",
    Category.SUSPECT_VEHICLE: "Security",
    Category.SUSPECT_PERSON: "Security",
    Category.INCIVILITY: "Env",
    Category.PREVENTION_ADVICE: "Safety",
    Category.OTHER: "Other",
}
#: A document without our ``PLP-category`` event code: its first CAP category, as far as it tells.
CATEGORY_OF: dict[str, Category] = {"Env": Category.INCIVILITY, "Safety": Category.PREVENTION_ADVICE}

#: The language of each ``info`` (RFC 3066 codes, as CAP asks): Belgium's three, English without region.
LANGUAGE_CODE: dict[Language, str] = {
    Language.FR: "fr-BE",
    Language.NL: "nl-BE",
    Language.DE: "de-BE",
    Language.EN: "en",
}
#: CAP's language when an ``info`` names none.
DEFAULT_LANGUAGE = "en-US"


def language_of(code: str) -> Language | None:
    """Our language for an RFC 3066 code (``fr``, ``fr-BE``, ``nl-NL``, ``EN-us``...), by its primary tag."""
    primary = code.split("-", 1)[0].lower()
    return next((language for language in Language if language.value == primary), None)


def status_of(*, exercise: bool) -> CapStatus:
    """An alert's CAP status: an exercise (a drill) is ``Exercise``, every other alert ``Actual``."""
    return CapStatus.EXERCISE if exercise else CapStatus.ACTUAL


def sender_for(public_base_url: str) -> str:
    """Our ``sender``: ``plp-dispatch@<the host the service is reached at>``."""
    return f"{SENDER_NAME}@{urlsplit(public_base_url).hostname or 'localhost'}"


def cap_time(moment: datetime) -> str:
    """A time as CAP writes it: to the second, with its offset, UTC as ``-00:00`` (never ``Z``)."""
    moment = moment.astimezone(UTC).replace(microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def reference(sender: str, identifier: str, sent: datetime) -> str:
    """An earlier message as ``references`` names it: ``sender,identifier,sent``."""
    return f"{sender},{identifier},{cap_time(sent)}"


def parse_time(text: str) -> datetime:
    """A CAP time (the schema checked its form) as an aware datetime; ``-00:00`` is UTC."""
    sign = -1 if text[19] == "-" else 1
    hours, minutes = int(text[20:22]), int(text[23:25])
    offset = timedelta(hours=hours, minutes=minutes) * sign
    return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC) - offset


@dataclass(frozen=True)
class CapArea:
    """One part of an alert's target as a CAP ``area``: its description, the PLP it is in (the ``PLP``
    geocode; None for a sector since removed), and what of the PLP when not all of it: one sector (its
    ``PLP-sector`` geocode and its shape's polygons), a circle, or streets (a ``PLP-street`` geocode each).
    ``polygons`` and ``circles`` are CAP's strings, ``lat,lon`` pairs in WGS 84 (``dispatcher.exchange.shapes``)."""

    plp_id: str | None
    description: str
    polygons: tuple[str, ...] = ()
    circles: tuple[str, ...] = ()
    sector_id: str | None = None
    streets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fault:
    """What is wrong in a document, and where: an XPath-like location (``/alert/info[2]/language``), or
    ``body`` for the document as a whole."""

    location: str
    reason: str


class CapRefused(ValueError):
    """A CAP document that cannot be read, or asks for what cannot be sent; ``faults`` say where and why.
    ``status`` is the HTTP status it stands for (422; 413 for a document too large)."""

    def __init__(self, faults: list[Fault], *, status: int = 422) -> None:
        super().__init__("; ".join(f"{f.location}: {f.reason}" for f in faults))
        self.faults, self.status = faults, status
