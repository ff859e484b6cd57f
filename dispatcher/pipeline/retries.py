"""When to try a failed send again: exponential backoff with jitter, bounded, never past the TTL.

- A rate-limited send (the provider refused it before processing) waits exactly as long as
  the provider asked and does not use up an attempt.
- Another transient failure waits ``base * 2**failures`` seconds, half of it random (so that
  a thousand failed sends do not all come back at the same instant), up to a cap; after
  ``PLP_MAX_ATTEMPTS`` failures the delivery fails, and the charter's next channel is tried.
- A failure after which the message *may* have gone out (no answer once the request was
  sent), on a channel whose provider calls back with each message's fate (Twilio), waits at
  least ``UNCERTAIN_WAIT`` seconds: long enough for its report, which settles the delivery
  and cancels the retry. Where no report will come (SMTP, Telegram), waiting longer avoids
  nothing: the usual backoff applies. A resend after such a failure is counted as a possible
  duplicate when it is claimed (``dispatcher.storage.scripts``).
- A next attempt that would fall after the alert's time-to-live is not made: the delivery
  expires. Nothing is sent late.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from channels.base import RateLimited, TransientError
from config import Settings
from dispatcher.core.models import Urgency

#: Seconds to wait, after a send that may have gone out, for the provider's report.
UNCERTAIN_WAIT = 20.0


class Verdict(StrEnum):
    RETRY = "retry"
    GIVE_UP = "give_up"  # attempts exhausted
    TOO_LATE = "too_late"  # the next attempt would be after the time-to-live


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    at: float = 0.0  # when to try again (Unix time), for RETRY
    counts: bool = True  # whether this failure uses up an attempt


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base: float
    cap: float

    @classmethod
    def for_urgency(cls, settings: Settings, urgency: Urgency) -> RetryPolicy:
        if urgency is Urgency.URGENT:
            return cls(max_attempts=settings.max_attempts, base=settings.retry_base_urgent, cap=60.0)
        return cls(max_attempts=settings.max_attempts, base=settings.retry_base, cap=1800.0)

    def backoff(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds before the next attempt after ``failures`` earlier failures: half fixed, half random."""
        ceiling = min(self.cap, self.base * 2**failures)
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)

    def decide(
        self, error: TransientError, *, failures: int, now: float, expires_at: float, reported: bool = False
    ) -> Decision:
        """What to do after a transient failure; ``failures`` counts the earlier ones.

        ``reported``: the channel's provider calls back with each message's fate (``Channel.reports_delivery``).
        """
        if isinstance(error, RateLimited):
            decision = Decision(Verdict.RETRY, at=now + (error.retry_after or 0.0), counts=False)
        elif failures + 1 >= self.max_attempts:
            return Decision(Verdict.GIVE_UP)
        else:
            wait = self.backoff(failures)
            if error.retry_after is not None:
                wait = max(wait, error.retry_after)
            if error.may_have_sent and reported:
                wait = max(wait, UNCERTAIN_WAIT)
            decision = Decision(Verdict.RETRY, at=now + wait)
        if decision.at > expires_at:
            return Decision(Verdict.TOO_LATE)
        return decision
