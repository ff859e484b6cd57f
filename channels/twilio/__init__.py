"""Twilio: SMS and voice calls through one Twilio account, and everything Twilio sends back.

- ``sending``: the two channels (``TwilioSmsChannel``, ``TwilioVoiceChannel``), the account,
  Twilio's errors translated into the channel errors, the rates of the account;
- ``inbound``: the webhooks (statuses, incoming SMS, keys pressed in a call), their signature
  check, Twilio's statuses in the dispatcher's words, the callback URLs (``TwilioInbound``);
- ``twiml``: TwiML, what a call plays and what the webhooks answer, with each language's voice.

Configured by ``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN``, with ``TWILIO_SMS_FROM`` or
``TWILIO_MESSAGING_SERVICE_SID`` for SMS and ``TWILIO_VOICE_FROM`` for calls (each channel's
``requires``); ``TWILIO_API_BASE_URL`` and ``PLP_LIMIT_SMS_PER_SECOND``/``PLP_LIMIT_VOICE_PER_SECOND``
are optional; Twilio calls back at ``PLP_PUBLIC_BASE_URL``.
"""

from channels.twilio.inbound import TwilioInbound
from channels.twilio.sending import TwilioAccount, TwilioSmsChannel, TwilioVoiceChannel

__all__ = ["TwilioAccount", "TwilioInbound", "TwilioSmsChannel", "TwilioVoiceChannel"]
