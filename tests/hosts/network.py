"""The hosts of the hosts suite: Linux network namespaces on a bridge, or, where those cannot be made, loopback.

``Namespaces`` makes one network namespace per host, each with one interface (``eth0``, one end
of a veth pair) and its own address on a /24 of 10.77.x.0; the other ends are ports of a bridge
living in a namespace of its own (the switch), so no firewall of the machine sees the traffic
between hosts. The test process is on the same network through one more veth pair, at the
subnet's ``.1``: it reaches every host as a client on that network would. Each host has a data
folder of its own, and every process started on it runs inside its namespace
(``ip netns exec``): it sees only its own ``eth0`` and ``lo``, and listens on its own address.

``Loopback`` gives each host a loopback address of its own (127.0.0.2, 127.0.0.3...) and a data
folder, on the machine's one network stack: the same layout without isolation, for where
namespaces cannot be made (``namespaces_unavailable`` says why).

Names are unique per run (``plp-hosts-<pid>-<n>-<host>`` for namespaces, ``ph<pid><letter>...`` for
interfaces), so runs at once never meet; ``close`` kills every process of every host, removes the
namespaces, the veth pairs and the bridge, and checks that nothing of the run is left.
Namespaces left by a run that died before its ``close`` (its pid gone) are removed by the next run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
#: Prefix of every namespace the suite makes: ``plp-hosts-<pid>-<n>-<host>``.
NAMESPACE_PREFIX = "plp-hosts-"
_RUNS = itertools.count()


class Host:
    """One host: a name, an address, a data folder, and the processes started on it."""

    def __init__(self, name: str, address: str, folder: Path, *, namespace: str | None) -> None:
        self.name, self.address, self.folder, self.namespace = name, address, folder, namespace
        self.processes: list[subprocess.Popen[bytes]] = []
        folder.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.address!r}, namespace={self.namespace!r})"

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run on this host."""
        return ["ip", "netns", "exec", self.namespace, *argv] if self.namespace else list(argv)

    def port(self, wanted: int) -> int:
        """The port a service listens on here: ``wanted`` in a namespace (the host's own), a free one on loopback."""
        if self.namespace:
            return wanted
        return free_port(self.address)

    def start(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], stdout: int | IO[bytes] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on this host, from the project's folder; its output (stderr only, if ``stdout`` is
        given) goes to ``<folder>/<name>.log``."""
        with (self.folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                self.command(argv), env=dict(env), cwd=ROOT, stdout=log if stdout is None else stdout, stderr=log
            )
        self.processes.append(process)
        return process

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.processes if p.poll() is None]

    def pids(self) -> set[int]:
        """Every process running on the host: in a namespace all it holds (children included), else ours."""
        ours = {p.pid for p in self.alive()}
        if not self.namespace:
            return ours
        listed = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True, check=False)
        return ours | {int(pid) for pid in listed.stdout.split()}

    def kill(self) -> set[int]:
        """SIGKILL every process of the host at once (a power cut: nothing cleans up); return their pids."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            process.wait()
        return pids

    def stop(self) -> None:
        """SIGTERM the host's processes, SIGKILL what is still there after 10 s."""
        self.terminate()
        self.wait()

    def terminate(self) -> None:
        """SIGTERM the host's processes (a clean stop, as a supervisor asks for it)."""
        for process in self.alive():
            process.terminate()

    def wait(self) -> None:
        """Wait for the host's processes to exit; SIGKILL what is still there after 10 s."""
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


class Network:
    """Hosts of one run, added by name; ``close`` stops them all and takes the network down."""

    mode = ""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hosts: dict[str, Host] = {}

    @property
    def client_address(self) -> str:
        """The test process's own address on the network."""
        raise NotImplementedError

    def add(self, name: str) -> Host:
        raise NotImplementedError

    def close(self) -> None:
        for host in self.hosts.values():
            host.stop()


class Loopback(Network):
    """Hosts at 127.0.0.2, 127.0.0.3...: distinct addresses and folders on the machine's own network stack."""

    mode = "loopback"

    @property
    def client_address(self) -> str:
        return "127.0.0.1"

    def add(self, name: str) -> Host:
        host = Host(name, f"127.0.0.{len(self.hosts) + 2}", self.folder / name, namespace=None)
        self.hosts[name] = host
        return host


