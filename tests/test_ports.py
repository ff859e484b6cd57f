"""The ports the tests choose for servers they start by address: never one the kernel could hand to someone else
between the choice and the server's bind (which failed CI once with "Address already in use")."""

from __future__ import annotations

import socket

from tests.support import _ephemeral_floor, free_port


def test_a_chosen_port_is_below_the_range_the_kernel_picks_from_and_is_given_once() -> None:
    """The kernel picks ``bind(0)`` ports and outgoing connections' local ports in its ephemeral range; a chosen
    port is below it, free when chosen, and never chosen twice in a run."""
    floor = _ephemeral_floor()
    with socket.socket() as kernels:
        kernels.bind(("127.0.0.1", 0))
        assert kernels.getsockname()[1] >= floor
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(1024 < port < floor for port in ports)
    for port in ports[:20]:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
