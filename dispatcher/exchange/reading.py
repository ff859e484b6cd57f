"""A CAP 1.2 document read into an alert to send: parsed safely, checked against the OASIS schema, then
against what an alert of ours can be.

Parsing never resolves an entity, loads a DTD or reaches the network, and a document with a
``DOCTYPE`` is refused outright (entity expansion, external entities). Every fault found is named by
an XPath-like location in the document (``/alert/info[2]/language``), with the schema's message or
our reason; all the faults of a document are reported at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources

from lxml import etree

from dispatcher.core.models import Category, Language, Urgency
from dispatcher.core.places import AreaIn
from dispatcher.exchange.cap import (
    CAP_NAMESPACE,
    DEFAULT_LANGUAGE,
    EVENT_CODE_CATEGORY,
    GEOCODE_PLP,
    LANGUAGE_CODE,
    MAX_DOCUMENT_BYTES,
    URGENCY_OF,
    CapMsgType,
    CapRefused,
    CapStatus,
    Fault,
    language_of,
    parse_time,
)
from dispatcher.exchange.cap import CATEGORY_OF as CATEGORY_OF_CAP
from dispatcher.exchange.shapes import GEOCODE_SECTOR, GEOCODE_STREET, ShapeRefused, check_polygon, read_circle

#: The longest text of one language (as ``AlertIn`` takes it), and the most target PLPs.
MAX_TEXT = 1600
MAX_PLPS = 500
#: The most sectors, and the most streets, an alert's area names (as ``AreaIn`` takes them).
MAX_AREA_PARTS = 200
#: An alert's time-to-live, as an ``expires`` sets it: at least a minute, at most 30 days.
MIN_TTL, MAX_TTL = 60, 30 * 86400
_PLP_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_ALERT_ID = re.compile(r"^[0-9a-f]{16}$")
_CATEGORIES = [category.value for category in Category]
_REFER_TO_OURS = "{kind} refers to exactly one alert of ours: sender {sender}, the alert's id, its sent time"
_LANGUAGES = ", ".join(LANGUAGE_CODE.values())
_ELEMENT_IN_MESSAGE = re.compile(r"Element '([^']+)'")
_DOCTYPE = b"<!DOCTYPE"
_NO_DOCTYPE = "a DOCTYPE is not allowed in a CAP document (no DTD, no entity declarations: no entity is expanded)"
_NAMESPACE_IN_MESSAGES = f"{{{CAP_NAMESPACE}}}"


@dataclass(frozen=True)
class PlpRef:
    """A target PLP a document names, and where (the ``value`` of its ``PLP`` geocode)."""

    plp_id: str
    location: str


@dataclass(frozen=True)
class Posted:
    """A posted document: its bytes as received, its parsed root element, and (a ``Cancel``) the id of the
    alert it cancels, which the actor was found to be allowed to cancel."""

    data: bytes
    root: etree._Element
    cancels: str | None = None


@dataclass(frozen=True)
class Scope:
    """What a document asks, as far as it can be read before it is checked: its PLPs and whether it is urgent."""

    plp_ids: list[str]
    urgent: bool
    #: for a ``Cancel``, the id of the alert of ours its ``references`` name (None: not a Cancel, or none named)
    cancels: str | None = None


@dataclass(frozen=True)
class CapAlert:
    """The alert a valid document asks for, with where it names its PLPs and the earlier alert (an ``Update``)."""

    urgency: Urgency
    category: Category
    texts: dict[Language, str]
    plps: list[PlpRef]
    ttl_seconds: int | None
    sender: str
    identifier: str
    about_alert_id: str | None = None
    exercise: bool = False
    about_location: str = "/alert/references"
    #: the part of the PLPs it goes to (None: all of them), and where each of its sectors is named
    area: AreaIn | None = None
    sector_locations: tuple[str, ...] = ()


def parse(data: bytes) -> etree._Element:
    """The document's root element, parsed without entities, DTD or network; raises ``CapRefused``
    (413 past ``MAX_DOCUMENT_BYTES``; 422 for what is not XML, has a DOCTYPE, or is not a CAP 1.2 alert)."""
    if len(data) > MAX_DOCUMENT_BYTES:
        reason = f"the document is {len(data)} bytes; a CAP document here is at most {MAX_DOCUMENT_BYTES}"
        raise CapRefused([Fault("body", reason)], status=413)
    if not data.strip():
        raise CapRefused([Fault("body", "the body is empty: send a CAP 1.2 document")])
    if _DOCTYPE in data:  # before parsing: libxml2 would refuse an entity bomb with a vaguer message
        raise CapRefused([Fault("body", _NO_DOCTYPE)])
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, collect_ids=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise CapRefused([Fault("body", f"not well-formed XML: {exc}")]) from None
    if root.getroottree().docinfo.doctype:  # one in another encoding (UTF-16) than the search above reads
        raise CapRefused([Fault("body", _NO_DOCTYPE)])
    if root.tag != _tag("alert"):
        reason = f"the root element must be alert in the namespace {CAP_NAMESPACE}, not {_name(root)}"
        raise CapRefused([Fault(f"/{etree.QName(root).localname}", reason)])
    return root


def scope_of(root: etree._Element, *, sender: str) -> Scope:
    """The PLPs (``PLP`` geocodes) and urgency a parsed document names, and the alert of ours a ``Cancel``
    refers to, read leniently, before its schema is checked: what decides who may post it. ``sender`` is ours."""
    ids = [value for name, value, _ in _pairs(root, "geocode") if name == GEOCODE_PLP and _PLP_ID.match(value)]
    urgencies = [(u.text or "").strip() for u in root.iter(_tag("urgency"))]
    urgent = any(URGENCY_OF.get(u) is Urgency.URGENT for u in urgencies)
    ours = _ours(root, sender) if _text(root, "msgType") == CapMsgType.CANCEL else []
    cancels = ours[0] if len(ours) == 1 else None
    return Scope(plp_ids=list(dict.fromkeys(ids))[:MAX_PLPS], urgent=urgent, cancels=cancels)


def read_cancel(root: etree._Element, *, sender: str) -> str:
    """The id of the alert of ours a valid ``Cancel`` document cancels; raises ``CapRefused`` naming every
    fault (the schema's; a status other than Actual; ``references`` naming not exactly one alert of ours)."""
    _validate(root)
    faults = _status(root, exercise=False)
    if _text(root, "msgType") != CapMsgType.CANCEL:
        faults.append(Fault("/alert/msgType", "not a Cancel"))
    ours = _ours(root, sender)
    if len(ours) != 1:
        faults.append(Fault("/alert/references", _REFER_TO_OURS.format(kind="A Cancel", sender=sender)))
    if faults:
        raise CapRefused(faults)
    return ours[0]


def read_alert(root: etree._Element, *, sender: str, now: datetime) -> CapAlert:
    """The alert a parsed document asks for; raises ``CapRefused`` naming every fault: the schema's, then
    ours (a status other than Actual or Exercise, a message type that creates no alert, a language we do not
    write, a text missing or too long, no target PLP, an ``expires`` too soon or too far).
    ``sender`` is ours: an ``Update`` must refer to one of our alerts."""
    _validate(root)
    faults = _status(root)
    infos = root.findall(_tag("info"))
    about_alert_id = _about(root, sender, faults)
    if not infos:
        faults.append(Fault("/alert", "the alert has no info: give one per language, with its text and area"))
        raise CapRefused(faults)
    texts = _texts(infos, faults)
    urgency = _urgency(infos, faults, feedback=about_alert_id is not None)
    plps = _plps(infos, faults)
    area, sector_locations = _area(infos, faults)
    ttl = _ttl(infos[0], now, faults)
    category = _category(infos[0], faults)
    if faults:
        raise CapRefused(faults)
    return CapAlert(
        urgency=urgency,
        category=category,
        texts=texts,
        plps=plps,
        ttl_seconds=ttl,
        sender=_text(root, "sender"),
        identifier=_text(root, "identifier"),
        about_alert_id=about_alert_id,
        exercise=_text(root, "status") == CapStatus.EXERCISE,
        area=area,
        sector_locations=sector_locations,
    )


@cache
def _schema() -> etree.XMLSchema:
    """The OASIS CAP 1.2 schema shipped with the package (it imports nothing)."""
    source = resources.files("dispatcher.exchange").joinpath("schema/CAP-v1.2.xsd").read_bytes()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.fromstring(source, parser))


