"""The HTTP API (aiohttp, JSON, under ``/v1``); ``create_app`` builds it."""
