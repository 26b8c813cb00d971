"""What a running step can see: the worktree, the variables, the environment, the sinks.

The engine is a library: it never reads a socket or prints. Everything it reports goes
through an `EventSink`, and everything it needs from its host arrives in `EngineSettings`,
so the daemon, a test or a future remote executor can host it alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prodigyd import errorcodes
from prodigyd.engine.budget import Ledger
from prodigyd.engine.env import run_dynamic
from prodigyd.engine.mask import Masker
from prodigyd.errors import ProdigyError
from prodigyd.failure import ErrorKind, FailureReason
from prodigyd.workflow.interpolate import VariableStore, interpolate
from prodigyd.workflow.model import RetrySpec


class EventSink(Protocol):
    """Receives every engine event; the host persists and broadcasts them."""

    def emit(self, event_type: str, /, **fields: Any) -> None:
        """Record one event. Must not raise and must not block."""
        ...


@dataclass(frozen=True)
class EngineSettings:
    """Host-provided knobs; the daemon fills them from its config and the job's environment."""

    claude_bin: str | None = None  # configured path; PRODIGY_CLAUDE_BIN in the job env wins
    claude_skip_permissions: bool = True  # only ever used inside a prodigy worktree
    claude_model: str | None = None
    claude_extra_args: tuple[str, ...] = ()
    claude_log_dir: Path | None = None  # raw stream-json per invocation
    claude_timeout: float | None = None  # seconds, for a claude step without `timeout:`


@dataclass
class CommandResult:
    """The outcome of running one command (a shell script, a claude prompt, a file write)."""

    success: bool
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False
    error: str | None = None  # a one-line reason when not successful
    output: str | None = None  # the value of ${<kind>.output}; defaults to stdout
    details: dict[str, Any] = field(default_factory=dict)  # kind-specific extras (claude cost)
    reason: FailureReason | None = None  # set by the pipeline when it fails a command that ran
    kind: ErrorKind | None = None  # what it ran into, when known as data (`retry_on` uses it)
    code: str | None = None  # the error code when prodigy refused the command (a path outside)
    # what went wrong without failing the command by itself (a tool call Claude was denied),
    # named in any failure message of its step: it is often why the step then fails
    warnings: list[str] = field(default_factory=list)
    # the HEAD its work started from when that was before this run (a resumed Claude
    # conversation): its commits from before the interruption count for commit_required
    since: str | None = None

    @property
    def text(self) -> str:
        return self.stdout if self.output is None else self.output

    @property
    def failure(self) -> FailureReason:
        """Why it failed: what the pipeline set (`commit_required`), else its timeout or its
        exit code."""
        if self.reason is not None:
            return self.reason
        if self.timed_out:
            return FailureReason.TIMEOUT
        return FailureReason.COMMAND_FAILED if self.exit_code != 0 else FailureReason.UNKNOWN


class StepStopped(Exception):
    """The session was asked to stop while a step waited (a retry backoff).

    The phase ends there as at any step boundary: the step is not checkpointed, so it runs
    again, from its first attempt, when the session resumes.
    """


@dataclass
class RunContext:
    """Per-session state shared by every step of a run."""

    session_id: str
    worktree: Path
    variables: VariableStore
    env: dict[str, str]  # the composed base environment (inherited < files < global < profile)
    masker: Masker
    events: EventSink
    settings: EngineSettings = field(default_factory=EngineSettings)
    strict_variables: bool = False  # the session's --strict or the workflow's own
    retry_defaults: RetrySpec | None = None  # the workflow's, for steps without a retry:
    dynamic_env: dict[str, str] = field(default_factory=dict)  # uncached {command:} values
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # the session's stop request
    budget: Ledger = field(default_factory=Ledger)  # the job's (and an agent's) budget meters

    async def pause(self, seconds: float) -> None:
        """Wait `seconds`, unless the session is asked to stop first: StepStopped."""
        if not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), seconds)
            except TimeoutError:
                return
        raise StepStopped

    async def refresh_dynamic(self) -> None:
        """Run the commands of the uncached dynamic env values again, before a step: the
        step sees their value of the moment, as an environment variable and a variable."""
        secret_names = set(self.masker.secrets().values())
        for name, command in self.dynamic_env.items():
            value = await run_dynamic(command, self.worktree, self.env)
            if name in secret_names:
                self.masker.add(value, name=name)
            self.env[name] = value
            self.variables.set(name, value)

    def interpolate(self, text: str, store: VariableStore | None = None) -> str:
        """Substitute variables; in strict mode, names of the job environment (`$HOME`)
        are left for the shell rather than reported as unresolved."""
        return interpolate(
            text,
            store or self.variables,
            strict=self.strict_variables,
            shell_names=self.env,
            environment=self.env,
        )

    def step_env(
        self, extra: Mapping[str, str], store: VariableStore | None = None
    ) -> dict[str, str]:
        """The base environment plus a step's `env:` (values interpolated); step wins."""
        env = dict(self.env)
        for key, value in extra.items():
            env[key] = self.interpolate(value, store)
        return env

    def resolve_dir(self, working_dir: str | None, store: VariableStore | None = None) -> Path:
        """A step's working directory: relative paths are taken from the worktree root, and
        it must stay inside the worktree (steps never touch the user's checkout)."""
        if not working_dir:
            return self.worktree
        folder = self.inside_worktree(self.worktree / self.interpolate(working_dir, store))
        if not folder.is_dir():
            raise ProdigyError(
                f"working_dir {working_dir!r} is not a folder of the worktree",
                code=errorcodes.PATH_ESCAPES,
            )
        return folder

    def inside_worktree(self, path: Path, shown: str | None = None) -> Path:
        """`path`, resolved; refused if it leaves the worktree or points into a `.git`.

        Any component named `.git`, in any case (macOS and Windows file systems ignore
        case), is refused: the worktree's `.git` file is its link to the repository, and
        writing it cuts the session off from its branch. `shown` names the path in errors
        as the workflow wrote it.
        """
        shown = shown if shown is not None else str(path)
        root = self.worktree.resolve()
        target = path.resolve()
        if not target.is_relative_to(root):
            raise ProdigyError(
                f"path {shown!r} escapes the worktree; steps only write inside it",
                code=errorcodes.PATH_ESCAPES,
            )
        if any(part.casefold() == ".git" for part in target.relative_to(root).parts):
            raise ProdigyError(
                f"path {shown!r} is inside .git; steps never write git's own files "
                "(the worktree's .git file links it to its branch)",
                code=errorcodes.PATH_ESCAPES,
            )
        return target
