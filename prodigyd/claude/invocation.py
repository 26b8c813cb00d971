"""The record of one Claude invocation: what `sessions show` lists for each run of `claude`
and `analytics --by tool|model` sums (docs/protocol.md, `sessions.show`).

One is made for every run of the CLI, whatever its end (a success, an error, a timeout, a
cancellation), from what its stream said until then: a run stopped before its final
`result` line keeps the tokens its turns reported, and its cost is estimated from them.
The engine emits it as one `claude_invocation` event, which reaches the session from a
map agent wherever the agent ran; the session totals and stores it
(store/claude_invocations.py).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prodigyd.claude.cli import ClaudeResult

#: How an invocation ended (`status`).
SUCCEEDED = "succeeded"
FAILED = "failed"  # a non-zero exit, an error result, or no result line
TIMED_OUT = "timed_out"  # killed at the step's timeout (or [claude] timeout)
INTERRUPTED = "interrupted"  # the session was cancelled or the daemon stopped while it ran


def record(
    result: ClaudeResult,
    *,
    status: str,
    started_at: str,
    duration: float,
    exit_code: int | None,
    log: Path | None,
    estimate_usd: float = 0.0,
) -> dict[str, Any]:
    """The invocation's record, without the step and attempt (the session adds those).
    `estimate_usd`: its cost from its token counts (claude/prices.py), the figure kept
    when no result line came to say it (a run stopped by a timeout, a budget, a cancel),
    marked `cost_estimated`."""
    estimated = not result.saw_result
    return {
        "status": status,
        "claude_session_id": result.session_id,
        "model": result.model,
        "started_at": started_at,
        "duration_seconds": round(duration, 3),
        "num_turns": result.num_turns,
        "tool_uses": result.tool_counts(),
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cache_read_tokens": result.cache_read_tokens,
        "cache_creation_tokens": result.cache_creation_tokens,
        "cost_usd": estimate_usd if estimated else result.total_cost_usd,
        "cost_estimated": estimated,
        "permission_denials": [asdict(denial) for denial in result.permission_denials],
        "exit_code": exit_code,
        "log": str(log) if log is not None else None,
    }