class Namespaces(Network):
    """A namespace per host on a bridge of the run's own; the test process at the subnet's ``.1``."""

    mode = "namespaces"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        remove_dead_runs()
        pid, run = os.getpid(), next(_RUNS)
        self.prefix = f"{NAMESPACE_PREFIX}{pid}-{run}-"
        self.interfaces = _interface_prefix(pid, run)
        self.switch = f"{self.prefix}switch"
        self.subnet = _free_subnet()
        try:
            _ip("netns", "add", self.switch)
            _ip("-n", self.switch, "link", "set", "lo", "up")
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            self._plug(None, f"{self.interfaces}t", f"{self.interfaces}T", self.client_address)
        except BaseException:
            self.close()
            raise

    @property
    def client_address(self) -> str:
        return f"{self.subnet}.1"

    def add(self, name: str) -> Host:
        namespace = f"{self.prefix}{name}"
        _ip("netns", "add", namespace)
        host = Host(name, f"{self.subnet}.{len(self.hosts) + 2}", self.folder / name, namespace=namespace)
        self.hosts[name] = host
        _ip("-n", namespace, "link", "set", "lo", "up")
        n = len(self.hosts)
        self._plug(namespace, f"{self.interfaces}h{n}", f"{self.interfaces}s{n}", host.address)
        return host

    def _plug(self, namespace: str | None, end: str, peer: str, address: str) -> None:
        """A veth pair ``end``-``peer`` from ``namespace`` (None: the test's own) to the switch's bridge, with
        ``address`` at ``end``."""
        inside = ["netns", namespace] if namespace else []
        _ip("link", "add", "name", end, *inside, "type", "veth", "peer", "name", peer, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", peer, "master", "br0", "up")
        where = ["-n", namespace] if namespace else []
        if namespace:
            _ip(*where, "link", "set", end, "name", "eth0")
            end = "eth0"
        _ip(*where, "addr", "add", f"{address}/24", "dev", end)
        _ip(*where, "link", "set", end, "up")

    def close(self) -> None:
        """Stop every process, remove the namespaces (their veth ends and the bridge go with them) and the
        test's own veth; raise ``AssertionError`` if anything of the run is left."""
        try:
            super().close()
            for host in self.hosts.values():
                host.kill()  # whatever a process forked and left behind in the namespace
        finally:
            _remove(self.prefix, self.interfaces)
        left = [n for n in _namespaces() if n.startswith(self.prefix)] + [
            i for i in _interfaces() if i.startswith(self.interfaces)
        ]
        assert not left, f"the network of the run is still there: {left}"


def namespaces_unavailable() -> str | None:
    """Why network namespaces joined by veth pairs to a bridge cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed: no network namespaces"
    probe = f"{NAMESPACE_PREFIX}probe-{os.getpid()}"
    steps = [
        ["netns", "add", probe],
        ["-n", probe, "link", "add", "br0", "type", "bridge"],
        ["-n", probe, "link", "add", "name", "probe-a", "type", "veth", "peer", "name", "probe-b"],
    ]
    try:
        for step in steps:
            done = subprocess.run(["ip", *step], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                why = done.stderr.strip() or f"exit status {done.returncode}"
                user = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}, not root"
                needs = "namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN"
                return f"`ip {' '.join(step)}` failed ({user}; {needs}): {why}"
        return None
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)


def remove_dead_runs() -> list[str]:
    """Remove the namespaces (and veths) of runs whose process is gone, killing what still runs in them;
    return the namespaces removed."""
    dead = set()
    for name in _namespaces():
        found = re.match(rf"{re.escape(NAMESPACE_PREFIX)}(\d+)-(\d+)-", name)
        if found and not _running(int(found.group(1))):
            dead.add(found.group(0))
    removed = []
    for prefix in sorted(dead):
        pid, run = prefix.removeprefix(NAMESPACE_PREFIX).rstrip("-").split("-")
        for namespace in (n for n in _namespaces() if n.startswith(prefix)):
            listed = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False)
            for leftover in listed.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(leftover), signal.SIGKILL)
            removed.append(namespace)
        _remove(prefix, _interface_prefix(int(pid), int(run)))
    return removed


def _remove(prefix: str, interfaces: str) -> None:
    for interface in _interfaces():
        if interface.startswith(interfaces):
            subprocess.run(["ip", "link", "del", interface], capture_output=True, check=False)
    for namespace in _namespaces():
        if namespace.startswith(prefix):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)


def _interface_prefix(pid: int, run: int) -> str:
    """``ph<pid><letter>``: with a suffix of up to 4 characters, within Linux's 15 for an interface's name."""
    return f"ph{pid}{chr(ord('a') + run % 26)}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def _namespaces() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


def _interfaces() -> list[str]:
    listed = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False)
    return [line.split(":")[1].strip().partition("@")[0] for line in listed.stdout.splitlines() if ":" in line]


def _free_subnet() -> str:
    """A ``10.77.x`` /24 no interface or route of this machine uses (runs at once take different ones)."""
    used = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    used += subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True, check=False).stdout
    start = os.getpid() % 250
    for n in range(250):
        subnet = f"10.77.{(start + n) % 250 + 1}"
        if f"{subnet}." not in used:
            return subnet
    raise RuntimeError("no free 10.77.x.0/24 subnet for the hosts' network")
