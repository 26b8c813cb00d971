"""Resume locks (reference §5.7): an O_EXCL file naming its holder.

Two `resume` calls for the same session must not run the same steps twice. A lock whose
holder process is gone is stale and is taken over, so a crash never wedges a session. The
daemon also clears every lock when it starts (`clear_all`), since the session of a lock a
`kill -9` left behind may never run again: only the daemon that owns a store takes its
locks, and the one starting owns it (its instance lock), so whoever took them has exited,
even when the process id they name has since been given to another process (a reboot).

Every lock is also held in this process (`_held`), which is what a second holder inside
the daemon meets first. A session's first run takes only that (`file=False`): one daemon
owns a store (its instance lock), so no other process runs its sessions, and the file
would cost each job's start two writes to the disk (~0.3 ms of its ~7 ms to the first
step). A resume and a merge, which the reference's lock is for, take the file too.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
from pathlib import Path

from prodigyd import paths
from prodigyd.clock import now_iso
from prodigyd.errors import Conflict
from prodigyd.files import read_regular
from prodigyd.store import space
from prodigyd.store.atomic import ensure_dir

#: A holder's record is ~120 bytes; a larger file is no lock of ours.
HOLDER_BYTES = 4096

#: The sessions whose lock this process holds.
_held: set[str] = set()


def held() -> frozenset[str]:
    """The sessions this process is running (or merging): a job it has begun to start is
    still `queued` in the journal until its worktree is ready (Session.run)."""
    return frozenset(_held)


class SessionLock:
    """Held from the moment a run or resume is accepted until its task ends; `file`: also
    as the lock file other processes see (see the module docstring)."""

    def __init__(self, session_id: str, *, file: bool = True) -> None:
        self.session_id = session_id
        self.path = paths.lock_file(session_id) if file else None
        if session_id in _held:
            raise _conflict(session_id, os.getpid(), socket.gethostname(), self.path)
        if self.path is not None:
            ensure_dir(self.path.parent)
            _acquire(self.path, session_id)
        _held.add(session_id)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            _held.discard(self.session_id)
            if self.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()

    def __enter__(self) -> SessionLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _acquire(path: Path, session_id: str) -> None:
    body = json.dumps(
        {
            "job_id": session_id,
            "process_id": os.getpid(),
            "hostname": socket.gethostname(),
            "acquired_at": now_iso(),
        }
    ).encode()
    for _ in range(2):
        try:
            with space.guard(path):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if not _lock_file(path):
                raise Conflict(
                    f"cannot take the lock of session {session_id}: {path} is not a lock file",
                    hint="move it away or remove it",
                ) from None
            holder = _holder(path)
            if not _stale(holder):
                assert holder is not None
                raise _conflict(
                    session_id, holder.get("process_id"), holder.get("hostname"), path
                ) from None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # stale: its holder died
            continue
        try:
            with space.guard(path), os.fdopen(fd, "wb") as fh:
                fh.write(body)
        except BaseException:
            os.unlink(path)  # an empty lock names no holder: never leave one
            raise
        return
    raise Conflict(f"could not take the lock {path}")


def _conflict(session_id: str, pid: object, host: object, path: Path | None) -> Conflict:
    return Conflict(
        f"session {session_id} is already being run or resumed (lock held by PID {pid} on {host})",
        hint="wait for it to finish"
        + (f", or remove {path} if that process is gone" if path is not None else ""),
    )


def clear_all() -> list[str]:
    """Delete every lock file (at the daemon's start: see the module docstring); returns
    their session ids. What is no lock file (a folder someone made there) is left alone:
    taking that session's lock says so."""
    folder = paths.locks_dir()
    cleared = []
    for path in sorted(folder.glob("*.lock")) if folder.is_dir() else ():
        if _lock_file(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            cleared.append(path.stem)
    return cleared


def _lock_file(path: Path) -> bool:
    """A regular file (or one gone meanwhile: free to take), not a folder or a FIFO."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return True


def _stale(holder: dict | None) -> bool:
    """A lock nobody holds: unreadable, or its process is gone."""
    return holder is None or not _alive(holder.get("process_id"))


def _holder(path: Path) -> dict | None:
    try:
        raw, _ = read_regular(path, limit=HOLDER_BYTES)
        data = json.loads(raw or b"{}")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: object) -> bool:
    """Is `pid` a running process? A zombie (exited, never reaped) counts as dead."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
