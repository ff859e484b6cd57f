"""Words the service writes to members itself, in French, Dutch, German and English.

Everything a member receives that the sender did not write (acknowledgement hints,
voice prompts, automatic answers, unsubscribe text, the pages behind e-mail links) comes
from here, and so do the notices the service sends a PLP's coordinators. SMS hints stay
within the GSM 03.38 alphabet so as not to switch a message to UCS-2 (70 characters a
segment instead of 160).
"""

from __future__ import annotations

from enum import StrEnum

from dispatcher.core.models import Category, Language, Urgency

FR, NL, DE, EN = Language.FR, Language.NL, Language.DE, Language.EN


class Words(StrEnum):
    SMS_ACK_HINT = "sms_ack_hint"
    SMS_ACK_HINT_SHORT = "sms_ack_hint_short"
    TELEGRAM_ACK_BUTTON = "telegram_ack_button"
    EMAIL_ACK_LINK = "email_ack_link"
    EMAIL_FOOTER = "email_footer"
    EMAIL_UNSUBSCRIBE = "email_unsubscribe"
    VOICE_INTRO = "voice_intro"
    VOICE_PRESS_1 = "voice_press_1"
    VOICE_THANKS = "voice_thanks"
    VOICE_GOODBYE = "voice_goodbye"
    ACK_THANKS = "ack_thanks"
    FEEDBACK_THANKS = "feedback_thanks"
    OPTED_OUT = "opted_out"
    TELEGRAM_LINKED = "telegram_linked"
    TELEGRAM_LINK_INVALID = "telegram_link_invalid"
    TELEGRAM_UNKNOWN = "telegram_unknown"
    PAGE_TITLE = "page_title"
    PAGE_CONFIRM = "page_confirm"
    PAGE_FEEDBACK_LABEL = "page_feedback_label"
    PAGE_SEND = "page_send"
    PAGE_EXPIRED = "page_expired"
    PAGE_UNSUBSCRIBE_TITLE = "page_unsubscribe_title"
    PAGE_UNSUBSCRIBE_CONFIRM = "page_unsubscribe_confirm"
    EMAIL_EXPORT = "email_export"
    EMAIL_EXPORT_LABEL = "email_export_label"


_EMERGENCY = {
    FR: "En cas d'urgence, appelez directement la police au 101 ou le 112 : le PLP ne traite pas les urgences.",
    NL: "Bij nood belt u rechtstreeks de politie op 101 of 112: het BIN behandelt geen noodgevallen.",
    DE: "Im Notfall rufen Sie direkt die Polizei unter 101 oder den Notruf 112 an: die PLP bearbeitet keine Notfälle.",
    EN: "In an emergency, call the police directly on 101 or 112: the PLP does not handle emergencies.",
}

