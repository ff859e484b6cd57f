"""``plp web`` on a socket handed down to it, from several processes (PLP_WEB_PROCESSES), stopping together."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from tests.support import start_web, until


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
