"""Atomic, durable file writes and tolerant reads.

A write goes to a temp file in the same folder, is fsync'd, renamed over the target and the
folder is fsync'd, so a crash leaves either the old file or the new one, never a torn mix.
A file that will not parse is never overwritten: it is renamed `*.corrupt-<time>.<ns>-<pid>`
and the caller gets a StoreError naming both paths. A write that does not fit (full disk or
quota) raises NoSpace and leaves nothing behind: no temp file, no torn line at the end of a
log.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from pathlib import Path
from typing import Any

from prodigyd.errors import StoreError
from prodigyd.store import space

#: Store folders are private to the user: they hold workflow outputs and environment snapshots.
DIR_MODE = 0o700


def ensure_dir(path: Path) -> Path:
    """`path` as a folder, every folder made on the way private: `mkdir(parents=True)`
    gives the parents the umask's mode (0755), not `mode`, and the first folder made is
    often the store's root (`~/.prodigy` made as the parent of `~/.prodigy/logs`)."""
    if path.is_dir():
        return path
    missing = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    with space.guard(path):
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                folder.mkdir(mode=DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path))
    return path


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = 0o600, durable: bool = True) -> None:
    """Replace `path` whole. Not `durable`: readers never see it torn, but a power loss may
    undo it (no fsync: for a file that means nothing after a reboot, such as a pid file)."""
    ensure_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with space.guard(path):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            try:
                _write_all(fd, data)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        if durable:
            fsync_dir(path.parent)


def append_all(fd: int, data: bytes, path: Path) -> None:
    """Append `data` to the O_APPEND file `fd` (named `path`) whole, or not at all: a write
    that fails half way (no space) is cut off again, so the next append starts a clean line
    instead of gluing itself to a torn one (which would lose both)."""
    written = 0  # counted, not an fstat per append: this runs for every event line
    with space.guard(path):
        try:
            view = memoryview(data)
            while view:
                count = os.write(fd, view)
                written += count
                view = view[count:]
        except OSError:
            if written:  # the daemon is the file's only writer: its end is our torn line
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, os.fstat(fd).st_size - written)
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_json_atomic(path: Path, obj: Any, *, durable: bool = True) -> None:
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    write_bytes_atomic(path, data, durable=durable)


def read_json(path: Path) -> Any:
    """Read a store file; quarantine it (never overwrite) when it is not valid JSON."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return json.loads(raw)
    except ValueError as exc:
        quarantine = move_aside(path)
        raise StoreError(
            f"store file {path} is corrupt ({exc}); moved aside to {quarantine}",
            hint="the file was kept for inspection; the record it held is unavailable",
        ) from exc


def create_unique(folder: Path, prefix: str, suffix: str) -> tuple[Path, int]:
    """A new file `<prefix>-<local time>.<ns>-<pid>[-n]<suffix>`, created (O_EXCL) and open
    for writing: two processes, or one twice in the same second, never share a name (a
    one-second stamp made 74 crashes leave 60 logs)."""
    ensure_dir(folder)
    now = time.time_ns()
    stamp = f"{time.strftime('%Y%m%d_%H%M%S', time.localtime(now // 10**9))}.{now % 10**9:09d}"
    base = f"{prefix}-{stamp}-{os.getpid()}"
    for n in range(1000):
        path = folder / f"{base}{f'-{n}' if n else ''}{suffix}"
        try:
            return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for {base}{suffix} in {folder}")


def write_unique(folder: Path, prefix: str, data: bytes) -> Path:
    """`data` as a new file named by `create_unique`, synced with its folder entry: a copy
    or a note that must outlive a crash right after it was made."""
    path, fd = create_unique(folder, prefix, "")
    try:
        append_all(fd, data, path)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(folder)
    return path


def move_aside(path: Path) -> Path:
    """Rename a corrupt store file to `<name>.corrupt-<time>.<ns>-<pid>` (never deleted):
    an exclusive new name, so a file moved aside earlier the same second is kept too."""
    aside, fd = create_unique(path.parent, f"{path.name}.corrupt", "")
    os.close(fd)
    os.replace(path, aside)
    return aside


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
