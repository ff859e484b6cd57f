"""Provider faults at given rates, drawn from a seed, shared by the simulators.

A ``FaultPlan`` says how often each kind of fault happens::

    plan = FaultPlan(seed=1234, rates={Fault.SERVER_ERROR: 0.1, Fault.THROTTLE: 0.05}, hold=1.5)
    twilio.faults = plan

The fault a request gets is drawn from ``random.Random`` seeded with the plan's seed, the
request's key (the destination, as each simulator defines it) and how many requests that
key has had before. Which request gets which fault therefore does not depend on the order
in which concurrent requests happen to arrive: the same seed replays the same faults for
the same deliveries, attempt by attempt.

``script`` sets the faults of a destination's first requests, in order, before any draw:
``plan.script["+32470000007"] = [Fault.THROTTLE] * 5`` throttles that number five times.

The kinds, as each simulator acts them out. Before the message is taken (nothing is sent):

- ``SERVER_ERROR``: the provider refuses, saying it took nothing (Twilio and Telegram HTTP 503,
  SMTP 451 to the RCPT).
- ``RESET``: the connection is closed unanswered before the message is taken: HTTP once the
  request was read (the client cannot tell this from ``TAKEN_THEN_RESET``), SMTP at the RCPT
  (before the DATA: the client can tell).
- ``THROTTLE``: refused before processing with a delay to respect (HTTP 429 with
  ``retry_after``); SMTP has no such answer and never draws it.

Accepted, then failed (the message is taken, in the ledger, and goes out):

- ``TIMEOUT``: the answer comes ``hold`` seconds later, after the client gave up.
- ``TAKEN_THEN_RESET``: the connection is closed unanswered (SMTP: after the end of the DATA,
  before the reply).
- ``TAKEN_THEN_ERROR``: the answer is a server error after which the provider may have acted
  (Twilio HTTP 500, Telegram HTTP 502). SMTP never draws it: its reply to the data is the
  server's word on whether it took the message (RFC 5321, 4.1.1.4).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Fault(StrEnum):
    SERVER_ERROR = "5xx"
    TIMEOUT = "timeout"
    RESET = "reset"
    THROTTLE = "429"
    TAKEN_THEN_RESET = "taken-reset"
    TAKEN_THEN_ERROR = "taken-5xx"


#: The faults after which the provider has the message: the client cannot know that it went.
TAKEN = frozenset({Fault.TIMEOUT, Fault.TAKEN_THEN_RESET, Fault.TAKEN_THEN_ERROR})


@dataclass(frozen=True, slots=True)
class Injected:
    """One fault a simulator acted out: which, on which key, when (Unix time)."""

    fault: Fault
    key: Hashable
    at: float


@dataclass
class FaultPlan:
    """Rates of each fault kind (0 to 1, summing to at most 1), replayable from ``seed``."""

    seed: int
    rates: dict[Fault, float] = field(default_factory=dict)
    hold: float = 2.0  # seconds a TIMEOUT holds its answer: more than the client's timeout
    retry_after: float = 0.5  # seconds a THROTTLE asks the client to wait
    script: dict[str, list[Fault | None]] = field(default_factory=dict)  # destination -> its first requests' faults
    _seen: Counter[Hashable] = field(default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        if any(rate < 0 for rate in self.rates.values()) or sum(self.rates.values()) > 1:
            raise ValueError(f"fault rates must be non-negative and sum to at most 1: {self.rates}")

    def draw(self, key: Hashable, *, destination: str, kinds: Iterable[Fault] = tuple(Fault)) -> Fault | None:
        """The fault for the next request on ``key`` to ``destination`` (None: it goes well), among ``kinds``."""
        if self.script.get(destination):
            return self.script[destination].pop(0)
        attempt = self._seen[key]
        self._seen[key] += 1
        roll = random.Random(f"{self.seed}|{key!r}|{attempt}").random()
        for kind in kinds:
            rate = self.rates.get(kind, 0.0)
            if roll < rate:
                return kind
            roll -= rate
        return None


def duplicates(keys: Iterable[Hashable]) -> Counter[Hashable]:
    """Keys seen more than once, with how many times too many (an empty Counter: no duplicate)."""
    seen = Counter(keys)
    return Counter({key: count - 1 for key, count in seen.items() if count > 1})
