"""An alert written as a CAP 1.2 document: one ``info`` per language of its texts, one ``area`` per PLP (per
sector, for an alert to some sectors).

What goes in is what the alert's readers see of it anyway (its texts, category, urgency, times and
target PLPs); nothing of a member, no delivery, no count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from dispatcher.core import wording
from dispatcher.core.models import Alert, FollowUpKind, Language
from dispatcher.exchange.cap import (
    ALL_CLEAR,
    ASSESSMENT,
    CAP_NAMESPACE,
    CATEGORY,
    EVENT_CODE_CATEGORY,
    GEOCODE_PLP,
    LANGUAGE_CODE,
    CapArea,
    CapMsgType,
    cap_time,
    reference,
    status_of,
)
from dispatcher.exchange.shapes import GEOCODE_SECTOR, GEOCODE_STREET

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
#: Longest headline: CAP asks for one that fits a short message (160 characters).
HEADLINE_LENGTH = 160
#: Who an alert is for (CAP ``restriction``: the document's scope is ``Restricted``).
RESTRICTION = "Members of the Local Prevention Partnerships (PLP) named in its areas, per their charter"
#: Characters XML 1.0 cannot hold (control characters but tab and line breaks, lone surrogates, U+FFFE/F).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ZONE = {
    Language.FR: "Zone de police {zone}",
    Language.NL: "Politiezone {zone}",
    Language.DE: "Polizeizone {zone}",
    Language.EN: "Police zone {zone}",
}


@dataclass(frozen=True)
class Earlier:
    """The message a document refers to (``references``): its identifier and when it was sent."""

    identifier: str
    sent: datetime


def alert_document(
    alert: Alert,
    *,
    sender: str,
    areas: list[CapArea],
    police_zone: str | None = None,
    cancelled_at: datetime | None = None,
    about: Earlier | None = None,
) -> bytes:
    """The alert as a CAP 1.2 document (UTF-8, with its XML declaration).

    A cancelled alert (``cancelled_at``) is written as its ``Cancel``, identified ``<id>-cancel`` and
    referring to the alert; police feedback about an earlier alert, or a follow-up of one (``about``), as an
    ``Update`` referring to it (an all-clear's ``responseType`` is ``AllClear``); any other alert as an
    ``Alert``. ``police_zone``, when all its PLPs share one, names the sender in each language.
    """
    root = etree.Element(_tag("alert"), nsmap={None: CAP_NAMESPACE})
    identifier, sent, msg_type, earlier = _envelope(alert, cancelled_at=cancelled_at, about=about)
    _add(root, "identifier", identifier)
    _add(root, "sender", sender)
    _add(root, "sent", cap_time(sent))
    _add(root, "status", status_of(exercise=alert.exercise).value)
    _add(root, "msgType", msg_type.value)
    _add(root, "scope", "Restricted")
    _add(root, "restriction", RESTRICTION)
    if earlier is not None:
        _add(root, "references", reference(sender, earlier.identifier, earlier.sent))
    for language, text in alert.texts.items():
        _info(root, alert, language, text, areas=areas, police_zone=police_zone)
    return (XML_DECLARATION + etree.tostring(root, encoding="unicode", pretty_print=True)).encode()


def _envelope(
    alert: Alert, *, cancelled_at: datetime | None, about: Earlier | None
) -> tuple[str, datetime, CapMsgType, Earlier | None]:
    """The document's identifier, time, type, and the message it refers to."""
    if cancelled_at is not None:
        return f"{alert.id}-cancel", cancelled_at, CapMsgType.CANCEL, Earlier(alert.id, alert.created_at)
    if about is not None:
        return alert.id, alert.created_at, CapMsgType.UPDATE, about
    return alert.id, alert.created_at, CapMsgType.ALERT, None


def _info(
    root: etree._Element,
    alert: Alert,
    language: Language,
    text: str,
    *,
    areas: list[CapArea],
    police_zone: str | None,
) -> None:
    assessment = ALL_CLEAR if alert.kind is FollowUpKind.ALL_CLEAR else ASSESSMENT[alert.message_class]
    info = _add(root, "info")
    _add(info, "language", LANGUAGE_CODE[language])
    _add(info, "category", CATEGORY[alert.category])
    _add(info, "event", _event(alert, language))
    _add(info, "responseType", assessment.response)
    _add(info, "urgency", assessment.urgency)
    _add(info, "severity", assessment.severity)
    _add(info, "certainty", assessment.certainty)
    _pair(info, "eventCode", EVENT_CODE_CATEGORY, alert.category.value)
    _add(info, "expires", cap_time(alert.created_at + timedelta(seconds=alert.ttl_seconds)))
    if police_zone is not None:
        _add(info, "senderName", _ZONE[language].format(zone=police_zone))
    marked = text if alert.kind is None else wording.follow_up_text(alert.kind, alert.category, text, language)
    _add(info, "headline", _headline(marked))  # a follow-up's says what it is: "All clear (burglary): ..."
    _add(info, "description", text)
    _add(info, "instruction", wording.emergency_reminder(language))
    for area in areas:
        _area(info, area)


def _event(alert: Alert, language: Language) -> str:
    name = wording.category_name(alert.category, language)
    return name[:1].upper() + name[1:]


def _headline(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= HEADLINE_LENGTH else line[: HEADLINE_LENGTH - 1].rstrip() + "…"


def _area(info: etree._Element, area: CapArea) -> None:
    element = _add(info, "area")
    _add(element, "areaDesc", area.description)
    for polygon in area.polygons:
        _add(element, "polygon", polygon)
    for circle in area.circles:
        _add(element, "circle", circle)
    if area.plp_id is not None:
        _pair(element, "geocode", GEOCODE_PLP, area.plp_id)
    if area.sector_id is not None:
        _pair(element, "geocode", GEOCODE_SECTOR, area.sector_id)
    for street in area.streets:
        _pair(element, "geocode", GEOCODE_STREET, street)


def _pair(parent: etree._Element, name: str, value_name: str, value: str) -> None:
    pair = _add(parent, name)
    _add(pair, "valueName", value_name)
    _add(pair, "value", value)


def _add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _tag(name))
    element.text = None if text is None else _NOT_XML.sub("", text)
    return element


def _tag(name: str) -> str:
    return f"{{{CAP_NAMESPACE}}}{name}"
