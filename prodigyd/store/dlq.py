"""The dead-letter queue: every failed work item of a map phase, with every attempt.

One row per (job, item) in `journal.db`, written the moment an item fails, so nothing a map
phase could not do is ever lost. An entry keeps the item itself, each attempt (time, error,
exit code, log path), its error type (the failure's own FailureReason, set where it
failed), an error signature (for grouping failures with the same cause) and whether a retry
is likely to help (reference §4.9).

Entries never expire by themselves (the original evicted the oldest past 1,000 per job and
dropped them after 30 days): they leave only through `prodigyctl dlq retry` (an item whose
retry succeeds) or `prodigyctl dlq purge`, and the retention policy keeps their job's
session as long as it has one (store/removals.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from prodigyd.failure import FailureReason
from prodigyd.store import journal

#: Words in an error that make a retry worth trying without a change (reference §4.9). The
#: message includes the failing command's output, the only place a network error shows.
_TRANSIENT = ("timeout", "timed out", "network", "temporary", "rate limit", "resource")
#: Words that mean a person should look before retrying.
_NEEDS_REVIEW = (
    "permission",
    "access denied",
    "critical",
    "fatal",
    "corrupted",
    "validation",
    "commit required",
)


@dataclass(frozen=True)
class Advice:
    reprocess_eligible: bool
    manual_review_required: bool


def advise(reason: FailureReason, message: str) -> Advice:
    """Whether a retry is likely to help, and whether a person should look first: the
    reason, and words of the message (reference §4.9)."""
    text = message.lower().replace("_", " ")
    return Advice(
        reprocess_eligible=reason is FailureReason.TIMEOUT or any(w in text for w in _TRANSIENT),
        manual_review_required=any(word in text for word in _NEEDS_REVIEW),
    )


def signature(message: str) -> str:
    """The first 16 hex digits of the error's SHA-256: equal causes group together."""
    return hashlib.sha256(message.encode()).hexdigest()[:16]


def record_failure(
    job_id: str,
    item_id: str,
    *,
    item: Any,
    repo: str,
    workflow: str,
    attempt: dict[str, Any],
    reason: FailureReason,
    artifacts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add one failed attempt of an item (a new entry, or another attempt of an old one)."""
    advice = advise(reason, attempt["error_message"])
    now = time.time()
    with journal.transaction() as conn:
        row = conn.execute(
            "SELECT entry FROM dlq WHERE job_id = ? AND item_id = ?", (job_id, item_id)
        ).fetchone()
        entry = (
            json.loads(row["entry"])
            if row
            else _new_entry(job_id, item_id, item, repo, attempt["timestamp"])
        )
        entry["workflow"] = workflow
        history = entry["failure_history"]
        history.append({**attempt, "attempt_number": len(history) + 1, "error_type": reason.value})
        entry.update(
            last_attempt=attempt["timestamp"],
            failure_count=len(history),
            error_type=reason.value,
            error_signature=signature(attempt["error_message"]),
            reprocess_eligible=advice.reprocess_eligible,
            manual_review_required=advice.manual_review_required,
            worktree_artifacts=artifacts,
        )
        conn.execute(
            "INSERT OR REPLACE INTO dlq (job_id, item_id, repo, entry, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, COALESCE((SELECT created_at FROM dlq WHERE job_id = ? AND"
            " item_id = ?), ?), ?)",
            (job_id, item_id, repo, _dumps(entry), job_id, item_id, now, now),
        )
    return entry


def _new_entry(job_id: str, item_id: str, item: Any, repo: str, first: str) -> dict[str, Any]:
    """A new entry; `first` is the time of its first failed attempt (the attempt's own
    timestamp, as `last_attempt` is: the time of recording came later and made
    `first_attempt` later than `last_attempt`)."""
    return {
        "job_id": job_id,
        "item_id": item_id,
        "item_data": item,
        "repo": repo,
        "first_attempt": first,
        "last_attempt": None,
        "failure_count": 0,
        "failure_history": [],
    }


def entries(
    job_id: str | None = None, *, eligible: bool | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Entries, newest failure first; `eligible` filters on reprocess eligibility."""
    sql, args = "SELECT entry FROM dlq", []
    if job_id is not None:
        sql, args = sql + " WHERE job_id = ?", [job_id]
    sql += " ORDER BY updated_at DESC"
    found = [json.loads(row["entry"]) for row in journal.connection().execute(sql, args)]
    if eligible is not None:
        found = [e for e in found if e["reprocess_eligible"] == eligible]
    return found[:limit] if limit is not None else found


def get(job_id: str, item_id: str) -> dict[str, Any] | None:
    row = (
        journal.connection()
        .execute("SELECT entry FROM dlq WHERE job_id = ? AND item_id = ?", (job_id, item_id))
        .fetchone()
    )
    return json.loads(row["entry"]) if row else None


def remove(job_id: str, item_ids: list[str]) -> int:
    """Drop entries (items whose retry succeeded); returns how many were there."""
    with journal.transaction() as conn:
        marks = ", ".join("?" for _ in item_ids)
        done = conn.execute(
            f"DELETE FROM dlq WHERE job_id = ? AND item_id IN ({marks})", (job_id, *item_ids)
        )
    return done.rowcount


def purge(job_id: str | None = None, *, older_than: float | None = None) -> int:
    """Delete entries of one job (or all), optionally only those older than `older_than`
    seconds; returns how many went."""
    clauses: list[str] = []
    args: list[str | float] = []
    if job_id is not None:
        clauses.append("job_id = ?")
        args.append(job_id)
    if older_than is not None:
        clauses.append("updated_at < ?")
        args.append(time.time() - older_than)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with journal.transaction() as conn:
        return conn.execute(f"DELETE FROM dlq{where}", args).rowcount


def stats(job_id: str | None = None) -> dict[str, Any]:
    """Totals by job, by error type and by signature (the most common causes first)."""
    found = entries(job_id)
    by_type: dict[str, int] = {}
    by_signature: dict[str, dict[str, Any]] = {}
    by_job: dict[str, int] = {}
    for entry in found:
        by_type[entry["error_type"]] = by_type.get(entry["error_type"], 0) + 1
        by_job[entry["job_id"]] = by_job.get(entry["job_id"], 0) + 1
        group = by_signature.setdefault(
            entry["error_signature"],
            {
                "count": 0,
                "error_type": entry["error_type"],
                "example": entry["failure_history"][-1]["error_message"][:200],
            },
        )
        group["count"] += 1
    return {
        "total": len(found),
        "reprocess_eligible": sum(1 for e in found if e["reprocess_eligible"]),
        "manual_review_required": sum(1 for e in found if e["manual_review_required"]),
        "by_job": by_job,
        "by_error_type": by_type,
        "by_signature": dict(sorted(by_signature.items(), key=lambda kv: -kv[1]["count"])),
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