def _validate(root: etree._Element) -> None:
    # One schema per process, its error log read right after its own validation: the API validates on
    # its event loop's thread only, never from two threads at once.
    schema = _schema()
    if schema.validate(root.getroottree()):
        return
    faults = [Fault(_located(root, entry), _message(entry.message)) for entry in schema.error_log]
    raise CapRefused(faults or [Fault("/alert", "not valid against the CAP 1.2 schema")])


def _located(root: etree._Element, entry: etree._LogEntry) -> str:
    """The readable location of a schema error (libxml2 gives ``/*/*[3]`` for default-namespace elements)."""
    try:
        found = root.xpath(entry.path) if entry.path else []
    except etree.XPathError:
        found = []
    if found and isinstance(found[0], etree._Element):
        return where(found[0])
    named = _ELEMENT_IN_MESSAGE.match(entry.message)  # an element of another namespace: by its line and name
    on_line = [e for e in root.iter() if e.sourceline == entry.line and named and e.tag == named[1]]
    return where(on_line[0]) if on_line else f"/alert (line {entry.line})"


def _message(message: str) -> str:
    return message.replace(_NAMESPACE_IN_MESSAGES, "").strip()


def _status(root: etree._Element, *, exercise: bool = True) -> list[Fault]:
    """No fault for status Actual, nor for Exercise where ``exercise`` (a Cancel is Actual only: cancelling
    a drill by CAP is not read yet)."""
    status = _text(root, "status")
    if status == CapStatus.ACTUAL or (exercise and status == CapStatus.EXERCISE):
        return []
    if not exercise:
        return [Fault("/alert/status", f"{status} documents are not read as a Cancel: only Actual ones are")]
    reason = f"{status} documents are not sent: only Actual alerts and Exercise drills are"
    return [Fault("/alert/status", reason)]


