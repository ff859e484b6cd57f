"""The HTTP API (aiohttp, JSON, under ``/v1``); ``create_app`` builds it.

May import: ``config``, ``channels``, ``dispatcher.core``, ``dispatcher.storage``, ``dispatcher.access``,
``dispatcher.reports``, ``dispatcher.pipeline``, ``dispatcher.people``, ``dispatcher.operations``,
``dispatcher.geo``, ``dispatcher.exchange``.
"""
