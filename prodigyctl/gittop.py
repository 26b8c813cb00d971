"""The top folder of the git repository holding a path, as the client needs it (`init`,
`run --dry-run`, `resume` without an id): one `git rev-parse` (the client does not load
pygit2, to stay fast)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def repository_top(path: str | Path | None = None) -> Path | None:
    """The repository's top folder (symlinks resolved), or None outside a repository."""
    start = Path(path or ".").resolve()
    done = subprocess.run(
        ["git", "-C", str(start), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    return Path(done.stdout.strip()).resolve() if done.returncode == 0 else None
