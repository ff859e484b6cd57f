"""The README's test command sets up what the tests need by itself, and CI runs exactly that command.

The browser tests need Chromium: ``tests/install-chromium`` installs Debian's package when the browser is
missing and leaves a machine that has it alone. Here ``apt-get`` and ``sudo`` are stand-ins on the PATH that
record their calls (and "install" the browser where the script looks for it): nothing is installed for real.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.readme import quick_start

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "tests" / "install-chromium"
BOILERPLATE = ("set -euo pipefail", 'cd "$(dirname "$0")/.."')
INSTALLED = ["apt-get update -qq", "apt-get install -y -qq chromium"]


def _commands(script: Path) -> list[str]:
    """The script's commands: its lines but the shebang, comments, blank lines and the usual preamble."""
    lines = (line.strip() for line in script.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#") and line not in BOILERPLATE]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    """.ci/run is the README's test command and nothing else, so CI does what a new user does."""
    readme_command = quick_start()[1]
    assert _commands(ROOT / ".ci" / "run") == [readme_command]
    assert os.access(ROOT / readme_command.split()[0], os.X_OK), "the test command is an executable script"


def test_the_test_command_installs_chromium_before_the_tests() -> None:
    """tests/run sets up Chromium, then the virtual environment with the test extras, then runs pytest."""
    assert _commands(ROOT / "tests" / "run") == [
        "tests/install-chromium",
        "python3 -m venv .venv",
        ".venv/bin/pip install -q -e '.[test]'",
        'exec .venv/bin/python -m pytest "$@"',
    ]


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    """A PATH folder holding bash, id, env and recording stand-ins for apt-get and sudo."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("bash", "id", "env", "touch", "chmod"):
        found = shutil.which(tool)
        assert found, tool
        (folder / tool).symlink_to(found)
    _executable(folder / "sudo", '#!/bin/sh\necho "sudo" >> "$CALLS"\nexec "$@"\n')
    return folder


def _with_apt(tools: Path) -> None:
    """apt-get records its arguments; ``install`` puts an executable at $PLP_CHROMIUM, as the package would."""
    _executable(
        tools / "apt-get",
        '#!/bin/sh\necho "apt-get $*" >> "$CALLS"\n'
        'if [ "$1" = install ]; then touch "$PLP_CHROMIUM" && chmod +x "$PLP_CHROMIUM"; fi\n',
    )


def _install(tools: Path, chromium: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(tools), "PLP_CHROMIUM": str(chromium), "CALLS": str(tools / "calls")}
    return subprocess.run([str(INSTALL)], env=env, capture_output=True, text=True, timeout=30)


def _calls(tools: Path) -> list[str]:
    calls = tools / "calls"
    return [line for line in calls.read_text().splitlines() if line != "sudo"] if calls.exists() else []


def test_chromium_present_is_left_alone(tools: Path, tmp_path: Path) -> None:
    """With the browser there, the script calls neither apt-get nor sudo, however often it runs."""
    _with_apt(tools)
    chromium = _executable(tmp_path / "chromium", "#!/bin/sh\n")
    for _ in range(2):
        done = _install(tools, chromium)
        assert done.returncode == 0, done.stderr
    assert not (tools / "calls").exists()


def test_chromium_missing_is_installed_once(tools: Path, tmp_path: Path) -> None:
    """A missing browser is installed from Debian's package; run again, the script finds it and does nothing."""
    _with_apt(tools)
    chromium = tmp_path / "chromium"
    first = _install(tools, chromium)
    assert first.returncode == 0, first.stderr
    assert _calls(tools) == INSTALLED
    assert f"{chromium} is missing: installing Debian's chromium package" in first.stderr
    again = _install(tools, chromium)
    assert again.returncode == 0, again.stderr
    assert _calls(tools) == INSTALLED


def test_without_apt_the_error_says_what_to_do(tools: Path, tmp_path: Path) -> None:
    """Where there is no apt-get, the script fails, naming the missing browser and PLP_CHROMIUM."""
    done = _install(tools, tmp_path / "chromium")
    assert done.returncode == 1
    assert f"{tmp_path / 'chromium'} is missing" in done.stderr and "PLP_CHROMIUM" in done.stderr


def test_a_package_that_does_not_provide_the_browser_is_an_error(tools: Path, tmp_path: Path) -> None:
    """If the install leaves $PLP_CHROMIUM missing (it points elsewhere), the script fails and says so."""
    _executable(tools / "apt-get", '#!/bin/sh\necho "apt-get $*" >> "$CALLS"\n')
    done = _install(tools, tmp_path / "chromium")
    assert done.returncode == 1
    assert _calls(tools) == INSTALLED
    assert "is still missing" in done.stderr
