"""The one error type users see.

Every expected failure (bad YAML, a missing binary, a refused merge) is raised as a
`ProdigyError`: a one-line message, an optional hint, an optional location, and a stable
code (prodigyd/errorcodes.py: its class's, or a more specific one given where it is raised).
The daemon turns it into a JSON-RPC error and the client prints it; neither ever shows a
traceback for one. Anything that is *not* a ProdigyError is a bug and is logged with its
traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from prodigyd import errorcodes


@dataclass
class Location:
    """Where in a user's file a problem is: enough to put a caret under it."""

    file: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    field: str | None = None  # dotted path, e.g. "commands[2].timeout"

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        where = ":".join(parts)
        return f"{where} ({self.field})" if self.field else where

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Location:
        """A location as `to_dict` gave it (in a daemon's error): the client shows it as
        the daemon's own errors are shown, in one format."""
        return Location(
            str(data.get("file")), data.get("line"), data.get("column"), data.get("field")
        )


#: The location fields of a problem that has none.
_NOWHERE = dict.fromkeys(("file", "line", "column", "field"))


class ProdigyError(Exception):
    """An expected failure with a message meant for the user."""

    #: a short machine-readable kind, stable across versions (shows up in --json output)
    kind = "error"
    #: the code of every error of this class raised without a more specific `code=`
    code = errorcodes.ERROR

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        location: Location | None = None,
        details: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.hint = hint
        self.location = location
        self.details = details  # multi-line context (a source excerpt, command output)

    def render(self) -> str:
        """The full human text: location, message, details and hint."""
        head = f"{self.location}: {self.message}" if self.location else self.message
        parts = [head]
        if self.details:
            parts.append(self.details.rstrip("\n"))
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)

    def problems(self) -> list[dict[str, Any]]:
        """Every problem this error stands for (a workflow file's may be several)."""
        return [self.problem()]

    def problem(self) -> dict[str, Any]:
        """This problem on its own: where (file, line, column, field), what, code, hint."""
        where = self.location.to_dict() if self.location else _NOWHERE
        return {**where, "message": self.message, "code": self.code, "hint": self.hint}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "kind": self.kind, "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        if self.details:
            data["details"] = self.details
        if self.location:
            data["location"] = self.location.to_dict()
        return data


class WorkflowError(ProdigyError):
    """The workflow file cannot be read, parsed or validated.

    The loader reports every problem it found at once: this one (the first in the file)
    is the error, and `others` the rest, each with its own location and code, so a tool
    gets them one by one (`problems`), not only as the text listing them in `details`."""

    kind = "workflow"
    code = errorcodes.WORKFLOW

    def __init__(
        self, message: str, *, others: Sequence[WorkflowError] = (), **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.others = tuple(others)

    def problems(self) -> list[dict[str, Any]]:
        return [error.problem() for error in (self, *self.others)]


class GitError(ProdigyError):
    """A git operation failed or the repository is in a state we cannot work with."""

    kind = "git"
    code = errorcodes.GIT


class MergeRefused(GitError):
    """The final merge would touch the user's uncommitted work, or conflicts."""

    kind = "merge_refused"
    code = errorcodes.MERGE_REFUSED


class StoreError(ProdigyError):
    """A store file is missing, locked or unreadable."""

    kind = "store"
    code = errorcodes.STORE


class NoSpace(StoreError):
    """A file prodigy must write does not fit: the disk (or the user's quota) is full.

    Its own kind (and JSON-RPC code) so a client can say so at once instead of "internal
    error"; `path` is what could not be written, the message names its filesystem.
    """

    kind = "no_space"
    code = errorcodes.NO_SPACE

    def __init__(self, message: str, *, path: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.path = path

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path}


class NotFound(ProdigyError):
    """A session, job or file the caller named does not exist."""

    kind = "not_found"
    code = errorcodes.NOT_FOUND


class Conflict(ProdigyError):
    """The request clashes with the current state (a lock is held, already running)."""

    kind = "conflict"
    code = errorcodes.CONFLICT


class ShuttingDown(ProdigyError):
    """The daemon is stopping and accepts no new work."""

    kind = "shutting_down"
    code = errorcodes.SHUTTING_DOWN
