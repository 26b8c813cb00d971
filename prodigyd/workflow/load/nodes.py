"""The data read from a workflow file, with where each part was written.

pydantic only knows paths into Python objects; errors must name a file, line and column.
So the YAML (or JSON) is read into these containers, which remember the position of each
mapping, key and list item, and the parsers walk them with an `At` that names the field path
(`commands[2].timeout`) and the line, until each model is validated where its position is
still known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prodigyd.errors import Location

Mark = tuple[int, int]  # 1-based line and column


class Map(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys were written."""

    def __init__(self, mark: Mark | None) -> None:
        super().__init__()
        self.mark = mark
        self.key_marks: dict[Any, Mark] = {}


class Seq(list[Any]):
    """A YAML sequence that remembers where it and each of its items were written."""

    def __init__(self, mark: Mark | None) -> None:
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []


def unmarked(value: object) -> object:
    """Plain data as containers without positions (JSON the YAML reading could not mark)."""
    if isinstance(value, dict):
        mapping = Map(None)
        mapping.update((key, unmarked(item)) for key, item in value.items())
        return mapping
    if isinstance(value, list):
        seq = Seq(None)
        seq.extend(unmarked(item) for item in value)
        return seq
    return value


def plain(value: object) -> object:
    """Positions stripped: for values stored as data (foreach items)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


@dataclass(frozen=True)
class At:
    """Where a node sits: its field path for errors, its mark, and how warnings name it."""

    path: str
    mark: Mark | None = None
    label: str = ""
    depth: int = 0

    @property
    def line(self) -> int | None:
        return self.mark[0] if self.mark else None

    @property
    def name(self) -> str:
        return self.label or self.path or "the workflow"

    def key(self, node: object, key: object) -> At:
        mark = node.key_marks.get(key) if isinstance(node, Map) else None
        path = f"{self.path}.{key}" if self.path else str(key)
        return At(path, mark or self.mark, depth=self.depth + 1)

    def index(self, node: object, index: int) -> At:
        marks = node.item_marks if isinstance(node, Seq) else []
        mark = marks[index] if index < len(marks) else None
        return At(f"{self.path}[{index}]", mark or self.mark, depth=self.depth + 1)

    def location(self, source: str) -> Location:
        column = self.mark[1] if self.mark else None
        return Location(source, self.line, column, self.path or None)
