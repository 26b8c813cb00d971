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
    """A YAML mapping that remembers where it and each of its keys were written.

    `source` is the file it was read from; a composed workflow (prodigyd.workflow.compose)
    merges mappings of several files, so each key may come from another (`key_sources`).
    """

    def __init__(self, mark: Mark | None, source: str | None = None) -> None:
        super().__init__()
        self.mark = mark
        self.source = source
        self.key_marks: dict[Any, Mark] = {}
        self.key_sources: dict[Any, str | None] = {}

    def put(self, key: Any, value: Any, mark: Mark | None, source: str | None) -> None:
        """Set `key`, with where it was written (another file's key, in a merge)."""
        self[key] = value
        if mark is not None:
            self.key_marks[key] = mark
        self.key_sources[key] = source

    def copy_entry(self, other: Map, key: Any) -> None:
        """`other`'s entry `key`, with its position."""
        self.put(key, other[key], other.key_marks.get(key), other.source_of(key))

    def source_of(self, key: Any) -> str | None:
        return self.key_sources.get(key, self.source)


class Seq(list[Any]):
    """A YAML sequence that remembers where it and each of its items were written (and in
    which file: a composed list of steps holds several files' steps)."""

    def __init__(self, mark: Mark | None, source: str | None = None) -> None:
        super().__init__()
        self.mark = mark
        self.source = source
        self.item_marks: list[Mark] = []
        self.item_sources: list[str | None] = []

    def add(self, item: Any, mark: Mark | None, source: str | None) -> None:
        self.append(item)
        self.item_marks.append(mark or self.mark or (1, 1))
        self.item_sources.append(source)

    def source_of(self, index: int) -> str | None:
        found = self.item_sources[index] if index < len(self.item_sources) else None
        return found or self.source


def unmarked(value: object, source: str | None = None) -> object:
    """Plain data as containers without positions (JSON the YAML reading could not mark)."""
    if isinstance(value, dict):
        mapping = Map(None, source)
        mapping.update((key, unmarked(item, source)) for key, item in value.items())
        return mapping
    if isinstance(value, list):
        seq = Seq(None, source)
        seq.extend(unmarked(item, source) for item in value)
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
    """Where a node sits: its field path for errors, its mark, how warnings name it, and
    the file it was read from (None: the workflow file itself)."""

    path: str
    mark: Mark | None = None
    label: str = ""
    depth: int = 0
    source: str | None = None

    @property
    def line(self) -> int | None:
        return self.mark[0] if self.mark else None

    @property
    def name(self) -> str:
        return self.label or self.path or "the workflow"

    def key(self, node: object, key: object) -> At:
        mark = node.key_marks.get(key) if isinstance(node, Map) else None
        source = node.source_of(key) if isinstance(node, Map) else None
        path = f"{self.path}.{key}" if self.path else str(key)
        return At(path, mark or self.mark, depth=self.depth + 1, source=source or self.source)

    def index(self, node: object, index: int) -> At:
        marks = node.item_marks if isinstance(node, Seq) else []
        mark = marks[index] if index < len(marks) else None
        source = node.source_of(index) if isinstance(node, Seq) else None
        return At(
            f"{self.path}[{index}]",
            mark or self.mark,
            depth=self.depth + 1,
            source=source or self.source,
        )

    @staticmethod
    def root(node: object) -> At:
        """The whole document (or an included file's)."""
        if isinstance(node, Map | Seq):
            return At("", node.mark, source=node.source)
        return At("")

    def location(self, source: str) -> Location:
        """Where this is; `source` names the file when the node does not know its own."""
        column = self.mark[1] if self.mark else None
        return Location(self.source or source, self.line, column, self.path or None)
