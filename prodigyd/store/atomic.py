"""Atomic, durable file writes and tolerant reads.

A write goes to a temp file in the same folder, is fsync'd, renamed over the target and the
folder is fsync'd, so a crash leaves either the old file or the new one, never a torn mix.
A file that will not parse is never overwritten: it is renamed `*.corrupt-<stamp>` and the
caller gets a StoreError naming both paths. A write that does not fit (full disk or quota)
raises NoSpace and leaves nothing behind: no temp file, no torn line at the end of a log.
"""

from __future__ import annotations

import contextlib
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
    with space.guard(path):
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    ensure_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with space.guard(path):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(path.parent)


def append_all(fd: int, data: bytes, path: Path) -> None:
    """Append `data` to the O_APPEND file `fd` (named `path`) whole, or not at all: a write
    that fails half way (no space) is cut off again, so the next append starts a clean line
    instead of gluing itself to a torn one (which would lose both)."""
    size = os.fstat(fd).st_size
    with space.guard(path):
        try:
            _write_all(fd, data)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)  # frees what the torn write took
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


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
        quarantine = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, quarantine)
        raise StoreError(
            f"store file {path} is corrupt ({exc}); moved aside to {quarantine}",
            hint="the file was kept for inspection; the record it held is unavailable",
        ) from exc


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
