"""Why a step, a map agent or its merge failed: one value, set where the failure happens.

The value travels with the failure (a step's report, a phase's outcome, an agent's result,
its `agent_failed` event) to the dead-letter queue, whose `error_type` it is (reference
§4.9). Nothing downstream reads an error message to guess it: a message is for people and
its wording may change, and a command's output that happens to say "timeout" or "merge"
does not make a failure one.
"""

from __future__ import annotations

from enum import StrEnum


class FailureReason(StrEnum):
    TIMEOUT = "Timeout"  # a step's command or the whole agent ran past its timeout
    BUDGET_EXCEEDED = "BudgetExceeded"  # a budget (cost, tokens, time) was spent: stopped
    COMMAND_FAILED = "CommandFailed"  # a command exited non-zero or could not run
    COMMIT_VALIDATION_FAILED = "CommitValidationFailed"  # commit_required, and no commit
    VALIDATION_FAILED = "ValidationFailed"  # `validate:` found the work incomplete
    MERGE_CONFLICT = "MergeConflict"  # the agent's commits could not be merged into the parent
    WORKTREE_ERROR = "WorktreeError"  # the agent's worktree could not be made or committed
    WORKER_LOST = "WorkerLost"  # the cluster worker running the agent died (executor dask)
    UNKNOWN = "Unknown"  # a step failed with exit code 0 for another reason (a capture)


class ErrorKind(StrEnum):
    """What a failed command ran into, when the command itself says so in data rather than
    words: today the HTTP status of a Claude API error (`api_error_status` in claude's
    stream). `retry_on` matches a known kind by name and never by the text (a 529 is a
    `server_error` although no message says "server error"); a failure without a kind is
    matched on its text, as for any shell command (engine/retry.py).
    """

    SERVER_ERROR = "server_error"  # 5xx, including 529 "overloaded"
    RATE_LIMIT = "rate_limit"  # 429
    AUTH = "auth"  # 401/403, or claude's "authentication_failed" without a status
    CLIENT_ERROR = "client_error"  # any other 4xx: the request itself was refused
