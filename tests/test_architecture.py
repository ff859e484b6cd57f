"""The architecture holds: no import cycle among the project's modules, and each part of ``dispatcher``
imports only what its package docstring says it may (its ``May import:`` paragraph).

Imports are read from the source (``ast``), every one of them: at the top of a module, inside a
function, and under ``if TYPE_CHECKING:``. An import a function defers, or one made for the type
checker only, still ties two modules together: a cycle through one is a cycle of the design, which a
reader must follow both ways, and which is one edit away from a cycle at import time.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The project's own packages (those of pyproject.toml); every other import is a library's.
PACKAGES = ("dispatcher", "channels", "workers", "config")
#: Where a package docstring states its rule, and the rule's paragraph ends.
RULE = re.compile(r"^May import:(?P<rule>.*?)(?:\n\s*\n|\Z)", re.MULTILINE | re.DOTALL)
NAME = re.compile(r"``([\w.]+)``")


@dataclass(frozen=True)
class Import:
    """One import statement's target among the project's modules."""

    source: str  # the importing module
    target: str  # the module imported (or the package, for a name it defines)
    line: int

    def __str__(self) -> str:
        return f"{self.source} (line {self.line}) imports {self.target}"


@cache
def modules() -> dict[str, Path]:
    """Every module of the project by dotted name (a package by its own name, for its ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _module_of(name: str) -> str | None:
    """The project module that ``name`` (a module, or a name defined in one) is found in, if any."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.AST, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the importing module's package, up level - 1
            parent = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parent, base] if base else parent)
        yield from (f"{base}.{alias.name}" for alias in node.names)


@cache
def imports() -> list[Import]:
    """Every import among the project's modules, wherever it stands in the importing module."""
    found = []
    for source, path in modules().items():
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for name in _targets(node, package):
                target = _module_of(name)
                if target is not None and target != source:
                    found.append(Import(source, target, getattr(node, "lineno", 0)))
    return found


def cycles(edges: list[Import]) -> list[tuple[list[str], set[str]]]:
    """Each group of modules that import each other, with one cycle through it (a path that ends where it starts)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    return [(_cycle_through(min(group), graph, group), group) for group in _strongly_connected(graph) if len(group) > 1]


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while (member := stack.pop()) != node:
                        group.add(member)
                        on_stack.discard(member)
                    on_stack.discard(node)
                    groups.append({*group, node})
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def _cycle_through(start: str, graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, set()) & group):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


@cache
def subpackages() -> dict[str, Path]:
    """The subpackages of ``dispatcher`` (folders with an ``__init__.py``)."""
    return {f"dispatcher.{path.parent.name}": path for path in sorted((ROOT / "dispatcher").glob("*/__init__.py"))}


def rule_of(package: str) -> set[str]:
    """The project packages ``package`` may import, as its docstring's ``May import:`` paragraph names them."""
    docstring = ast.get_docstring(ast.parse(subpackages()[package].read_text())) or ""
    stated = RULE.search(docstring)
    assert stated is not None, f"{package}'s docstring does not say what it may import (a 'May import:' paragraph)"
    named = {name for name in NAME.findall(stated["rule"]) if name.split(".")[0] in PACKAGES}
    unknown = sorted(name for name in named if name not in modules())
    assert not unknown, f"{package} may import {unknown}, which are not modules of the project"
    return named


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def broken_rules() -> list[str]:
    """The imports of ``dispatcher``'s subpackages that their rules do not allow."""
    rules = {package: rule_of(package) for package in subpackages()}
    broken = []
    for edge in imports():
        package = next((p for p in rules if _within(edge.source, p)), None)
        if package is None or _within(edge.target, package):
            continue
        if not any(_within(edge.target, allowed) for allowed in rules[package]):
            broken.append(f"{edge}: {package} may import only {sorted(rules[package])}")
    return broken


# -- the walk itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import dispatcher.core.models", {"dispatcher.core.models"}),
        ("from dispatcher.core import models", {"dispatcher.core.models"}),
        ("from dispatcher.core.models import Alert", {"dispatcher.core.models"}),
        ("from dispatcher.reports import Evaluation", {"dispatcher.reports"}),
        ("from . import models", {"dispatcher.core.models"}),
        ("from .models import Alert", {"dispatcher.core.models"}),
        ("import redis.asyncio", set()),
        ("def f():\n    from dispatcher.storage import keys", {"dispatcher.storage.keys"}),
        ("if TYPE_CHECKING:\n    from dispatcher.storage.store import Store", {"dispatcher.storage.store"}),
    ],
)
def test_every_import_is_seen_wherever_it_stands(source: str, expected: set[str]) -> None:
    """An import is found at the top, in a function, under TYPE_CHECKING, absolute or relative."""
    found = {
        target
        for node in ast.walk(ast.parse(source))
        for name in _targets(node, "dispatcher.core")
        if (target := _module_of(name)) is not None
    }
    assert found == expected


def test_a_cycle_is_reported_as_a_path() -> None:
    """Three modules that import each other in a ring are reported as one path from the first back to it."""
    ring = [Import("a", "b", 1), Import("b", "c", 1), Import("c", "a", 1), Import("c", "d", 1)]
    assert cycles(ring) == [(["a", "b", "c", "a"], {"a", "b", "c"})]


def test_a_package_docstring_states_its_rule() -> None:
    """The rule is read from the ``May import:`` paragraph: the project's modules named in it, nothing else."""
    docstring = "Owns X.\n\nMay import: ``dispatcher.core``, ``channels`` (the ``Channel`` protocol).\n\nMore."
    stated = RULE.search(docstring)
    assert stated is not None
    assert {n for n in NAME.findall(stated["rule"]) if n.split(".")[0] in PACKAGES} == {"dispatcher.core", "channels"}


# -- the project ----------------------------------------------------------------------------------


def test_no_module_imports_itself_through_others() -> None:
    """No import cycle among the modules of dispatcher, channels, workers and config."""
    found = cycles(imports())
    assert not found, "import cycles:\n" + "\n".join(
        f"{' -> '.join(path)} (of the group {', '.join(sorted(group))})" for path, group in found
    )


def test_every_subpackage_of_dispatcher_states_what_it_may_import() -> None:
    """Each subpackage's docstring has a ``May import:`` paragraph naming existing packages."""
    assert {package: rule_of(package) for package in subpackages()}


def test_each_subpackage_imports_only_what_its_docstring_allows() -> None:
    """Every import from a subpackage of ``dispatcher`` into another part of the project is one its rule names."""
    broken = broken_rules()
    assert not broken, "imports against the rules:\n" + "\n".join(broken)
