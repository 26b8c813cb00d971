"""Retry policy (reference §2.7) as pure functions: which failures retry, and how long to wait.

Delay for attempt n (1-based): fixed = initial; linear = initial + increment*(n-1);
exponential = initial * base^(n-1); fibonacci = initial * fib(n); custom = delays[n-1]
(else max_delay); always capped at max_delay; jitter spreads it by ±factor/2.
"""

from __future__ import annotations

import random
import re

from prodigyd.failure import ErrorKind
from prodigyd.workflow.model import RetrySpec

_MATCHERS = {
    "network": ("network", "connection", "refused", "unreachable"),
    "timeout": ("timeout", "timed out"),
    "server_error": ("500", "502", "503", "504", "server error"),
    "rate_limit": ("rate limit", "429", "too many requests"),
}


def delay_for(attempt: int, spec: RetrySpec, *, rng: random.Random | None = None) -> float:
    base = _raw_delay(attempt, spec)
    delay = min(base, spec.max_delay)
    if spec.jitter:
        spread = delay * spec.jitter_factor / 2
        delay += (rng or random).uniform(-spread, spread)
    return max(0.0, delay)


def _raw_delay(attempt: int, spec: RetrySpec) -> float:
    n = max(1, attempt)
    if spec.backoff == "fixed":
        return spec.initial_delay
    if spec.backoff == "linear":
        return spec.initial_delay + (spec.increment or spec.initial_delay) * (n - 1)
    if spec.backoff == "fibonacci":
        a, b = 1, 1
        for _ in range(n - 1):
            a, b = b, a + b
        return spec.initial_delay * a
    if spec.backoff == "custom":
        return spec.delays[n - 1] if n <= len(spec.delays) else spec.max_delay
    return spec.initial_delay * spec.base ** (n - 1)


def next_wait(
    spec: RetrySpec,
    attempt: int,
    error_text: str,
    elapsed: float,
    *,
    kind: ErrorKind | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """How long to wait before attempt `attempt + 1`, or None when there is none: every
    attempt is used, the failure is not one `retry_on` retries, or the wait would end past
    `retry_budget` (`elapsed`: seconds since the first attempt started). One rule for a
    step's retries and a work item's (error_policy.retry_config)."""
    if attempt >= spec.attempts or not should_retry(spec, error_text, kind):
        return None
    delay = delay_for(attempt, spec, rng=rng)
    if spec.retry_budget is not None and elapsed + delay > spec.retry_budget:
        return None
    return delay


def should_retry(spec: RetrySpec, error_text: str, kind: ErrorKind | None = None) -> bool:
    """An empty `retry_on` retries every failure; otherwise one matcher must match.

    A failure whose `kind` is known (a Claude API error's status) matches the named matcher
    of that kind and no other: a 529 is a `server_error` whatever its message says, and a
    401 is not a `network` failure because its text mentions a connection. `pattern:`
    matchers and failures of unknown kind (any shell command) are matched on the text.
    """
    if not spec.retry_on:
        return True
    text = error_text.lower()
    for matcher in spec.retry_on:
        if matcher.startswith("pattern:"):
            if re.search(matcher.removeprefix("pattern:"), error_text, re.IGNORECASE):
                return True
        elif kind is not None:
            if matcher == kind:
                return True
        elif any(word in text for word in _MATCHERS.get(matcher, (matcher.lower(),))):
            return True
    return False
