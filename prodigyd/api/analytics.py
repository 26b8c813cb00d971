"""`analytics.summary`: what the jobs cost and how they went, grouped by workflow, day,
repository or status (the original's `analytics` command, removed upstream, reduced to
what the journal knows for certain: cost and tokens as Claude reported them, outcomes and
wall times).

A job counts as succeeded when it completed or is awaiting a merge (its steps all
passed), as failed when it failed; queued, running, interrupted and cancelled jobs are in
`sessions` but in neither, so `success_rate` is succeeded / (succeeded + failed), or None
when there is nothing to divide. `duration_seconds` sums the wall time of finished jobs.
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


def summary(rows: list[sqlite3.Row], group_by: str, top: int) -> dict[str, Any]:
    groups: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        groups.setdefault(GROUPS[group_by](row), []).append(row)
    ordered = sorted(groups.items(), key=lambda item: (-_cost(item[1]), item[0]))
    costly = sorted(rows, key=lambda row: -(row["cost_usd"] or 0))[:top]
    return {
        "group_by": group_by,
        "rows": [{"key": key, **_totals(members)} for key, members in ordered],
        "total": _totals(rows),
        "top": [
            {
                "id": row["id"],
                "workflow": row["workflow"],
                "status": row["status"],
                "cost_usd": row["cost_usd"] or 0.0,
                "tokens": (row["input_tokens"] or 0) + (row["output_tokens"] or 0),
            }
            for row in costly
            if row["cost_usd"]
        ],
    }


def _totals(rows: list[sqlite3.Row]) -> dict[str, Any]:
    succeeded = sum(row["status"] in SUCCEEDED for row in rows)
    failed = sum(row["status"] in FAILED for row in rows)
    return {
        "sessions": len(rows),
        "succeeded": succeeded,
        "failed": failed,
        "success_rate": round(succeeded / (succeeded + failed), 4) if succeeded + failed else None,
        "cost_usd": round(_cost(rows), 6),
        "input_tokens": sum(row["input_tokens"] or 0 for row in rows),
        "output_tokens": sum(row["output_tokens"] or 0 for row in rows),
        "duration_seconds": round(sum(_duration(row) for row in rows), 3),
    }


def _cost(rows: list[sqlite3.Row]) -> float:
    return sum(row["cost_usd"] or 0.0 for row in rows)


def _duration(row: sqlite3.Row) -> float:
    if not row["started_at"] or not row["completed_at"]:
        return 0.0
    started, ended = (datetime.fromisoformat(row[key]) for key in ("started_at", "completed_at"))
    return max(0.0, (ended - started).total_seconds())
