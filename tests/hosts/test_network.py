"""The hosts' network itself: made per run, and removed with everything that ran on it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hosts.network import NAMESPACE_PREFIX, Loopback, Namespaces, namespaces_unavailable, remove_dead_runs

#: A process that forks one more, says so, and, as its child, waits until it is killed.
FORKS_AND_WAITS = "import os, signal; os.fork() and print('forked', flush=True); signal.pause()"
#: A pid above Linux's largest (2**22): no process has it, as with a run that died.
DEAD_PID = 4_194_399


@pytest.fixture
def namespaces(tmp_path: Path) -> Iterator[Namespaces]:
    """A network of namespaces, closed after the test whatever happened (closing twice is harmless)."""
    if (reason := namespaces_unavailable()) is not None:
        pytest.skip(f"no network namespaces here: {reason}")
    network = Namespaces(tmp_path)
    try:
        yield network
    finally:
        network.close()


def test_closing_the_network_kills_what_runs_on_it_and_removes_namespaces_veth_pairs_and_bridge(
    namespaces: Namespaces,
) -> None:
    """Closing a network of namespaces kills every process of its hosts, even one they forked, and leaves no
    namespace, veth or bridge of the run (the bridge lives in the run's switch namespace)."""
    hosts = [namespaces.add("a"), namespaces.add("b")]
    waits = hosts[1].start(
        "waits", [sys.executable, "-c", FORKS_AND_WAITS], env={"PATH": os.environ["PATH"]}, stdout=subprocess.PIPE
    )
    assert waits.stdout is not None and waits.stdout.readline() == b"forked\n"
    assert _namespaces(namespaces.prefix) == sorted(f"{namespaces.prefix}{n}" for n in ("a", "b", "switch"))
    assert len(_interfaces(namespaces.interfaces)) == 1  # the test's own end; the others are inside namespaces
    pids = hosts[1].pids()
    assert len(pids) == 2, pids

    namespaces.close()

    assert [pid for pid in pids if _running(pid)] == []
    assert _namespaces(namespaces.prefix) == []
    assert _interfaces(namespaces.interfaces) == []


def test_the_network_of_a_run_that_died_is_removed_by_the_next(namespaces: Namespaces) -> None:
    """Namespaces and veths named after a process that is gone (a run killed before its clean-up) are removed
    when the next network is made; those of a live run are left alone."""
    dead = f"{NAMESPACE_PREFIX}{DEAD_PID}-0-"
    subprocess.run(["ip", "netns", "add", f"{dead}web"], check=True)
    subprocess.run(
        ["ip", "link", "add", "name", f"ph{DEAD_PID}at", "type", "veth", "peer", "name", f"ph{DEAD_PID}aT"], check=True
    )
    namespaces.add("alive")
    assert remove_dead_runs() == [f"{dead}web"]
    assert _namespaces(dead) == [] and _interfaces(f"ph{DEAD_PID}") == []
    assert _namespaces(namespaces.prefix) == sorted(f"{namespaces.prefix}{n}" for n in ("alive", "switch"))


def test_without_iproute2_the_reason_to_run_on_loopback_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where ``ip`` is not installed, the reason the loopback variant runs instead names iproute2."""
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = namespaces_unavailable()
    assert reason is not None and "iproute2" in reason


def test_loopback_hosts_each_have_an_address_and_a_folder_of_their_own(tmp_path: Path) -> None:
    """On loopback, each host gets the next 127.0.0.x address (the test's client is 127.0.0.1) and its own folder;
    its services listen on free ports of that address."""
    network = Loopback(tmp_path)
    hosts = [network.add(name) for name in ("redis", "web-1", "web-2")]
    assert [h.address for h in hosts] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert len({h.folder for h in hosts}) == 3 and all(h.folder.is_dir() for h in hosts)
    with socket.socket() as server:
        server.bind((hosts[1].address, hosts[1].port(8080)))  # a free port of its own address
    assert hosts[0].command(["redis-server"]) == ["redis-server"]  # run on the machine itself
    network.close()


def _namespaces(prefix: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[0] for line in listed.splitlines() if line.startswith(prefix))


def _interfaces(prefix: str) -> list[str]:
    listed = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = (line.split(":")[1].strip().partition("@")[0] for line in listed.splitlines())
    return sorted(name for name in names if name.startswith(prefix))


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent to reap it is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
