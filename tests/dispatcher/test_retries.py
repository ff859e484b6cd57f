"""When a failed send is tried again: backoff with jitter, exact waits on rate limits, never past the TTL."""

from __future__ import annotations

import random

import pytest

from channels.base import RateLimited, TransientError
from dispatcher.pipeline.retries import UNCERTAIN_WAIT, RetryPolicy, Verdict

POLICY = RetryPolicy(max_attempts=4, base=2.0, cap=60.0)
NOW, FAR = 1_000_000.0, 1_000_000.0 + 3600


@pytest.mark.parametrize("failures", [0, 1, 2, 5, 10])
def test_backoff_doubles_with_half_of_it_random_up_to_a_cap(failures: int) -> None:
    """Each wait lies between half and all of base * 2**failures, capped; the random half spreads retries."""
    ceiling = min(60.0, 2.0 * 2**failures)
    waits = [POLICY.backoff(failures, random.Random(seed)) for seed in range(50)]
    assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert len(set(waits)) > 40


def test_a_rate_limited_send_waits_exactly_as_asked_and_keeps_its_attempts() -> None:
    """A 429 was never processed: wait what the provider said, and it does not count as a failure."""
    decision = POLICY.decide(RateLimited("slow down", retry_after=7.0), failures=3, now=NOW, expires_at=FAR)
    assert (decision.verdict, decision.at, decision.counts) == (Verdict.RETRY, NOW + 7.0, False)


def test_a_transient_failure_is_retried_until_the_attempts_run_out() -> None:
    """Failures 1 to 3 are retried; the 4th gives up (the charter's next channel then takes over)."""
    for failures in range(3):
        decision = POLICY.decide(TransientError("503"), failures=failures, now=NOW, expires_at=FAR)
        assert decision.verdict is Verdict.RETRY and decision.counts
        assert NOW < decision.at <= NOW + 2.0 * 2**failures
    assert POLICY.decide(TransientError("503"), failures=3, now=NOW, expires_at=FAR).verdict is Verdict.GIVE_UP


def test_a_send_that_may_have_gone_waits_for_the_providers_report_first() -> None:
    """After a timeout a provider that reports each message's fate may call back: the retry waits to hear it."""
    error = TransientError("timeout", may_have_sent=True)
    assert POLICY.decide(error, failures=0, now=NOW, expires_at=FAR, reported=True).at >= NOW + UNCERTAIN_WAIT


def test_a_send_that_may_have_gone_on_a_channel_without_reports_is_retried_after_the_backoff() -> None:
    """Where no report will come (SMTP, Telegram), waiting for one avoids nothing: the usual backoff applies."""
    error = TransientError("timeout", may_have_sent=True)
    decision = POLICY.decide(error, failures=0, now=NOW, expires_at=FAR, reported=False)
    assert decision.verdict is Verdict.RETRY and NOW < decision.at <= NOW + 2.0


@pytest.mark.parametrize(
    "error", [TransientError("503"), RateLimited("slow down", retry_after=120.0)], ids=["transient", "rate-limited"]
)
def test_a_retry_after_the_time_to_live_is_not_made(error: TransientError) -> None:
    """A burglary alert that cannot go out in time expires: nothing is sent late."""
    assert POLICY.decide(error, failures=0, now=NOW, expires_at=NOW + 1).verdict is Verdict.TOO_LATE
