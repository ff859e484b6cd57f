"""A provider's own rate limit, as the simulators enforce it on what they receive.

Written apart from ``dispatcher.storage.limits`` on purpose: the service's pacing is checked against
an independent referee. ``RateMeter(per_second)`` admits a request when it arrives no earlier
than its theoretical time minus one emission interval (GCRA with a burst tolerance of one
request, as providers' queues allow for the jitter of a network); a refused request takes
no slot. ``refused`` counts the refusals.
"""

from __future__ import annotations

import time


class RateMeter:
    def __init__(self, per_second: float, *, burst: int = 2) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError(f"a rate meter needs per_second > 0 and burst >= 1, got {per_second}, {burst}")
        self.per_second = per_second
        self.interval = 1 / per_second
        self.tolerance = (burst - 1) * self.interval
        self.admitted = 0
        self.refused = 0
        self._tat = 0.0

    def admit(self, now: float | None = None) -> bool:
        """True if a request arriving ``now`` (default: the monotonic clock) is within the rate."""
        now = time.monotonic() if now is None else now
        tat = max(self._tat, now)
        if now < tat - self.tolerance:
            self.refused += 1
            return False
        self._tat = tat + self.interval
        self.admitted += 1
        return True
