"""Resume locks (reference §5.7): an O_EXCL file naming its holder.

Two `resume` calls for the same session must not run the same steps twice. A lock whose
holder process is gone is stale and is taken over, so a crash never wedges a session.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator

from prodigyd import paths
from prodigyd.errors import Conflict
from prodigyd.store.atomic import ensure_dir
from prodigyd.store.sessions import now_iso


@contextlib.contextmanager
def session_lock(session_id: str) -> Iterator[None]:
    path = ensure_dir(paths.locks_dir()) / f"{session_id}.lock"
    _acquire(path, session_id)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _acquire(path: os.PathLike[str], session_id: str) -> None:
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
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None and _alive(holder.get("process_id")):
                raise Conflict(
                    f"session {session_id} is already being run or resumed "
                    f"(lock held by PID {holder.get('process_id')} on {holder.get('hostname')})",
                    hint=f"wait for it to finish, or remove {path} if that process is gone",
                ) from None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # stale: its holder died
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        return
    raise Conflict(f"could not take the lock {path}")


def _holder(path: os.PathLike[str]) -> dict | None:
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read() or b"{}")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
