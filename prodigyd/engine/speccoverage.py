"""Spec coverage: the share of a spec's requirements the code refers to (the `spec`
validator; the original's was a stub that always answered 85).

A requirement line is a line of the spec holding a requirement id: by default a word like
`REQ-1`, `AUTH-12` or `FR-3.1` (capital letters and digits, a dash, a number), or what the
validator's `pattern` matches (its first group, when it has one). An id on several lines
(a table of contents, say) is one requirement, named by the first line that names it
alone (else its first line): that line is the gap shown when it is not referenced. A
requirement is referenced when its id occurs, as a whole word, in a file of the worktree
other than the spec (tracked or new, ignored files aside), under the validator's `paths`
when it has them: a comment `# REQ-1` or a test docstring that names it counts, a test
called `test_req_1` does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from prodigyd.engine.score import Score, ScoreError
from prodigyd.files import failure_reason, read_small_text
from prodigyd.git.grep import words_found

#: A requirement id when the validator gives no `pattern`.
DEFAULT_REQUIREMENT_ID = r"\b[A-Z][A-Z0-9]*-\d+(?:\.\d+)*\b"


@dataclass(frozen=True)
class Requirement:
    id: str
    line: str  # the spec's line, stripped: what a gap shows


def requirements(text: str, pattern: str = DEFAULT_REQUIREMENT_ID) -> list[Requirement]:
    """The spec's requirements, in the order of their first line."""
    regex = re.compile(pattern)
    found: dict[str, Requirement] = {}
    alone: set[str] = set()  # ids named by a line that holds no other id
    for line in text.splitlines():
        idents = [m.group(1) if regex.groups else m.group(0) for m in regex.finditer(line)]
        idents = [ident for ident in idents if ident]
        if not idents:
            continue
        ident = idents[0]
        single = len(set(idents)) == 1
        if ident not in found or (single and ident not in alone):
            found[ident] = Requirement(ident, line.strip())
            if single:
                alone.add(ident)
        for other in idents[1:]:
            found.setdefault(other, Requirement(other, line.strip()))
    return list(found.values())


async def spec_coverage(
    worktree: Path, cwd: Path, spec: Path, *, pattern: str, paths: tuple[str, ...]
) -> Score:
    """The share of `spec`'s requirements referenced in the worktree (spec excluded); the
    gaps are the lines of those that are not."""
    shown = spec.relative_to(worktree).as_posix()
    try:
        text = read_small_text(spec)
    except OSError as exc:
        raise ScoreError(f"cannot read the spec {shown}: {failure_reason(exc)}") from None
    wanted = requirements(text, pattern)
    if not wanted:
        raise ScoreError(
            f"the spec {shown} has no requirement lines (lines with an id matching {pattern})",
            hint="give each requirement an id such as REQ-1, or set the validator's pattern:",
        )
    found = await words_found(cwd, (r.id for r in wanted), paths=paths, exclude=(shown,))
    gaps = [r.line for r in wanted if r.id not in found]
    covered = len(wanted) - len(gaps)
    summary = f"{shown}: {covered} of {len(wanted)} requirements referenced"
    return Score(100.0 * covered / len(wanted), gaps, summary)
