"""Who may do what: the role rules and per-role field policy (``policy``), the append-only audit
log (``audit``) and the API's rate limits and lockouts (``throttle``).

May import: ``config``, ``dispatcher.core``, ``dispatcher.storage``.
"""
