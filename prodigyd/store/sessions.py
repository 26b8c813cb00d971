"""Session records: one JSON file per session under `sessions/`.

The record is what `prodigyctl sessions ls|show` prints and what `resume` and `merge` start
from. It is rewritten atomically on every status change (a handful of times per run), never
per step: per-step progress lives in the checkpoint.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from prodigyd import paths
from prodigyd.errors import NotFound, StoreError
from prodigyd.store.atomic import read_json, write_json_atomic
from prodigyd.store.ids import check_id


class Status(StrEnum):
    RUNNING = "running"
    AWAITING_MERGE = "awaiting_merge"  # succeeded; waiting for `prodigyctl merge`
    COMPLETED = "completed"  # succeeded and merged (or had nothing to merge)
    FAILED = "failed"  # a step failed; worktree kept, resumable
    INTERRUPTED = "interrupted"  # cancelled by Ctrl-C or a daemon stop; resumable
    CANCELLED = "cancelled"  # cancelled for good

    @property
    def resumable(self) -> bool:
        return self in (Status.FAILED, Status.INTERRUPTED)

    @property
    def finished(self) -> bool:
        return self is not Status.RUNNING


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SessionRecord(BaseModel):
    """Everything needed to show, resume or merge a session."""

    id: str
    workflow: str  # absolute path of the workflow file
    workflow_name: str
    workflow_sha256: str
    status: Status = Status.RUNNING
    started_at: str = Field(default_factory=now_iso)
    updated_at: str = Field(default_factory=now_iso)
    completed_at: str | None = None
    repo: str  # the user's repository root
    repo_id: str
    original_branch: str
    worktree: str
    branch: str
    cwd: str
    args: list[str] = []
    profile: str | None = None
    merge_policy: str = "ask"  # auto | ask | never
    strict: bool = False
    total_steps: int = 0
    completed_steps: int = 0
    current_step: int | None = None
    error: str | None = None
    merged: bool = False
    merge_commit: str | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    warnings: list[str] = []  # from loading the workflow (unknown keys, deprecations)

    def summary(self) -> dict[str, Any]:
        """The `sessions ls --json` shape: stable keys scripts can rely on."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "workflow_name": self.workflow_name,
            "status": self.status.value,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
            "repo": self.repo,
            "branch": self.original_branch,
            "steps": f"{self.completed_steps}/{self.total_steps}",
            "error": self.error,
        }


def save(record: SessionRecord) -> None:
    record.updated_at = now_iso()
    write_json_atomic(paths.session_file(record.id), record.model_dump(mode="json"))


def load(session_id: str) -> SessionRecord:
    check_id(session_id)
    path = paths.session_file(session_id)
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise NotFound(
            f"no session {session_id!r}", hint="`prodigyctl sessions ls` lists sessions"
        ) from None
    try:
        return SessionRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise StoreError(f"session file {path} is invalid: {field}: {first['msg']}") from exc


def list_all() -> list[SessionRecord]:
    """Every readable session, newest first. Unreadable files are skipped, not fatal."""
    folder = paths.sessions_dir()
    if not folder.is_dir():
        return []
    records = []
    for name in os.listdir(folder):
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            records.append(load(name[: -len(".json")]))
        except (StoreError, NotFound):
            continue
    records.sort(key=lambda r: r.started_at, reverse=True)
    return records
