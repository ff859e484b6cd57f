"""``plp data``: the data version in Redis, and its migrations (see ``dispatcher.storage.migrations``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import click
import redis

from dispatcher.cli.common import CONTEXT, EXIT_PARTIAL, cli_runtime, cli_settings, echo_json

if TYPE_CHECKING:
    from dispatcher.storage.keys import Keys
    from dispatcher.storage.migrations import StoredVersion
    from dispatcher.storage.runtime import Runtime

T = TypeVar("T")


@click.group("data", context_settings=CONTEXT, short_help="The data version in Redis; migrations.")
def data_group() -> None:
    """The version of the data's format in Redis, and the migrations that bring older data up to date.

    Every process (web, workers, clock, the commands that work on Redis) checks the version as it
    starts: it migrates older data (once, under a lock, whichever process comes first), stamps an
    empty database, and refuses data written by a newer plp-dispatch (exit 1, naming both versions).
    These commands show the version and run the migrations by hand, e.g. right after an upgrade.
    """


@data_group.command("version", context_settings=CONTEXT, short_help="The data version, and what would migrate.")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON (for scripts).")
def data_version(as_json: bool) -> None:
    """Show the data version in Redis, the one this plp-dispatch writes, and the migrations pending.

    Changes nothing. Exit status: 0 up to date (or an empty database); 3 migrations pending
    (run `plp data migrate`, or start any process); 1 data of a newer plp-dispatch.
    """
    from dispatcher.storage.migrations import DATA_VERSION, RELEASE, DataVersionError, pending, stored_version

    rt = _runtime()
    try:
        found = _read(rt, stored_version)
    except DataVersionError as exc:
        raise click.ClickException(str(exc)) from None
    steps = pending(found)
    if as_json:
        echo_json(
            {
                "data_version": None if found is None else found.version,
                "stamped_by": None if found is None else found.by,
                "release": RELEASE,
                "release_data_version": DATA_VERSION,
                "pending": [{"version": step.version, "summary": step.summary} for step in steps],
            }
        )
    else:
        click.echo(f"Redis {rt.redis_description}: {_describe(found)}")
        click.echo(f"this plp-dispatch {RELEASE} writes data version {DATA_VERSION}")
        for step in steps:
            click.echo(f"  pending: to version {step.version}: {step.summary}")
    if found is not None and found.version > DATA_VERSION:
        raise click.ClickException(f"data version {found.version} is newer than this plp-dispatch's ({DATA_VERSION})")
    if steps:
        raise SystemExit(EXIT_PARTIAL)


@data_group.command("migrate", context_settings=CONTEXT, short_help="Bring the data up to this version.")
def data_migrate() -> None:
    """Run the migrations the data in Redis still needs, in order, and say what each changed.

    Safe to run while other processes start (they wait for the same lock) and to run again (each
    step changes only records still in the old format). Take a backup first (docs/deploying.md).
    Exit 1 for data of a newer plp-dispatch.
    """
    from dispatcher.storage.migrations import DATA_VERSION, DataVersionError, migrate

    rt = _runtime()
    try:
        done = _read(rt, migrate)
    except DataVersionError as exc:
        raise click.ClickException(str(exc)) from None
    for step in done:
        what = step.migration
        click.echo(f"migrated to data version {what.version}: {what.summary} ({step.changed} changed)")
    click.echo(f"data version {DATA_VERSION}: up to date")


def _runtime() -> Runtime:
    return cli_runtime(cli_settings(), check_data=False)


def _read(rt: Runtime, work: Callable[[redis.Redis, Keys], T]) -> T:
    try:
        return work(rt.sync_redis, rt.keys)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise click.ClickException(f"Redis at {rt.redis_description} does not answer ({exc})") from None


def _describe(found: StoredVersion | None) -> str:
    if found is None:
        return "empty (no data yet: stamped with this version at the first start)"
    if found.by is None:
        return "data version 0 (written before data versions)"
    at = "" if found.at is None else f" at {datetime.fromtimestamp(found.at, UTC):%Y-%m-%d %H:%M} UTC"
    return f"data version {found.version} (stamped by plp-dispatch {found.by}{at})"
