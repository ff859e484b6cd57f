"""Settings of plp-dispatch, read once from the environment."""

from config.settings import LogFormat, Settings, SmtpSecurity, WorkerKind, load_settings

__all__ = ["LogFormat", "Settings", "SmtpSecurity", "WorkerKind", "load_settings"]
