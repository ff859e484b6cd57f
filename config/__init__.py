"""Settings of plp-dispatch, read once from the environment."""

from config.settings import LogFormat, Settings, WorkerKind, load_settings

__all__ = ["LogFormat", "Settings", "WorkerKind", "load_settings"]