def _about(root: etree._Element, sender: str, faults: list[Fault]) -> str | None:
    """For an ``Update`` (police feedback), the id of our alert it refers to; faults for other message types."""
    msg_type = _text(root, "msgType")
    if msg_type == CapMsgType.ALERT:
        return None
    if msg_type == CapMsgType.CANCEL:  # one naming an alert of ours is read by read_cancel
        faults.append(Fault("/alert/references", _REFER_TO_OURS.format(kind="A Cancel", sender=sender)))
        return None
    if msg_type != CapMsgType.UPDATE:
        reason = (
            f"an {msg_type} creates no alert: post an Alert, an Update referring to one of our alerts (police "
            "feedback), or a Cancel referring to one"
        )
        faults.append(Fault("/alert/msgType", reason))
        return None
    ours = _ours(root, sender)
    if len(ours) != 1:
        faults.append(Fault("/alert/references", _REFER_TO_OURS.format(kind="An Update", sender=sender)))
        return None
    return ours[0]


def _ours(root: etree._Element, sender: str) -> list[str]:
    """The ids of our alerts the document's ``references`` name (``sender,identifier,sent``, sender ours)."""
    return [
        parts[1]
        for triple in _text(root, "references").split()
        if len(parts := triple.split(",")) == 3 and parts[0] == sender and _ALERT_ID.match(parts[1])
    ]


def _texts(infos: list[etree._Element], faults: list[Fault]) -> dict[Language, str]:
    texts: dict[Language, str] = {}
    for info in infos:
        element = info.find(_tag("language"))
        code = (element.text or "").strip() if element is not None else DEFAULT_LANGUAGE
        language = language_of(code)
        at = where(element) if element is not None else f"{where(info)}/language"
        if language is None:
            faults.append(Fault(at, f"{code!r} is not a language of the service: {_LANGUAGES}"))
        elif language in texts:
            faults.append(Fault(at, f"a second info in {code}: give one info per language"))
        elif (text := _text_of(info, faults)) is not None:
            texts[language] = text
    return texts


def _text_of(info: etree._Element, faults: list[Fault]) -> str | None:
    """The text members get: the info's description, else its headline."""
    for name in ("description", "headline"):
        element = info.find(_tag(name))
        text = (element.text or "").strip() if element is not None else ""
        if text and len(text) > MAX_TEXT:
            faults.append(Fault(where(element), f"{len(text)} characters; a text is at most {MAX_TEXT}"))
            return None
        if text:
            return text
    faults.append(Fault(f"{where(info)}/description", "no text for members: give a description (or a headline)"))
    return None


