"""Reading a file someone else named (a client's workflow path, a hook's spool entry) on
the daemon's event loop, without letting the name hang or flood it; and opening the store's
JSON Lines files (jsonl.py, store/checkpoints.py), which anyone may have replaced by hand.

A plain `open()` of a FIFO waits for a writer (and the event loop, every client with it);
`/dev/zero` never ends. So the file is opened O_NONBLOCK, checked with fstat on the open
descriptor (no window for a swap between check and read), and read only when it is a
regular file, up to a limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class Unreadable(OSError):
    """Not a regular file (of the required owner), or larger than the limit; the message
    says which, without the path (callers put it where their errors put paths). An OSError,
    so a caller's `except OSError` covers every way a read can fail."""


def read_regular(
    path: Path | str,
    *,
    limit: int,
    follow_links: bool = True,
    owner: int | None = None,
    refuse_larger: bool = True,
) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file and its status. FileNotFoundError and other OSErrors
    (ELOOP for a link when `follow_links` is off, EACCES...) pass through. A file over
    `limit` is refused, or with `refuse_larger=False` read up to one byte past it (for a
    caller that says where the limit is crossed)."""
    fd, info = open_regular(path, follow_links=follow_links)
    try:
        if owner is not None and info.st_uid != owner:
            raise Unreadable(f"owned by uid {info.st_uid}, not by uid {owner}")
        # Sized by fstat, not by the limit: a read of `limit + 1` allocates that much first
        # (20 µs for a workflow's 512 KiB, on every submission). A file that grew since is
        # read on, up to the limit.
        want = min(info.st_size, limit) + 1
        data = _read_up_to(fd, want)
        if len(data) == want <= limit:
            data += _read_up_to(fd, limit + 1 - want)
    finally:
        os.close(fd)
    if len(data) > limit and refuse_larger:
        raise Unreadable(f"larger than {limit} bytes")
    return data, info


def open_regular(
    path: Path | str, flags: int = os.O_RDONLY, *, mode: int = 0o600, follow_links: bool = True
) -> tuple[int, os.stat_result]:
    """A descriptor of the regular file at `path` (opened with `flags`, made with `mode`
    under O_CREAT) and its status; Unreadable, closed again, for anything else. O_NONBLOCK
    keeps the open from waiting for a FIFO's other end (it changes nothing for a regular
    file), and the check is fstat's, on the open descriptor: no window for a swap. Open a
    FIFO to write O_RDWR: O_WRONLY without a reader fails with a less telling ENXIO."""
    nofollow = 0 if follow_links else os.O_NOFOLLOW
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC | nofollow, mode)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a regular file (a FIFO, folder, socket or device)")
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def _read_up_to(fd: int, size: int) -> bytes:
    """`size` bytes, fewer only at the end of the file: os.read, without the buffered file
    object `open` would build around the descriptor (~10 µs, twice what reading a ref or
    HEAD costs; the daemon reads a dozen of git's files for each job)."""
    chunks = []
    while size > 0 and (chunk := os.read(fd, size)):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def failure_reason(exc: BaseException, *, with_path: bool = False) -> str:
    """Why a file operation failed, for a message: an OSError's strerror (the path after
    it when `with_path`; callers that name the path themselves leave it out), else the
    exception's own text (Unreadable, ValueError for a NUL in a path...)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if with_path and exc.filename else exc.strerror
    return str(exc)


#: For the small text files a workflow names (env files, secret files, validation results).
SMALL_TEXT_BYTES = 1024 * 1024


def read_small_text(path: Path | str) -> str:
    """A small regular text file (UTF-8, bad bytes replaced): the reads a workflow names
    on the event loop, which must not wait on a FIFO a step left there. Unreadable or
    OSError when it cannot be read."""
    data, _ = read_regular(path, limit=SMALL_TEXT_BYTES)
    return data.decode("utf-8", errors="replace")


def subfolders(folder: Path) -> list[Path]:
    """The folders in `folder`, sorted; none when it cannot be listed (gone, not a folder):
    for a walk over git's admin folders or the pool's, where a missing one means none."""
    try:
        return sorted(entry for entry in folder.iterdir() if entry.is_dir())
    except OSError:
        return []
