"""Budgets at run time: what a job, a map agent and a step have spent, and stopping them.

A `Meter` is the account of one `budget:` (model.Budget): its limits, what finished Claude
runs spent, what the running ones have spent so far, and when it started. A `Ledger` is
the meters a step answers to (its own, its agent's, the job's), innermost first; a
`Charge` is one Claude run's line in each of them. The claude step kind updates its charge
from the stream as it goes (an estimate until the final line: claude/prices.py); when that
brings any meter to its limit, every run charging that meter is told to stop, so the
last map agent to spend the shared job budget stops the others too. Time is enforced
through each command's timeout, the smallest time any meter has left (StepRunner.execute).

A budget is spent when what was spent reaches its limit: a step does not start on a spent
budget, and a run is stopped when its spending reaches it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from prodigyd.workflow.model import Budget

Scope = Literal["workflow", "agent", "step"]
Money = Literal["cost_usd", "tokens"]


@dataclass(frozen=True)
class Spend:
    """What was spent: dollars, tokens; `estimated` while a dollar figure is an estimate."""

    cost_usd: float = 0.0
    tokens: int = 0
    estimated: bool = False

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.cost_usd + other.cost_usd,
            self.tokens + other.tokens,
            self.estimated or other.estimated,
        )


#: The command-line flag that sets each field of the job's budget (`run`, `resume`, ...).
FLAGS = {"cost_usd": "--budget-usd", "tokens": "--budget-tokens", "time": "--budget-time"}


def spent_by(reason: str, scope: Scope) -> bool:
    """Whether a budget error (Meter.exceeded's words) is that of a `scope` budget."""
    return f"({scope} budget;" in reason


@dataclass(eq=False)
class Meter:
    """One budget's account. `spent` and `seconds` are what earlier runs of the session
    used (a job's budget spans its resumes)."""

    scope: Scope
    budget: Budget
    spent: Spend = Spend()
    seconds: float = 0.0
    session_id: str = ""  # names the session in the hint of the job's budget
    clock: Callable[[], float] = time.monotonic
    _live: dict[Charge, Spend] = field(default_factory=dict)
    _started: float = 0.0

    def __post_init__(self) -> None:
        self._started = self.clock()

    def total(self) -> Spend:
        """Spent so far: finished runs plus the running ones' latest figures."""
        total = self.spent
        for spend in self._live.values():
            total += spend
        return total

    def elapsed(self) -> float:
        return self.seconds + self.clock() - self._started

    def remaining_seconds(self) -> float | None:
        limit = self.budget.time
        return None if limit is None else max(0.0, limit - self.elapsed())

    def remaining_usd(self) -> float | None:
        limit = self.budget.cost_usd
        return None if limit is None else max(0.0, limit - self.total().cost_usd)

    def exceeded(self, *, money: bool = True, time: bool = True) -> str | None:
        """Why this budget is spent ("budget exceeded: $0.62 of $0.50 (workflow budget)"),
        or None. `money`: check dollars and tokens; `time`: wall time."""
        budget, total = self.budget, self.total()
        what: str | None = None
        if money and budget.cost_usd is not None and total.cost_usd >= budget.cost_usd:
            estimate = " (estimated)" if total.estimated else ""
            what, field_ = f"{usd(total.cost_usd)}{estimate} of {usd(budget.cost_usd)}", "cost_usd"
        elif money and budget.tokens is not None and total.tokens >= budget.tokens:
            what, field_ = f"{total.tokens:,} tokens of {budget.tokens:,}", "tokens"
        elif time and budget.time is not None and self.elapsed() >= budget.time:
            what, field_ = f"{seconds(self.elapsed())} of {seconds(budget.time)}", "time"
        if what is None:
            return None
        return f"budget exceeded: {what} ({self.scope} budget; {self._hint(field_)})"

    def _hint(self, field_: str) -> str:
        if self.scope == "workflow":
            return (
                f"resume with a larger one: prodigyctl resume {self.session_id} {FLAGS[field_]} N"
            )
        if self.scope == "agent":
            return (
                f"the item is in the DLQ: prodigyctl dlq retry {self.session_id} runs it again "
                "with this budget anew; raise it in the workflow for more"
            )
        return (
            f"prodigyctl resume {self.session_id} runs the step again with this budget anew; "
            "raise it in the workflow (then resume --force) if it needs more"
        )

    def _update(self, charge: Charge, spend: Spend) -> None:
        self._live[charge] = spend
        reason = self.exceeded(time=False)
        if reason is not None:
            for running in list(self._live):
                running.trip(reason)

    def _settle(self, charge: Charge) -> None:
        self.spent += self._live.pop(charge, Spend())


@dataclass(frozen=True)
class Ledger:
    """The meters a step answers to, innermost first (its own, its agent's, the job's)."""

    meters: tuple[Meter, ...] = ()

    def plus(self, meter: Meter | None) -> Ledger:
        """This ledger with `meter` innermost (unchanged for None)."""
        return self if meter is None else Ledger((meter, *self.meters))

    def exceeded(self, *, money: bool = True) -> str | None:
        """The first spent budget's reason, innermost first; None when none is spent."""
        for meter in self.meters:
            reason = meter.exceeded(money=money)
            if reason is not None:
                return reason
        return None

    def remaining_seconds(self) -> float | None:
        return _least(meter.remaining_seconds() for meter in self.meters)

    def remaining_usd(self) -> float | None:
        return _least(meter.remaining_usd() for meter in self.meters)

    def charge(self, on_exceeded: Callable[[str], None]) -> Charge:
        """A new run's line in every meter; `on_exceeded(reason)` is called (once) when a
        meter it charges is spent, by its own spending or another run's."""
        return Charge(self.meters, on_exceeded)


class Charge:
    """One Claude run's spending, kept live in each meter of its ledger."""

    def __init__(self, meters: tuple[Meter, ...], on_exceeded: Callable[[str], None]) -> None:
        self.meters = meters
        self.on_exceeded = on_exceeded
        self.reason: str | None = None  # set once a meter it charges is spent

    def update(self, spend: Spend) -> None:
        """This run's spending so far (replaces the last figure; it never adds up)."""
        for meter in self.meters:
            meter._update(self, spend)

    def trip(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self.on_exceeded(reason)

    def close(self) -> None:
        """The run is over: its last figure becomes part of what each meter spent."""
        for meter in self.meters:
            meter._settle(self)


def _least(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return min(known) if known else None


def usd(amount: float) -> str:
    """Dollars as people write them: `$0.62`, `$5.00`, small amounts to the cent's 100th."""
    whole, cents = f"{amount:.4f}".split(".")
    return f"${whole}.{cents.rstrip('0').ljust(2, '0')}"


def seconds(value: float) -> str:
    """Wall time for a message: `45s`, `12m 5s`, `1h 3m`."""
    total = int(value)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{value:.1f}s" if value < 10 else f"{secs}s"
