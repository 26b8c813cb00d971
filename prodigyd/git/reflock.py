"""Writing a ref file as git does (its `.lock` protocol), with inodes made ahead of time.

A pooled slot's start writes two files under git's lock, the session branch's ref and
the slot's HEAD (git/worktree.py, `point_idle_slot`), on the way to the job's first step.
Each lock file was a new inode, and renaming one over HEAD freed the old HEAD's: on this
machine's ext4, with the disk a few milliseconds idle, a new inode costs 0.2-0.5 ms and
freeing one 0.2-0.3 ms, where every other call here costs 5-30 µs. Measured with timing
marks in the daemon (2026-12-04), the two writes took 0.7 ms of a job's start.

So a slot is stocked once a session gives it back (`stock`, in a worker thread: the
pool's release, while nothing waits for it; not a map agent's, which writes no ref)
with two spare files in its own admin folder (`.git/worktrees/<slot>/`, which git
leaves alone and removes with the slot) and a second link to its HEAD. A swap takes
its lock by hard-linking a spare to `<name>.lock`: `link` fails when that name exists,
as the exclusive create git uses does, so git and prodigy still exclude each other; and
the HEAD it replaces is not freed, as its other link holds it until the next `stock`
frees it, off the critical path. Without a spare (a slot not stocked yet, a ref on
another file system) a swap creates its lock, as git does. Nothing here changes what git
reads or writes.

HEAD's spare also holds a data block, written out when it is made (`SPARE_BYTES`): the
swap writes its line over it and cuts the rest off, so renaming the lock over HEAD finds
no block to allocate (ext4's `auto_da_alloc` allocated and flushed one in that rename,
60-190 µs). A branch ref's lock takes a new name, which the rename does not flush, and is
opened without `O_TRUNC`, whose close did (~50 µs); its spare is empty, so a short
session's ref is deleted before its block is ever allocated. Measured 2026-12-04 in an
interleaved A/B (bench/ab.py, 120 jobs a side): submit -> `session_started` 0.14-0.23 ms
sooner; a slot's two swaps took 0.3-0.5 ms, now 0.15-0.25.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from prodigyd import proc

#: Spare inodes in a slot's admin folder: for its next branch ref, and for its HEAD.
REF_SPARE = "prodigy-ref.spare"
HEAD_SPARE = "prodigy-head.spare"
#: The second link to the slot's HEAD, so that replacing HEAD does not free its inode.
HEAD_KEPT = "prodigy-head.kept"
#: What HEAD's spare holds: newlines, a block's worth for any line a swap writes over them.
SPARE_BYTES = 256


def swap(
    path: Path | str, text: str, unchanged: Callable[[], bool], spare: Path | str | None = None
) -> bool:
    """Write a ref file as git does, as a compare-and-swap: take `<name>.lock`
    exclusively (every git that writes this ref takes the same lock), check `unchanged()`
    while holding it, then rename. False, with nothing written, when the lock is taken or
    the ref is no longer what the caller saw. `spare`: an empty file of the same file
    system to take the lock with (see the module docstring). (Paths as strings: each
    Path operation cost more than a call here, twice on the way to a job's first step.)"""
    lock = f"{path}.lock"
    try:
        taken = _take(lock, spare)
    except FileNotFoundError:  # refs/heads/a/b: a branch name with slashes, its folder new
        os.makedirs(os.path.dirname(lock), exist_ok=True)
        taken = _take(lock, spare)
    if taken is None:
        return False
    fd, size = taken
    try:
        try:
            data = text.encode()
            if os.write(fd, data) != len(data):  # a ref is a line: written whole or not
                raise OSError(f"{lock}: short write")
            if size > len(data):  # a spare's newlines past the line
                os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
        if not unchanged():
            os.unlink(lock)
            return False
        os.replace(lock, path)
    except BaseException:
        _unlink(lock)
        raise
    return True


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _take(lock: str, spare: Path | str | None) -> tuple[int, int] | None:
    """The lock file, created exclusively and opened for writing, and its size (HEAD's
    spare's newlines, for the writer to cut: `O_TRUNC` costs a flush); None when it exists."""
    if spare is not None:
        try:
            os.link(spare, lock)
        except FileExistsError:
            return None
        except OSError:
            pass  # no spare (not stocked yet, or used), another file system: create it
        else:
            with contextlib.suppress(OSError):
                os.unlink(spare)
            try:
                fd = os.open(lock, os.O_WRONLY)
            except BaseException:
                _unlink(lock)
                raise
            found = os.fstat(fd)
            if found.st_nlink == 1:
                return fd, found.st_size
            # the spare's name is still there (it could not be removed, or a crash came
            # between the link and the unlink): its next user would write this very file
            os.close(fd)
            _unlink(lock)
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    try:
        os.fchmod(fd, proc.as_user_mode(0o644))  # the user's repository: git's modes
    except BaseException:
        os.close(fd)
        _unlink(lock)
        raise
    return fd, 0


def stock(git_dir: Path) -> None:
    """Give a slot's admin folder its spare inodes and a second link to its HEAD (freeing
    the HEAD kept before). Blocking, a few inodes' worth (0.5-1.5 ms): for a worker thread,
    while the slot waits idle. A failure leaves the slot to be written the ordinary way."""
    with contextlib.suppress(OSError):
        _make_spare(git_dir / REF_SPARE, 0)
        _make_spare(git_dir / HEAD_SPARE, SPARE_BYTES)
        kept = git_dir / HEAD_KEPT
        kept.unlink(missing_ok=True)
        os.link(git_dir / "HEAD", kept)


def _make_spare(spare: Path, size: int) -> None:
    """A file of `size` newlines at `spare` (its block allocated, if any), in place whole
    (made under another name, then renamed); one there already is kept when it is such a
    file of its own (no other link)."""
    with contextlib.suppress(FileNotFoundError):
        found = spare.lstat()
        if stat.S_ISREG(found.st_mode) and found.st_nlink == 1 and found.st_size == size:
            return
    making = spare.with_name(spare.name + ".new")
    fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fchmod(fd, proc.as_user_mode(0o644))
        if size:
            os.write(fd, b"\n" * size)
            # Starts its write-back, which allocates its block now, not in the swap
            # (module docstring), without waiting for the disk as a sync would (with the
            # next job's own syncs waiting behind it: +0.5 ms to back-to-back jobs' ends).
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    os.replace(making, spare)
