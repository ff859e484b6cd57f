"""Each setting is read from the environment variable the README documents for it, and from no other: not
from its bare name (``PORT``, ``HOST``, ``DATA_DIR``, ``SECRET_KEY``..., which honcho and hosting platforms
set for every process), nor in another case. Generated from the model, so a new field is covered at once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config import Settings
from config.settings import environment_variable

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
    """The documented variable is read: the field takes its value, or the value is refused naming the variable."""
    variable = environment_variable(field)
    bare_environment.setenv(variable, SENTINEL)
    try:
        value = getattr(Settings(), field)
    except ValidationError as exc:
        assert [e["loc"] for e in exc.errors()] == [(variable,)], exc
        return
    assert value != getattr(Settings.model_construct(), field), f"{variable}={SENTINEL} did not change {field}"
