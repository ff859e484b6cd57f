"""Each setting is read from the environment variable docs/configuration.md documents for it, and from no other: not
from its bare name (``PORT``, ``HOST``, ``DATA_DIR``, ``SECRET_KEY``..., which honcho and hosting platforms
set for every process), nor in another case. Generated from the model, so a new field is covered at once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config import Settings
from config.settings import environment_variable
from tests.readme import CONFIGURATION

FIELDS = sorted(Settings.model_fields)
#: A value no field has as its default; valid for some fields, refused by others: either way, it shows.
SENTINEL = "7"


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with none of the documented variables set."""
    for field in FIELDS:
        monkeypatch.delenv(environment_variable(field), raising=False)
    return monkeypatch


def _others(field: str) -> list[str]:
    """The names a field could be read from by mistake: its bare name in both cases, its variable in lower case."""
    variable = environment_variable(field)
    return sorted({field.upper(), field, variable.lower()} - {variable})


def test_the_bare_names_are_real_variables_of_the_platform() -> None:
    """The names tried below include those honcho and hosting platforms set for every process."""
    tried = {name for field in FIELDS for name in _others(field)}
    assert {"PORT", "HOST", "DATA_DIR", "SECRET_KEY", "LOG_LEVEL", "REDIS_URL".lower()} <= tried


@pytest.mark.parametrize("field", FIELDS)
def test_a_field_is_not_read_from_its_bare_name(bare_environment: pytest.MonkeyPatch, field: str) -> None:
    """With every other spelling of the field's name set (``PORT``, ``port``, ``plp_port``), it keeps its default."""
    default = getattr(Settings(), field)
    for name in _others(field):
        bare_environment.setenv(name, SENTINEL)
    assert getattr(Settings(), field) == default, f"{field} was read from one of {_others(field)}"


@pytest.mark.parametrize("field", FIELDS)
def test_a_field_is_read_from_its_documented_variable(bare_environment: pytest.MonkeyPatch, field: str) -> None:
    """The variable the configuration page documents is read: the field takes its value, or the value is refused
    naming it."""
    variable = environment_variable(field)
    rows = CONFIGURATION.read_text(encoding="utf-8").splitlines()
    assert any(row.startswith(f"| `{variable}` |") for row in rows), f"{variable} is not in a table of the page"
    bare_environment.setenv(variable, SENTINEL)
    try:
        value = getattr(Settings(), field)
    except ValidationError as exc:
        assert [e["loc"] for e in exc.errors()] == [(variable,)], exc
        return
    assert value != getattr(Settings.model_construct(), field), f"{variable}={SENTINEL} did not change {field}"


@pytest.mark.parametrize(
    ("environment", "local", "public"),
    [
        ({}, "http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ({"PLP_PORT": "9000"}, "http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ({"PLP_HOST": "0.0.0.0"}, "http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ({"PLP_HOST": "::", "PLP_PORT": "9000"}, "http://[::1]:9000", "http://[::1]:9000"),
        ({"PLP_HOST": "10.1.2.3"}, "http://10.1.2.3:8080", "http://10.1.2.3:8080"),
        ({"PLP_PORT": "9000", "PLP_PUBLIC_BASE_URL": "https://plp.example.org"}, "http://127.0.0.1:9000",
         "https://plp.example.org"),
    ],
)  # fmt: skip
def test_links_point_where_the_service_answers_unless_told_otherwise(
    bare_environment: pytest.MonkeyPatch, environment: dict[str, str], local: str, public: str
) -> None:
    """Without PLP_PUBLIC_BASE_URL, members' links and webhooks use http://PLP_HOST:PLP_PORT, as the CLI does."""
    for name, value in environment.items():
        bare_environment.setenv(name, value)
    settings = Settings()
    assert (settings.local_url, settings.public_base_url) == (local, public)
