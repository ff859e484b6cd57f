"""``WriteSpacing``: a process's requests to a provider leave at its paced rate, however its loop bunched them."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from channels.base import LATE_WRITE, WRITE_CATCH_UP, Departed, WriteSpacing, departed, departing
from tests.simulators.meter import RateMeter


def test_the_spacing_of_a_rate_is_its_interval_paced_below_it() -> None:
    """30 a second paced 1 % below: one request every 33.7 ms."""
    assert WriteSpacing.under(30, margin=0.01).seconds == 1 / (30 * 0.99)


async def test_requests_bunched_by_a_busy_loop_are_written_at_the_rate_and_a_provider_admits_each() -> None:
    """Twelve requests reaching their write at the same instant (held up together) are let out one interval
    apart (less what a write woken a little late may take back, ``WRITE_CATCH_UP``), never ahead of the pace
    over the twelve; the provider's meter (GCRA at the rate, as the simulators enforce it) admits every one."""
    spacing = WriteSpacing.under(30, margin=0.01)
    written: list[float] = []

    async def write() -> None:
        await spacing.turn()
        written.append(time.monotonic())

    await asyncio.gather(*(write() for _ in range(12)))
    gaps = [later - earlier for earlier, later in itertools.pairwise(written)]
    assert min(gaps) >= spacing.seconds * (1 - WRITE_CATCH_UP)
    assert written[-1] - written[0] >= 11 * spacing.seconds
    provider = RateMeter(30)
    assert all(provider.admit(moment) for moment in written)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_request_written_a_little_late_keeps_the_pace_and_one_written_later_moves_it() -> None:
    """Written at most ``WRITE_CATCH_UP`` of an interval after its moment (the loop woke it a little late), a
    request leaves the next one due an interval after that moment, not after its own write: a millisecond of
    lateness per request does not add up. Written later than that (nothing held it up), the pace starts again
    from its write."""
    clock = Clock()
    spacing = WriteSpacing(1.0, clock=clock)
    await spacing.turn()
    assert spacing.due == 101.0

    clock.now = 101.0 + WRITE_CATCH_UP / 2
    await spacing.turn()
    assert spacing.due == 102.0

    clock.now = 102.0 + 3 * WRITE_CATCH_UP
    await spacing.turn()
    assert spacing.due == clock.now + 1.0


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
