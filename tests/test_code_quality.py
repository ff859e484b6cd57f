"""The code base stays lint-clean and type-checks (ruff and mypy, as configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_finds_nothing() -> None:
    """ruff's lint rules pass on the packages and the tests."""
    result = _run("ruff", "check", "dispatcher", "channels", "workers", "config", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing() -> None:
    """mypy type-checks the packages."""
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
