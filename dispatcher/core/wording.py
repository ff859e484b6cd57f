"""Words the service writes to members itself, in French, Dutch, German and English.

Everything a member receives that the sender did not write (acknowledgement hints,
voice prompts, automatic answers, unsubscribe text, the pages behind e-mail links) comes
from here, and so do the notices the service sends a PLP's coordinators. SMS hints stay
within the GSM 03.38 alphabet so as not to switch a message to UCS-2 (70 characters a
segment instead of 160).
"""

from __future__ import annotations

from enum import StrEnum

from dispatcher.core.models import AnswerOption, Category, FollowUpKind, Language, Urgency

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
    SIGNIN_SUBJECT = "signin_subject"
    SIGNIN_TEXT = "signin_text"
    OIDC_REFUSED_TITLE = "oidc_refused_title"
    OIDC_REFUSED = "oidc_refused"
    OIDC_UNKNOWN = "oidc_unknown"
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
    ANSWER_THANKS = "answer_thanks"
    SMS_ANSWER_HINT = "sms_answer_hint"
    VOICE_ANSWER_KEYS = "voice_answer_keys"
    EMAIL_PROFILE = "email_profile"
    EMAIL_PROFILE_LABEL = "email_profile_label"
    PROFILE_TITLE = "profile_title"
    PROFILE_NEW_PHONE = "profile_new_phone"
    PROFILE_NEW_EMAIL = "profile_new_email"
    PROFILE_SEND_CODE = "profile_send_code"
    PROFILE_CODE_LABEL = "profile_code_label"
    PROFILE_CONFIRM_CODE = "profile_confirm_code"
    PROFILE_CODE_SENT = "profile_code_sent"
    PROFILE_CODE_TEXT = "profile_code_text"
    PROFILE_CODE_SUBJECT = "profile_code_subject"
    PROFILE_CODE_WRONG = "profile_code_wrong"
    PROFILE_CODE_LOCKED = "profile_code_locked"
    PROFILE_CODE_RATE = "profile_code_rate"
    PROFILE_CODE_EXPIRED = "profile_code_expired"
    PROFILE_CONTACT_INVALID = "profile_contact_invalid"
    PROFILE_CONTACT_CHANGED = "profile_contact_changed"
    PROFILE_NON_URGENT = "profile_non_urgent"
    PROFILE_ORDER = "profile_order"
    PROFILE_QUIET = "profile_quiet"
    PROFILE_QUIET_FROM = "profile_quiet_from"
    PROFILE_QUIET_TO = "profile_quiet_to"
    PROFILE_REPLY = "profile_reply"
    PROFILE_SUBJECT = "profile_subject"
    PROFILE_HELD = "profile_held"
    PROFILE_NAME = "profile_name"
    PROFILE_PHONE = "profile_phone"
    PROFILE_EMAIL = "profile_email"
    PROFILE_TELEGRAM = "profile_telegram"
    PROFILE_ADDRESS = "profile_address"
    PROFILE_LANGUAGE = "profile_language"
    PROFILE_CHANNELS = "profile_channels"
    PROFILE_SAVE = "profile_save"
    PROFILE_SAVED = "profile_saved"
    PROFILE_NO_CHANNEL = "profile_no_channel"
    PROFILE_QUIET_INVALID = "profile_quiet_invalid"
    PROFILE_WHATSAPP_CONSENT = "profile_whatsapp_consent"
    PROFILE_WHATSAPP_HELD = "profile_whatsapp_held"
    PROFILE_LEAVE = "profile_leave"
    PROFILE_LEFT = "profile_left"
    JOIN_TITLE = "join_title"
    JOIN_INTRO = "join_intro"
    JOIN_NAME = "join_name"
    JOIN_PHONE = "join_phone"
    JOIN_EMAIL = "join_email"
    JOIN_CONTACT_HINT = "join_contact_hint"
    JOIN_LANGUAGE = "join_language"
    JOIN_ADDRESS = "join_address"
    JOIN_STREET = "join_street"
    JOIN_NUMBER = "join_number"
    JOIN_POSTCODE = "join_postcode"
    JOIN_COMMUNE = "join_commune"
    JOIN_PRIVACY = "join_privacy"
    JOIN_ACCEPT = "join_accept"
    JOIN_SEND = "join_send"
    JOIN_CONTACT_NEEDED = "join_contact_needed"
    JOIN_NAME_NEEDED = "join_name_needed"
    JOIN_ADDRESS_INVALID = "join_address_invalid"
    JOIN_PRIVACY_NEEDED = "join_privacy_needed"
    JOIN_CODES_SENT = "join_codes_sent"
    JOIN_CODE_PHONE = "join_code_phone"
    JOIN_CODE_EMAIL = "join_code_email"
    JOIN_CONFIRM = "join_confirm"
    JOIN_WAITING = "join_waiting"
    JOIN_RATE = "join_rate"
    JOIN_LOCKED = "join_locked"
    JOIN_CLOSED = "join_closed"
    JOIN_ALREADY_SUBJECT = "join_already_subject"
    JOIN_ALREADY_TEXT = "join_already_text"
    JOIN_APPROVED_SUBJECT = "join_approved_subject"
    JOIN_APPROVED_TEXT = "join_approved_text"
    JOIN_DECLINED_SUBJECT = "join_declined_subject"
    JOIN_DECLINED_TEXT = "join_declined_text"
    JOIN_NOTICE_SUBJECT = "join_notice_subject"
    JOIN_NOTICE_TEXT = "join_notice_text"
    MEMBER_NOTICE_SUBJECT = "member_notice_subject"
    MEMBER_NOTICE_TEXT = "member_notice_text"
    MEMBER_NOTICE_LEFT_SUBJECT = "member_notice_left_subject"
    MEMBER_NOTICE_LEFT_TEXT = "member_notice_left_text"
    MEMBER_CHANGED_LANGUAGE = "member_changed_language"
    MEMBER_CHANGED_CHANNELS = "member_changed_channels"
    MEMBER_CHANGED_CONTACT = "member_changed_contact"


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
    Words.ANSWER_THANKS: {
        FR: "Merci, votre réponse « {answer} » est enregistrée. " + _EMERGENCY[FR],
        NL: 'Bedankt, uw antwoord "{answer}" is geregistreerd. ' + _EMERGENCY[NL],
        DE: 'Danke, Ihre Antwort "{answer}" wurde gespeichert. ' + _EMERGENCY[DE],
        EN: 'Thank you, your answer "{answer}" is recorded. ' + _EMERGENCY[EN],
    },
    Words.VOICE_ANSWER_KEYS: {
        FR: "Pour répondre, appuyez sur {choices}.",
        NL: "Om te antwoorden, druk op {choices}.",
        DE: "Zum Antworten drücken Sie {choices}.",
        EN: "To answer, press {choices}.",
    },
    Words.SMS_ANSWER_HINT: {
        FR: "Répondez",
        NL: "Antwoord",
        DE: "Antworten Sie",
        EN: "Reply",
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
    Words.SIGNIN_SUBJECT: {
        FR: "Votre lien de connexion à la console PLP",
        NL: "Uw aanmeldlink voor de BIN-console",
        DE: "Ihr Anmeldelink für die PLP-Konsole",
        EN: "Your PLP console sign-in link",
    },
    Words.SIGNIN_TEXT: {
        FR: "Bonjour {name},\n\nOuvrez ce lien pour vous connecter à la console PLP (il sert une fois, pendant "
        "{minutes} minutes) :\n\n{link}\n\nSi vous ne l'avez pas demandé, ignorez ce message.",
        NL: "Beste {name},\n\nOpen deze link om u aan te melden op de BIN-console (hij werkt één keer, "
        "{minutes} minuten lang):\n\n{link}\n\nHebt u hem niet gevraagd, negeer dan dit bericht.",
        DE: "Guten Tag {name},\n\nÖffnen Sie diesen Link, um sich an der PLP-Konsole anzumelden (er gilt einmal, "
        "{minutes} Minuten lang):\n\n{link}\n\nWenn Sie ihn nicht angefordert haben, ignorieren Sie diese Nachricht.",
        EN: "Hello {name},\n\nOpen this link to sign in to the PLP console (it works once, for {minutes} "
        "minutes):\n\n{link}\n\nIf you did not ask for it, ignore this message.",
    },
    Words.OIDC_REFUSED_TITLE: {
        FR: "Connexion refusée",
        NL: "Aanmelding geweigerd",
        DE: "Anmeldung abgelehnt",
        EN: "Sign-in refused",
    },
    Words.OIDC_REFUSED: {
        FR: "Cette connexion n'a pas pu être vérifiée (lien expiré, déjà utilisé ou modifié, ou adresse e-mail non "
        "vérifiée). Retournez à la console et recommencez, ou demandez un lien de connexion par e-mail.",
        NL: "Deze aanmelding kon niet worden gecontroleerd (verlopen, al gebruikt of gewijzigd, of een niet "
        "bevestigd e-mailadres). Ga terug naar de console en probeer opnieuw, of vraag een aanmeldlink per e-mail.",
        DE: "Diese Anmeldung konnte nicht geprüft werden (abgelaufen, schon benutzt oder verändert, oder eine nicht "
        "bestätigte E-Mail-Adresse). Kehren Sie zur Konsole zurück und versuchen Sie es erneut, oder fordern Sie "
        "einen Anmeldelink per E-Mail an.",
        EN: "This sign-in could not be verified (expired, already used or altered, or an e-mail address that is not "
        "verified). Go back to the console and try again, or ask for a sign-in link by e-mail.",
    },
    Words.OIDC_UNKNOWN: {
        FR: "Votre adresse e-mail n'est celle d'aucun coordinateur ni policier de ce service. Demandez à son "
        "administrateur de vous ajouter avec cette adresse.",
        NL: "Uw e-mailadres hoort bij geen enkele coördinator of politieagent van deze dienst. Vraag de beheerder "
        "om u met dit adres toe te voegen.",
        DE: "Ihre E-Mail-Adresse gehört zu keiner Koordination und keinem Polizeibeamten dieses Dienstes. Bitten "
        "Sie die Verwaltung, Sie mit dieser Adresse hinzuzufügen.",
        EN: "Your e-mail address is not that of any coordinator or police officer of this service. Ask its "
        "administrator to add you with this address.",
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
    Words.EMAIL_PROFILE: {
        FR: "Changer votre langue, vos canaux ou quitter le PLP : {url}",
        NL: "Uw taal of kanalen wijzigen of het BIN verlaten: {url}",
        DE: "Ihre Sprache oder Kanäle ändern oder die PLP verlassen: {url}",
        EN: "Change your language or channels, or leave the PLP: {url}",
    },
    Words.EMAIL_PROFILE_LABEL: {
        FR: "Changer votre langue, vos canaux ou quitter le PLP",
        NL: "Uw taal of kanalen wijzigen of het BIN verlaten",
        DE: "Ihre Sprache oder Kanäle ändern oder die PLP verlassen",
        EN: "Change your language or channels, or leave the PLP",
    },
    Words.PROFILE_REPLY: {
        FR: "Votre page PLP (langue, canaux, quitter le PLP) : {url}",
        NL: "Uw BIN-pagina (taal, kanalen, het BIN verlaten): {url}",
        DE: "Ihre PLP-Seite (Sprache, Kanäle, die PLP verlassen): {url}",
        EN: "Your PLP page (language, channels, leaving the PLP): {url}",
    },
    Words.PROFILE_SUBJECT: {
        FR: "Votre page PLP",
        NL: "Uw BIN-pagina",
        DE: "Ihre PLP-Seite",
        EN: "Your PLP page",
    },
    Words.PROFILE_ORDER: {
        FR: "Dans quel ordre vous joindre (1 : essayé en premier)",
        NL: "In welke volgorde u bereiken (1: eerst geprobeerd)",
        DE: "In welcher Reihenfolge Sie erreicht werden (1: zuerst versucht)",
        EN: "In which order to reach you (1: tried first)",
    },
    Words.PROFILE_QUIET: {
        FR: "Heures calmes : pas de message non urgent entre ces heures (les alertes urgentes passent toujours)",
        NL: "Rusturen: geen niet-dringende berichten tussen deze uren (dringende meldingen komen altijd door)",
        DE: "Ruhezeiten: keine nicht dringenden Nachrichten zwischen diesen Uhrzeiten "
        "(dringende Warnungen kommen immer an)",
        EN: "Quiet hours: no non-urgent message between these times (urgent alerts always reach you)",
    },
    Words.PROFILE_QUIET_FROM: {FR: "De", NL: "Van", DE: "Von", EN: "From"},
    Words.PROFILE_QUIET_TO: {FR: "à", NL: "tot", DE: "bis", EN: "to"},
    Words.PROFILE_NON_URGENT: {
        FR: "Recevoir aussi les messages non urgents (conseils de prévention, retours de la police). "
        "Les alertes urgentes vous parviennent toujours.",
        NL: "Ook niet-dringende berichten ontvangen (preventietips, terugkoppeling van de politie). "
        "Dringende meldingen krijgt u altijd.",
        DE: "Auch nicht dringende Nachrichten erhalten (Präventionstipps, Rückmeldungen der Polizei). "
        "Dringende Warnungen erhalten Sie immer.",
        EN: "Also receive non-urgent messages (prevention advice, police feedback). Urgent alerts always reach you.",
    },
    Words.PROFILE_NEW_PHONE: {
        FR: "Nouveau numéro de GSM",
        NL: "Nieuw gsm-nummer",
        DE: "Neue Handynummer",
        EN: "New mobile number",
    },
    Words.PROFILE_NEW_EMAIL: {
        FR: "Nouvelle adresse e-mail",
        NL: "Nieuw e-mailadres",
        DE: "Neue E-Mail-Adresse",
        EN: "New e-mail address",
    },
    Words.PROFILE_SEND_CODE: {
        FR: "Envoyer un code",
        NL: "Een code sturen",
        DE: "Einen Code senden",
        EN: "Send a code",
    },
    Words.PROFILE_CODE_LABEL: {
        FR: "Code reçu",
        NL: "Ontvangen code",
        DE: "Erhaltener Code",
        EN: "Code received",
    },
    Words.PROFILE_CONFIRM_CODE: {
        FR: "Confirmer le changement",
        NL: "De wijziging bevestigen",
        DE: "Die Änderung bestätigen",
        EN: "Confirm the change",
    },
    Words.PROFILE_CODE_SENT: {
        FR: "Si {value} peut être utilisé, un code vient d'y être envoyé : entrez-le ci-dessous dans les 10 minutes.",
        NL: "Als {value} gebruikt kan worden, is er een code naar gestuurd: vul die hieronder in binnen 10 minuten.",
        DE: "Wenn {value} verwendet werden kann, wurde ein Code dorthin gesendet: "
        "geben Sie ihn unten innerhalb von 10 Minuten ein.",
        EN: "If {value} can be used, a code was just sent to it: enter it below within 10 minutes.",
    },
    Words.PROFILE_CODE_TEXT: {
        FR: "Votre code PLP : {code}. Il vaut 10 minutes. Ne le donnez a personne.",
        NL: "Uw BIN-code: {code}. Hij geldt 10 minuten. Geef hem aan niemand.",
        DE: "Ihr PLP-Code: {code}. Er gilt 10 Minuten. Geben Sie ihn niemandem.",
        EN: "Your PLP code: {code}. It is valid for 10 minutes. Give it to nobody.",
    },
    Words.PROFILE_CODE_SUBJECT: {
        FR: "Votre code PLP",
        NL: "Uw BIN-code",
        DE: "Ihr PLP-Code",
        EN: "Your PLP code",
    },
    Words.PROFILE_CODE_WRONG: {
        FR: "Ce code n'est pas le bon.",
        NL: "Deze code klopt niet.",
        DE: "Dieser Code ist falsch.",
        EN: "This code is not the right one.",
    },
    Words.PROFILE_CODE_LOCKED: {
        FR: "Trop d'essais : le changement est bloqué pendant une heure.",
        NL: "Te veel pogingen: wijzigen is een uur geblokkeerd.",
        DE: "Zu viele Versuche: die Änderung ist eine Stunde gesperrt.",
        EN: "Too many attempts: changes are locked for an hour.",
    },
    Words.PROFILE_CODE_RATE: {
        FR: "Trop de codes demandés : réessayez dans une heure.",
        NL: "Te veel codes gevraagd: probeer het over een uur opnieuw.",
        DE: "Zu viele Codes angefordert: versuchen Sie es in einer Stunde erneut.",
        EN: "Too many codes asked for: try again in an hour.",
    },
    Words.PROFILE_CODE_EXPIRED: {
        FR: "Ce code a expiré : demandez-en un nouveau.",
        NL: "Deze code is verlopen: vraag een nieuwe aan.",
        DE: "Dieser Code ist abgelaufen: fordern Sie einen neuen an.",
        EN: "This code has expired: ask for a new one.",
    },
    Words.PROFILE_CONTACT_INVALID: {
        FR: "Ce numéro ou cette adresse ne peut pas être utilisé : {reason}",
        NL: "Dit nummer of adres kan niet gebruikt worden: {reason}",
        DE: "Diese Nummer oder Adresse kann nicht verwendet werden: {reason}",
        EN: "This number or address cannot be used: {reason}",
    },
    Words.PROFILE_CONTACT_CHANGED: {
        FR: "C'est changé : les prochains messages iront à la nouvelle adresse.",
        NL: "Gewijzigd: de volgende berichten gaan naar het nieuwe adres.",
        DE: "Geändert: die nächsten Nachrichten gehen an die neue Adresse.",
        EN: "Changed: the next messages go to the new contact point.",
    },
    Words.PROFILE_TITLE: {
        FR: "Vos données et vos choix",
        NL: "Uw gegevens en keuzes",
        DE: "Ihre Daten und Ihre Wahl",
        EN: "Your data and your choices",
    },
    Words.PROFILE_HELD: {
        FR: "Ce que le PLP conserve à votre sujet",
        NL: "Wat het BIN over u bewaart",
        DE: "Was die PLP über Sie speichert",
        EN: "What the PLP keeps about you",
    },
    Words.PROFILE_NAME: {
        FR: "Nom",
        NL: "Naam",
        DE: "Name",
        EN: "Name",
    },
    Words.PROFILE_PHONE: {
        FR: "Téléphone",
        NL: "Telefoon",
        DE: "Telefon",
        EN: "Phone",
    },
    Words.PROFILE_EMAIL: {
        FR: "E-mail",
        NL: "E-mail",
        DE: "E-Mail",
        EN: "E-mail",
    },
    Words.PROFILE_TELEGRAM: {
        FR: "Telegram lié",
        NL: "Telegram gekoppeld",
        DE: "Telegram verknüpft",
        EN: "Telegram linked",
    },
    Words.PROFILE_ADDRESS: {
        FR: "Adresse",
        NL: "Adres",
        DE: "Adresse",
        EN: "Address",
    },
    Words.PROFILE_LANGUAGE: {
        FR: "Langue des messages",
        NL: "Taal van de berichten",
        DE: "Sprache der Nachrichten",
        EN: "Language of the messages",
    },
    Words.PROFILE_CHANNELS: {
        FR: "Recevoir les messages par",
        NL: "Berichten ontvangen via",
        DE: "Nachrichten erhalten über",
        EN: "Receive the messages by",
    },
    Words.PROFILE_SAVE: {
        FR: "Enregistrer",
        NL: "Opslaan",
        DE: "Speichern",
        EN: "Save",
    },
    Words.PROFILE_SAVED: {
        FR: "Vos choix sont enregistrés : ils valent dès le prochain message.",
        NL: "Uw keuzes zijn opgeslagen: ze gelden vanaf het volgende bericht.",
        DE: "Ihre Wahl ist gespeichert: sie gilt ab der nächsten Nachricht.",
        EN: "Your choices are saved: they apply from the next message.",
    },
    Words.PROFILE_NO_CHANNEL: {
        FR: "Choisissez au moins un canal sur lequel on peut vous joindre.",
        NL: "Kies minstens één kanaal waarop u bereikbaar bent.",
        DE: "Wählen Sie mindestens einen Kanal, über den Sie erreichbar sind.",
        EN: "Choose at least one channel you can be reached on.",
    },
    Words.PROFILE_QUIET_INVALID: {
        FR: "Heures calmes : donnez un début et une fin, en heures et minutes (par exemple 22:00 et 07:00).",
        NL: "Rusturen: geef een begin en een einde, in uren en minuten (bijvoorbeeld 22:00 en 07:00).",
        DE: "Ruhezeiten: Geben Sie Beginn und Ende in Stunden und Minuten an (zum Beispiel 22:00 und 07:00).",
        EN: "Quiet hours: give a start and an end, in hours and minutes (for example 22:00 and 07:00).",
    },
    Words.PROFILE_WHATSAPP_CONSENT: {
        FR: "WhatsApp : j'accepte de recevoir les messages du PLP sur WhatsApp, à mon numéro de GSM "
        "(je peux retirer cet accord ici à tout moment).",
        NL: "WhatsApp: ik ga akkoord dat ik de berichten van het BIN via WhatsApp ontvang op mijn gsm-nummer "
        "(ik kan dit hier altijd intrekken).",
        DE: "WhatsApp: Ich bin einverstanden, die Nachrichten der PLP über WhatsApp an meine Handynummer zu erhalten "
        "(ich kann dies hier jederzeit widerrufen).",
        EN: "WhatsApp: I agree to receive the PLP's messages on WhatsApp at my mobile number "
        "(I can withdraw this here at any time).",
    },
    Words.PROFILE_WHATSAPP_HELD: {
        FR: "Accord WhatsApp",
        NL: "Toestemming WhatsApp",
        DE: "Einwilligung WhatsApp",
        EN: "WhatsApp consent",
    },
    Words.PROFILE_LEAVE: {
        FR: "Quitter le PLP et effacer mes données",
        NL: "Het BIN verlaten en mijn gegevens wissen",
        DE: "Die PLP verlassen und meine Daten löschen",
        EN: "Leave the PLP and erase my data",
    },
    Words.PROFILE_LEFT: {
        FR: "Vous avez quitté le PLP : plus aucun message ne vous sera envoyé et vos données sont effacées.",
        NL: "U hebt het BIN verlaten: u krijgt geen berichten meer en uw gegevens zijn gewist.",
        DE: "Sie haben die PLP verlassen: Sie erhalten keine Nachrichten mehr und Ihre Daten sind gelöscht.",
        EN: "You have left the PLP: no more messages will be sent to you and your data is erased.",
    },
    Words.JOIN_TITLE: {
        FR: "Rejoindre le PLP {plp}",
        NL: "Lid worden van het BIN {plp}",
        DE: "Der PLP {plp} beitreten",
        EN: "Join the PLP {plp}",
    },
    Words.JOIN_INTRO: {
        FR: "Les membres reçoivent les messages de prévention et les alertes de la police pour leur "
        "quartier. Un coordinateur examine chaque demande.",
        NL: "Leden krijgen de preventieberichten en meldingen van de politie voor hun buurt. Een "
        "coördinator bekijkt elke aanvraag.",
        DE: "Mitglieder erhalten die Präventionshinweise und Warnungen der Polizei für ihr Viertel. Ein "
        "Koordinator prüft jeden Antrag.",
        EN: "Members receive the police's prevention messages and alerts for their neighbourhood. A "
        "coordinator looks at every request.",
    },
    Words.JOIN_NAME: {
        FR: "Nom et prénom",
        NL: "Naam en voornaam",
        DE: "Name und Vorname",
        EN: "Full name",
    },
    Words.JOIN_PHONE: {
        FR: "Numéro de GSM",
        NL: "Gsm-nummer",
        DE: "Handynummer",
        EN: "Mobile number",
    },
    Words.JOIN_EMAIL: {
        FR: "Adresse e-mail",
        NL: "E-mailadres",
        DE: "E-Mail-Adresse",
        EN: "E-mail address",
    },
    Words.JOIN_CONTACT_HINT: {
        FR: "Un numéro de GSM, une adresse e-mail, ou les deux : chacun sera confirmé par un code.",
        NL: "Een gsm-nummer, een e-mailadres of beide: elk wordt bevestigd met een code.",
        DE: "Eine Handynummer, eine E-Mail-Adresse oder beides: jede wird mit einem Code bestätigt.",
        EN: "A mobile number, an e-mail address, or both: each is confirmed by a code.",
    },
    Words.JOIN_LANGUAGE: {
        FR: "Langue des messages",
        NL: "Taal van de berichten",
        DE: "Sprache der Nachrichten",
        EN: "Language of the messages",
    },
    Words.JOIN_ADDRESS: {
        FR: "Votre adresse (pour les alertes à une partie du quartier)",
        NL: "Uw adres (voor meldingen aan een deel van de buurt)",
        DE: "Ihre Adresse (für Warnungen an einen Teil des Viertels)",
        EN: "Your address (for alerts to part of the neighbourhood)",
    },
    Words.JOIN_STREET: {
        FR: "Rue",
        NL: "Straat",
        DE: "Straße",
        EN: "Street",
    },
    Words.JOIN_NUMBER: {
        FR: "Numéro",
        NL: "Huisnummer",
        DE: "Hausnummer",
        EN: "Number",
    },
    Words.JOIN_POSTCODE: {
        FR: "Code postal",
        NL: "Postcode",
        DE: "Postleitzahl",
        EN: "Postcode",
    },
    Words.JOIN_COMMUNE: {
        FR: "Commune",
        NL: "Gemeente",
        DE: "Gemeinde",
        EN: "Commune",
    },
    Words.JOIN_PRIVACY: {
        FR: "Protection de vos données",
        NL: "Bescherming van uw gegevens",
        DE: "Schutz Ihrer Daten",
        EN: "Your personal data",
    },
    Words.JOIN_ACCEPT: {
        FR: "J'ai lu et j'accepte cette information sur la protection de mes données.",
        NL: "Ik heb deze informatie over de bescherming van mijn gegevens gelezen en aanvaard ze.",
        DE: "Ich habe diese Information zum Schutz meiner Daten gelesen und akzeptiere sie.",
        EN: "I have read and accept this notice about my personal data.",
    },
    Words.JOIN_SEND: {
        FR: "Envoyer ma demande",
        NL: "Mijn aanvraag versturen",
        DE: "Antrag senden",
        EN: "Send my request",
    },
    Words.JOIN_CONTACT_NEEDED: {
        FR: "Donnez un numéro de GSM ou une adresse e-mail.",
        NL: "Geef een gsm-nummer of een e-mailadres op.",
        DE: "Geben Sie eine Handynummer oder eine E-Mail-Adresse an.",
        EN: "Give a mobile number or an e-mail address.",
    },
    Words.JOIN_NAME_NEEDED: {
        FR: "Donnez votre nom (100 caractères au plus).",
        NL: "Geef uw naam op (ten hoogste 100 tekens).",
        DE: "Geben Sie Ihren Namen an (höchstens 100 Zeichen).",
        EN: "Give your name (100 characters at most).",
    },
    Words.JOIN_ADDRESS_INVALID: {
        FR: "Cette adresse n'est pas complète : une rue, et un code postal (4 chiffres) ou une commune.",
        NL: "Dit adres is niet volledig: een straat, en een postcode (4 cijfers) of een gemeente.",
        DE: "Diese Adresse ist unvollständig: eine Straße und eine Postleitzahl (4 Ziffern) oder eine Gemeinde.",
        EN: "This address is not complete: a street, and a postcode (4 digits) or a commune.",
    },
    Words.JOIN_PRIVACY_NEEDED: {
        FR: "Pour rejoindre le PLP, acceptez l'information sur la protection de vos données.",
        NL: "Aanvaard de informatie over de bescherming van uw gegevens om lid te worden.",
        DE: "Um beizutreten, akzeptieren Sie die Information zum Schutz Ihrer Daten.",
        EN: "To join, accept the notice about your personal data.",
    },
    Words.JOIN_CODES_SENT: {
        FR: "Si ces coordonnées peuvent être utilisées, un code vient d'être envoyé à chacune : entrez-les "
        "ci-dessous dans les 10 minutes.",
        NL: "Als deze gegevens gebruikt kunnen worden, is naar elk een code gestuurd: vul ze hieronder in "
        "binnen 10 minuten.",
        DE: "Wenn diese Angaben verwendet werden können, wurde an jede ein Code gesendet: geben Sie sie "
        "unten innerhalb von 10 Minuten ein.",
        EN: "If these contact points can be used, a code was just sent to each: enter them below within 10 minutes.",
    },
    Words.JOIN_CODE_PHONE: {
        FR: "Code reçu par SMS",
        NL: "Code ontvangen per sms",
        DE: "Per SMS erhaltener Code",
        EN: "Code received by SMS",
    },
    Words.JOIN_CODE_EMAIL: {
        FR: "Code reçu par e-mail",
        NL: "Code ontvangen per e-mail",
        DE: "Per E-Mail erhaltener Code",
        EN: "Code received by e-mail",
    },
    Words.JOIN_CONFIRM: {
        FR: "Confirmer",
        NL: "Bevestigen",
        DE: "Bestätigen",
        EN: "Confirm",
    },
    Words.JOIN_WAITING: {
        FR: "Merci : votre demande attend l'accord d'un coordinateur. Vous recevrez sa réponse par message.",
        NL: "Bedankt: uw aanvraag wacht op de goedkeuring van een coördinator. U krijgt het antwoord per bericht.",
        DE: "Danke: Ihr Antrag wartet auf die Zustimmung eines Koordinators. Sie erhalten die Antwort per Nachricht.",
        EN: "Thank you: your request waits for a coordinator's approval. You will get the answer by message.",
    },
    Words.JOIN_RATE: {
        FR: "Trop de demandes : réessayez plus tard.",
        NL: "Te veel aanvragen: probeer het later opnieuw.",
        DE: "Zu viele Anträge: versuchen Sie es später erneut.",
        EN: "Too many requests: try again later.",
    },
    Words.JOIN_LOCKED: {
        FR: "Trop de codes erronés : ce numéro ou cette adresse est bloqué pour une heure.",
        NL: "Te veel foute codes: dit nummer of adres is een uur geblokkeerd.",
        DE: "Zu viele falsche Codes: diese Nummer oder Adresse ist für eine Stunde gesperrt.",
        EN: "Too many wrong codes: this number or address is locked for an hour.",
    },
    Words.JOIN_CLOSED: {
        FR: "Il n'y a pas de page d'adhésion ici.",
        NL: "Hier is geen aanmeldpagina.",
        DE: "Hier gibt es keine Beitrittsseite.",
        EN: "There is no join page here.",
    },
    Words.JOIN_ALREADY_SUBJECT: {
        FR: "Votre demande d'adhésion au PLP",
        NL: "Uw aanvraag voor het BIN",
        DE: "Ihr Antrag bei der PLP",
        EN: "Your request to join the PLP",
    },
    Words.JOIN_ALREADY_TEXT: {
        FR: "Quelqu'un a demandé à rejoindre le PLP {plp} avec ces coordonnées : vous en êtes déjà membre. "
        "Votre page : {url}",
        NL: "Iemand vroeg met deze gegevens lid te worden van het BIN {plp}: u bent al lid. Uw pagina: {url}",
        DE: "Jemand hat mit diesen Angaben den Beitritt zur PLP {plp} beantragt: Sie sind bereits Mitglied. "
        "Ihre Seite: {url}",
        EN: "Someone asked to join the PLP {plp} with these contact details: you are already a member. Your "
        "page: {url}",
    },
    Words.JOIN_APPROVED_SUBJECT: {
        FR: "Bienvenue dans le PLP",
        NL: "Welkom in het BIN",
        DE: "Willkommen in der PLP",
        EN: "Welcome to the PLP",
    },
    Words.JOIN_APPROVED_TEXT: {
        FR: "Votre demande est acceptée : vous êtes membre du PLP {plp}. Votre page, pour vos choix ou pour "
        "partir : {url}",
        NL: "Uw aanvraag is goedgekeurd: u bent lid van het BIN {plp}. Uw pagina, voor uw keuzes of om te "
        "vertrekken: {url}",
        DE: "Ihr Antrag wurde angenommen: Sie sind Mitglied der PLP {plp}. Ihre Seite, für Ihre Wahl oder "
        "zum Austreten: {url}",
        EN: "Your request was approved: you are a member of the PLP {plp}. Your page, for your choices or "
        "to leave: {url}",
    },
    Words.JOIN_DECLINED_SUBJECT: {
        FR: "Votre demande d'adhésion au PLP",
        NL: "Uw aanvraag voor het BIN",
        DE: "Ihr Antrag bei der PLP",
        EN: "Your request to join the PLP",
    },
    Words.JOIN_DECLINED_TEXT: {
        FR: "Votre demande pour rejoindre le PLP {plp} n'a pas été acceptée. Raison : {reason}",
        NL: "Uw aanvraag om lid te worden van het BIN {plp} werd niet goedgekeurd. Reden: {reason}",
        DE: "Ihr Antrag auf Beitritt zur PLP {plp} wurde nicht angenommen. Grund: {reason}",
        EN: "Your request to join the PLP {plp} was not approved. Reason: {reason}",
    },
    Words.JOIN_NOTICE_SUBJECT: {
        FR: "Nouvelle demande d'adhésion au PLP {plp}",
        NL: "Nieuwe aanvraag voor het BIN {plp}",
        DE: "Neuer Beitrittsantrag für die PLP {plp}",
        EN: "New request to join the PLP {plp}",
    },
    Words.MEMBER_NOTICE_SUBJECT: {
        FR: "Un membre du PLP {plp} a modifié ses données",
        NL: "Een lid van het BIN {plp} heeft zijn gegevens gewijzigd",
        DE: "Ein Mitglied der PLP {plp} hat seine Angaben geändert",
        EN: "A member of the PLP {plp} changed their details",
    },
    Words.MEMBER_NOTICE_TEXT: {
        FR: "Sur sa propre page, un membre du PLP {plp} a modifié : {what}. Cela vaut dès le prochain message.",
        NL: "Op zijn eigen pagina heeft een lid van het BIN {plp} gewijzigd: {what}. Dit geldt vanaf het "
        "volgende bericht.",
        DE: "Auf seiner eigenen Seite hat ein Mitglied der PLP {plp} geändert: {what}. Das gilt ab der "
        "nächsten Nachricht.",
        EN: "On their own page, a member of the PLP {plp} changed: {what}. This applies from the next message.",
    },
    Words.MEMBER_NOTICE_LEFT_SUBJECT: {
        FR: "Un membre a quitté le PLP {plp}",
        NL: "Een lid heeft het BIN {plp} verlaten",
        DE: "Ein Mitglied hat die PLP {plp} verlassen",
        EN: "A member left the PLP {plp}",
    },
    Words.MEMBER_NOTICE_LEFT_TEXT: {
        FR: "Un membre a quitté le PLP {plp} depuis sa propre page ; ses données personnelles sont effacées.",
        NL: "Een lid heeft het BIN {plp} verlaten via zijn eigen pagina; zijn persoonsgegevens zijn gewist.",
        DE: "Ein Mitglied hat die PLP {plp} über seine eigene Seite verlassen; seine personenbezogenen Daten "
        "sind gelöscht.",
        EN: "A member left the PLP {plp} from their own page; their personal data is erased.",
    },
    Words.MEMBER_CHANGED_LANGUAGE: {FR: "sa langue", NL: "zijn taal", DE: "seine Sprache", EN: "their language"},
    Words.MEMBER_CHANGED_CHANNELS: {
        FR: "ses canaux et préférences",
        NL: "zijn kanalen en voorkeuren",
        DE: "seine Kanäle und Einstellungen",
        EN: "their channels and preferences",
    },
    Words.MEMBER_CHANGED_CONTACT: {
        FR: "son numéro ou son adresse e-mail",
        NL: "zijn nummer of e-mailadres",
        DE: "seine Nummer oder E-Mail-Adresse",
        EN: "their number or e-mail address",
    },
    Words.JOIN_NOTICE_TEXT: {
        FR: "Un habitant demande à rejoindre le PLP {plp} (coordonnées confirmées). Acceptez ou refusez sa "
        "demande dans la console, sous « Demandes d'adhésion ».",
        NL: "Een bewoner vraagt lid te worden van het BIN {plp} (gegevens bevestigd). Keur de aanvraag goed "
        'of af in de console, onder "Aanvragen".',
        DE: "Ein Bewohner beantragt den Beitritt zur PLP {plp} (Angaben bestätigt). Nehmen Sie den Antrag "
        "in der Konsole unter „Beitrittsanträge“ an oder lehnen Sie ihn ab.",
        EN: "A resident asks to join the PLP {plp} (contact points confirmed). Approve or decline the "
        'request in the console, under "Join requests".',
    },
}

#: The Telegram bot's menu per language: the command giving the member the link to their own page, then /stop;
#: each command is also a reply ``PROFILE_WORDS`` / ``STOP`` understands.
TELEGRAM_MENU: dict[Language, list[tuple[str, str]]] = {
    FR: [("profil", "Ma page : mes données et mes choix"), ("stop", "Ne plus recevoir de messages du PLP")],
    NL: [("profiel", "Mijn pagina: mijn gegevens en keuzes"), ("stop", "Geen berichten van het BIN meer ontvangen")],
    DE: [("profil", "Meine Seite: meine Angaben und Wahl"), ("stop", "Keine Nachrichten der PLP mehr erhalten")],
    EN: [("profile", "My page: my details and choices"), ("stop", "Stop receiving the PLP's messages")],
}


def telegram_menus(default: Language) -> dict[str | None, list[tuple[str, str]]]:
    """The bot's menus for ``setMyCommands``: per Telegram language code, and (key None) ``default``'s for users of
    any other language."""
    return {None: TELEGRAM_MENU[default]} | {language.value: menu for language, menu in TELEGRAM_MENU.items()}


#: Replies that acknowledge a message, and replies that stop all messages, in any case.
ACK_WORDS = frozenset(
    {"ok", "oui", "ja", "yes", "1", "recu", "reçu", "ontvangen", "erhalten", "bien recu", "bien reçu"}
)
#: Replies that ask for the link to the member's own page.
PROFILE_WORDS = frozenset({"profil", "profiel", "profile", "/profil", "/profiel", "/profile"})
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


def category_name(category: Category, language: Language) -> str:
    """The category as members read it (``cambriolage``, ``inbraak``...)."""
    return _CATEGORY[category][language]


def emergency_reminder(language: Language) -> str:
    """The reminder that urgent matters go to the police (101, 112), never through the PLP."""
    return _EMERGENCY[language]


def subject(
    *,
    plp_name: str,
    urgency: Urgency,
    category: Category,
    language: Language,
    feedback: bool = False,
    follow_up: FollowUpKind | None = None,
) -> str:
    """The subject line of a message: ``[PLP name] URGENT: burglary``; a follow-up's names its kind
    (``[PLP name] All clear: burglary``)."""
    if follow_up is not None:
        kind = _FOLLOW_UP[follow_up][language]
    else:
        kind = _FEEDBACK_PREFIX[language] if feedback else _URGENCY[urgency][language]
    return f"[{plp_name}] {kind}: {_CATEGORY[category][language]}"


#: How a follow-up of an alert is marked, first thing in every channel (GSM 03.38 letters only, for the SMS).
_FOLLOW_UP: dict[FollowUpKind, dict[Language, str]] = {
    FollowUpKind.UPDATE: {FR: "Mise à jour", NL: "Update", DE: "Aktualisierung", EN: "Update"},
    FollowUpKind.ALL_CLEAR: {FR: "Fin d'alerte", NL: "Einde alarm", DE: "Entwarnung", EN: "All clear"},
}


def follow_up_text(kind: FollowUpKind, category: Category, text: str, language: Language) -> str:
    """A follow-up's text as members get it: marked as an update or an all-clear of the alert (its category)
    before the sender's words: ``Fin d'alerte (cambriolage) : Le suspect a été arrêté, merci.``"""
    separator = " : " if language is FR else ": "
    return f"{_FOLLOW_UP[kind][language]} ({_CATEGORY[category][language]}){separator}{text}"


_EXERCISE = {
    FR: "EXERCICE — aucune action requise",
    NL: "OEFENING — geen actie nodig",
    DE: "ÜBUNG — keine Maßnahme nötig",
    EN: "EXERCISE — no action needed",
}


def exercise_text(text: str, language: Language, *, gsm: bool = False) -> str:
    """A drill's text as members get it: marked as an exercise in their language, on a line before the
    sender's words. ``gsm``: for an SMS, the dash as a hyphen, so that the mark stays in the GSM 03.38
    alphabet (Ü, ß and ö are in it; the em dash is not)."""
    mark = _EXERCISE[language].replace("—", "-") if gsm else _EXERCISE[language]
    return f"{mark}\n{text}"


def normalise_reply(text: str) -> str:
    """A member's reply reduced for matching: trimmed, lower case, final punctuation dropped; a bot command chosen
    from the menu in a group (``/profil@PlpBot``) loses the bot's name."""
    words = text.strip().lower().rstrip(".!").split()
    if words and words[0].startswith("/") and "@" in words[0]:
        words[0] = words[0].split("@", 1)[0]
    return " ".join(words)


def _options(*ids: str) -> list[AnswerOption]:
    return [AnswerOption(id=i, texts=_ANSWER_TEXTS[i], consent=i == "camera") for i in ids]


#: The answers' words (GSM 03.38 letters only, for the SMS).
_ANSWER_TEXTS: dict[str, dict[Language, str]] = {
    "saw": {FR: "J'ai vu quelque chose", NL: "Ik heb iets gezien", DE: "Ich habe etwas gesehen", EN: "I saw something"},
    "nothing": {FR: "Rien vu", NL: "Niets gezien", DE: "Nichts gesehen", EN: "Nothing seen"},
    "camera": {
        FR: "J'ai des images caméra",
        NL: "Ik heb camerabeelden",
        DE: "Ich habe Kamerabilder",
        EN: "I have camera images",
    },
}
_DEFAULT_ANSWERS: dict[Category, tuple[str, ...]] = {
    Category.BURGLARY: ("saw", "nothing", "camera"),
    Category.SUSPECT_VEHICLE: ("saw", "nothing", "camera"),
    Category.SUSPECT_PERSON: ("saw", "nothing", "camera"),
    Category.INCIVILITY: ("saw", "nothing"),
}


def default_answers(category: Category) -> list[AnswerOption]:
    """The answers an alert of ``category`` offers when its sender names none ("I have camera images"
    asks consent to be contacted); none for prevention advice and other messages."""
    return _options(*_DEFAULT_ANSWERS.get(category, ()))


def answer_choices(answers: list[AnswerOption], language: Language) -> str:
    """The options as an SMS lists them: ``Répondez 1=J'ai vu quelque chose, 2=Rien vu``."""
    listed = ", ".join(f"{n}={a.text_for(language)}" for n, a in enumerate(answers, start=1))
    return f"{say(Words.SMS_ANSWER_HINT, language)} {listed}"


#: The key of a call that gives an alert's first answer: the keys after the acknowledgement key (1).
FIRST_ANSWER_KEY = 2


def voice_answer_keys(answers: list[AnswerOption], language: Language) -> str:
    """What a call says after "press 1": ``Pour répondre, appuyez sur 2 : Rien vu ; 3 : ...``; "" without answers."""
    if not answers:
        return ""
    separator = " ; " if language is Language.FR else "; "
    choices = separator.join(
        f"{n}{' :' if language is Language.FR else ':'} {a.text_for(language)}"
        for n, a in enumerate(answers, start=FIRST_ANSWER_KEY)
    )
    return say(Words.VOICE_ANSWER_KEYS, language, choices=choices)


def answer_for_key(key: str, answers: list[AnswerOption]) -> AnswerOption | None:
    """The answer a key pressed in a call gives (2 the first, 3 the second...); None for any other key."""
    index = int(key) - FIRST_ANSWER_KEY if key.isdigit() else -1
    return answers[index] if 0 <= index < len(answers) else None


def match_answer(text: str, answers: list[AnswerOption], language: Language) -> AnswerOption | None:
    """The option a member's reply names: its number (``1``...), or its words in their language or any
    (in any case, final punctuation aside); None when it names none."""
    words = normalise_reply(text)
    if words.isdigit() and 1 <= int(words) <= len(answers):
        return answers[int(words) - 1]
    for option in answers:
        ordered = [option.texts.get(language)] + [t for lang, t in option.texts.items() if lang is not language]
        if any(t is not None and normalise_reply(t) == words for t in ordered):
            return option
    return None