def _urgency(infos: list[etree._Element], faults: list[Fault], *, feedback: bool) -> Urgency:
    urgencies = [(info.find(_tag("urgency")), URGENCY_OF[_text(info, "urgency")]) for info in infos]
    first = urgencies[0][1]
    for element, urgency in urgencies[1:]:
        if urgency is not first:
            faults.append(Fault(where(element), f"every info has the same urgency: the first is {first.value}"))
    if feedback and first is Urgency.URGENT:
        reason = "an Update (police feedback) is not urgent: Future, Past or Unknown"
        faults.append(Fault(where(urgencies[0][0]), reason))
    return first


def _category(info: etree._Element, faults: list[Fault]) -> Category:
    """Ours from the ``PLP-category`` event code, else from the first CAP category (``other`` if it tells nothing)."""
    for name, value, element in _pairs(info, "eventCode"):
        if name != EVENT_CODE_CATEGORY:
            continue
        if value not in _CATEGORIES:
            faults.append(Fault(where(element), f"{value!r} is not a category of ours: {', '.join(_CATEGORIES)}"))
        return Category(value) if value in _CATEGORIES else Category.OTHER
    return CATEGORY_OF_CAP.get(_text(info, "category"), Category.OTHER)


def _plps(infos: list[etree._Element], faults: list[Fault]) -> list[PlpRef]:
    found: dict[str, PlpRef] = {}
    for info in infos:
        for name, value, element in _pairs(info, "geocode"):
            if name != GEOCODE_PLP:
                continue
            if not _PLP_ID.match(value):
                faults.append(Fault(where(element), f"{value!r} is not a PLP id (lower-case letters, digits, -)"))
            found.setdefault(value, PlpRef(value, where(element)))
    if not found:
        reason = f"no target PLP: name each in an area, as a geocode {GEOCODE_PLP} whose value is the PLP's id"
        faults.append(Fault(f"{where(infos[0])}/area", reason))
    if len(found) > MAX_PLPS:
        faults.append(Fault(f"{where(infos[0])}/area", f"{len(found)} PLPs; an alert targets at most {MAX_PLPS}"))
    return list(found.values())


@dataclass
class _AreaParts:
    """What the areas of a document name beside PLPs, each with where it is first named."""

    sectors: dict[str, str]
    streets: dict[str, tuple[str, str]]  # by casefolded name: (the name, where)
    circles: dict[tuple[float, float, float], str]

    def kinds(self) -> list[tuple[str, str]]:
        """Each kind given (sectors, circle, streets), with where it is first named."""
        firsts = [
            ("sectors", next(iter(self.sectors.values()), None)),
            ("a circle", next(iter(self.circles.values()), None)),
            ("streets", next((at for _, at in self.streets.values()), None)),
        ]
        return [(kind, at) for kind, at in firsts if at is not None]


def _area(infos: list[etree._Element], faults: list[Fault]) -> tuple[AreaIn | None, tuple[str, ...]]:
    """The alert's area from its documents' areas (the union over the ``info``s), and where each sector is named:
    ``PLP-sector`` geocodes are sectors, a ``circle`` the circle, ``PLP-street`` geocodes the streets. A polygon
    is read only in the area of a sector (the sector's own shape is what counts); faults for anything else."""
    parts = _AreaParts(sectors={}, streets={}, circles={})
    for area in (a for info in infos for a in info.iterfind(_tag("area"))):
        _area_element(area, parts, faults)
    kinds = parts.kinds()
    if len(kinds) > 1:
        reason = f"an alert's area is one of sectors, a circle or streets: this document gives {kinds[0][0]} too"
        faults.append(Fault(kinds[1][1], reason))
    for name, found in (("sectors", len(parts.sectors)), ("streets", len(parts.streets))):
        if found > MAX_AREA_PARTS:
            faults.append(Fault(kinds[0][1], f"{found} {name}; an area names at most {MAX_AREA_PARTS}"))
    if len(parts.circles) > 1:
        reason = "every area gives the same circle: an alert's area is one circle"
        faults.append(Fault(list(parts.circles.values())[1], reason))
    if len(kinds) != 1 or faults:
        return None, ()
    return _area_in(parts), tuple(parts.sectors.values())


