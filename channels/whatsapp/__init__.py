"""WhatsApp: template messages from one business number, through the WhatsApp Business Cloud API (``pywa``).

- ``templates``: the approved templates, one per purpose, language and number of answers, their
  texts and their registration bodies;
- ``sending``: the channel (``WhatsAppChannel``), the Cloud API's errors translated into the
  channel errors (``translate``), the business number's and each member's rates;
- ``inbound``: the webhooks, their ``X-Hub-Signature-256`` check and handshake, statuses, buttons
  and replies in the dispatcher's words.

Configured by ``WHATSAPP_TOKEN`` and ``WHATSAPP_PHONE_ID`` (the channel's ``requires``); the
webhooks need ``WHATSAPP_APP_SECRET`` and ``WHATSAPP_VERIFY_TOKEN``; ``WHATSAPP_API_BASE_URL``,
``WHATSAPP_API_VERSION``, ``WHATSAPP_TEMPLATE_PREFIX`` and the ``PLP_LIMIT_WHATSAPP_*`` rates are optional.

It reaches only members who opted in to WhatsApp explicitly: a member's WhatsApp address is their
mobile number once ``Member.whatsapp_consent`` (time and source) is recorded.
"""

from channels.whatsapp.inbound import WhatsAppInbound
from channels.whatsapp.sending import POOL_SIZE, REASONS, WhatsAppChannel, quiet_library_logs, translate

__all__ = ["POOL_SIZE", "REASONS", "WhatsAppChannel", "WhatsAppInbound", "quiet_library_logs", "translate"]
