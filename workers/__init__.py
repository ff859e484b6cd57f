"""Job entry points (``workers.jobs``) and the worker processes that run them (``workers.main``)."""
