"""Settings of plp-dispatch, read once from the environment."""

from config.settings import (
    Environment,
    LogFormat,
    Settings,
    SettingsFileError,
    SmtpSecurity,
    WorkerKind,
    load_settings,
)

__all__ = [
    "Environment",
    "LogFormat",
    "Settings",
    "SettingsFileError",
    "SmtpSecurity",
    "WorkerKind",
    "load_settings",
]
