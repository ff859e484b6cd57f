"""``plp data`` and the version check every process makes as it starts: data of a newer release is refused.

The refusals are checked on real processes (``plp web``, ``plp worker``, ``plp clock``), as a
supervisor or an operator would start them: each exits 1 at once, saying both versions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from config import Settings
from dispatcher.storage.keys import Keys
from dispatcher.storage.migrations import DATA_VERSION, MIGRATIONS, RELEASE
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import now_ts
from tests.cli.conftest import PlpCommand, Scene
from tests.support import RedisServer, free_port, settings_env, until

NEWER = DATA_VERSION + 1


def _newer_stamp(runtime: Runtime) -> None:
    runtime.sync_redis.hset(runtime.keys.data_version(), mapping={"version": NEWER, "by": "9.0.0", "at": now_ts()})


def test_an_empty_database_shows_empty_and_is_stamped_by_the_first_command(plp: PlpCommand) -> None:
    """On an empty database, `plp data version` says so (exit 0); the first command that works on Redis stamps it."""
    assert "empty (no data yet" in plp.ok("data", "version").output
    plp.ok("token", "list")
    shown = plp.ok("data", "version").output
    assert f"data version {DATA_VERSION} (stamped by plp-dispatch {RELEASE} at " in shown
    assert f"this plp-dispatch {RELEASE} writes data version {DATA_VERSION}" in shown


def test_data_from_before_the_versions_shows_its_steps_and_plp_data_migrate_runs_them(
    plp: PlpCommand, scene: Scene
) -> None:
    """Data without a stamp: version 0 with every step pending (exit 3); `plp data migrate` runs each, saying what
    it changed; then the data is current (exit 0), and migrating again runs nothing."""
    shown = plp("data", "version")
    assert shown.exit_code == 3, shown.output
    assert "data version 0 (written before data versions)" in shown.output
    pending = [line.strip() for line in shown.output.splitlines() if line.strip().startswith("pending:")]
    assert pending == [f"pending: to version {m.version}: {m.summary}" for m in MIGRATIONS]

    ran = plp.ok("data", "migrate").output.splitlines()
    assert [line.split(":")[0] for line in ran[:-1]] == [f"migrated to data version {m.version}" for m in MIGRATIONS]
    assert ran[-1] == f"data version {DATA_VERSION}: up to date"
    assert plp.ok("data", "migrate").output.splitlines() == [f"data version {DATA_VERSION}: up to date"]
    assert plp.ok("data", "version", "--json").output.count('"pending": []') == 1


def test_commands_on_redis_refuse_data_of_a_newer_release(plp: PlpCommand, runtime: Runtime) -> None:
    """`plp token`, `plp status`, `plp purge`, `plp data migrate` on data of a newer release: exit 1, both
    versions named; `plp data version` shows it and exits 1 too."""
    _newer_stamp(runtime)
    for command in (["token", "list"], ["status"], ["purge"], ["data", "migrate"]):
        result = plp(*command)
        assert result.exit_code == 1, (command, result.output)
        assert f"data version {NEWER} (stamped by plp-dispatch 9.0.0)" in result.output, command
        assert f"reads data version {DATA_VERSION} at most" in result.output, command
    shown = plp("data", "version")
    assert shown.exit_code == 1
    assert f"data version {NEWER} is newer than this plp-dispatch's ({DATA_VERSION})" in shown.output


@pytest.mark.parametrize("command", [["web"], ["worker", "urgent"], ["worker", "general"], ["clock"]])
def test_processes_refuse_to_start_on_data_of_a_newer_release(
    command: list[str], settings: Settings, runtime: Runtime
) -> None:
    """`plp web`, each worker and the clock, started on data of a newer release, exit 1 at once naming both
    versions, and leave the data as it is."""
    _newer_stamp(runtime)
    env = {**os.environ, **settings_env(settings), "PLP_LOG_FORMAT": "json", "PLP_PORT": str(free_port())}
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"Error: the data in Redis is at data version {NEWER}" in done.stderr
    assert f"newer than this plp-dispatch {RELEASE}, which reads data version {DATA_VERSION} at most" in done.stderr
    assert '"event": "data.refused"' in done.stderr
    assert runtime.sync_redis.hget(runtime.keys.data_version(), "version") == str(NEWER)


async def test_a_process_started_before_redis_waits_for_it_then_checks_the_data(
    settings: Settings, tmp_path: Path
) -> None:
    """`plp clock` started while its Redis is not up yet waits for it (saying so once), then stamps the empty
    database and runs, instead of exiting."""
    server = RedisServer(tmp_path / "redis")
    env = {**os.environ, **settings_env(settings), "REDIS_URL": server.url, "PLP_LOG_FORMAT": "json"}
    log = tmp_path / "clock.log"
    with log.open("wb") as out:
        clock = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "clock"], env=env, stdout=out, stderr=out)
    try:
        await until(lambda: '"event": "data.redis_waiting"' in log.read_text(), timeout=30, what="the clock to wait")
        server.start()
        client, keys = redis.Redis.from_url(server.url, decode_responses=True), Keys(settings.key_prefix)
        stamp = await until(lambda: client.hgetall(keys.data_version()), timeout=30, what="the stamp")
        assert stamp["version"] == str(DATA_VERSION)
        await until(lambda: client.exists(keys.clock_heartbeat()), timeout=30, what="the clock's first sweep")
        assert clock.poll() is None
        assert log.read_text().count('"event": "data.redis_waiting"') == 1
        client.close()
    finally:
        clock.terminate()
        clock.wait(timeout=10)
        server.stop()
