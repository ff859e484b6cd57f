"""The service's settings: read once from the environment, validated, frozen.

No other module reads ``os.environ``; everything else receives a ``Settings``.
Every field carries its description: the configuration reference, docs/configuration.md, is generated
from them (``python -m config.reference``), so a field is documented where it is declared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class LogFormat(StrEnum):
    AUTO = "auto"  # readable on a terminal, JSON otherwise
    CONSOLE = "console"
    JSON = "json"


class SmtpSecurity(StrEnum):
    NONE = "none"  # plain SMTP (a relay on a trusted network, tests)
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS, usually port 465


#: What an alert's intake does when its replicas did not confirm it in time (PLP_REDIS_WAIT_MISSED).
WaitMissed = Literal["accept", "refuse"]


class Environment(StrEnum):
    PRODUCTION = "production"  # nothing degrades silently: see Settings.production_faults
    DEVELOPMENT = "development"  # plp dev and the tests: embedded Redis, key file, outbox for any channel


class WorkerKind(StrEnum):
    SIMPLE = "simple"  # runs jobs in the worker process: lowest latency
    FORK = "fork"  # forks a child per job (RQ's default): isolation over speed


#: The channels a charter may name (``dispatcher.core.models.ChannelName``), for PLP_OUTBOX_CHANNELS.
CHANNEL_NAMES = ("sms", "voice", "email", "telegram", "whatsapp")
#: A name a relay accepts in EHLO (RFC 5321 4.1.1.1): a domain, or an address literal in brackets.
_EHLO_NAME = re.compile(r"\[(IPv6:)?[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")

#: Days a bearer token stays valid by default (``PLP_TOKEN_TTL_DAYS``), and at most.
DEFAULT_TOKEN_TTL_DAYS = 90
MAX_TOKEN_TTL_DAYS = 3650


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


def local_url(host: str, port: int) -> str:
    """``http://host:port``, as a client on this machine reaches a server listening there."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def environment_variable(field: str) -> str:
    """The one environment variable the field ``field`` of ``Settings`` is read from, as the reference names it."""
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices) and len(alias.choices) == 1, f"{field}: declare it with _env(NAME)"
    return str(alias.choices[0])


class SettingsFileError(ValueError):
    """A secret's ``*_FILE`` variable cannot be used: set with its variable, or its file unreadable.

    The message is one sentence per variable at fault, naming it.
    """


def file_variables() -> tuple[str, ...]:
    """The variables that may instead be read from a file named by ``<VARIABLE>_FILE``: every secret.

    The secrets (``SecretStr`` fields) and ``REDIS_URL``, which may carry Redis' password.
    """
    return tuple(
        environment_variable(name)
        for name, info in Settings.model_fields.items()
        if name == "redis_url" or SecretStr in (info.annotation, *get_args(info.annotation))
    )


def _read_secret_files(env: Mapping[str, str | None]) -> dict[str, str]:
    """The value of each secret given as ``<VARIABLE>_FILE`` (its file's text, without its final newline).

    An empty file counts as unset, as an empty variable does. Raises ``SettingsFileError`` naming each
    variable given both ways, and each file that cannot be read.
    """
    values, faults = {}, []
    for variable in file_variables():
        path = env.get(f"{variable}_FILE")
        if not path:
            continue
        if env.get(variable):
            faults.append(f"set {variable} or {variable}_FILE, not both")
            continue
        try:
            text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            faults.append(f"{variable}_FILE: cannot read {path}: {reason}")
            continue
        if text:
            values[variable] = text
    if faults:
        raise SettingsFileError("; ".join(faults))
    return values


class _DocumentedVariables(EnvSettingsSource):
    """The environment, each field read from its documented variable only, spelled exactly so.

    pydantic-settings would also read a field from its bare name in any case (``PORT``,
    ``HOST``, ``DATA_DIR``, ``SECRET_KEY``) once ``populate_by_name`` is on: honcho and
    platforms set ``PORT`` for every process, so ``plp web`` listened where nothing announced.
    A secret may instead be in the file its ``<VARIABLE>_FILE`` names (Docker secrets, systemd
    credentials), never both; no secrets folder is scanned.
    """

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {**self.env_vars, **_read_secret_files(self.env_vars)}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = environment_variable(field_name)
        return self.env_vars.get(variable), variable, False