_WORDS: dict[Words, dict[Language, str]] = {
    Words.SMS_ACK_HINT: {
        FR: "Répondez OK pour confirmer, STOP pour vous désinscrire.",
        NL: "Antwoord OK om te bevestigen, STOP om te stoppen.",
        DE: "Antworten Sie OK zur Bestätigung, STOP zum Abmelden.",
        EN: "Reply OK to confirm, STOP to unsubscribe.",
    },
    Words.SMS_ACK_HINT_SHORT: {FR: "Rép. OK=lu", NL: "OK=ontvangen", DE: "OK=erhalten", EN: "OK=received"},
    Words.TELEGRAM_ACK_BUTTON: {FR: "✅ Bien reçu", NL: "✅ Ontvangen", DE: "✅ Erhalten", EN: "✅ Received"},
    Words.EMAIL_ACK_LINK: {
        FR: "Confirmer la réception ou répondre : {url}",
        NL: "Ontvangst bevestigen of antwoorden: {url}",
        DE: "Empfang bestätigen oder antworten: {url}",
        EN: "Confirm receipt or reply: {url}",
    },
    Words.EMAIL_FOOTER: {
        FR: "Message de votre partenariat local de prévention {plp}. " + _EMERGENCY[FR],
        NL: "Bericht van uw buurtinformatienetwerk {plp}. " + _EMERGENCY[NL],
        DE: "Nachricht Ihrer lokalen Präventionspartnerschaft {plp}. " + _EMERGENCY[DE],
        EN: "Message from your local prevention partnership {plp}. " + _EMERGENCY[EN],
    },
    Words.EMAIL_UNSUBSCRIBE: {
        FR: "Ne plus recevoir de messages : {url}",
        NL: "Geen berichten meer ontvangen: {url}",
        DE: "Keine Nachrichten mehr erhalten: {url}",
        EN: "Stop receiving messages: {url}",
    },
    Words.VOICE_INTRO: {
        FR: "Message de votre partenariat local de prévention.",
        NL: "Bericht van uw buurtinformatienetwerk.",
        DE: "Nachricht Ihrer lokalen Präventionspartnerschaft.",
        EN: "Message from your local prevention partnership.",
    },
    Words.VOICE_PRESS_1: {
        FR: "Pour confirmer la réception, appuyez sur 1.",
        NL: "Druk op 1 om de ontvangst te bevestigen.",
        DE: "Drücken Sie die 1, um den Empfang zu bestätigen.",
        EN: "To confirm you received this message, press 1.",
    },
    Words.VOICE_THANKS: {
        FR: "Merci, réception confirmée. Au revoir.",
        NL: "Bedankt, ontvangst bevestigd. Tot ziens.",
        DE: "Danke, Empfang bestätigt. Auf Wiederhören.",
        EN: "Thank you, receipt confirmed. Goodbye.",
    },
    Words.VOICE_GOODBYE: {FR: "Au revoir.", NL: "Tot ziens.", DE: "Auf Wiederhören.", EN: "Goodbye."},
    Words.ACK_THANKS: {
        FR: "Merci, réception confirmée.",
        NL: "Bedankt, ontvangst bevestigd.",
        DE: "Danke, Empfang bestätigt.",
        EN: "Thank you, receipt confirmed.",
    },
    Words.FEEDBACK_THANKS: {
        FR: "Merci, votre message est transmis au coordinateur de votre PLP. " + _EMERGENCY[FR],
        NL: "Bedankt, uw bericht is doorgegeven aan de coördinator van uw BIN. " + _EMERGENCY[NL],
        DE: "Danke, Ihre Nachricht wurde an die Koordination Ihrer PLP weitergeleitet. " + _EMERGENCY[DE],
        EN: "Thank you, your message was passed on to your PLP's coordinator. " + _EMERGENCY[EN],
    },
    Words.OPTED_OUT: {
        FR: "Vous ne recevrez plus de messages de votre PLP. Pour revenir, contactez votre coordinateur.",
        NL: "U ontvangt geen berichten meer van uw BIN. Om terug te komen, neemt u contact op met uw coördinator.",
        DE: "Sie erhalten keine Nachrichten Ihrer PLP mehr. Zum Wiedereinstieg wenden Sie sich an die Koordination.",
        EN: "You will receive no more messages from your PLP. To come back, contact your coordinator.",
    },
    Words.TELEGRAM_LINKED: {
        FR: "Ce compte Telegram est relié à votre PLP : vous recevrez ici ses alertes. Envoyez /stop pour arrêter.",
        NL: "Dit Telegram-account is gekoppeld aan uw BIN: u ontvangt hier de berichten. Stuur /stop om te stoppen.",
        DE: "Dieses Telegram-Konto ist mit Ihrer PLP verbunden: Sie erhalten hier die Meldungen. /stop beendet sie.",
        EN: "This Telegram account is linked to your PLP: its alerts will arrive here. Send /stop to stop.",
    },
    Words.TELEGRAM_LINK_INVALID: {
        FR: "Ce lien n'est plus valable : demandez-en un nouveau à votre coordinateur.",
        NL: "Deze link is niet meer geldig: vraag een nieuwe aan uw coördinator.",
        DE: "Dieser Link ist nicht mehr gültig: bitten Sie Ihre Koordination um einen neuen.",
        EN: "This link is no longer valid: ask your coordinator for a new one.",
    },
    Words.TELEGRAM_UNKNOWN: {
        FR: "Ce compte n'est relié à aucun PLP. Utilisez le lien personnel reçu de votre coordinateur.",
        NL: "Dit account is aan geen enkel BIN gekoppeld. Gebruik de persoonlijke link van uw coördinator.",
        DE: "Dieses Konto ist mit keiner PLP verbunden. Nutzen Sie den persönlichen Link Ihrer Koordination.",
        EN: "This account is not linked to any PLP. Use the personal link your coordinator gave you.",
    },
    Words.PAGE_TITLE: {
        FR: "Message de votre PLP",
        NL: "Bericht van uw BIN",
        DE: "Nachricht Ihrer PLP",
        EN: "Message from your PLP",
    },
    Words.PAGE_CONFIRM: {
        FR: "Je confirme la réception",
        NL: "Ik bevestig de ontvangst",
        DE: "Ich bestätige den Empfang",
        EN: "I confirm I received it",
    },
    Words.PAGE_FEEDBACK_LABEL: {
        FR: "Vous avez vu quelque chose ? Décrivez-le ici (personne, véhicule, plaque) :",
        NL: "Iets gezien? Beschrijf het hier (persoon, voertuig, nummerplaat):",
        DE: "Etwas gesehen? Beschreiben Sie es hier (Person, Fahrzeug, Kennzeichen):",
        EN: "Did you see something? Describe it here (person, vehicle, plate):",
    },
    Words.PAGE_SEND: {FR: "Envoyer", NL: "Versturen", DE: "Senden", EN: "Send"},
    Words.PAGE_EXPIRED: {
        FR: "Ce lien n'est plus valable.",
        NL: "Deze link is niet meer geldig.",
        DE: "Dieser Link ist nicht mehr gültig.",
        EN: "This link is no longer valid.",
    },
    Words.PAGE_UNSUBSCRIBE_TITLE: {
        FR: "Ne plus recevoir les messages de votre PLP",
        NL: "Geen berichten meer van uw BIN",
        DE: "Keine Nachrichten Ihrer PLP mehr erhalten",
        EN: "Stop receiving messages from your PLP",
    },
    Words.PAGE_UNSUBSCRIBE_CONFIRM: {
        FR: "Me désinscrire",
        NL: "Mij uitschrijven",
        DE: "Mich abmelden",
        EN: "Unsubscribe me",
    },
    Words.EMAIL_EXPORT: {
        FR: "Voir les données conservées à votre sujet : {url}",
        NL: "Bekijk de gegevens die over u worden bewaard: {url}",
        DE: "Die über Sie gespeicherten Daten ansehen: {url}",
        EN: "See the data kept about you: {url}",
    },
    Words.EMAIL_EXPORT_LABEL: {
        FR: "Voir les données conservées à votre sujet",
        NL: "Bekijk de gegevens die over u worden bewaard",
        DE: "Die über Sie gespeicherten Daten ansehen",
        EN: "See the data kept about you",
    },
}

