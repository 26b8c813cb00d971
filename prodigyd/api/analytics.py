"""`analytics.summary`: what the jobs cost and how they went, grouped by workflow, day,
repository or status (the original's `analytics` command, removed upstream, reduced to
what the journal knows for certain: cost and tokens as Claude reported them, outcomes and
wall times); or what the Claude invocations used, grouped by tool or by model.

A job counts as succeeded when it completed or is awaiting a merge (its steps all
passed), as failed when it failed; queued, running, interrupted and cancelled jobs are in
`sessions` but in neither (cancelled ones are counted in `cancelled`), so `success_rate`
is succeeded / (succeeded + failed), or None when there is nothing to divide.
`duration_seconds` sums the time jobs ran, every run of a job that ran (a failed,
interrupted or resumed one too: the time a failed job cost is time spent all the same;
it was left out when only completed jobs had an end time), and
`failed_seconds` is the part of it that went to jobs that failed. A job's time is what its
record says it ran (BudgetUse.seconds), not start to end: waiting in the queue, for a
resume or for `prodigyctl merge` is not running.

By tool or model, the rows sum invocation records (store/claude_invocations.py): an
invocation counts once under its model, and once under each tool it used (so tool rows
overlap and do not add up to the total), under `(no tool)` when it used none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

SUCCEEDED = ("completed", "awaiting_merge")
FAILED = ("failed",)

GROUPS: dict[str, Callable[[sqlite3.Row], str]] = {
    "workflow": lambda row: row["workflow"] or "(unnamed)",
    "day": lambda row: (row["started_at"] or "")[:10],
    "repo": lambda row: row["repo"] or "",
    "status": lambda row: row["status"],
}


#: The invocation groupings, and the key of an invocation that has no tool or no model.
INVOCATION_GROUPS = {"tool": "(no tool)", "model": "(unknown)"}

#: The sums of an invocation row (store/claude_invocations.py): counts, then figures.
_COUNTS = (
    "invocations",
    "sessions",
    "succeeded",
    "tool_uses",
    "turns",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
)


def summary(rows: list[sqlite3.Row], group_by: str, top: int) -> dict[str, Any]:
    groups: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        groups.setdefault(GROUPS[group_by](row), []).append(row)
    ordered = sorted(groups.items(), key=lambda item: (-_cost(item[1]), item[0]))
    return {
        "group_by": group_by,
        "rows": [{"key": key, **_totals(members)} for key, members in ordered],
        "total": _totals(rows),
        "top": _top(rows, top),
    }


def invocations(
    group_by: str, groups: list[sqlite3.Row], total: sqlite3.Row, jobs: list[sqlite3.Row], top: int
) -> dict[str, Any]:
    """The `--by tool|model` answer: one row per tool (most used first) or model (costliest
    first), the total over every invocation, and the costliest jobs as `summary` lists them."""
    rows = [{"key": row["key"] or INVOCATION_GROUPS[group_by], **_sums(row)} for row in groups]
    order = "tool_uses" if group_by == "tool" else "cost_usd"
    rows.sort(key=lambda row: (-row[order], row["key"]))
    return {"group_by": group_by, "rows": rows, "total": _sums(total), "top": _top(jobs, top)}


def _sums(row: sqlite3.Row) -> dict[str, Any]:
    return {
        **{key: int(row[key] or 0) for key in _COUNTS},
        "cost_usd": round(row["cost_usd"] or 0.0, 6),
        "duration_seconds": round(row["duration_seconds"] or 0.0, 3),
    }


def _top(rows: list[sqlite3.Row], top: int) -> list[dict[str, Any]]:
    """The `top` costliest jobs that cost anything."""
    costly = sorted(rows, key=lambda row: -(row["cost_usd"] or 0))[:top]
    return [
        {
            "id": row["id"],
            "workflow": row["workflow"],
            "status": row["status"],
            "cost_usd": row["cost_usd"] or 0.0,
            "tokens": (row["input_tokens"] or 0) + (row["output_tokens"] or 0),
        }
        for row in costly
        if row["cost_usd"]
    ]


def _totals(rows: list[sqlite3.Row]) -> dict[str, Any]:
    succeeded = sum(row["status"] in SUCCEEDED for row in rows)
    failed = sum(row["status"] in FAILED for row in rows)
    return {
        "sessions": len(rows),
        "succeeded": succeeded,
        "failed": failed,
        "cancelled": sum(row["status"] == "cancelled" for row in rows),
        "success_rate": round(succeeded / (succeeded + failed), 4) if succeeded + failed else None,
        "cost_usd": round(_cost(rows), 6),
        "input_tokens": sum(row["input_tokens"] or 0 for row in rows),
        "output_tokens": sum(row["output_tokens"] or 0 for row in rows),
        "duration_seconds": round(sum(_duration(row) for row in rows), 3),
        "failed_seconds": round(sum(_duration(row) for row in rows if row["status"] in FAILED), 3),
    }


def _cost(rows: list[sqlite3.Row]) -> float:
    return sum(row["cost_usd"] or 0.0 for row in rows)


def _duration(row: sqlite3.Row) -> float:
    if row["ran_seconds"] is not None:  # 0 s is a real running time
        return float(row["ran_seconds"])
    # a record from before the running time was kept: start to end, when it has an end
    if not row["started_at"] or not row["completed_at"]:
        return 0.0
    started, ended = (datetime.fromisoformat(row[key]) for key in ("started_at", "completed_at"))
    return max(0.0, (ended - started).total_seconds())
