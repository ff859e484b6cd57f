"""Errors of the commands that act through the API are short sentences with the fix: the service down, a
token refused or missing; and where the token comes from when none is given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import PlpCommand, Scene
from tests.support import free_port


def test_with_the_service_down_a_real_plp_process_says_to_start_it(tmp_path: Path) -> None:
    """A ``plp`` process whose API does not answer prints one line saying so and how to start it; exit status 1."""
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "PLP_API_URL": url, "PLP_TOKEN": "plp_whatever", "PLP_DATA_DIR": str(tmp_path)}
    for args in (["plp", "list"], ["alert", "watch", "abc"], ["report", "--plp", "parc"]):
        done = subprocess.run(
            [sys.executable, "-m", "dispatcher.cli", *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1, done.stderr
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            f"Error: cannot reach the service at {url} (connection refused). Is the service running? "
            "Start it with `plp dev` (or `plp web`), or point --api (PLP_API_URL) at it."
        ]


def test_a_token_the_api_refuses_says_why_and_where_to_get_one(api: PlpCommand, plp: PlpCommand, scene: Scene) -> None:
    """An unknown or revoked token: the reason, and what to check or ask for."""
    unknown = api("plp", "list", PLP_TOKEN="plp_" + "x" * 40)
    assert unknown.exit_code == 1
    assert unknown.output.startswith("Error: the token was refused (unknown): ")
    assert "Check --token (PLP_TOKEN) or --token-file, or ask an admin for a new one (`plp token issue`)" in (
        unknown.output
    )
    issued = plp.ok("token", "issue", "--name", "Short-lived", "--role", "admin").output
    token_id, token = issued.split("token id ")[1].split(",")[0], issued.rsplit(": ", 1)[1].strip()
    api.ok("plp", "list", PLP_TOKEN=token)
    plp.ok("token", "revoke", token_id)
    revoked = api("plp", "list", PLP_TOKEN=token)
    assert revoked.exit_code == 1 and revoked.output.startswith("Error: the token was refused (revoked): ")


def test_without_a_token_the_command_says_how_to_get_one(api: PlpCommand, tmp_path: Path) -> None:
    """No --token, no PLP_TOKEN, no demo tokens: a usage error naming the ways to give one."""
    result = api("plp", "list", PLP_DATA_DIR=str(tmp_path))
    assert result.exit_code == 2
    assert "no token: pass --token or set PLP_TOKEN" in result.output
    assert "`plp dev`" in result.output


def test_the_demo_tokens_are_used_when_no_token_is_given(api: PlpCommand, scene: Scene, tmp_path: Path) -> None:
    """After ``plp dev``, its demo tokens file is read: the admin's by default, another role's with --as, and
    the command says which it used."""
    demo = tmp_path / "demo-tokens.env"
    demo.write_text(
        f"export PLP_ADMIN_TOKEN={scene.tokens['admin']}\nexport PLP_POLICE_TOKEN={scene.tokens['police_elsewhere']}\n"
    )
    as_admin = api.ok("plp", "list", PLP_DATA_DIR=str(tmp_path))
    assert "parc" in as_admin.stdout
    assert as_admin.stderr.strip() == f"(using the demo admin token of {demo})"
    as_police = api.ok("plp", "list", "--as", "police", PLP_DATA_DIR=str(tmp_path))
    assert "parc" not in as_police.stdout  # this officer's zone has no PLP
    missing = api("plp", "list", "--as", "coordinator", PLP_DATA_DIR=str(tmp_path))
    assert missing.exit_code == 1
    assert f"{demo} (the demo tokens) holds no coordinator token (it has: admin, police)" in missing.output


def test_a_token_file_holds_the_token_alone_or_role_lines(api: PlpCommand, scene: Scene, tmp_path: Path) -> None:
    """``--token-file`` (or PLP_TOKEN_FILE) reads a file holding just the token, or PLP_<ROLE>_TOKEN lines."""
    alone = tmp_path / "token"
    alone.write_text(scene.tokens["coordinator"] + "\n")
    assert "parc" in api.ok("plp", "list", "--token-file", str(alone)).stdout
    lines = tmp_path / "tokens.env"
    lines.write_text(f"# ours\nPLP_POLICE_TOKEN='{scene.tokens['police']}'\n")
    assert "parc" in api.ok("plp", "list", PLP_TOKEN_FILE=str(lines)).stdout
    both = api("plp", "list", "--token", "x", "--as", "police")
    assert both.exit_code == 2 and "--as picks a token of a token file" in both.output


def test_a_token_sent_to_a_remote_plain_http_address_is_warned_about(api: PlpCommand) -> None:
    """An --api that is neither https nor this machine gets a warning that the token travels unencrypted."""
    url = f"http://0.0.0.0:{free_port()}"
    result = api("plp", "list", "--api", url, PLP_TOKEN="plp_whatever")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"(warning: the token goes unencrypted to {url}; use the service's https:// address)"
    )
    local = api("plp", "list", "--api", f"http://127.0.0.1:{free_port()}", PLP_TOKEN="plp_whatever")
    assert "warning" not in local.stderr
