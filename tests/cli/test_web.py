"""``plp web`` with PLP_WEB_PROCESSES: several processes serve one port, and stop together."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support import free_port, until


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


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


async def test_web_processes_share_the_port_and_stop_with_their_parent(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PLP_PORT": str(port),
        "PLP_WEB_PROCESSES": "3",
        "PLP_DATA_DIR": str(tmp_path),
        "PLP_KEY_PREFIX": "plptest:",
        "PLP_LOG_LEVEL": "WARNING",
    }
    web = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "web"], env=env, stdout=subprocess.DEVNULL)
    try:
        await until(lambda: _healthy(port), timeout=30, what="plp web answering", every=0.05)
        children = await until(lambda: len(_children(web.pid)) == 2 and _children(web.pid), timeout=10, what="2 more")
        assert all(_healthy(port) for _ in range(30))
    finally:
        web.terminate()
        web.wait(timeout=15)
    assert web.returncode == 0
    await until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), timeout=10, what="children gone")
