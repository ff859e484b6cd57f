"""Running the service: health and the service-wide assessment (``health``), process heartbeats
(``heartbeats``), queue depths and provider limits in effect (``queues``), Prometheus metrics
(``metrics``) and the checks of production mode (``production``).

It observes the running service from Redis and the channels' configuration, beside the pipeline's
work rather than above it: the pipeline's processes beat and count into it (a send's outcome, the
clock's sweep), and the API and the CLI show what it finds.

May import: ``config``, ``channels``, ``dispatcher.core``, ``dispatcher.storage``.
"""
