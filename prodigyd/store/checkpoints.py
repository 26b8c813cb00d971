"""Per-step checkpoints of a sequential phase (reference §5.3 shape).

One file per session, rewritten atomically after every step: the newest state is all resume
needs, and a single rename keeps it crash-safe. Values are masked before they reach disk.
"""

from __future__ import annotations

from typing import Any

from prodigyd import paths
from prodigyd.store.atomic import read_json, write_json_atomic

CHECKPOINT_VERSION = 1


def checkpoint_file(session_id: str) -> Any:
    return paths.checkpoints_dir(session_id) / f"{session_id}.checkpoint.json"


def save(session_id: str, data: dict[str, Any]) -> None:
    write_json_atomic(checkpoint_file(session_id), data)


def load(session_id: str) -> dict[str, Any] | None:
    """The newest checkpoint, or None when the session never completed a step."""
    try:
        data = read_json(checkpoint_file(session_id))
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None
