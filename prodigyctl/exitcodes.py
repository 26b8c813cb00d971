"""prodigyctl's exit codes: the one table the commands, the error handler, `--help`, the
prodigyctl(1) page and README.md take them from (tests/unit/test_exit_codes.py holds the
README's table and docs/protocol.md's last column to it).

A command returns its exit code; errors.py turns an error into one. The daemon's errors
(prodigyd.protocol) map to the codes in `exit_for_errors()`; any other error exits 1.
"""

from __future__ import annotations

import functools

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNREACHABLE = 5
EXIT_NO_SPACE = 6
EXIT_CRASH = 70  # EX_SOFTWARE of sysexits.h
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_PIPE = 141  # 128 + SIGPIPE, as a shell reports `git log | head`'s git

#: Every code: what `--help` calls it, and what the man page and README.md say it means.
EXIT_CODES = (
    (EXIT_OK, "ok", "success"),
    (EXIT_FAILED, "failed", "the workflow (or job) failed"),
    (
        EXIT_USAGE,
        "usage or workflow error",
        "usage, workflow-file, repository or environment error",
    ),
    (EXIT_NOT_FOUND, "not found", "no such session, job or item"),
    (
        EXIT_CONFLICT,
        "conflict",
        "conflict: a lock is held, the workflow changed, or the merge was refused",
    ),
    (EXIT_UNREACHABLE, "daemon unreachable", "the daemon is unreachable"),
    (
        EXIT_NO_SPACE,
        "no space left",
        "no space left on the disk prodigyd writes to (the error names it)",
    ),
    (
        EXIT_CRASH,
        "internal error",
        "an internal error; a crash log is written under $PRODIGY_HOME/logs/ (else the temp "
        "folder)",
    ),
    (EXIT_INTERRUPTED, "interrupted", "interrupted"),
    (
        EXIT_PIPE,
        "output closed",
        "the output's reader stopped early (a pipeline's head): nothing is printed about it",
    ),
)


def exit_for_status(status: str | None, *, merge_refused: bool = False) -> int:
    """How a command that followed a job to its end (`run`, `logs -f`) exits, by the status
    it ended with: done (or waiting for `prodigyctl merge`) 0, its automatic merge refused
    4, interrupted 130, else (failed, cancelled) 1."""
    if status == "awaiting_merge":
        return EXIT_CONFLICT if merge_refused else EXIT_OK
    if status == "completed":
        return EXIT_OK
    return EXIT_INTERRUPTED if status == "interrupted" else EXIT_FAILED


@functools.cache
def exit_for_errors() -> dict[int, int]:
    """The daemon's error codes that have an exit code of their own. A function: the
    protocol (and json) is imported when an error needs it, not by `--help`."""
    from prodigyd import protocol

    return {
        protocol.INVALID_PARAMS: EXIT_USAGE,
        protocol.WORKFLOW_ERROR: EXIT_USAGE,
        protocol.GIT_ERROR: EXIT_USAGE,
        protocol.NOT_FOUND: EXIT_NOT_FOUND,
        protocol.CONFLICT: EXIT_CONFLICT,
        protocol.MERGE_REFUSED: EXIT_CONFLICT,
        protocol.NO_SPACE: EXIT_NO_SPACE,
        protocol.ENVIRONMENT_ERROR: EXIT_USAGE,
    }


def exit_for_error(code: int) -> int:
    """The exit code for a daemon error code: its own, else EXIT_FAILED."""
    return exit_for_errors().get(code, EXIT_FAILED)


def summary() -> str:
    """`0 ok, 1 failed, ...`: the table in one line, for `--help`."""
    return ", ".join(f"{code} {name}" for code, name, _ in EXIT_CODES)
