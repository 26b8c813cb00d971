"""What one workflow file may cost to read, enforced while the YAML is composed.

A workflow file is untrusted input to a long-lived daemon: a file in `.prodigy/workflows/`
is read on every hook event, and one "billion laughs" file (aliases of aliases, a few
hundred bytes that expand to billions of nodes) would take all its memory and time. YAML's
cost is in its node graph, so the limits are counted there, before any Python object is
built: exact, cheap, and with the mark of the node that crossed them.

The limits (docs/workflows.md, "Limits"):

* the file: at most `MAX_FILE_BYTES`;
* nesting: at most `MAX_DEPTH` levels of lists and mappings, counted with aliases expanded
  (deeper nesting is no workflow and would exhaust the parser's recursion);
* aliases: at most `MAX_ALIASES` uses of `*name`, adding at most `MAX_ALIAS_NODES` nodes when
  every alias is expanded; an alias inside the node it names (a loop) is refused;
* time: reading stops after `LOAD_SECONDS`, a backstop for slow inputs nobody foresaw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent

# Re-exported: the readers of workflows find it here with the other limits.
from prodigyd.workflow import MAX_FILE_BYTES as MAX_FILE_BYTES

MAX_DEPTH = 100
MAX_ALIASES = 10_000
MAX_ALIAS_NODES = 100_000
LOAD_SECONDS = 30.0


class LimitExceeded(yaml.MarkedYAMLError):
    """The file crosses one of the limits above, at `problem_mark`."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class Deadline:
    """When reading must stop; checked at every node, so a thread gives up by itself."""

    def __init__(self, seconds: float = LOAD_SECONDS) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    @property
    def problem(self) -> str:
        return (
            f"reading the workflow took longer than {self.seconds:g} s: "
            "it is too large or too complex (stopped here)"
        )

    def expired(self) -> bool:
        return time.monotonic() > self.at

    def check(self, mark: Any) -> None:
        if self.expired():
            raise LimitExceeded(self.problem, mark)


class BoundedComposer(Composer):
    """PyYAML's composer, counting nesting and alias expansion as it goes.

    Every anchored node's expanded size (nodes, aliases inside it counted in full) and
    height are recorded when it is complete, so each later alias adds exactly what it
    would expand to. An alias to a node still open is a loop: refused.
    """

    # A composer is a mixin: the loader it is mixed into (yaml.SafeLoader) brings the
    # parser's event methods it calls, which Composer does not declare.
    peek_event: Callable[[], Any]
    check_event: Callable[..., bool]

    def count_from_here(self, deadline: Deadline | None) -> None:
        """Start counting; SafeLoader's __init__ calls Composer.__init__ by name, not ours."""
        self.deadline = deadline
        self._depth = 0  # lists and mappings (and the scalar) open at this point
        self._deepest = 0  # the deepest level reached, aliases expanded
        self._nodes = 0  # nodes so far, aliases expanded
        self._aliases = 0
        self._alias_nodes = 0
        self._open: set[str] = set()  # anchors whose nodes are being composed
        self._sizes: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if self.check_event(AliasEvent):
            self._alias(event)
            return super().compose_node(parent, index)
        depth = self._depth + 1
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        if self.deadline is not None:
            self.deadline.check(event.start_mark)
        anchor, nodes, deepest = event.anchor, self._nodes, self._deepest
        if anchor is not None:
            self._open.add(anchor)
        self._depth, self._deepest = depth, depth
        self._nodes += 1
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._open.discard(anchor)
            self._sizes[anchor] = (self._nodes - nodes, self._deepest - depth + 1)
        self._depth, self._deepest = depth - 1, max(deepest, self._deepest)
        return node

    def _alias(self, event: Any) -> None:
        name = event.anchor
        if name in self._open:
            raise LimitExceeded(
                f"alias *{name} is inside the node it names (a loop)", event.start_mark
            )
        if name not in self._sizes:
            return  # undefined: PyYAML's own error says so
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise LimitExceeded(f"more than {MAX_ALIASES:,} aliases", event.start_mark)
        nodes, height = self._sizes[name]
        self._alias_nodes += nodes
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise LimitExceeded(
                f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                f"(*{name} alone to {nodes:,})",
                event.start_mark,
            )
        reach = self._depth + height
        if reach > MAX_DEPTH:
            raise LimitExceeded(
                f"alias *{name} nests the document more than {MAX_DEPTH} levels deep",
                event.start_mark,
            )
        self._nodes += nodes
        self._deepest = max(self._deepest, reach)


def oversize_at(data: bytes) -> tuple[int, int] | None:
    """None when `data` is within MAX_FILE_BYTES; else the 1-based line and column of the
    first character past the limit, so the error points somewhere in the file."""
    if len(data) <= MAX_FILE_BYTES:
        return None
    kept = data[:MAX_FILE_BYTES]
    start = kept.rfind(b"\n") + 1
    column = len(kept[start:].decode("utf-8", errors="replace")) + 1
    return kept.count(b"\n") + 1, column
