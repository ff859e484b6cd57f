"""The documentation can be navigated: the README is a short front page that links every page of ``docs/``, each
page opens with its table of contents, and every relative link, anchors included, leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.readme import DOCS, README, ROOT

PAGES = sorted(DOCS.glob("*.md"))
FRONT_PAGE_LINES = 200
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6}) (.+)$")


def _prose(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks, inline code blanked (neither holds links or headings)."""
    lines, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return lines


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text without markup, lower case, punctuation dropped, spaces as
    hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _headings(page: Path) -> list[tuple[int, str]]:
    """The page's headings, as (level, text), in order (the text as written, inline code included)."""
    found, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.append((len(match[1]), match[2].strip()))
    return found


def _anchors(page: Path) -> set[str]:
    """The anchors of the page's headings, a repeated one numbered as GitHub numbers it."""
    anchors: set[str] = set()
    for _, text in _headings(page):
        anchor, n = _slug(text), 0
        while (anchor if n == 0 else f"{anchor}-{n}") in anchors:
            n += 1
        anchors.add(anchor if n == 0 else f"{anchor}-{n}")
    return anchors


def _links(page: Path) -> list[str]:
    return [target for line in _prose(page) for target in LINK.findall(line)]


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target)


def test_the_readme_is_a_front_page() -> None:
    """The README stays a front page: at most 200 lines, the references are in docs/."""
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= FRONT_PAGE_LINES, f"README.md has {lines} lines, more than {FRONT_PAGE_LINES}: move some to docs/"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    """Each page of docs/ is reached from the README by a link of its own."""
    linked = {(README.parent / target.split("#")[0]).resolve() for target in _links(README) if _relative(target)}
    assert PAGES and [page.name for page in PAGES if page.resolve() not in linked] == []


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page: Path) -> None:
    """A relative link names an existing file, and its anchor (``page.md#heading``, ``#heading``) a heading of it."""
    broken = []
    for target in filter(_relative, _links(page)):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in _anchors(destination):
            broken.append(f"{target}: no such heading in {destination.relative_to(ROOT)}")
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_docs_page_opens_with_its_table_of_contents(page: Path) -> None:
    """Before its first section, a page lists a link to each of its sections (``##``), in their order."""
    lines = _prose(page)
    first = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    listed = [target[1:] for line in lines[:first] if line.lstrip().startswith("- [") for target in LINK.findall(line)]
    sections = [_slug(text) for level, text in _headings(page) if level == 2]
    assert [anchor for anchor in listed if anchor in sections] == sections
    assert set(listed) <= _anchors(page)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Where the API is, and as whom", "where-the-api-is-and-as-whom"),
        ("The whole service's health", "the-whole-services-health"),
        ("Twilio: SMS and calls", "twilio-sms-and-calls"),
        ("Production mode: what it refuses", "production-mode-what-it-refuses"),
        ("May have gone: possible duplicates", "may-have-gone-possible-duplicates"),
    ],
)
def test_anchors_are_spelled_as_github_spells_them(heading: str, anchor: str) -> None:
    """Punctuation goes, spaces become hyphens, letters go to lower case."""
    assert _slug(heading) == anchor
