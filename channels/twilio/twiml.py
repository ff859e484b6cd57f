"""TwiML, Twilio's XML: what an alert call plays, and what our webhooks answer Twilio.

Built with the ``twilio`` library's ``VoiceResponse`` and ``MessagingResponse``, which escape
every text; the voices are Amazon Polly's neural voices that Twilio offers for each language.
"""

from __future__ import annotations

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from channels.base import CallScript
from dispatcher.core.models import Language

#: The media type of TwiML.
TWIML = "application/xml"

#: The language tag and the voice a call speaks in, for each language (Belgian voices where they exist).
VOICES: dict[Language, tuple[str, str]] = {
    Language.FR: ("fr-BE", "Polly.Isabelle-Neural"),
    Language.NL: ("nl-BE", "Polly.Lisa-Neural"),
    Language.DE: ("de-DE", "Polly.Vicki-Neural"),
    Language.EN: ("en-GB", "Polly.Amy-Neural"),
}
#: Seconds the call waits for a key once the message is said.
KEY_TIMEOUT = 8


def call(script: CallScript, language: Language, keys_url: str) -> str:
    """The alert call: the introduction and the message, a pause, the message again, how to acknowledge
    (one key, posted to ``keys_url``), then goodbye if no key came."""
    lang, voice = VOICES[language]
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=keys_url, method="POST", timeout=KEY_TIMEOUT)
    gather.say(f"{script.intro} {script.text}", language=lang, voice=voice)
    gather.pause(length=1)
    gather.say(script.text, language=lang, voice=voice)
    gather.say(script.prompt, language=lang, voice=voice)
    response.say(script.goodbye, language=lang, voice=voice)
    return str(response)


def spoken(text: str, language: Language) -> str:
    """The answer to keys pressed in a call: ``text``, said in the call's language."""
    lang, voice = VOICES[language]
    response = VoiceResponse()
    response.say(text, language=lang, voice=voice)
    return str(response)


def message(text: str | None) -> str:
    """The answer to an incoming SMS: ``text`` sent back to the sender, or nothing (an empty response)."""
    response = MessagingResponse()
    if text is not None:
        response.message(text)
    return str(response)
