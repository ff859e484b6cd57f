"""Fixtures of the hosts suite: the cluster, in network namespaces and on loopback, and a client of it.

The cluster is started once per module and per mode (``namespaces``, ``loopback``); a test that
breaks a host puts it back before it ends. The modes the run used, and what the tests measured,
are printed in pytest's summary at the end of the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import cache
from typing import Any

import aiohttp
import pytest

from tests.hosts.client import Client
from tests.hosts.cluster import Cluster
from tests.hosts.network import Loopback, Namespaces, Network, namespaces_unavailable

MODES = ("namespaces", "loopback")
FIGURES: list[tuple[str, dict[str, Any]]] = []


@cache
def why_no_namespaces() -> str | None:
    return namespaces_unavailable()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("hosts suite")
    reason = why_no_namespaces()
    terminalreporter.write_line(
        "hosts: network namespaces on a bridge, and loopback addresses"
        if reason is None
        else f"hosts: loopback addresses only; no network namespaces here: {reason}"
    )
    for test, figures in FIGURES:
        terminalreporter.write_line(f"{test}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def open_network(mode: str, folder: Any) -> Network:
    """The hosts' network of ``mode``; skips the test, saying why, where namespaces cannot be made."""
    if mode == "namespaces" and (reason := why_no_namespaces()) is not None:
        pytest.skip(f"no network namespaces here ({reason}): the loopback variant runs instead")
    return Namespaces(folder) if mode == "namespaces" else Loopback(folder)


@pytest.fixture(scope="module", params=MODES)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The service on seven hosts, started; stopped and its network removed when the module's tests are done,
    whatever happened (the network's ``close`` checks that nothing of it is left)."""
    network = open_network(request.param, tmp_path_factory.mktemp(f"hosts-{request.param}"))
    try:
        started = Cluster(network)
        try:
            started.start()
            yield started
        finally:
            started.stop()
    finally:
        network.close()


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        yield Client(cluster, http)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A dict the test fills with what it measured; reported at the end of the run (even if it fails)."""
    found: dict[str, Any] = {}
    yield found
    if found:
        FIGURES.append((request.node.name, found))
