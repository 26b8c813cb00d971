"""The user docs (README.md and docs/*.md) split into fenced code blocks and prose, for the
tests that keep what they show true (test_docs_workflows.py, test_docs_commands.py).

A fence is a line starting with ``` at column 0, as prodigyctl/manpages.py reads it. Its
info string is the language, then, for some blocks, a marker the tests read (each test
module's docstring says which): GitHub and the man pages show only the language.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))


@dataclass(frozen=True)
class Block:
    """One fenced code block; `line` is the opening fence's (1-based)."""

    doc: str  # relative to the repository: "docs/workflows.md"
    line: int
    language: str  # the info string's first word: "yaml", "sh", or ""
    marker: str  # the rest of the info string: "step-fields", "error: ...", or ""
    lines: tuple[str, ...]  # between the fences

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


@dataclass(frozen=True)
class Doc:
    name: str
    blocks: tuple[Block, ...]
    prose: str  # the text with every fenced line blanked, so line numbers stay


def read(path: Path) -> Doc:
    name = str(path.relative_to(ROOT))
    lines = path.read_text(encoding="utf-8").splitlines()
    prose = list(lines)
    blocks = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{name}:{i + 1}: a code block is never closed"
        language, _, marker = lines[i][3:].strip().partition(" ")
        blocks.append(Block(name, i + 1, language, marker.strip(), tuple(lines[i + 1 : end])))
        prose[i : end + 1] = [""] * (end + 1 - i)
        i = end + 1
    return Doc(name, tuple(blocks), "\n".join(prose))


def docs() -> list[Doc]:
    return [read(path) for path in DOCS]