class Settings(BaseSettings):
    """Everything configurable about one process of the service."""

    # populate_by_name lets code write Settings(port=...); the environment is read by
    # _DocumentedVariables alone (see settings_customise_sources), never by field name.
    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", env_ignore_empty=True, populate_by_name=True, case_sensitive=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments first, then the documented variables (or their ``_FILE``); no .env file, no secrets folder."""
        return init_settings, _DocumentedVariables(settings_cls)

    environment: Environment = Field(
        default=Environment.PRODUCTION,
        validation_alias=_env("PLP_ENV"),
        description="In production nothing degrades silently: the commands that work on Redis refuse a configuration "
        "that would (see [production mode](#production-mode)). `plp dev` sets `development` for itself and its "
        "processes, where the embedded Redis, the key file and the outbox for any channel are allowed.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=_env("REDIS_URL"),
        description="Redis to use (`redis://`, `rediss://`, `unix://`), shared by every process; required in "
        "production unless `PLP_REDIS_SENTINELS` is set. Unset in development: the embedded Redis, started in "
        "`<data dir>/redis/`. It may carry Redis' password, so it may be read from a file like a secret.",
    )
    redis_sentinels: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=_env("PLP_REDIS_SENTINELS"),
        description="Redis Sentinel addresses (`host:port`, comma-separated): every process then finds the primary "
        "through them and follows a failover; `REDIS_URL`, if set, gives only the password, user and database "
        "number.",
    )
    redis_sentinel_master: str = Field(
        default="plp",
        validation_alias=_env("PLP_REDIS_SENTINEL_MASTER"),
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="The master name the sentinels monitor (`sentinel monitor <name> ...`).",
    )
    redis_sentinel_password: SecretStr | None = Field(
        default=None,
        validation_alias=_env("PLP_REDIS_SENTINEL_PASSWORD"),
        description="Password of the sentinels themselves (`requirepass` in sentinel.conf), if they have one.",
    )
    redis_wait_replicas: int = Field(
        default=0,
        ge=0,
        le=16,
        validation_alias=_env("PLP_REDIS_WAIT_REPLICAS"),
        description="Replicas that must hold an alert before its 202 (Redis `WAIT`); `0` does not wait. With a "
        "replica and Sentinel, `1`: an accepted alert then survives the primary's death right after the 202.",
    )
    redis_wait_timeout: float = Field(
        default=1.0,
        gt=0,
        le=30,
        validation_alias=_env("PLP_REDIS_WAIT_TIMEOUT"),
        description="Seconds an alert's 202 waits at most for `PLP_REDIS_WAIT_REPLICAS` replicas.",
    )
    redis_wait_missed: WaitMissed = Field(
        default="accept",
        validation_alias=_env("PLP_REDIS_WAIT_MISSED"),
        description="When the replicas did not confirm in time: `accept` (202, the alert goes out from the "
        'primary; logged and counted in `plp_replication_waits_total{outcome="missed"}`) or `refuse` (503 with '
        "`Retry-After`: the client sends again with its `Idempotency-Key` and gets the same alert).",
    )
    key_prefix: str = Field(
        default="plp:",
        validation_alias=_env("PLP_KEY_PREFIX"),
        pattern=r"^[A-Za-z0-9_.-]{1,32}:$",
        description="Prefix of every Redis key the service writes (RQ's own keys excepted).",
    )
    queue_prefix: str = Field(
        default="plp",
        validation_alias=_env("PLP_QUEUE_PREFIX"),
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="Prefix of the RQ queues' names: they are `<prefix>-urgent` and `<prefix>-general`.",
    )
    data_dir: Path = Field(
        default=Path("var"),
        validation_alias=_env("PLP_DATA_DIR"),
        description="Local folder for the embedded Redis, the outbox, the demo tokens, the key file of development, "
        "supervisord's logs and control socket; an absolute path in production.",
    )
    host: str = Field(
        default="127.0.0.1",
        validation_alias=_env("PLP_HOST"),
        description="Address `plp web` listens on (`HOST` is not read).",
    )
    port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        validation_alias=_env("PLP_PORT"),
        description="Port `plp web` listens on. `PORT`, which Procfile runners and hosting platforms set for every "
        "process, is not read: see [the command line](cli.md#processes-and-the-procfile) for a platform's `$PORT`.",
    )
    listen_fd: int | None = Field(
        default=None,
        ge=0,
        validation_alias=_env("PLP_LISTEN_FD"),
        description="A listening socket handed down by whatever starts `plp web` (socket activation, the tests): "
        "served instead of `PLP_HOST:PLP_PORT`; connections made before start-up wait in its backlog.",
    )
    web_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        validation_alias=_env("PLP_WEB_PROCESSES"),
        description="Processes `plp web` serves the port with (`SO_REUSEPORT`): one per core for heavy webhook "
        "traffic.",
    )
    public_base_url: str = Field(
        default="",
        validate_default=True,
        validation_alias=_env("PLP_PUBLIC_BASE_URL"),
        description="The URL the service is reached at from outside: members' links and the webhooks given to the "
        "providers (Twilio signs its requests for this exact URL). Unset: `http://PLP_HOST:PLP_PORT`, where `plp web` "
        "answers on this machine.",
    )
    log_format: LogFormat = Field(
        default=LogFormat.AUTO,
        validation_alias=_env("PLP_LOG_FORMAT"),
        description="How log events are written: `console` (readable), `json`, or `auto` (console on a terminal, JSON "
        "otherwise).",
    )
    log_level: str = Field(
        default="INFO",
        validation_alias=_env("PLP_LOG_LEVEL"),
        pattern=r"^(DEBUG|INFO|WARNING|ERROR)$",
        description="Lowest level of the log events written.",
    )
    default_region: str = Field(
        default="BE",
        validation_alias=_env("PLP_DEFAULT_REGION"),
        pattern=r"^[A-Z]{2}$",
        description="Region of phone numbers written without a country code (in `BE`, `0470 12 34 56` is "
        "`+32470123456`).",
    )
    worker_kind: WorkerKind = Field(
        default=WorkerKind.SIMPLE,
        validation_alias=_env("PLP_WORKER_KIND"),
        description="`simple` runs jobs in the worker process (lowest latency); `fork` forks a child per job, as RQ "
        "does by default (isolation over speed).",
    )
    general_worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        validation_alias=_env("PLP_GENERAL_WORKER_NICE"),
        description="CPU niceness a general lane's worker takes as it starts (Unix `nice`, 0 to 19): on a busy host, "
        "its non-urgent sends then give the processors to the urgent worker, the web process and Redis first, so "
        "that a non-urgent backlog does not slow an urgent alert down. 0 leaves it as started.",
    )
    urgent_help_after: float = Field(
        default=0.25,
        ge=0,
        le=60,
        validation_alias=_env("PLP_URGENT_HELP_AFTER"),
        description="Seconds an urgent job waits in its queue before a general lane's worker takes it (the urgent "
        "worker busy with it, or gone): the general worker runs nicer, and on a host loaded by other work an "
        "urgent alert's sends are faster left to the urgent worker; an idle general worker looks that often. 0: a "
        "general worker takes urgent jobs at once.",
    )
    fanout_chunk: int = Field(
        default=1000,
        ge=10,
        le=20000,
        validation_alias=_env("PLP_FANOUT_CHUNK"),
        description="Members resolved per Redis round trip during fan-out.",
    )
    send_batch_size: int = Field(
        default=250,
        ge=1,
        le=5000,
        validation_alias=_env("PLP_SEND_BATCH_SIZE"),
        description="Deliveries per send job, sent concurrently (RQ's forking worker would cost a process per job).",
    )
    worker_batches: int = Field(
        default=2,
        ge=1,
        le=64,
        validation_alias=_env("PLP_WORKER_BATCHES"),
        description="Send jobs a worker process runs at once on its event loop, per queue (the general lane, the "
        "urgent lane, each urgent alert's sends): it takes the next job while the last sends of earlier ones "
        "are out, and looks at the other queues while one's jobs fill it.",
    )
    send_concurrency: int = Field(
        default=100,
        ge=1,
        le=2000,
        validation_alias=_env("PLP_SEND_CONCURRENCY"),
        description="Sends of one send job that may wait for their provider's turn or be in flight at once, per "
        "channel, so that a slow channel never holds up the others. A channel under a provider limit gets fewer: what "
        "its limit lets out in 2 s, plus one (21 for SMS from one sender at 10 a second); a channel without limits "
        "(the outbox) gets this many.",
    )
    send_job_timeout: int = Field(
        default=600,
        ge=10,
        validation_alias=_env("PLP_SEND_JOB_TIMEOUT"),
        description="Seconds before RQ stops a fan-out or send job.",
    )
    outbox_path: Path | None = Field(
        default=None,
        validation_alias=_env("PLP_OUTBOX_PATH"),
        description="The file the outbox appends each message to (masked address, text, language); unset: `<data "
        "dir>/outbox.jsonl`. An absolute path in production.",
    )
    outbox_channels: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=_env("PLP_OUTBOX_CHANNELS"),
        description="Production only: the channels (comma-separated: `sms`, `voice`, `email`, `telegram`) the outbox "
        "may stand in for while their vendor has no credentials. In development it stands in for any.",
    )
    outbox_latency_ms: int = Field(
        default=0,
        ge=0,
        le=60000,
        validation_alias=_env("PLP_OUTBOX_LATENCY_MS"),
        description="Simulated provider latency of the outbox, in milliseconds (demos, load tests).",
    )
    idempotency_ttl: int = Field(
        default=86400,
        ge=60,
        validation_alias=_env("PLP_IDEMPOTENCY_TTL"),
        description="Seconds an `Idempotency-Key` of `POST /v1/alerts` is remembered.",
    )
    max_import_rows: int = Field(
        default=10000,
        ge=1,
        validation_alias=_env("PLP_MAX_IMPORT_ROWS"),
        description="Rows of one bulk import, at most.",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        validation_alias=_env("PLP_MAX_BODY_BYTES"),
        description="Largest request body, in bytes; a larger one is refused with a 413.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("PLP_SECRET_KEY"),
        description="Signs the links sent by e-mail to members (receipt, unsubscribe, their data); required in "
        "production, where every process must sign with the same key. Unset in development: a key generated in `<data "
        "dir>/secret.key`. Changing it invalidates every signed link.",
    )
    link_ttl_days: int = Field(
        default=30,
        ge=1,
        le=400,
        validation_alias=_env("PLP_LINK_TTL_DAYS"),
        description="Days the links sent to members (receipt, unsubscribe, Telegram) stay valid.",
    )
    provider_timeout: float = Field(
        default=10.0,
        gt=0,
        le=120,
        validation_alias=_env("PLP_PROVIDER_TIMEOUT"),
        description="Seconds allowed for one vendor call. A cancel or a STOP is answered once the sends already "
        "handed to a provider have their answer: at most this plus 1 s.",
    )
    price_sms_segment: Decimal = Field(
        default=Decimal("0.08"),
        ge=0,
        validation_alias=_env("PLP_PRICE_SMS_SEGMENT"),
        description="Price of one SMS segment, for the cost estimates (the preview, each alert's `cost`, the annual "
        "evaluation).",
    )
    price_voice_minute: Decimal = Field(
        default=Decimal("0.12"),
        ge=0,
        validation_alias=_env("PLP_PRICE_VOICE_MINUTE"),
        description="Price of one estimated call minute, for the cost estimates.",
    )
    currency: str = Field(
        default="EUR",
        pattern=r"^[A-Z]{3}$",
        validation_alias=_env("PLP_CURRENCY"),
        description="Currency of the prices (ISO 4217 code).",
    )

    # -- delivery guarantees -----------------------------------------------------------------
    max_attempts: int = Field(
        default=4,
        ge=1,
        le=20,
        validation_alias=_env("PLP_MAX_ATTEMPTS"),
        description='Transient failures before a delivery fails (rate-limited sends do not count); a "first that '
        "works\" plan then tries the member's next channel.",
    )
    retry_base_urgent: float = Field(
        default=2.0,
        gt=0,
        validation_alias=_env("PLP_RETRY_BASE_URGENT"),
        description="First retry wait of an urgent alert's deliveries, in seconds: it doubles at each failure, half "
        "of it random, up to 1 minute.",
    )
    retry_base: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("PLP_RETRY_BASE"),
        description="First retry wait of the other deliveries, in seconds: it doubles at each failure, half of it "
        "random, up to 30 minutes.",
    )
    lease_seconds: float = Field(
        default=30.0,
        ge=2,
        le=600,
        validation_alias=_env("PLP_LEASE_SECONDS"),
        description="Seconds after which the work of a worker that stopped renewing its holds and leases (it renews "
        "them every third of this) is dispatched again.",
    )
    redis_max_connections: int = Field(
        default=128,
        ge=4,
        le=10_000,
        validation_alias=_env("PLP_REDIS_MAX_CONNECTIONS"),
        description="Redis connections a process's pool opens at most; beyond, callers wait for a free one (live "
        "followers hold none: one subscription per web process serves them all).",
    )
    redis_pool_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        validation_alias=_env("PLP_REDIS_POOL_TIMEOUT"),
        description="Seconds a caller waits for a free pooled Redis connection; then it is an error (the API answers "
        "503 with `Retry-After`), never a hang.",
    )
    clock_interval: float = Field(
        default=0.5,
        gt=0,
        le=10,
        validation_alias=_env("PLP_CLOCK_INTERVAL"),
        description="Seconds between the clock's sweeps (due retries, fallbacks, work of dead workers, timers).",
    )
    limit_sms_per_second: float = Field(
        default=10.0,
        gt=0,
        validation_alias=_env("PLP_LIMIT_SMS_PER_SECOND"),
        description="SMS a second per sender: the SMS limit is this times the number of senders in `TWILIO_SMS_FROM`.",
    )
    limit_voice_per_second: float = Field(
        default=1.0,
        gt=0,
        validation_alias=_env("PLP_LIMIT_VOICE_PER_SECOND"),
        description="Calls a second for the Twilio account.",
    )
    limit_telegram_per_second: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("PLP_LIMIT_TELEGRAM_PER_SECOND"),
        description="Messages a second for the Telegram bot.",
    )
    limit_telegram_per_chat_per_second: float = Field(
        default=1.0,
        gt=0,
        validation_alias=_env("PLP_LIMIT_TELEGRAM_PER_CHAT_PER_SECOND"),
        description="Messages a second from the Telegram bot to one chat.",
    )
    limit_whatsapp_per_second: float = Field(
        default=80.0,
        gt=0,
        validation_alias=_env("PLP_LIMIT_WHATSAPP_PER_SECOND"),
        description="Messages a second from the WhatsApp business number (the Cloud API's default throughput).",
    )
    limit_whatsapp_per_user_seconds: float = Field(
        default=6.0,
        gt=0,
        validation_alias=_env("PLP_LIMIT_WHATSAPP_PER_USER_SECONDS"),
        description="Seconds between two messages to one WhatsApp user (the Cloud API's pair rate limit).",
    )
    limit_email_per_minute: float = Field(
        default=600.0,
        gt=0,
        validation_alias=_env("PLP_LIMIT_EMAIL_PER_MINUTE"),
        description="Messages a minute through the SMTP relay.",
    )
    limit_margin: float = Field(
        default=0.01,
        ge=0,
        lt=0.5,
        validation_alias=_env("PLP_LIMIT_MARGIN"),
        description="How far below each provider's rate sends are paced (`0.01`: 1 %).",
    )

    # -- personal data ------------------------------------------------------------------------
    retention_days: int = Field(
        default=400,
        ge=30,
        le=3650,
        validation_alias=_env("PLP_RETENTION_DAYS"),
        description="Deliveries, receipts and replies older than this many days are purged daily (about 13 months: "
        "the annual evaluation needs the last year); alerts and their counts stay.",
    )

    # -- access: tokens, rate limits -----------------------------------------------------------
    signin_link_minutes: int = Field(
        default=15,
        ge=1,
        le=1440,
        validation_alias=_env("PLP_SIGNIN_LINK_MINUTES"),
        description="Minutes a console sign-in link (sent by e-mail) stays valid; it works once.",
    )
    session_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=1440,
        validation_alias=_env("PLP_SESSION_IDLE_MINUTES"),
        description="Minutes a console session lasts without a request before it must sign in again.",
    )
    session_max_hours: int = Field(
        default=12,
        ge=1,
        le=720,
        validation_alias=_env("PLP_SESSION_MAX_HOURS"),
        description="Hours a console session lasts at most, however active.",
    )
    session_cookie_secure: bool | None = Field(
        default=None,
        validation_alias=_env("PLP_SESSION_COOKIE_SECURE"),
        description="Mark the console's session cookie Secure (sent over HTTPS only). Unset: Secure when "
        "`PLP_PUBLIC_BASE_URL` is https, so that the demo on plain http loopback signs in too.",
    )
    oidc_issuer: str | None = Field(
        default=None,
        validation_alias=_env("PLP_OIDC_ISSUER"),
        description="Issuer URL of the organisation's own identity provider (OpenID Connect); its settings are read "
        'from `<issuer>/.well-known/openid-configuration`. Unset: no "Sign in with" button.',
    )
    oidc_client_id: str | None = Field(
        default=None,
        validation_alias=_env("PLP_OIDC_CLIENT_ID"),
        description="The console's client id at the identity provider (with `PLP_OIDC_ISSUER`).",
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=_env("PLP_OIDC_CLIENT_SECRET"),
        description="The console's client secret at the identity provider (with `PLP_OIDC_ISSUER`).",
    )
    oidc_scopes: str = Field(
        default="openid email",
        validation_alias=_env("PLP_OIDC_SCOPES"),
        description="Scopes asked of the identity provider, space-separated; `openid` and `email` are needed.",
    )
    oidc_name: str = Field(
        default="",
        max_length=60,
        validation_alias=_env("PLP_OIDC_NAME"),
        description="The identity provider's name on the console's button (\"Sign in with <name>\"); "
        "unset: the issuer's host name.",
    )
    token_ttl_days: int = Field(
        default=DEFAULT_TOKEN_TTL_DAYS,
        ge=1,
        le=MAX_TOKEN_TTL_DAYS,
        validation_alias=_env("PLP_TOKEN_TTL_DAYS"),
        description="Days a new bearer token is valid; `ttl_days` (API) or `--ttl-days` (CLI) overrides it per token.",
    )
    rate_limit_per_token: float = Field(
        default=600.0,
        ge=0,
        validation_alias=_env("PLP_RATE_LIMIT_PER_TOKEN"),
        description="Requests a minute per bearer token; `0` turns the limit off.",
    )
    rate_limit_per_token_burst: int = Field(
        default=60,
        ge=1,
        validation_alias=_env("PLP_RATE_LIMIT_PER_TOKEN_BURST"),
        description="Requests a bearer token may make at once, within its rate.",
    )
    rate_limit_per_address: float = Field(
        default=1200.0,
        ge=0,
        validation_alias=_env("PLP_RATE_LIMIT_PER_ADDRESS"),
        description="Requests a minute per source address (IPv6: per /64), public routes included, the providers' "
        "signed webhooks excepted; `0` turns the limit off.",
    )
    rate_limit_per_address_burst: int = Field(
        default=120,
        ge=1,
        validation_alias=_env("PLP_RATE_LIMIT_PER_ADDRESS_BURST"),
        description="Requests a source address may make at once, within its rate.",
    )
    urgent_wait_alarm: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        validation_alias=_env("PLP_URGENT_WAIT_ALARM"),
        description="Seconds the next urgent job may wait before `plp status`, `/v1/status` and "
        '`plp_problem{problem="urgent_late"}` call urgent work late.',
    )
    heartbeat_file: Path | None = Field(
        default=None,
        validation_alias=_env("PLP_HEARTBEAT_FILE"),
        description="The file a worker or the clock rewrites every 5 s, read by `plp probe`; unset: "
        "`plp-worker.heartbeat` or `plp-clock.heartbeat` in the temporary folder. Give each process its own when "
        "several share a host and a temporary folder.",
    )
    notify_socket: str | None = Field(
        default=None,
        validation_alias=_env("NOTIFY_SOCKET"),
        description="systemd's notification socket, set by systemd: workers and the clock send `WATCHDOG=1` to it "
        "every 5 s (units with `WatchdogSec=`).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("PLP_METRICS_TOKEN"),
        min_length=16,
        description="Bearer token `GET /metrics` then requires (16 characters or more: Prometheus' scrape "
        "credentials); unset: `/metrics` is public, metered per source address.",
    )
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=_env("PLP_TRUSTED_PROXIES"),
        description="IPs or networks of your reverse proxies, comma-separated: from them, the first `X-Forwarded-For` "
        "entry is the client.",
    )

    # -- Twilio (SMS and voice) --------------------------------------------------------------
    twilio_account_sid: str | None = Field(
        default=None,
        validation_alias=_env("TWILIO_ACCOUNT_SID"),
        description="Twilio account, for SMS and calls.",
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("TWILIO_AUTH_TOKEN"),
        description="The Twilio account's auth token; it also checks the signature of Twilio's webhooks.",
    )
    twilio_api_base_url: str = Field(
        default="https://api.twilio.com",
        validation_alias=_env("TWILIO_API_BASE_URL"),
        description="Twilio REST API.",
    )
    twilio_sms_from: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=_env("TWILIO_SMS_FROM"),
        description="SMS sender numbers (E.164), comma-separated: consecutive sends use consecutive senders, each at "
        "its own rate.",
    )
    twilio_messaging_service_sid: str | None = Field(
        default=None,
        validation_alias=_env("TWILIO_MESSAGING_SERVICE_SID"),
        description="A Twilio messaging service to send SMS through, instead of `TWILIO_SMS_FROM`.",
    )
    twilio_voice_from: str | None = Field(
        default=None,
        validation_alias=_env("TWILIO_VOICE_FROM"),
        description="Caller number of alert calls.",
    )

    # -- SMTP (e-mail) -----------------------------------------------------------------------
    smtp_host: str | None = Field(
        default=None,
        validation_alias=_env("SMTP_HOST"),
        description="Mail relay; e-mail is sent once `SMTP_HOST` and `SMTP_FROM` are set.",
    )
    smtp_port: int = Field(
        default=587,
        ge=1,
        le=65535,
        validation_alias=_env("SMTP_PORT"),
        description="Mail relay's port.",
    )
    smtp_security: SmtpSecurity = Field(
        default=SmtpSecurity.STARTTLS,
        validation_alias=_env("SMTP_SECURITY"),
        description="`starttls`, `tls` (implicit TLS, usually port 465) or `none` (plain SMTP: a relay on a trusted "
        "network, tests).",
    )
    smtp_username: str | None = Field(
        default=None,
        validation_alias=_env("SMTP_USERNAME"),
        description="User name the relay is logged in with, with `SMTP_PASSWORD`; without both, no login.",
    )
    smtp_password: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SMTP_PASSWORD"),
        description="Password the relay is logged in with, with `SMTP_USERNAME`.",
    )
    smtp_from: str | None = Field(
        default=None,
        validation_alias=_env("SMTP_FROM"),
        description="Sender of alert e-mails, e.g. `PLP alerts <alerts@example.org>`.",
    )
    smtp_pool_size: int = Field(
        default=20,
        ge=1,
        le=100,
        validation_alias=_env("SMTP_POOL_SIZE"),
        description="SMTP connections each worker process keeps open (a relay usually accepts 50 or more).",
    )
    smtp_ehlo_name: str | None = Field(
        default=None,
        validation_alias=_env("SMTP_EHLO_NAME"),
        description=(
            "The name the service gives the relay in EHLO (RFC 5321: its fully qualified domain name, or an address "
            "in brackets). Default: the host of `PLP_PUBLIC_BASE_URL`; no DNS lookup is made."
        ),
    )

    # -- Telegram ----------------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("TELEGRAM_BOT_TOKEN"),
        description="The bot's token, from @BotFather.",
    )
    telegram_api_base_url: str = Field(
        default="https://api.telegram.org",
        validation_alias=_env("TELEGRAM_API_BASE_URL"),
        description="Telegram Bot API.",
    )
    telegram_bot_username: str | None = Field(
        default=None,
        validation_alias=_env("TELEGRAM_BOT_USERNAME"),
        description="The bot's name, for members' `t.me` deep links.",
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=_env("TELEGRAM_WEBHOOK_SECRET"),
        description="A random secret Telegram sends with each update (`plp telegram-webhook` registers it).",
    )

    # -- WhatsApp ----------------------------------------------------------------------------
    whatsapp_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("WHATSAPP_TOKEN"),
        description="The access token of the WhatsApp business app (a system user's token).",
    )
    whatsapp_phone_id: str | None = Field(
        default=None,
        validation_alias=_env("WHATSAPP_PHONE_ID"),
        description="The id of the business phone number that sends (the Cloud API's phone number id).",
    )
    whatsapp_app_secret: SecretStr | None = Field(
        default=None,
        validation_alias=_env("WHATSAPP_APP_SECRET"),
        description="The app's secret: every webhook is checked against its `X-Hub-Signature-256` with it.",
    )
    whatsapp_verify_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("WHATSAPP_VERIFY_TOKEN"),
        description="A random secret typed into the app's webhook settings, which the verification handshake repeats.",
    )
    whatsapp_api_base_url: str = Field(
        default="https://graph.facebook.com",
        validation_alias=_env("WHATSAPP_API_BASE_URL"),
        description="Meta's Graph API (the version is added to it).",
    )
    whatsapp_api_version: str = Field(
        default="23.0",
        pattern=r"^\d+\.\d+$",
        validation_alias=_env("WHATSAPP_API_VERSION"),
        description="The Graph API version the requests name.",
    )
    whatsapp_template_prefix: str = Field(
        default="plp",
        pattern=r"^[a-z][a-z0-9_]{0,19}$",
        validation_alias=_env("WHATSAPP_TEMPLATE_PREFIX"),
        description="The prefix of the message templates' names (`plp_urgent`...), as registered with Meta.",
    )

    # -- geocoding (members' places) ---------------------------------------------------------
    geocoder_url: str | None = Field(
        default=None,
        validation_alias=_env("PLP_GEOCODER_URL"),
        description="A Nominatim server (its base URL, e.g. `https://nominatim.openstreetmap.org`) that locates "
        "members from their address, in the background. None: members are located only from the coordinates "
        "given for them, and the others say so in the member list.",
    )
    geocoder_rate: float = Field(
        default=1.0,
        gt=0,
        le=100,
        validation_alias=_env("PLP_GEOCODER_RATE"),
        description="Requests a second to the geocoder, shared by every process (the public Nominatim allows 1; "
        "a self-hosted one, more).",
    )
    geocoder_user_agent: str = Field(
        default="plp-dispatch",
        min_length=3,
        max_length=200,
        validation_alias=_env("PLP_GEOCODER_USER_AGENT"),
        description="The User-Agent the geocoder is sent, naming the application (Nominatim's usage policy).",
    )
    geocoder_timeout: float = Field(
        default=10.0,
        gt=0,
        le=120,
        validation_alias=_env("PLP_GEOCODER_TIMEOUT"),
        description="Seconds allowed for one geocoder request.",
    )
    geocoder_countries: str = Field(
        default="be",
        pattern=r"^[a-z]{2}(,[a-z]{2})*$",
        validation_alias=_env("PLP_GEOCODER_COUNTRIES"),
        description="Countries (ISO 3166-1 alpha-2, lower case, comma-separated) the geocoder searches in.",
    )
    map_tile_url: str | None = Field(
        default=None,
        validation_alias=_env("PLP_MAP_TILE_URL"),
        description="A tile server for the console's maps, as a URL template with `{z}`, `{x}` and `{y}` (e.g. "
        "`https://tile.openstreetmap.org/{z}/{x}/{y}.png`). None: the maps draw PLPs, sectors and areas on a plain "
        "background, so that closed police networks still get them; the console's page may load images from this "
        "server only.",
    )
    map_attribution: str = Field(
        default="",
        max_length=300,
        validation_alias=_env("PLP_MAP_ATTRIBUTION"),
        description="The tiles' attribution shown on the console's maps (e.g. `© OpenStreetMap contributors`).",
    )
    geocoder_batch: int = Field(
        default=50,
        ge=1,
        le=10000,
        validation_alias=_env("PLP_GEOCODER_BATCH"),
        description="Members one background geocoding job locates at most before it hands over to the next run.",
    )

    @field_validator("twilio_sms_from", "trusted_proxies", "outbox_channels", "redis_sentinels", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(str(ip_network(v, strict=False)) for v in value)
        except ValueError as exc:
            raise ValueError(f"PLP_TRUSTED_PROXIES: {exc}") from None

    @field_validator("outbox_channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if unknown := [name for name in value if name not in CHANNEL_NAMES]:
            known = ", ".join(CHANNEL_NAMES)
            raise ValueError(f"PLP_OUTBOX_CHANNELS: {unknown[0]!r} is no channel; name some of {known}")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _where_the_service_answers(cls, value: str, info: ValidationInfo) -> str:
        if value or "host" not in info.data or "port" not in info.data:
            return value  # a host or port refused is reported on its own
        return local_url(info.data["host"], info.data["port"])

    @property
    def local_url(self) -> str:
        """The URL ``plp web`` answers at on this machine: ``http://PLP_HOST:PLP_PORT``, the wildcard as loopback."""
        return local_url(self.host, self.port)

    @field_validator("smtp_ehlo_name")
    @classmethod
    def _a_name_a_relay_accepts(cls, value: str | None) -> str | None:
        if value is not None and not _EHLO_NAME.fullmatch(value):
            raise ValueError("not a domain name or an address in brackets, e.g. mail.example.org or [192.0.2.1]")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must start with redis://, rediss:// or unix://")
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _oidc_issuer(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("PLP_OIDC_ISSUER must start with https:// (or http:// on loopback)")
        return value.rstrip("/") if value else None

    @field_validator("oidc_scopes")
    @classmethod
    def _oidc_scopes(cls, value: str) -> str:
        if not {"openid", "email"} <= set(value.split()):
            raise ValueError("PLP_OIDC_SCOPES must include openid and email")
        return " ".join(value.split())

    @field_validator("geocoder_url")
    @classmethod
    def _geocoder_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("PLP_GEOCODER_URL must start with http:// or https://")
        return value.rstrip("/") if value else None

    @field_validator("map_tile_url")
    @classmethod
    def _tile_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("https://") and not value.startswith("http://"):
            raise ValueError("PLP_MAP_TILE_URL must start with https:// (or http://)")
        if not all(part in value for part in ("{z}", "{x}", "{y}")) or any(c in value for c in " ;'\""):
            raise ValueError("PLP_MAP_TILE_URL must be a URL template with {z}, {x} and {y}, without spaces or quotes")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"PLP_REDIS_SENTINELS: {address!r} is not host:port (e.g. 10.0.0.5:26379)")
        return value

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of each sentinel of PLP_REDIS_SENTINELS (brackets of an IPv6 address removed)."""
        found = []
        for address in self.redis_sentinels:
            host, _, port = address.rpartition(":")
            found.append((host.strip("[]"), int(port)))
        return found

    @property
    def cookie_secure(self) -> bool:
        """Whether the console's session cookie is Secure: as set, else as the public base URL's scheme."""
        if self.session_cookie_secure is not None:
            return self.session_cookie_secure
        return self.public_base_url.startswith("https://")

    @property
    def oidc_enabled(self) -> bool:
        """Whether coordinators and officers may sign in through the organisation's identity provider."""
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

    @property
    def oidc_button_name(self) -> str:
        """The identity provider's name on the console's button: as set, else the issuer's host name."""
        return self.oidc_name or urlsplit(self.oidc_issuer or "").hostname or ""

    @property
    def production(self) -> bool:
        """Whether PLP_ENV is production: nothing may degrade silently."""
        return self.environment is Environment.PRODUCTION

    def production_faults(self) -> list[str]:
        """What a production process refuses to start with, each a sentence naming its variable; none in development.

        The channels a charter names are checked against the vendors' credentials apart
        (``channels.unsendable``): that needs the charters.
        """
        if not self.production:
            return []
        hint = "(PLP_ENV=production, the default outside `plp dev`)"
        faults = []
        if not self.redis_url and not self.redis_sentinels:
            faults.append(
                f"REDIS_URL is not set: in production {hint} every process shares one Redis, none starts an embedded "
                "one; set REDIS_URL (or REDIS_URL_FILE) or PLP_REDIS_SENTINELS, "
                "or PLP_ENV=development to try the service"
            )
        if self.secret_key is None:
            faults.append(
                f"PLP_SECRET_KEY is not set: in production {hint} every process signs members' links with the same "
                "key, never with a key file of its own host; set PLP_SECRET_KEY (or PLP_SECRET_KEY_FILE)"
            )
        for variable, path in (("PLP_DATA_DIR", self.data_dir), ("PLP_OUTBOX_PATH", self.outbox_path)):
            if path is not None and not path.is_absolute():
                faults.append(
                    f"{variable} is {str(path)!r}, a relative path: in production {hint} it must be absolute, "
                    "so that every process finds the same folder wherever it is started (e.g. /var/lib/plp)"
                )
        return faults + self._oidc_faults(hint)

    def _oidc_faults(self, hint: str) -> list[str]:
        if self.oidc_issuer is None:
            return []
        if not self.oidc_enabled:
            return [
                f"PLP_OIDC_ISSUER is set without PLP_OIDC_CLIENT_ID and PLP_OIDC_CLIENT_SECRET: in production {hint} "
                "the identity provider's sign-in would be silently off; set both, or unset PLP_OIDC_ISSUER"
            ]
        loopback = urlsplit(self.oidc_issuer).hostname in {"127.0.0.1", "localhost", "::1"}
        if not self.oidc_issuer.startswith("https://") and not loopback:
            return [
                f"PLP_OIDC_ISSUER is {self.oidc_issuer!r}: in production {hint} the identity provider is reached "
                "over https only, unless on this host (its keys and tokens must not be read or changed on the way)"
            ]
        return []

    @property
    def outbox_file(self) -> Path:
        """Where the outbox channel writes."""
        return self.outbox_path or self.data_dir / "outbox.jsonl"

    @property
    def urgent_queue(self) -> str:
        return f"{self.queue_prefix}-urgent"

    @property
    def general_queue(self) -> str:
        return f"{self.queue_prefix}-general"


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Return the process's settings, read from the environment on first use.

    Raises ``pydantic.ValidationError`` naming the variable that is wrong, ``SettingsFileError``
    naming the ``*_FILE`` variable that cannot be used.
    """
    return Settings()
