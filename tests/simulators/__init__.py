"""Vendors simulated as real servers on loopback, for tests driven by the real client libraries."""
