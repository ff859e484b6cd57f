"""What the ``plp`` commands share: the settings, the runtime, a Redis store, plain tables, exit codes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import structlog
from pydantic import ValidationError

from config import Settings, SettingsFileError, load_settings
from dispatcher.core.logging import configure_logging

if TYPE_CHECKING:
    from dispatcher.storage.runtime import Runtime
    from dispatcher.storage.store import Store

T = TypeVar("T")

log = structlog.get_logger(__name__)

#: Exit status of a command that did its work, but whose outcome is not the whole of what was asked:
#: an import with rejected rows, an alert watched to an end other than ``completed``.
EXIT_PARTIAL = 3

#: Every command's help accepts -h as well as --help.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def cli_settings(*, logging: bool = True) -> Settings:
    """The settings from the environment; an invalid one is a one-line error naming the variable.

    Logs go to standard error at ``PLP_LOG_LEVEL``; with ``logging=False`` (a command whose output is for
    reading or for a script: ``plp status --json``), its warnings and errors only. Never to standard output,
    which is the command's answer (structlog's own default would write there)."""
    try:
        settings = load_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"the configuration is not valid: {problems}") from None
    except SettingsFileError as exc:
        raise click.ClickException(f"the configuration is not valid: {exc}") from None
    configure_logging(settings if logging else settings.model_copy(update={"log_level": "WARNING"}))
    return settings


def refuse(faults: Sequence[str]) -> click.ClickException:
    """The error a command stops with in production: every fault found, one sentence a line."""
    lines = "".join(f"\n  - {fault}" for fault in faults)
    return click.ClickException(f"refusing to run with PLP_ENV=production:{lines}")


def cli_runtime(settings: Settings, *, check_data: bool = True, wait_for_redis: bool = False) -> Runtime:
    """The runtime, with a clear error if it cannot be had: in production, refused on any of the settings'
    ``production_faults``; in development, the embedded Redis started when REDIS_URL is unset.

    With ``check_data``, the data in Redis is made current for this release first, or refused (see
    ``dispatcher.storage.migrations``): a newer data version is an error naming both versions. A Redis that
    does not answer is an error too, unless ``wait_for_redis`` (the long-running processes, which
    ride out outages): then the check waits for it, with backoff, logging the wait once.
    """
    from dispatcher.storage.redis_server import EmbeddedRedisError
    from dispatcher.storage.runtime import Runtime

    if faults := settings.production_faults():
        raise refuse(faults)
    try:
        rt = Runtime.from_settings(settings)
    except EmbeddedRedisError as exc:
        raise click.ClickException(str(exc)) from None
    if check_data:
        _check_data(rt, wait_for_redis=wait_for_redis)
    return rt


#: Waits between two attempts to reach Redis at start-up: doubled each time up to the last.
REDIS_BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0)


def _check_data(rt: Runtime, *, wait_for_redis: bool) -> None:
    """Make the data current, or exit 1 with the reason (a newer data version, Redis not answering)."""
    import redis

    from dispatcher.storage.migrations import DataVersionError, ensure_current

    attempt = 0
    while True:
        try:
            ensure_current(rt.sync_redis, rt.keys)
            return
        except DataVersionError as exc:
            log.error("data.refused", reason=str(exc))
            raise click.ClickException(str(exc)) from None
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            if not wait_for_redis:
                raise click.ClickException(
                    f"Redis at {rt.redis_description} does not answer ({exc}); start it, "
                    "or set REDIS_URL to the service's Redis"
                ) from None
            if not attempt:
                log.warning("data.redis_waiting", error=type(exc).__name__)
            time.sleep(REDIS_BACKOFF[min(attempt, len(REDIS_BACKOFF) - 1)])  # backoff: no event says Redis is back
            attempt += 1


def service_runtime(settings: Settings) -> Runtime:
    """The runtime of a process of the service (web, worker, clock): as ``cli_runtime``, and in production refused
    while a stored charter names a channel nothing can send here (``dispatcher.operations.production``).

    Redis out of reach leaves the charters unchecked, said by a warning: the process starts as it would have, and
    rides the outage out.
    """
    import redis

    from channels import unsendable
    from dispatcher.operations.production import unsendable_charters

    rt = cli_runtime(settings, wait_for_redis=True)
    missing = unsendable(settings)
    if not missing:
        return rt
    try:
        faults = with_store(settings, lambda store: unsendable_charters(store, missing))
    except redis.RedisError as exc:
        log.warning("startup.charters_unchecked", reason=str(exc))
        return rt
    if faults:
        raise refuse(faults)
    return rt


def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` on a store of the configured Redis, in an event loop of its own."""
    from dispatcher.storage.store import Store

    rt = cli_runtime(settings)

    async def run() -> T:
        redis = rt.async_redis()
        try:
            return await work(Store(redis, rt.keys))
        finally:
            await redis.aclose()

    return asyncio.run(run())


def echo_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print rows under a header, in columns as wide as their widest cell (plain text: greppable, pipeable)."""
    cells = [[printable(" ".join(str(cell).splitlines())) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def one_line(text: str, width: int = 80) -> str:
    """``text`` on one line (newlines and runs of spaces folded), cut to ``width`` characters with an ellipsis."""
    folded = " ".join(text.split())
    return folded if len(folded) <= width else folded[: width - 1] + "…"


def read_document(path: Path, *, option: str) -> Any:
    """The data of a JSON or YAML file (YAML reads both); a file that is neither is a sentence naming the line."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint=option) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "it is not valid JSON or YAML"
        raise click.BadParameter(f"{path}{where}: {problem}", param_hint=option) from None


def json_option(command: Callable[..., T]) -> Callable[..., T]:
    """A ``--json`` flag: print the API's answer as JSON instead of the readable form."""
    return click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON (for scripts).")(
        command
    )


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (escape sequences, bidi overrides) that
    members or others could have written are shown as U+FFFD; newlines and tabs stay."""
    return _CONTROL.sub("\ufffd", text)
