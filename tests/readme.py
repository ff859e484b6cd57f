"""The README's commands, read from the README itself, so that the tests run what a user copies."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def section(title: str) -> str:
    """The text of the README's ``## title`` section, up to the next ``## `` heading."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert found, f"the README has no section {title!r}"
    return found[1]


def shell_blocks(title: str) -> list[str]:
    """The ``sh`` code blocks of a section, in order, as written."""
    return re.findall(r"^```sh\n(.*?)^```$", section(title), re.MULTILINE | re.DOTALL)


def quick_start() -> list[str]:
    """The Quick start's blocks: run the service, run the tests, the curl calls, the ``plp alert send``."""
    blocks = shell_blocks("Quick start")
    assert len(blocks) == 4, blocks
    return [block.strip() for block in blocks]
