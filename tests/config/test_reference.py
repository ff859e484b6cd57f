"""The configuration reference, docs/configuration.md, is generated from ``Settings`` and cannot drift from it:
every field has a description, sits in one section of the page, and the page on disk is what the settings give."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Settings
from config.reference import PAGE, SECTIONS, field_default, field_type, main, render
from config.settings import environment_variable
from tests.readme import CONFIGURATION

FIELDS = sorted(Settings.model_fields)


def test_the_page_is_the_one_the_tests_read() -> None:
    assert PAGE == CONFIGURATION


def test_the_page_on_disk_is_what_settings_give() -> None:
    """Regenerated from Settings, the page is unchanged: run ``python -m config.reference`` after changing a field."""
    assert CONFIGURATION.read_text(encoding="utf-8") == render(), "stale: run python -m config.reference"


@pytest.mark.parametrize("field", FIELDS)
def test_every_field_has_a_description(field: str) -> None:
    """A description is a sentence or more, ending with a full stop: what the setting does, not just its unit."""
    description = Settings.model_fields[field].description or ""
    assert len(description.split()) >= 3 and description.endswith("."), (field, description)


def test_every_field_is_in_exactly_one_section() -> None:
    placed = [name for section in SECTIONS for name in section.fields]
    assert sorted(placed) == FIELDS


@pytest.mark.parametrize("field", FIELDS)
def test_every_field_has_its_row(field: str) -> None:
    """The row of a field gives its variable, type, default and description, in that order."""
    description = " ".join((Settings.model_fields[field].description or "").split())
    row = f"| `{environment_variable(field)}` | {field_type(field)} | {field_default(field)} | {description} |"
    assert row in CONFIGURATION.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(
    ("field", "kind", "default"),
    [
        ("port", "integer, 1–65535", "`8080`"),
        ("environment", "one of `production`, `development`", "`production`"),
        ("log_level", "one of `DEBUG`, `INFO`, `WARNING`, `ERROR`", "`INFO`"),
        ("key_prefix", "text matching `^[A-Za-z0-9_.-]{1,32}:$`", "`plp:`"),
        ("limit_margin", "number, ≥ 0, < 0.5", "`0.01`"),
        ("provider_timeout", "number, > 0, ≤ 120", "`10`"),
        ("metrics_token", "secret, 16 characters or more", "*(unset)*"),
        ("redis_url", "text", "*(unset)*"),
        ("public_base_url", "text", "*(unset)*"),
        ("outbox_channels", "comma-separated list", "*(none)*"),
        ("data_dir", "path", "`var`"),
        ("price_sms_segment", "decimal, ≥ 0", "`0.08`"),
    ],
)  # fmt: skip
def test_types_and_defaults_are_written_as_a_reader_types_them(field: str, kind: str, default: str) -> None:
    assert (field_type(field), field_default(field)) == (kind, default)


def test_the_generator_writes_the_page_and_checks_it(tmp_path: Path) -> None:
    """``--check`` exits 1 on a page out of date and changes nothing; without it, the page is written."""
    page = tmp_path / "configuration.md"
    page.write_text("# Configuration\n", encoding="utf-8")
    assert main(["--check", "--output", str(page)]) == 1
    assert page.read_text(encoding="utf-8") == "# Configuration\n"
    assert main(["--output", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == render()
    assert main(["--check", "--output", str(page)]) == 0
