"""Running out of disk space: one error for every write to the store, and what it hit.

A full disk (ENOSPC) or a full quota (EDQUOT) surfaces in many shapes: an OSError from a
write, fsync or mkdir, SQLite's SQLITE_FULL (or an I/O error when it cannot even size its
shared-memory file), and the stderr of a git child. Each is turned into one `NoSpace` that
names the file and the filesystem it lives on, so the user reads "no space left on
/home" at once instead of an internal error, and the daemon can tell "retry when there is
room" apart from a real bug.

`current()` is the latest such problem, until a write succeeds again (`clear()`): what
`daemon.status` reports and what the daemon's mender (scheduler.py) waits to see go away.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from prodigyd.errors import NoSpace

log = logging.getLogger("prodigyd.space")

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

SQLITE_FULL = 13
SQLITE_IOERR = 10

#: Below this many free bytes an SQLite I/O error is taken for a full disk: SQLite reports
#: a shared-memory file it cannot grow as SQLITE_IOERR_SHMSIZE, not SQLITE_FULL.
NEARLY_FULL_BYTES = 1024 * 1024

#: git (run with LC_ALL=C) says this, after the path it could not write when it knows it.
GIT_NO_SPACE = re.compile(r"(?:'([^'\n]+)'[^\n]*)?No space left on device|Disk quota exceeded")

HINT = "free some space there, then try again"

_current: NoSpace | None = None


def current() -> NoSpace | None:
    """The latest no-space problem not yet followed by a successful write."""
    return _current


def clear() -> None:
    global _current
    if _current is not None:
        log.info("the store is writable again (after: %s)", _current.message)
    _current = None


def mount_of(path: Path | str) -> Path:
    """The mount point of the filesystem `path` is on (or would be on)."""
    here = Path(path).absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here


def no_space(path: Path | str, *, details: str | None = None) -> NoSpace:
    """The error for a write to `path` that did not fit; remembered as `current()`."""
    global _current
    mount = mount_of(path)
    err = NoSpace(
        f"no space left on {mount} (could not write {path})",
        path=str(path),
        hint=HINT,
        details=details,
    )
    if _current is None:  # once per outage: the log may well be on the same full disk
        log.error("%s", err.message)
    _current = err
    return err


def is_no_space(exc: BaseException, path: Path | str | None = None) -> bool:
    """Whether `exc` means the disk (or quota) holding `path` is full."""
    if isinstance(exc, NoSpace):
        return True
    if isinstance(exc, OSError):
        return exc.errno in NO_SPACE_ERRNOS
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return "disk is full" in str(exc)
        if code & 0xFF == SQLITE_FULL:
            return True
        return code & 0xFF == SQLITE_IOERR and path is not None and nearly_full(path)
    return False


def nearly_full(path: Path | str) -> bool:
    try:
        stat = os.statvfs(mount_of(path))
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < NEARLY_FULL_BYTES


@contextlib.contextmanager
def guard(path: Path | str) -> Iterator[None]:
    """Turn a no-space failure of the block (writing `path`) into `NoSpace`."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if is_no_space(exc, path):
            raise no_space(path) from exc
        raise


def in_git_output(stderr: str, cwd: Path | str) -> Path | None:
    """The path a failed git could not write for lack of space (cwd when it names none), or
    None when git failed for another reason."""
    found = GIT_NO_SPACE.search(stderr)
    if found is None:
        return None
    named = found.group(1)
    return Path(cwd, named) if named else Path(cwd)
