"""A circuit breaker for one backend endpoint and principal. Pure state machine: `now` is passed in.

closed --(threshold consecutive transient failures)--> open --(reset_timeout elapsed)--> half-open: one probe call;
the probe's success closes the breaker, its failure opens it again for another reset_timeout.
Only transient failures count: a 404 or a 403 is an answer, and proves the backend is up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half-open"]


@dataclass
class CircuitBreaker:
    threshold: int = 5
    reset_timeout: float = 60.0
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        if now - self.opened_at >= self.reset_timeout:
            return "half-open"
        return "open"

    def allow(self, now: float) -> bool:
        """May a call go out now? In half-open state only one caller (the probe) is let through."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "half-open" and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> bool:
        """Record an answer from the backend; True when this closed an open breaker."""
        was_open = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self.probing = False
        return was_open

    def failure(self, now: float) -> bool:
        """Record a transient failure; True when this opened the breaker (or re-opened it after a failed probe)."""
        self.failures += 1
        if self.probing or (self.opened_at is None and self.failures >= self.threshold):
            self.opened_at = now
            self.probing = False
            return True
        return False

    def release(self) -> None:
        """A probe that ended without a verdict (cancelled): let the next caller probe."""
        self.probing = False
