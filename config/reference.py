"""The configuration reference, ``docs/configuration.md``, generated from ``Settings``.

Each variable's type and default come from its field, its text from the field's ``description``:
a setting is documented where it is declared, and the page cannot drift from it (a test renders
the page again and compares). The prose around the tables is kept here.

    python -m config.reference            # writes docs/configuration.md
    python -m config.reference --check    # exit 1, saying so, when the page is not what Settings gives
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from config.settings import Settings, environment_variable, file_variables

#: Where the page lives in a checkout.
PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
COMMAND = "python -m config.reference"


@dataclass(frozen=True)
class Section:
    """A heading of the page, a sentence under it, and the fields of its table, in order."""

    title: str
    lead: str
    fields: tuple[str, ...]


SECTIONS = (
    Section(
        "Processes and Redis",
        "Where the service keeps its data, how its processes run and what they write.",
        (
            "environment", "redis_url", "key_prefix", "queue_prefix", "data_dir", "redis_max_connections",
            "redis_pool_timeout", "worker_kind", "general_worker_nice", "urgent_help_after", "log_format", "log_level",
            "heartbeat_file", "notify_socket",
        ),
    ),
    Section(
        "Redis Sentinel and replicas",
        "A primary that fails over to its replica, and alerts held by the replica before their 202 (see "
        "[failover with Redis Sentinel](deploying.md#failover-with-redis-sentinel)).",
        (
            "redis_sentinels", "redis_sentinel_master", "redis_sentinel_password", "redis_wait_replicas",
            "redis_wait_timeout", "redis_wait_missed",
        ),
    ),
    Section(
        "The web process and the API",
        "Where `plp web` listens, how it is reached, and what it accepts.",
        (
            "host", "port", "listen_fd", "web_processes", "public_base_url", "max_body_bytes", "max_import_rows",
            "idempotency_ttl", "default_region",
        ),
    ),
    Section(
        "Sending",
        "How fan-out and send jobs are cut and run, and the outbox that stands in for a provider without "
        "credentials (see [how it works](how-it-works.md)).",
        (
            "fanout_chunk", "send_batch_size", "worker_batches", "send_concurrency", "send_job_timeout",
            "provider_timeout", "outbox_path", "outbox_channels", "outbox_latency_ms",
        ),
    ),
    Section(
        "Delivery guarantees",
        "Retries, leases and the clock (see [delivery guarantees](delivery.md)).",
        ("max_attempts", "retry_base_urgent", "retry_base", "lease_seconds", "clock_interval", "urgent_wait_alarm"),
    ),
    Section(
        "Provider limits",
        "The rates the providers allow; every worker process shares them through Redis "
        "(see [provider limits](delivery.md#provider-limits)).",
        (
            "limit_sms_per_second", "limit_voice_per_second", "limit_telegram_per_second",
            "limit_telegram_per_chat_per_second", "limit_whatsapp_per_second", "limit_whatsapp_per_user_seconds",
            "limit_email_per_minute", "limit_margin",
        ),
    ),
    Section(
        "Access, links and personal data",
        "Tokens, rate limits, member links and how long data is kept (see [security and privacy](security.md)).",
        (
            "token_ttl_days", "signin_link_minutes", "session_idle_minutes", "session_max_hours",
            "session_cookie_secure", "oidc_issuer", "oidc_client_id", "oidc_client_secret", "oidc_scopes", "oidc_name",
            "rate_limit_per_token", "rate_limit_per_token_burst", "rate_limit_per_address",
            "rate_limit_per_address_burst", "trusted_proxies", "metrics_token", "secret_key", "link_ttl_days",
            "retention_days",
        ),
    ),
    Section(
        "Costs",
        "The prices of the cost estimates.",
        ("price_sms_segment", "price_voice_minute", "currency"),
    ),
    Section(
        "Twilio: SMS and calls",
        "See [setting up Twilio](channels.md#twilio).",
        (
            "twilio_account_sid", "twilio_auth_token", "twilio_sms_from", "twilio_messaging_service_sid",
            "twilio_voice_from", "twilio_api_base_url",
        ),
    ),
    Section(
        "SMTP: e-mail",
        "See [setting up SMTP](channels.md#smtp).",
        (
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "smtp_password",
            "smtp_from",
            "smtp_pool_size",
            "smtp_ehlo_name",
        ),
    ),
    Section(
        "Telegram",
        "See [setting up Telegram](channels.md#telegram).",
        ("telegram_bot_token", "telegram_bot_username", "telegram_webhook_secret", "telegram_api_base_url"),
    ),
    Section(
        "WhatsApp",
        "The Business Cloud API; see [WhatsApp templates](../README.md#whatsapp-templates).",
        (
            "whatsapp_token", "whatsapp_phone_id", "whatsapp_app_secret", "whatsapp_verify_token",
            "whatsapp_api_base_url", "whatsapp_api_version", "whatsapp_template_prefix",
        ),
    ),
    Section(
        "Geocoding: where members live",
        "The Nominatim server that locates members from their address, in the background (see "
        "[places, sectors and areas](places.md#locating-members)).",
        (
            "geocoder_url", "geocoder_rate", "geocoder_user_agent", "geocoder_timeout", "geocoder_countries",
            "geocoder_batch",
        ),
    ),
    Section(
        "Maps in the console",
        "The tiles under the console's maps of PLPs, sectors and areas (see [the console](console.md#maps)).",
        ("map_tile_url", "map_attribution"),
    ),
)  # fmt: skip

TITLE = "# Configuration"

INTRO = """\
Every setting of the service, read once from the environment and validated at start-up. Each is read
from the variable named here, spelled exactly so, and from no other (not `PORT`, `HOST`, `DATA_DIR`...);
no `.env` file is read, not even by the honcho of `plp dev`. A value refused stops the process with a
sentence naming its variable.

