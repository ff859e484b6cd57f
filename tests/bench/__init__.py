"""Measurements, not tests: scripts run by hand (``python -m tests.bench.<name>``) that print figures."""
