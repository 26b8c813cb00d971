"""Which of some words a worktree's files mention: `git grep`, for the `spec` validator.

git grep reads the worktree as it is (uncommitted edits included), skips binary and
ignored files, and searches untracked files too with `--untracked`: an attempt that wrote
a new test file but did not commit it yet still counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prodigyd.git.cli import git, raise_failure


async def words_found(
    cwd: Path, words: Iterable[str], *, paths: Iterable[str] = (), exclude: Iterable[str] = ()
) -> set[str]:
    """The `words` that occur as whole words in files under `paths` (default: all of
    `cwd`), except the `exclude` paths (relative to the worktree's top)."""
    wanted = sorted(set(words))
    if not wanted:
        return set()
    patterns = [arg for word in wanted for arg in ("-e", word)]
    pathspecs = [*(paths or ["."]), *(f":(top,exclude){path}" for path in exclude)]
    done = await git(
        cwd,
        "grep",
        "--untracked",
        "--no-color",
        "-I",  # no binary files
        "-h",  # no file names: only the matches
        "-o",
        "-F",
        "-w",
        *patterns,
        "--",
        *pathspecs,
        check=False,
    )
    if done.returncode not in (0, 1):  # 1: nothing found
        raise_failure(done, cwd)
    return set(done.stdout.splitlines()) & set(wanted)
