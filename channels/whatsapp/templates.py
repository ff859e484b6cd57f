"""The message templates WhatsApp sends outside the 24-hour window: one per purpose, language and number of answers.

A business may start a conversation only with a template Meta approved. Each of ours has the
message as its one body parameter (``{{1}}``: the subject and the text, on one line, as Meta
wants a parameter) after a fixed heading, and quick-reply buttons: the "received" button first,
then one numbered button per answer option of the alert (the options' words are in the
parameter, numbered: a button's text is fixed in the template). A button's payload is set per
message: the dispatcher's ``ack:<delivery>`` or ``ans:<n>:<delivery>``.

The names are ``<prefix>_<purpose>`` with ``_a<n>`` for a template with ``n`` answer buttons
(``plp_urgent``, ``plp_urgent_a2``); ``registrations`` gives every one of them in the Graph API's
shape, for ``POST /<WABA id>/message_templates``; the README lists the texts.
"""

from __future__ import annotations

import re
from typing import Any

from channels.base import Purpose
from dispatcher.core.models import MAX_ANSWERS, Language

#: The heading of each template's body, before the message (``{{1}}``), by purpose and language.
HEADINGS: dict[Purpose, dict[Language, str]] = {
    Purpose.URGENT: {
        Language.FR: "🚨 Alerte urgente de votre PLP",
        Language.NL: "🚨 Dringende melding van uw BIN",
        Language.DE: "🚨 Dringende Warnung Ihrer PLP",
        Language.EN: "🚨 Urgent alert from your PLP",
    },
    Purpose.NON_URGENT: {
        Language.FR: "ℹ️ Message de votre PLP",
        Language.NL: "ℹ️ Bericht van uw BIN",
        Language.DE: "ℹ️ Nachricht Ihrer PLP",
        Language.EN: "ℹ️ Message from your PLP",
    },
    Purpose.POLICE_FEEDBACK: {
        Language.FR: "👮 Retour de la police sur une alerte de votre PLP",
        Language.NL: "👮 Terugkoppeling van de politie over een melding van uw BIN",
        Language.DE: "👮 Rückmeldung der Polizei zu einer Warnung Ihrer PLP",
        Language.EN: "👮 Police feedback on an alert from your PLP",
    },
    Purpose.FOLLOW_UP: {
        Language.FR: "🔁 Suite d'une alerte de votre PLP",
        Language.NL: "🔁 Vervolg op een melding van uw BIN",
        Language.DE: "🔁 Fortsetzung einer Warnung Ihrer PLP",
        Language.EN: "🔁 Follow-up of an alert from your PLP",
    },
    Purpose.DRILL: {
        Language.FR: "🧪 EXERCICE de votre PLP (pas une vraie alerte)",
        Language.NL: "🧪 OEFENING van uw BIN (geen echte melding)",
        Language.DE: "🧪 ÜBUNG Ihrer PLP (keine echte Warnung)",
        Language.EN: "🧪 DRILL from your PLP (not a real alert)",
    },
}

#: The text of the "received" button, by language (a quick reply's text is fixed in the template).
ACK_BUTTON: dict[Language, str] = {
    Language.FR: "Bien reçu",
    Language.NL: "Ontvangen",
    Language.DE: "Erhalten",
    Language.EN: "Received",
}

#: Meta's category of every template: alerts a member asked for are utility messages.
CATEGORY = "UTILITY"
#: The longest message a template carries as its parameter (Meta: a body of at most 1,024 characters).
MAX_PARAMETER_LENGTH = 900

_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
_SPACES = re.compile(r"[\t ]{2,}")


def template_name(prefix: str, purpose: Purpose, answers: int) -> str:
    """The template's name: ``<prefix>_<purpose>``, with ``_a<answers>`` when the alert offers answers."""
    return f"{prefix}_{purpose.value}" + (f"_a{answers}" if answers else "")


def body(purpose: Purpose, language: Language) -> str:
    """The template's body as registered: its heading, then the message."""
    return f"{HEADINGS[purpose][language]}\n\n{{{{1}}}}"


def buttons(language: Language, answers: int) -> list[str]:
    """The quick replies' texts, in order: "received", then ``1`` to ``answers``."""
    return [ACK_BUTTON[language], *(str(n) for n in range(1, answers + 1))]


def parameter(text: str, answers: tuple[str, ...] = ()) -> str:
    """The message as the template's parameter: on one line (Meta refuses line breaks, tabs and runs of spaces
    in one), the answer options numbered after it, cut to ``MAX_PARAMETER_LENGTH``."""
    numbered = " ".join(f"[{n}] {label}" for n, label in enumerate(answers, start=1))
    whole = " | ".join(part for part in (_LINE_BREAKS.sub(" | ", text.strip()), numbered) if part)
    whole = _SPACES.sub(" ", whole.replace("\t", " "))
    return whole if len(whole) <= MAX_PARAMETER_LENGTH else whole[: MAX_PARAMETER_LENGTH - 1] + "…"


def registrations(prefix: str) -> list[dict[str, Any]]:
    """Every template, as ``POST /<WABA id>/message_templates`` takes it: per purpose, language and answers."""
    found = []
    for purpose in Purpose:
        for language in Language:
            for answers in (0, *range(1, MAX_ANSWERS + 1)):
                found.append(
                    {
                        "name": template_name(prefix, purpose, answers),
                        "language": language.value,
                        "category": CATEGORY,
                        "components": [
                            {"type": "BODY", "text": body(purpose, language), "example": {"body_text": [["…"]]}},
                            {
                                "type": "BUTTONS",
                                "buttons": [{"type": "QUICK_REPLY", "text": t} for t in buttons(language, answers)],
                            },
                        ],
                    }
                )
    return found
