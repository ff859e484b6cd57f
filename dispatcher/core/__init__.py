"""The vocabulary every other part shares: what an alert, a member, a charter and a delivery are
(``models``), the channels' names and the contact point each reaches (``channel_names``), contact
points in their one written form (``contacts``, ``validation``), the words members read
(``wording``) and SMS segments (``segments``), signed member links (``links``), when a recurring
drill comes round (``drills``), and the logs with their masking (``logging``).

Owns no state (but the channel names a vendor adds when the channel registry registers it) and
talks to nothing: no Redis, no vendor, no queue. Of the project, it takes the settings alone
(besides the standard library, pydantic, itsdangerous and structlog).

May import: ``config``.
"""
