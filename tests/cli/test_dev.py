"""``plp dev`` runs its processes with the environment it was started with, so they listen where it announces:
honcho's own sources of configuration (a ``.env`` file in the folder, ``PORT``) change nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.output import OutputLines
from tests.support import free_port


def test_a_dotenv_file_does_not_move_the_processes_of_plp_dev(redis_url: str, tmp_path: Path) -> None:
    """A .env in the folder (read by honcho by default) does not configure plp web behind plp dev's back."""
    port, elsewhere = free_port(), free_port()
    (tmp_path / ".env").write_text(f"PLP_PORT={elsewhere}\n")
    (tmp_path / "Procfile").write_text("web: plp web\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLP_", "PORT"))}
    env |= {
        "REDIS_URL": redis_url,
        "PLP_KEY_PREFIX": "plptest:",
        "PLP_PORT": str(port),
        "PLP_DATA_DIR": str(tmp_path / "var"),
        "PLP_LOG_FORMAT": "json",
    }
    dev = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.cli", "dev"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = OutputLines(dev, what="plp dev")
    try:
        announced = output.wait_for(r"plp-dispatch is starting at (\S+)", timeout=60)[1]
        assert announced == f"http://127.0.0.1:{port}"
        listening = output.wait_for(r'"event": "web\.listening"', timeout=60).string
        assert f'"url": "{announced}"' in listening, f"plp dev announced {announced}; {listening}"
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=30)
        output.close()
