"""Who may do what: the role rules and per-role field policy (``policy``), the append-only audit
log (``audit``), the API's rate limits and lockouts (``throttle``) and one-time codes sent to a
phone or an e-mail address (``codes``), console sessions (``sessions``) and signing in through an
organisation's identity provider (``oidc``).

May import: ``config``, ``dispatcher.core``, ``dispatcher.storage``.
"""
