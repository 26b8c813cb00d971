"""`dlq ls|show|retry|export|purge|stats`: the work items a map phase could not do."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

import click

from prodigyctl.client import Client, dumps, is_tty
from prodigyctl.commands.events import write_export
from prodigyctl.commands.run import after_start
from prodigyctl.errors import EXIT_OK
from prodigyd import protocol
from prodigyd.durations import duration_seconds


def list_entries(*, job_id: str | None, eligible: bool | None, limit: int, as_json: bool) -> int:
    with Client.connect() as client:
        rows = client.call(
            protocol.DLQ_LIST, {"job_id": job_id, "eligible": eligible, "limit": limit}
        )
    if as_json:
        click.echo(dumps(rows))
        return EXIT_OK
    if not rows:
        click.echo(f"No items in the dead-letter queue{f' of job {job_id}' if job_id else ''}.")
        return EXIT_OK
    click.echo(f"{'JOB':<32} {'ITEM':<10} {'TYPE':<22} {'TRIES':>5} {'RETRY?':<6} LAST ERROR")
    for row in rows:
        error = row["failure_history"][-1]["error_message"].splitlines()[0][:60]
        eligible_text = "yes" if row["reprocess_eligible"] else "no"
        click.echo(
            f"{row['job_id']:<32} {row['item_id']:<10} {row['error_type']:<22} "
            f"{row['failure_count']:>5} {eligible_text:<6} {error}"
        )
    return EXIT_OK


def show(*, job_id: str, item_id: str, as_json: bool) -> int:
    with Client.connect() as client:
        entry = client.call(protocol.DLQ_SHOW, {"job_id": job_id, "item_id": item_id})
    if as_json:
        click.echo(dumps(entry))
        return EXIT_OK
    for key in ("job_id", "item_id", "workflow", "error_type", "error_signature",
                "failure_count", "first_attempt", "last_attempt", "reprocess_eligible",
                "manual_review_required"):  # fmt: skip
        click.echo(f"{key + ':':<24} {entry.get(key)}")
    click.echo(f"{'item:':<24} {json.dumps(entry['item_data'], ensure_ascii=False)}")
    for attempt in entry["failure_history"]:
        click.echo(
            f"attempt {attempt['attempt_number']} at {attempt['timestamp']} "
            f"({attempt['error_type']}, exit code {attempt.get('exit_code')}, "
            f"{attempt.get('duration_ms', 0)} ms): log {attempt.get('log_path')}"
        )
        click.echo("  " + attempt["error_message"].replace("\n", "\n  "))
    return EXIT_OK


def retry(
    *,
    job_id: str,
    item_ids: tuple[str, ...],
    filter_expr: str | None,
    force: bool,
    parallel: int | None,
    max_retries: int,
    yes: bool,
    detach: bool,
    as_json: bool,
) -> int:
    params = {
        "job_id": job_id,
        "item_ids": list(item_ids),
        "filter": filter_expr,
        "force": force,
        "max_parallel": parallel,
        "max_retries": max_retries,
        "env": dict(os.environ),
        "merge": "auto" if yes else "ask",
    }
    with Client.connect() as client:
        record = client.call(protocol.DLQ_RETRY, params)
        if not as_json and not detach:
            items = record["dlq_retry"]["item_ids"]
            click.echo(f"retrying {len(items)} items of {job_id} as job {record['id']}")
        return after_start(client, record, detach=detach, as_json=as_json, yes=yes)


def export(*, job_id: str | None, fmt: str, output: str | None) -> int:
    with Client.connect() as client:
        rows = client.call(protocol.DLQ_LIST, {"job_id": job_id, "limit": 1_000_000})
    return write_export(rows, _csv(rows) if fmt == "csv" else None, output, "entries")


_CSV_COLUMNS = ("job_id", "item_id", "error_type", "failure_count", "reprocess_eligible",
                "manual_review_required", "last_attempt", "error_signature")  # fmt: skip


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_CSV_COLUMNS, "last_error", "item"])
    for row in rows:
        writer.writerow([
            *(row.get(column) for column in _CSV_COLUMNS),
            row["failure_history"][-1]["error_message"],
            json.dumps(row["item_data"], ensure_ascii=False, separators=(",", ":")),
        ])  # fmt: skip
    return buffer.getvalue()


def purge(
    *, job_id: str | None, item_ids: tuple[str, ...], older_than: str | None, yes: bool,
    as_json: bool,
) -> int:  # fmt: skip
    seconds = None
    if older_than is not None:
        seconds = duration_seconds(older_than)
        if seconds is None:
            raise click.BadParameter(f"{older_than!r} is not a duration such as 7d or 12h",
                                     param_hint="--older-than")  # fmt: skip
    what = f"job {job_id}" if job_id else "every job"
    if not yes:
        if not is_tty():
            raise click.UsageError(f"purging the dead letters of {what} needs --yes")
        click.confirm(f"Delete dead-letter entries of {what}?", abort=True)
    with Client.connect() as client:
        done = client.call(protocol.DLQ_PURGE, {"job_id": job_id, "item_ids": list(item_ids),
                                                "older_than": seconds})  # fmt: skip
    click.echo(dumps(done) if as_json else f"purged {done['purged']} entries")
    return EXIT_OK


def stats(*, job_id: str | None, as_json: bool) -> int:
    with Client.connect() as client:
        data = client.call(protocol.DLQ_STATS, {"job_id": job_id})
    if as_json:
        click.echo(dumps(data))
        return EXIT_OK
    click.echo(
        f"{data['total']} entries, {data['reprocess_eligible']} eligible for retry, "
        f"{data['manual_review_required']} need review"
    )
    for kind, count in sorted(data["by_error_type"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {kind:<24} {count}")
    for signature, group in list(data["by_signature"].items())[:10]:
        click.echo(f"  {signature}  x{group['count']}  {group['example'].splitlines()[0][:70]}")
    return EXIT_OK