This page is generated from the settings themselves by `{command}`, and a test fails
when the page and the settings disagree: to change a variable's text, change its field's `description`.
"""

#: Hand-written sections before the tables: (title, text).
BEFORE = (
    (
        "Production mode",
        """\
Under `PLP_ENV=production`, the default everywhere but under `plp dev` and in the test suite, nothing
degrades silently. Every command that works on Redis directly (`web`, `worker`, `clock`, `supervise`,
`status`, `token`, `purge`) refuses to run, with exit status 1 and one sentence per fault naming its
variable, when:

- `REDIS_URL` and `PLP_REDIS_SENTINELS` are unset (no embedded Redis), `PLP_SECRET_KEY` is unset (no
  per-host key file), or `PLP_DATA_DIR` (or `PLP_OUTBOX_PATH`) is a relative path;
- `PLP_OIDC_ISSUER` is set without both `PLP_OIDC_CLIENT_ID` and `PLP_OIDC_CLIENT_SECRET`, or is not https
  (but on loopback);
- a `*_FILE` variable is set together with its variable, or its file cannot be read; any variable is
  invalid;
- (`web`, `worker`, `clock`) a stored PLP's charter names a channel that has no credentials and is not in
  `PLP_OUTBOX_CHANNELS`. The message lists every such PLP, each place in its charter
  (`urgent.channels[0] names sms`, `urgent.escalate_to names voice`) and, per channel, the variables that
  would enable it. If Redis cannot be read at start-up, a `startup.charters_unchecked` warning says so
  and the process starts (it rides the outage out).

A channel whose vendor has no credentials is served by the outbox only if `PLP_OUTBOX_CHANNELS` names
it; otherwise nothing can send it, and a charter naming it is refused when saved (`POST /v1/plps`,
`PUT /v1/plps/{id}/charter`, `plp charter set`: a 422 naming each field, e.g. `body.urgent.channels[0]`,
and the variables to set). Messages the outbox keeps reached nobody: they end in the status `outbox`,
never `delivered`, in the counts, the console and the annual evaluation. The commands that go through
the API (`plp alert`, `plp report`...) need none of this. `PLP_ENV=development` allows the embedded
Redis, the key file and the outbox for any channel.""",
    ),
    (
        "Secrets from files",
        """\
Each secret may instead be read from a file named by the same variable with `_FILE` appended, e.g.
`PLP_SECRET_KEY_FILE=/run/secrets/plp_secret_key` (Docker secrets, systemd credentials: see
[deploying](deploying.md#the-variables-every-process-needs)). The secrets are
{secrets}.
The file's text is the value, without its final newline; an empty file counts as unset. Setting a
variable and its `_FILE` both, or a `_FILE` that cannot be read, stops every command with a sentence
naming the variable. Secrets never appear in a repr or a log line.""",
    ),
)

#: Hand-written sections after the tables.
AFTER = (
    (
        "The command line's own variables",
        """\
`PLP_API_URL`, `PLP_TOKEN` and `PLP_TOKEN_FILE` are read by the commands that act through the API only,
as the defaults of their `--api`, `--token` and `--token-file` options: see
[where the API is, and as whom](cli.md#where-the-api-is-and-as-whom).""",
    ),
)


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, UnionType):
        return get_args(annotation)
    return (annotation,)


