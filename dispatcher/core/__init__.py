"""The vocabulary every other part shares: what an alert, a member, a charter and a delivery are
(``models``), contact points in their one written form (``contacts``, ``validation``), the words
members read (``wording``) and SMS segments (``segments``), signed member links (``links``), and
the logs with their masking (``logging``).

Owns no state and talks to nothing: no Redis, no vendor, no queue. Of the project, it takes the
settings alone (besides the standard library, pydantic, itsdangerous and structlog).

May import: ``config``.
"""