#: Twilio <Say> language and voice per member language (Belgian voices where they exist).
VOICES: dict[Language, tuple[str, str]] = {
    FR: ("fr-BE", "Polly.Isabelle-Neural"),
    NL: ("nl-BE", "Polly.Lisa-Neural"),
    DE: ("de-DE", "Polly.Vicki-Neural"),
    EN: ("en-GB", "Polly.Amy-Neural"),
}

#: Replies that acknowledge a message, and replies that stop all messages, in any case.
ACK_WORDS = frozenset(
    {"ok", "oui", "ja", "yes", "1", "recu", "reçu", "ontvangen", "erhalten", "bien recu", "bien reçu"}
)
STOP_WORDS = frozenset({"stop", "arret", "arrêt", "arreter", "arrêter", "stoppen", "stopp", "unsubscribe", "halt"})

_URGENCY: dict[Urgency, dict[Language, str]] = {
    Urgency.URGENT: {FR: "URGENT", NL: "DRINGEND", DE: "DRINGEND", EN: "URGENT"},
    Urgency.NON_URGENT: {FR: "Info", NL: "Info", DE: "Info", EN: "Info"},
}
_FEEDBACK_PREFIX = {
    FR: "Retour de la police",
    NL: "Terugkoppeling politie",
    DE: "Rückmeldung der Polizei",
    EN: "Police feedback",
}

