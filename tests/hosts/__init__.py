"""The hosts suite: the service run as separate hosts, each a Linux network namespace on a bridge.

Redis, two web hosts, two worker hosts, the clock and the vendors' simulators each run on a host
of their own (``tests.hosts.network``, ``tests.hosts.cluster``), with the settings a production
deployment gives them; the tests post alerts to both web hosts, follow the links members get,
and kill every process of a worker host in the middle of an alert. Where namespaces cannot be
made (not root, no CAP_NET_ADMIN, no iproute2), that variant is skipped, saying why, and the
loopback variant (127.0.0.2, 127.0.0.3... and a data folder per host) runs in any case.

    .venv/bin/python -m pytest -q tests/hosts -rs
"""
