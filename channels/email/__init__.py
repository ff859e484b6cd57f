"""E-mail: messages through one SMTP server, on the wire as the RFC say.

- ``smtp``: the channel (``SmtpChannel``), its pool of connections, the mail server's answers
  translated into the channel errors, the relay's rate;
- ``mime``: the e-mails' wire format (``MAIL_POLICY``: encoded words, unbroken URL lists), and
  ``MailFrame``: an e-mail's headers and MIME structure built once per subject and language, each
  member's headers and bodies filled in as the ``email`` package would write them.

SMTP calls nothing back: the receipt, unsubscribe and data-export links of an e-mail lead to the
service's own pages (``dispatcher.api.pages``), which are no vendor's.

Configured by ``SMTP_HOST`` and ``SMTP_FROM`` (the channel's ``requires``); ``SMTP_PORT``,
``SMTP_SECURITY``, ``SMTP_USERNAME``/``SMTP_PASSWORD``, ``SMTP_POOL_SIZE`` and
``PLP_LIMIT_EMAIL_PER_MINUTE`` are optional.
"""

from channels.email.mime import MAIL_POLICY, UrlListHeader
from channels.email.smtp import SmtpChannel, translate

__all__ = ["MAIL_POLICY", "SmtpChannel", "UrlListHeader", "translate"]