_CATEGORY: dict[Category, dict[Language, str]] = {
    Category.BURGLARY: {FR: "cambriolage", NL: "inbraak", DE: "Einbruch", EN: "burglary"},
    Category.SUSPECT_VEHICLE: {
        FR: "véhicule suspect",
        NL: "verdacht voertuig",
        DE: "verdächtiges Fahrzeug",
        EN: "suspect vehicle",
    },
    Category.SUSPECT_PERSON: {
        FR: "personne suspecte",
        NL: "verdachte persoon",
        DE: "verdächtige Person",
        EN: "suspect person",
    },
    Category.INCIVILITY: {FR: "incivilité", NL: "overlast", DE: "Belästigung", EN: "incivility"},
    Category.PREVENTION_ADVICE: {
        FR: "conseil de prévention",
        NL: "preventieadvies",
        DE: "Präventionshinweis",
        EN: "prevention advice",
    },
    Category.OTHER: {FR: "information", NL: "informatie", DE: "Information", EN: "information"},
}


_FEW_ACKS_SUBJECT = {
    FR: "[{plp}] Alerte urgente peu confirmée : {acknowledged} membres sur {planned}",
    NL: "[{plp}] Dringend bericht weinig bevestigd: {acknowledged} van de {planned} leden",
    DE: "[{plp}] Dringende Meldung wenig bestätigt: {acknowledged} von {planned} Mitgliedern",
    EN: "[{plp}] Urgent alert barely acknowledged: {acknowledged} of {planned} members",
}
_FEW_ACKS_TEXT = {
    FR: "L'alerte urgente ({category}) envoyée le {sent_at} n'a été confirmée que par {acknowledged} des "
    "{planned} membres joints ({share} %), moins que les {threshold} % prévus par la charte. Vous pouvez "
    "relayer le message aux membres qui ne l'ont pas confirmé.\n\nMessage : {text}",
    NL: "Het dringende bericht ({category}) van {sent_at} werd slechts door {acknowledged} van de {planned} "
    "bereikte leden bevestigd ({share} %), minder dan de {threshold} % uit het charter. U kunt het bericht "
    "doorgeven aan de leden die het niet bevestigden.\n\nBericht: {text}",
    DE: "Die dringende Meldung ({category}) vom {sent_at} wurde nur von {acknowledged} der {planned} "
    "erreichten Mitglieder bestätigt ({share} %), weniger als die in der Charta vorgesehenen {threshold} %. "
    "Sie können die Meldung an die Mitglieder weitergeben, die sie nicht bestätigt haben.\n\nMeldung: {text}",
    EN: "The urgent alert ({category}) sent on {sent_at} was acknowledged by only {acknowledged} of the "
    "{planned} members reached ({share}%), fewer than the {threshold}% the charter sets. You may pass the "
    "message on to the members who have not acknowledged it.\n\nMessage: {text}",
}


def few_acknowledgements(
    *,
    plp_name: str,
    category: Category,
    sent_at: str,
    acknowledged: int,
    planned: int,
    threshold: float,
    text: str,
    language: Language,
) -> tuple[str, str]:
    """Subject and text telling a PLP's coordinators that too few members acknowledged an urgent alert."""
    values = {
        "plp": plp_name,
        "category": _CATEGORY[category][language],
        "sent_at": sent_at,
        "acknowledged": str(acknowledged),
        "planned": str(planned),
        "share": _percent(acknowledged / planned if planned else 0.0),
        "threshold": _percent(threshold),
        "text": text,
    }
    return _FEW_ACKS_SUBJECT[language].format(**values), _FEW_ACKS_TEXT[language].format(**values)


def _percent(share: float) -> str:
    return f"{round(100 * share, 1):g}"


def say(key: Words, language: Language, **values: str) -> str:
    """The text ``key`` in ``language``, with ``{placeholders}`` filled in."""
    text = _WORDS[key][language]
    return text.format(**values) if values else text


def subject(*, plp_name: str, urgency: Urgency, category: Category, language: Language, feedback: bool = False) -> str:
    """The subject line of a message: ``[PLP name] URGENT: burglary``."""
    kind = _FEEDBACK_PREFIX[language] if feedback else _URGENCY[urgency][language]
    return f"[{plp_name}] {kind}: {_CATEGORY[category][language]}"


def normalise_reply(text: str) -> str:
    """A member's reply reduced for matching: trimmed, lower case, final punctuation dropped."""
    return " ".join(text.strip().lower().rstrip(".!").split())
