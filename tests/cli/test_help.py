"""``plp --help`` and every subcommand's help are complete: a summary, every option explained, examples."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from dispatcher.cli import main


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


COMMANDS = _commands(main)
IDS = [" ".join(path) for path, _ in COMMANDS]
#: The commands that act for a person, through the API.
THROUGH_THE_API = {
    "plp create", "plp list", "plp show", "charter show", "charter set", "members import", "members list",
    "sectors list", "sectors import", "sectors delete",
    "alert preview", "alert send", "alert watch", "alert list", "alert cancel", "alert follow-up", "feedback list",
    "report",
}  # fmt: skip


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="plp", terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def test_plp_help_lists_every_command_with_its_summary() -> None:
    """``plp --help`` lists every command, each with a summary that is not cut short."""
    text = _help(())
    listed = text.split("Commands:")[1].strip().splitlines()
    assert [line.split()[0] for line in listed] == list(main.commands)
    for line in listed:
        assert len(line.split()) > 2 and not line.rstrip().endswith("..."), line


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_has_a_summary_and_every_option_a_help(path: tuple[str, ...], command: click.Command) -> None:
    """Each command has a one-line summary shown whole (at 80 columns), a description, and a help text for
    each of its options; each argument is named in its description."""
    assert command.help and command.help.strip(), path
    assert command.short_help and len(command.short_help) <= 55, (path, command.short_help)
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help and param.help.strip(), (path, param.opts)
        else:
            assert (param.name or "").upper() in command.help, (path, param.name)
    text = _help(path)
    assert text.startswith(f"Usage: plp {' '.join(path)}")


@pytest.mark.parametrize("path", sorted(THROUGH_THE_API))
def test_commands_through_the_api_say_where_and_as_whom(path: str) -> None:
    """Every command acting through the API shows its --api and --token options with their variables, and how
    the demo tokens are used when no token is given."""
    text = " ".join(_help(tuple(path.split())).split())
    for needed in ("--api", "PLP_API_URL", "--token", "PLP_TOKEN", "--token-file", "demo-tokens.env", "--as"):
        assert needed in text, (path, needed)


@pytest.mark.parametrize(
    "path",
    [
        "dev", "worker", "purge", "token issue", "plp create", "charter set", "members import",
        "alert preview", "alert send", "alert watch", "alert follow-up", "feedback list", "report", "status",
    ],
)  # fmt: skip
def test_the_main_commands_give_an_example(path: str) -> None:
    """The commands an operator types most show an example of their use."""
    text = _help(tuple(path.split()))
    assert "Example" in text
    assert f"plp {path}" in text or path in ("dev",), text


def test_every_command_is_registered_and_reached_by_the_help() -> None:
    """The command tree holds what the table of docs/cli.md promises."""
    assert set(IDS) >= {
        "dev", "web", "worker", "clock", "status", "purge", "telegram-webhook",
        "token issue", "token list", "token revoke", "data version", "data migrate", *THROUGH_THE_API,
    }  # fmt: skip
