"""Running the service: health and the service-wide assessment (``health``), process heartbeats
(``heartbeats``), queue depths and provider limits in effect (``queues``), Prometheus metrics
(``metrics``) and the checks of production mode (``production``).

May import: every other part of ``dispatcher`` but ``api`` and ``cli``, and ``channels``.
"""
