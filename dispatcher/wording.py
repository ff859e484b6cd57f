"""Words the service writes to members itself, in French, Dutch, German and English."""

from __future__ import annotations

from dispatcher.models import Category, Language, Urgency

_URGENCY: dict[Urgency, dict[Language, str]] = {
    Urgency.URGENT: {Language.FR: "URGENT", Language.NL: "DRINGEND", Language.DE: "DRINGEND", Language.EN: "URGENT"},
    Urgency.NON_URGENT: {Language.FR: "Info", Language.NL: "Info", Language.DE: "Info", Language.EN: "Info"},
}

_CATEGORY: dict[Category, dict[Language, str]] = {
    Category.BURGLARY: {
        Language.FR: "cambriolage",
        Language.NL: "inbraak",
        Language.DE: "Einbruch",
        Language.EN: "burglary",
    },
    Category.SUSPECT_VEHICLE: {
        Language.FR: "véhicule suspect",
        Language.NL: "verdacht voertuig",
        Language.DE: "verdächtiges Fahrzeug",
        Language.EN: "suspect vehicle",
    },
    Category.SUSPECT_PERSON: {
        Language.FR: "personne suspecte",
        Language.NL: "verdachte persoon",
        Language.DE: "verdächtige Person",
        Language.EN: "suspect person",
    },
    Category.INCIVILITY: {
        Language.FR: "incivilité",
        Language.NL: "overlast",
        Language.DE: "Belästigung",
        Language.EN: "incivility",
    },
    Category.PREVENTION_ADVICE: {
        Language.FR: "conseil de prévention",
        Language.NL: "preventieadvies",
        Language.DE: "Präventionshinweis",
        Language.EN: "prevention advice",
    },
    Category.OTHER: {
        Language.FR: "information",
        Language.NL: "informatie",
        Language.DE: "Information",
        Language.EN: "information",
    },
}


def subject(*, plp_name: str, urgency: Urgency, category: Category, language: Language) -> str:
    """The subject line of a message: ``[PLP name] URGENT: burglary``."""
    return f"[{plp_name}] {_URGENCY[urgency][language]}: {_CATEGORY[category][language]}"
