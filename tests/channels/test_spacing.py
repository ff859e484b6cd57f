"""``WriteSpacing``: a process's requests to a provider leave at its paced rate, however its loop bunched them."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from channels.base import LATE_WRITE, Departed, WriteSpacing, departed, departing
from tests.simulators.meter import RateMeter


def test_the_spacing_of_a_rate_is_its_interval_paced_below_it() -> None:
    """30 a second paced 1 % below: one request every 33.7 ms."""
    assert WriteSpacing.under(30, margin=0.01).seconds == 1 / (30 * 0.99)


async def test_requests_bunched_by_a_busy_loop_are_written_at_the_rate_and_a_provider_admits_each() -> None:
    """Twelve requests reaching their write at the same instant (held up together) are let out one interval
    apart; the provider's meter (GCRA at the rate, as the simulators enforce it) admits every one of them."""
    spacing = WriteSpacing.under(30, margin=0.01)
    written: list[float] = []

    async def write() -> None:
        await spacing.turn()
        written.append(time.monotonic())

    await asyncio.gather(*(write() for _ in range(12)))
    gaps = [later - earlier for earlier, later in itertools.pairwise(written)]
    assert min(gaps) >= spacing.seconds
    provider = RateMeter(30, burst=1)  # not even one early request tolerated
    assert all(provider.admit(moment) for moment in written)


def test_a_request_with_no_request_written_within_an_interval_before_it_goes_at_once() -> None:
    """The first request (as any after a quiet interval) is not delayed: its turn never waits, even under a
    spacing of an hour."""
    turn = WriteSpacing(3600).turn()
    with pytest.raises(StopIteration):
        turn.send(None)  # done in its first step: it never waited


async def test_a_request_written_late_after_its_departure_departs_again_once_before_it_is_written() -> None:
    """Another process's neighbour, on time, would reach the provider next to a request written more than
    ``LATE_WRITE`` of an interval after it departed: that request departs again under the shared limits first,
    once, and only then counts as written."""
    spacing = WriteSpacing.under(30, margin=0.01)
    events: list[str] = []

    async def again() -> None:
        events.append("departed again")

    token = departed.set(Departed(at=time.monotonic() - spacing.seconds, again=again))  # left an interval ago
    try:
        await spacing.turn()
    finally:
        departed.reset(token)
    events.append("written")
    assert events == ["departed again", "written"]


async def test_a_request_written_soon_after_its_departure_or_under_no_limit_never_departs_again() -> None:
    """Written within ``LATE_WRITE`` of an interval of its departure (the usual case: the same step of the loop,
    give or take the request's building), or with no departure at all (no shared limit), a request goes at
    once."""
    spacing = WriteSpacing.under(30, margin=0.01)
    again_calls: list[float] = []

    async def again() -> None:
        again_calls.append(time.monotonic())

    with departing(again):
        await spacing.turn()
    assert LATE_WRITE * spacing.seconds > 0.02  # room for building the request
    await WriteSpacing.under(30, margin=0.01).turn()
    assert again_calls == []
