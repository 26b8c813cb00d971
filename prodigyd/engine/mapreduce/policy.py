"""The error policy's stopping rules, pure (no clock of their own, no I/O): when failures
end the dispatching of new items (`FailureLimits`), and the circuit breaker that pauses it
(`Breaker`). The map phase feeds them each item's outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prodigyd.workflow.model import CircuitBreaker, ErrorPolicy


class FailureLimits:
    """When failures stop the dispatching of new items (pure: no clock, no I/O)."""

    def __init__(self, policy: ErrorPolicy, total: int) -> None:
        self.policy, self.total = policy, total
        self.failed = 0
        self.reason: str | None = None

    def record(self, success: bool) -> None:
        if success:
            return
        self.failed += 1
        policy = self.policy
        if policy.on_item_failure == "stop":
            self.reason = "an item failed and on_item_failure is stop"
        elif policy.max_failures is not None and self.failed > policy.max_failures:
            limit = policy.max_failures
            self.reason = f"{self.failed} items failed, more than max_failures ({limit})"
        elif policy.failure_threshold is not None and (
            self.failed / max(self.total, 1) > policy.failure_threshold
        ):
            self.reason = (
                f"{self.failed} of {self.total} items failed, more than failure_threshold "
                f"({policy.failure_threshold:g})"
            )
        elif (
            not policy.continue_on_failure
            and policy.max_failures is None
            and (policy.failure_threshold is None)
        ):
            self.reason = "an item failed and continue_on_failure is false"


class Breaker:
    """The circuit breaker: after `failure_threshold` failures in a row it opens and nothing
    is dispatched for `timeout` seconds; then `half_open_requests` trial agents go, and
    `success_threshold` successes close it again (a failure re-opens it). `clock` is a
    parameter so tests drive it without sleeping."""

    def __init__(self, spec: CircuitBreaker, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec, self.clock = spec, clock
        self.state = "closed"
        self.failures = self.successes = self.trials = 0
        self.opened_at = 0.0

    def wait_time(self) -> float:
        """Seconds until a new agent may start (0: now); claims a trial slot when half open."""
        if self.state == "open":
            remaining = self.opened_at + self.spec.timeout - self.clock()
            if remaining > 0:
                return remaining
            self.state, self.trials, self.successes = "half_open", 0, 0
        if self.state == "half_open":
            if self.trials >= self.spec.half_open_requests:
                return 0.05  # trials in flight: look again shortly
            self.trials += 1
        return 0.0

    def record(self, success: bool) -> None:
        if success:
            self.failures = 0
            if self.state == "half_open":
                self.successes += 1
                if self.successes >= self.spec.success_threshold:
                    self.state = "closed"
                else:
                    self.trials -= 1  # room for the next trial
            return
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.spec.failure_threshold:
            self.state, self.opened_at = "open", self.clock()
