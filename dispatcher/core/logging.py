"""Structured logging: JSON in production, readable on a terminal, personal data masked.

Masking is a processor, so no call site has to remember it: every string value of
every event (the message included, and the records of libraries' loggers) has its
phone numbers, e-mail addresses (Unicode ones too), Telegram chat ids, secret tokens and the
addresses in a geocoder's query (``street=``, ``city=``...) replaced by masked forms before it is
rendered; the values of keys that hold a part of an address or a position (``street``, ``location``...)
are masked whole. The same masking serves the fields of
the API's answers that the police see masked (``dispatcher.access.policy``).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from config import LogFormat, Settings

# Secrets that can end up in URLs or messages: Telegram bot tokens, our bearer tokens.
_SECRET = re.compile(r"(bot\d{3,}:|plp_)[\w-]{20,}")
# Signed tokens (the links sent to members, JWTs): base64url JSON, then dot-separated parts.
# A member's link is a capability (their data, their receipt): it must not be read from a log.
_SIGNED = re.compile(r"eyJ[\w-]+\.[\w-]+(?:\.[\w-]+)?")
# Local parts and domains in any script (иван@пример.рф, anne@bücher.be), punycode too.
_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.(?:[^\W\d_]{2,}|xn--[\w-]+)")
# A Telegram chat id: named (chat_id=123456789, 'chat_id': -100123..., 'chat': {'id': 1234...}, as the
# Bot API library writes requests and answers at DEBUG), or in a delivery's provider
# id (``<chat id>:<message id>``, see channels/telegram.py). Chat ids have 6 digits or more.
_CHAT_NAMED = re.compile(r"(chat_?id\W{1,4}|\Wchat\W{1,4}\{\W{0,2}id\W{1,4})-?\d+", re.IGNORECASE)
_CHAT_MESSAGE = re.compile(r"(?<![\w:.-])-?\d{6,}:(\d+)(?![\w:])")
#: Event keys whose values are chat ids, or provider ids that may embed one.
_CHAT_KEYS = frozenset({"chat_id", "telegram_chat_id"})
#: Event keys whose values are a member's address or position: masked whole.
_PLACE_KEYS = frozenset({"street", "postcode", "location", "coordinates", "lat", "lon"})
# A geocoder's query parameters, in a URL a library logs (geopy logs each request's URL at DEBUG).
_GEOCODER_QUERY = re.compile(r"(?<![\w])(street|city|postalcode|q|lat|lon)=[^&\s'\"]+")
# A part of an address or a position written as a field, in a model's repr or in JSON: street='Rue X', "lat": 50.8
_PLACE_FIELD = re.compile(
    r"""(?<![\w])(street|number|postcode|commune|lat|lon)(['"]?\s*[:=]\s*)('[^']*'|"[^"]*"|-?\d+(?:\.\d+)?)"""
)
# International or national phone numbers as people write them: +32 470 12 34 56, 0470/12.34.56
_PHONE = re.compile(r"(?<![\w+])(?<!\d[:.])(?:\+\d|0)[\d ./-]{6,}\d(?![\w])")


def mask_address(value: str) -> str:
    """Mask one contact point: ``+32470123456`` -> ``+324******56``, ``ann@x.be`` -> ``a***@x.be``."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = re.sub(r"[ ./-]", "", value)
    if len(digits) <= 6:
        return "*" * len(digits)
    kept = 4 if digits.startswith("+") else 2  # the country code, or the national prefix
    return digits[:kept] + "*" * (len(digits) - kept - 2) + digits[-2:]


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if sum(ch.isdigit() for ch in text) < 8:  # dates, amounts, ids: not a phone number
        return text
    return mask_address(text)


def mask_text(text: str) -> str:
    """Mask every e-mail address, phone number, Telegram chat id, secret token and geocoder query found in a text."""
    text = _SECRET.sub(lambda m: f"{m.group(1)}***", text)
    text = _GEOCODER_QUERY.sub(lambda m: f"{m.group(1)}=***", text)
    text = _PLACE_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _SIGNED.sub("eyJ***", text)
    text = _EMAIL.sub(lambda m: mask_address(m.group(0)), text)
    text = _CHAT_NAMED.sub(lambda m: f"{m.group(1)}***", text)
    text = _CHAT_MESSAGE.sub(lambda m: f"***:{m.group(1)}", text)
    return _PHONE.sub(_mask_phone, text)


def _mask_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return mask_text(repr(value))  # exceptions and other objects are rendered by their repr


def mask_personal_data(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask contact points in every value of the event."""
    return {key: _mask_entry(key, value) for key, value in event_dict.items()}


def _mask_entry(key: str, value: Any) -> Any:
    if key.startswith("_"):
        return value
    if key in _CHAT_KEYS | _PLACE_KEYS and value is not None:
        return "***"
    return _mask_value(value)


def configure_logging(settings: Settings) -> None:
    """Set up structlog (and the standard library's logging, for libraries) once per process."""
    json_output = settings.log_format is LogFormat.JSON or (
        settings.log_format is LogFormat.AUTO and not sys.stderr.isatty()
    )
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.format_exc_info,
        mask_personal_data,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(settings.log_level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Vendor libraries log every request at INFO (httpx, under pywa, with its URL); the Telegram bot logs its
    # base URL, the bot token in it, at DEBUG.
    # geopy logs each geocoder request's URL at DEBUG, the member's address in it (masked all the same).
    for noisy in ("twilio", "httpx", "httpcore", "telegram", "aiosmtplib", "geopy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
