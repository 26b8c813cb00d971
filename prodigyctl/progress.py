"""The live progress line of a map phase or a `foreach` step, on a terminal.

Counts come from the events a follower already receives (map: `map_phase_started`, the
`agent_*` events; foreach: `foreach_progress`), so the line needs nothing from the daemon
that `--json` would not show. It is redrawn in place at the bottom of the terminal (`\\r`,
erase line) and the log lines print above it; it is cut to the terminal's width, because a
line that wraps can no longer be redrawn in place. Written by hand rather than with a
progress library: one line of text, and `run --detach` and `--help` import nothing for it.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from typing import IO, Any

from prodigyd.eventtypes import EventType

BAR_WIDTH = 24
ERASE = "\r\x1b[2K"


@dataclass
class Counts:
    """Items of the phase in progress, and when counting began (for the ETA)."""

    label: str
    total: int
    done_before: int = 0  # finished in an earlier run (a resume): not part of the rate
    done: int = 0
    failed: int = 0
    running: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        return self.done_before + self.done + self.failed

    def eta(self, now: float) -> float | None:
        """Seconds left at the rate items finished in this run; None before the first."""
        finished_here = self.done + self.failed
        if not finished_here:
            return None
        rate = finished_here / max(now - self.started, 1e-6)
        return max(self.total - self.finished, 0) / rate

    def line(self, now: float) -> str:
        total = max(self.total, 1)
        filled = round(BAR_WIDTH * min(self.finished, total) / total)
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        parts = [f"{self.label} [{bar}] {self.finished}/{self.total}", f"{self.running} running"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        eta = self.eta(now)
        parts.append(f"ETA {_clock(eta)}" if eta is not None else "ETA --:--")
        return " · ".join(parts)


def _clock(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Tracker:
    """Follows the item counts of the phase in progress from events; None when none runs."""

    def __init__(self) -> None:
        self.current: Counts | None = None
        self._items: dict[str, str] = {}  # a map item's latest state

    def feed(self, event: dict[str, Any]) -> None:
        kind = event.get("event_type")
        if kind == EventType.MAP_PHASE_STARTED:
            total = int(event.get("total_items") or 0)
            pending = int(event.get("pending") or 0)
            self.current, self._items = Counts("map", total, done_before=total - pending), {}
        elif kind == EventType.MAP_PHASE_COMPLETED:
            self.current = None
        elif kind == EventType.FOREACH_PROGRESS:
            self._foreach(event)
        elif self.current is not None and event.get("item_id") is not None:
            state = _AGENT_STATES.get(str(kind))
            if state is not None:
                self._items[str(event["item_id"])] = state
                states = list(self._items.values())
                self.current.done = states.count("done")
                self.current.failed = states.count("failed")
                self.current.running = states.count("running")

    def _foreach(self, event: dict[str, Any]) -> None:
        label = f"foreach {event.get('step')}"
        if self.current is None or self.current.label != label:
            self.current = Counts(label, int(event.get("total") or 0))
        counts = self.current
        counts.done, counts.failed = int(event.get("done") or 0), int(event.get("failed") or 0)
        counts.running = int(event.get("running") or 0)
        if counts.finished >= counts.total:
            self.current = None


#: What an agent event says about its item.
_AGENT_STATES: dict[str, str] = {
    EventType.AGENT_STARTED: "running",
    EventType.AGENT_COMPLETED: "done",
    EventType.AGENT_FAILED: "failed",
    EventType.AGENT_RETRYING: "waiting",
}


class StatusLine:
    """One line kept at the bottom of a terminal, with log lines printed above it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.shown = ""

    def show(self, text: str) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        text = text[: max(width - 1, 10)]
        if text != self.shown:
            self.stream.write(ERASE + text)
            self.stream.flush()
            self.shown = text

    def above(self, text: str) -> None:
        """Print `text` (a log line) above the status line, then the status line again."""
        if self.shown:
            self.stream.write(ERASE)
        self.stream.write(text + "\n")
        if self.shown:
            self.stream.write(self.shown)
        self.stream.flush()

    def clear(self) -> None:
        if self.shown:
            self.stream.write(ERASE)
            self.stream.flush()
            self.shown = ""