def _area_in(parts: _AreaParts) -> AreaIn:
    if parts.sectors:
        return AreaIn(sectors=list(parts.sectors))
    if parts.circles:
        lat, lon, radius_m = next(iter(parts.circles))
        return AreaIn(circle={"center": {"lat": lat, "lon": lon}, "radius_m": radius_m})
    return AreaIn(streets=[name for name, _ in parts.streets.values()])


def _area_element(area: etree._Element, parts: _AreaParts, faults: list[Fault]) -> None:
    geocodes = _pairs(area, "geocode")
    sectors = [(value, element) for name, value, element in geocodes if name == GEOCODE_SECTOR]
    for value, element in sectors:
        if not 1 <= len(value) <= 64:
            faults.append(Fault(where(element), f"{value!r} is not a sector id (1 to 64 characters)"))
        parts.sectors.setdefault(value, where(element))
    for value, element in ((v, e) for name, v, e in geocodes if name == GEOCODE_STREET):
        if not 2 <= len(value) <= 120:
            faults.append(Fault(where(element), f"{value!r} is not a street's name (2 to 120 characters)"))
        parts.streets.setdefault(value.casefold(), (value, where(element)))
    for polygon in area.iterfind(_tag("polygon")):
        _polygon(polygon, faults, of_sector=bool(sectors))
    for circle in area.iterfind(_tag("circle")):
        try:
            found = read_circle((circle.text or "").strip())
        except ShapeRefused as exc:
            faults.append(Fault(where(circle), str(exc)))
            continue
        parts.circles.setdefault((found.lat, found.lon, found.radius_m), where(circle))


def _polygon(polygon: etree._Element, faults: list[Fault], *, of_sector: bool) -> None:
    try:
        check_polygon((polygon.text or "").strip())
    except ShapeRefused as exc:
        faults.append(Fault(where(polygon), str(exc)))
        return
    if not of_sector:
        reason = (
            f"a polygon is read only in the area of one of our sectors (a geocode {GEOCODE_SECTOR} naming it): "
            "an alert targets whole PLPs, some of their sectors, a circle or streets"
        )
        faults.append(Fault(where(polygon), reason))


def _ttl(info: etree._Element, now: datetime, faults: list[Fault]) -> int | None:
    """The time-to-live the first info's ``expires`` sets (None: the charters')."""
    element = info.find(_tag("expires"))
    if element is None:
        return None
    try:
        seconds = int((parse_time((element.text or "").strip()) - now).total_seconds())
    except (ValueError, OverflowError):  # a time the schema takes but a calendar does not (24:00:00, year 9999+14h)
        faults.append(Fault(where(element), "not a time that can be read: write YYYY-MM-DDThh:mm:ss+hh:mm"))
        return None
    if not MIN_TTL <= seconds <= MAX_TTL:
        reason = f"expires in {seconds} s: an alert lives from {MIN_TTL} s to 30 days (leave it out: the charter's)"
        faults.append(Fault(where(element), reason))
    return seconds


def _pairs(parent: etree._Element, name: str) -> list[tuple[str, str, etree._Element]]:
    """Every ``name`` under ``parent`` as (valueName, value, the value element), stripped."""
    found = []
    for pair in parent.iter(_tag(name)):
        value = pair.find(_tag("value"))
        if value is not None:
            found.append((_text(pair, "valueName"), (value.text or "").strip(), value))
    return found


def where(element: etree._Element) -> str:
    """An element's location: ``/alert/info[2]/area/geocode/value`` (an index where it has same-named siblings)."""
    steps = []
    for node in [element, *element.iterancestors()]:
        step = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None and len(same := [c for c in parent if c.tag == node.tag]) > 1:
            step += f"[{same.index(node) + 1}]"
        steps.append(step)
    return "/" + "/".join(reversed(steps))


def _text(parent: etree._Element, name: str) -> str:
    return (parent.findtext(_tag(name)) or "").strip()


def _tag(name: str) -> str:
    return f"{{{CAP_NAMESPACE}}}{name}"


def _name(element: etree._Element) -> str:
    qname = etree.QName(element)
    return f"{qname.localname} in the namespace {qname.namespace}" if qname.namespace else f"{qname.localname}"