def _kind(annotation: Any, info: FieldInfo) -> str:
    """What a value is: a word for the type, or the choices."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in get_args(annotation))
    pattern = next((m.pattern for m in info.metadata if getattr(m, "pattern", None)), None)
    if annotation is str and pattern and (choices := re.fullmatch(r"\^\(([\w|]+)\)\$", pattern)):
        return "one of " + ", ".join(f"`{choice}`" for choice in choices[1].split("|"))
    if get_origin(annotation) is tuple:
        return "comma-separated list"
    words = {str: "text", int: "integer", float: "number", Decimal: "decimal", Path: "path", SecretStr: "secret"}
    word = words.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return f"{word} matching `{pattern}`" if pattern else word


def _bounds(info: FieldInfo) -> str:
    """The field's bounds, as a reader writes them (``1–65535``, ``≥ 10``, ``16 characters or more``)."""
    found = {type(m): m for m in info.metadata}
    low, high = found.get(Ge), found.get(Le)
    if low is not None and high is not None:
        return f"{_number(low.ge)}–{_number(high.le)}"
    parts = []
    for kind, sign, attribute in ((Ge, "≥", "ge"), (Gt, ">", "gt"), (Le, "≤", "le"), (Lt, "<", "lt")):
        if (bound := found.get(kind)) is not None:
            parts.append(f"{sign} {_number(getattr(bound, attribute))}")
    if (length := found.get(MinLen)) is not None:
        parts.append(f"{length.min_length} characters or more")
    return ", ".join(parts)


def field_type(name: str) -> str:
    """The type column: what a value is, and its bounds."""
    info = Settings.model_fields[name]
    members = [m for m in _union_members(info.annotation) if m is not NoneType]
    kind = " or ".join(_kind(member, info) for member in members)
    bounds = _bounds(info)
    return f"{kind}, {bounds}" if bounds else kind


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def field_default(name: str) -> str:
    """The default column: the value as written in the environment, or *(unset)*."""
    default = Settings.model_fields[name].default
    if default is None or default == "":
        return "*(unset)*"
    if isinstance(default, tuple):
        return f"`{','.join(default)}`" if default else "*(none)*"
    if isinstance(default, Enum):
        return f"`{default.value}`"
    return f"`{_number(default)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(section: Section) -> list[str]:
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name in section.fields:
        description = Settings.model_fields[name].description or ""
        cells = (f"`{environment_variable(name)}`", field_type(name), field_default(name), description)
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return lines


def _check_sections() -> None:
    placed = [name for section in SECTIONS for name in section.fields]
    doubled = sorted({name for name in placed if placed.count(name) > 1})
    unplaced = sorted(set(Settings.model_fields) - set(placed))
    unknown = sorted(set(placed) - set(Settings.model_fields))
    if doubled or unplaced or unknown:
        raise ValueError(
            f"config.reference.SECTIONS must hold every field of Settings once: doubled {doubled}, "
            f"in no section {unplaced}, no such field {unknown}"
        )


def render() -> str:
    """The whole page, as ``docs/configuration.md`` must hold it.

    Raises ``ValueError`` when a field of ``Settings`` is in no section (or in two), or has no description.
    """
    _check_sections()
    if missing := [name for name, info in Settings.model_fields.items() if not info.description]:
        raise ValueError(f"every field of Settings needs a description=; these have none: {missing}")
    titles = [title for title, _ in BEFORE] + [s.title for s in SECTIONS] + [title for title, _ in AFTER]
    secrets = ", ".join(f"`{variable}`" for variable in file_variables())
    lines = [
        f"<!-- Generated from config.settings.Settings by `{COMMAND}`: edit the fields' descriptions, not this. -->",
        "",
        TITLE,
        "",
        *(f"- [{title}](#{slug(title)})" for title in titles),
        "",
        INTRO.replace("{command}", COMMAND).rstrip("\n"),
    ]
    for title, text in BEFORE:
        lines += ["", f"## {title}", "", text.replace("{secrets}", secrets)]
    for section in SECTIONS:
        lines += ["", f"## {section.title}", "", section.lead, "", *_table(section)]
    for title, text in AFTER:
        lines += ["", f"## {title}", "", text]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the page (or, with ``--check``, compare it); the exit status says whether it was up to date."""
    parser = argparse.ArgumentParser(prog=COMMAND, description="Generate docs/configuration.md from Settings.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the page is out of date")
    parser.add_argument("--output", type=Path, default=PAGE, help=f"the page to write (default: {PAGE})")
    args = parser.parse_args(argv)
    text = render()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"{args.output}: {'unchanged' if current == text else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
