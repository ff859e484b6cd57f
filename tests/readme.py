"""The README's and the docs' commands and tables, read from the pages themselves, so that the tests run what a
user copies."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The pages the tests read, besides the README.
CLI = DOCS / "cli.md"
CONFIGURATION = DOCS / "configuration.md"


def section(title: str, page: Path = README) -> str:
    """The text of a page's ``## title`` section, up to the next ``## `` heading or the end of the page."""
    text = page.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert found, f"{page.relative_to(ROOT)} has no section {title!r}"
    return found[1]


def shell_blocks(title: str, page: Path = README) -> list[str]:
    """The ``sh`` code blocks of a section, in order, as written."""
    return re.findall(r"^```sh\n(.*?)^```$", section(title, page), re.MULTILINE | re.DOTALL)


def quick_start() -> list[str]:
    """The README's Quick start blocks: run the service, run the tests, the curl calls, the ``plp alert send``."""
    blocks = shell_blocks("Quick start")
    assert len(blocks) == 4, blocks
    return [block.strip() for block in blocks]
