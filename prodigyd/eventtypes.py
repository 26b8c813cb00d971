"""Every event type there is: what the daemon emits, `run` and `follow` render, and
`events ls|export` summarise (docs/protocol.md, "Events", describes each; a test holds the
two to each other).

A StrEnum, so a member is the very string stored in the logs and sent to clients, and a
plain string read back from them compares and looks up equal. Stdlib only: the client
imports this on its hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    # a session
    SESSION_QUEUED = "session_queued"
    SESSION_STARTED = "session_started"
    SESSION_FINISHED = "session_finished"  # ends a run or a resume (protocol.TERMINAL_EVENT)
    PHASE_STARTED = "phase_started"
    PHASE_SKIPPED = "phase_skipped"
    RUN_STARTED = "run_started"  # one run of the steps (`run -n`, `--map`: engine/runs.py)
    RUN_FINISHED = "run_finished"

    # a MapReduce map phase and its agents
    MAP_PHASE_STARTED = "map_phase_started"
    MAP_PHASE_COMPLETED = "map_phase_completed"
    AGENT_STARTED = "agent_started"
    AGENT_COMPLETED = "agent_completed"
    AGENT_FAILED = "agent_failed"
    AGENT_RETRYING = "agent_retrying"
    AGENT_STOPPED = "agent_stopped"  # stopped with its job, unfinished: it runs on resume
    WORKTREE_MERGED = "worktree_merged"
    DLQ_ITEM_ADDED = "dlq_item_added"

    # a step
    STEP_STARTED = "step_started"
    STEP_OUTPUT = "step_output"
    STEP_OUTPUT_TRUNCATED = "step_output_truncated"
    STEP_RETRYING = "step_retrying"
    STEP_STOPPED = "step_stopped"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_SKIPPED = "step_skipped"
    VALIDATION = "validation"
    FOREACH_PROGRESS = "foreach_progress"
    GOAL_ATTEMPT = "goal_attempt"  # a goal_seek attempt was scored
    GOAL_FINISHED = "goal_finished"  # a goal_seek stopped: why, and its scores
    BUDGET_EXCEEDED = "budget_exceeded"  # a budget stopped a Claude run, or a map phase

    # a `claude:` step, from Claude's stream-json output (claude/cli.py)
    CLAUDE_SESSION_STARTED = "claude_session_started"
    CLAUDE_MESSAGE = "claude_message"
    CLAUDE_TOOL_INVOKED = "claude_tool_invoked"
    CLAUDE_TOKEN_USAGE = "claude_token_usage"
    CLAUDE_RESULT = "claude_result"
    CLAUDE_OUTPUT = "claude_output"
    CLAUDE_API_RETRY = "claude_api_retry"  # the CLI retries a failed API call by itself
    CLAUDE_API_ERROR = "claude_api_error"  # the CLI gave up on an API call
    CLAUDE_PERMISSION_DENIED = "claude_permission_denied"
    CLAUDE_INVOCATION = "claude_invocation"  # its end, whatever it was: the invocation's record
    CLAUDE_SESSION_RESUMED = "claude_session_resumed"  # an interrupted conversation goes on
    CLAUDE_RESUME_FAILED = "claude_resume_failed"  # ... or is gone: the step starts afresh

    # the merge and the clean-up after it
    MERGE_STARTED = "merge_started"
    MERGE_COMPLETED = "merge_completed"
    MERGE_FAILED = "merge_failed"
    WORKTREE_CLEANED = "worktree_cleaned"
    CLEANUP_FAILED = "cleanup_failed"

    # a repository's triggers (watch/dropped.py: the pseudo-session `triggers`)
    TRIGGER_DROPPED = "trigger_dropped"
    WORKFLOW_LOADED = "workflow_loaded"
    WORKFLOW_INVALID = "workflow_invalid"
    WORKFLOW_REMOVED = "workflow_removed"


def run_name(run: Mapping[str, Any]) -> str:
    """How a run is named, from its run_started/run_finished fields (engine/runs.py
    Run.event): `input 2/5 (b.md)`, `iteration 2/3`, or both. Here so that the daemon's
    errors and the client's lines (prodigyctl/render.py) name it alike."""
    parts = []
    if run.get("input") is not None:
        parts.append(f"input {run.get('index')}/{run.get('total')} ({run['input']})")
    if (run.get("iterations") or 1) > 1:
        parts.append(f"iteration {run.get('iteration')}/{run.get('iterations')}")
    return ", ".join(parts)
