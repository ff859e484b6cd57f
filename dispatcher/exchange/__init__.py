"""Alerts exchanged with other systems as OASIS CAP 1.2 documents (Common Alerting Protocol): what each
of our words is in CAP and back (``cap``), an alert's area as CAP shapes and back (``shapes``), an alert
written as a CAP document (``writing``), and a CAP document read, checked against the OASIS schema and
turned into an alert to send, or into the cancel of one (``reading``).

It holds the formats only: no Redis, no request. The API loads the alert and its PLPs, calls these,
and sends what a document asks through the same intake as every alert. The OASIS schema ships beside
the code (``schema/CAP-v1.2.xsd``, with its notice); documents are parsed with lxml, never resolving
an entity, loading a DTD or reaching the network. Nothing of a member is ever written into a document.

May import: ``config``, ``dispatcher.core``.
"""

from dispatcher.exchange.cap import (
    CAP_MEDIA_TYPE,
    CAP_NAMESPACE,
    GEOCODE_PLP,
    MEDIA_TYPES,
    CapArea,
    CapRefused,
    Fault,
    sender_for,
)
from dispatcher.exchange.reading import CapAlert, PlpRef, Posted, Scope, parse, read_alert, read_cancel, scope_of
from dispatcher.exchange.shapes import GEOCODE_SECTOR, GEOCODE_STREET, circle_text, polygons_of
from dispatcher.exchange.writing import Earlier, alert_document

__all__ = [
    "CAP_MEDIA_TYPE",
    "CAP_NAMESPACE",
    "GEOCODE_PLP",
    "GEOCODE_SECTOR",
    "GEOCODE_STREET",
    "MEDIA_TYPES",
    "CapAlert",
    "CapArea",
    "CapRefused",
    "Earlier",
    "Fault",
    "PlpRef",
    "Posted",
    "Scope",
    "alert_document",
    "circle_text",
    "parse",
    "polygons_of",
    "read_alert",
    "read_cancel",
    "scope_of",
    "sender_for",
]
