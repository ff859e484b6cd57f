"""``plp web`` on a socket handed down to it, from several processes (PLP_WEB_PROCESSES), stopping together; on a
platform's ``$PORT`` through the Procfile line docs/cli.md gives."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.output import OutputLines
from tests.readme import CLI, section
from tests.support import free_port, start_web, until


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text(encoding="ascii")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/v1/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


async def test_web_processes_share_the_port_and_stop_with_their_parent(redis_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PLP_WEB_PROCESSES": "3",
        "PLP_DATA_DIR": str(tmp_path),
        "PLP_KEY_PREFIX": "plptest:",
        "PLP_LOG_LEVEL": "WARNING",
    }
    web, base = start_web(env, tmp_path / "web.log")  # answering when it returns
    try:
        children = await until(lambda: len(_children(web.pid)) == 2 and _children(web.pid), timeout=10, what="2 more")
        assert all(_healthy(base) for _ in range(30))
    finally:
        web.terminate()
        web.wait(timeout=15)
    assert web.returncode == 0
    await until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), timeout=10, what="children gone")


async def test_the_documented_procfile_line_serves_a_platforms_port(redis_url: str, tmp_path: Path) -> None:
    """plp web reads no PORT, so docs/cli.md gives a platform's Procfile line that maps $PORT: it listens there."""
    procfile = section("Processes and the Procfile", CLI)
    line = re.search(r"`web: (PLP_HOST=0\.0\.0\.0 PLP_PORT=\$PORT plp web)`", procfile)
    assert line, "docs/cli.md gives no Procfile line for a platform's $PORT"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLP_", "PORT"))}
    env |= {
        "PORT": str(port),  # as the platform sets it
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        "REDIS_URL": redis_url,
        "PLP_DATA_DIR": str(tmp_path),
        "PLP_SECRET_KEY": "a-platform-has-the-production-variables",
        "PLP_KEY_PREFIX": "plptest:",
        "PLP_LOG_FORMAT": "json",
    }
    web = subprocess.Popen(
        ["sh", "-c", line[1]], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip  # a platform runs the Procfile's command with sh, and stops its process group
    output = OutputLines(web, what="plp web")
    try:
        listening = output.wait_for(r'"event": "web\.listening"', timeout=30).string
        assert f'"url": "http://127.0.0.1:{port}"' in listening, listening
        assert _healthy(f"http://127.0.0.1:{port}")
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=15)
        output.close()


def _frozen(log: Path) -> list[int]:
    """The objects each web process froze as it started, from its ``web.heap_frozen`` event (JSON logs)."""
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [event["objects"] for event in events if event.get("event") == "web.heap_frozen"]


async def test_each_web_process_freezes_what_it_made_as_it_started(redis_url: str, tmp_path: Path) -> None:
    """Each web process, once its app is built, keeps that heap out of the collector's full collections
    (``operations.heap``): at least what the app's modules make in a fresh interpreter."""
    fresh = subprocess.run(
        [sys.executable, "-c", "import gc, dispatcher.api.app; gc.collect(); print(len(gc.get_objects()))"],
        capture_output=True,
        check=True,
    )
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PLP_WEB_PROCESSES": "2",
        "PLP_DATA_DIR": str(tmp_path),
        "PLP_KEY_PREFIX": "plptest:",
        "PLP_LOG_FORMAT": "json",
        "PLP_LOG_LEVEL": "INFO",
    }
    web, _ = start_web(env, tmp_path / "web.log")
    try:
        frozen = await until(
            lambda: len(_frozen(tmp_path / "web.log")) == 2 and _frozen(tmp_path / "web.log"),
            timeout=10,
            what="both web processes frozen",
        )
    finally:
        web.terminate()
        web.wait(timeout=15)

    assert all(count >= int(fresh.stdout) for count in frozen)
