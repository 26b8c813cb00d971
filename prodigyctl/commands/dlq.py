"""`dlq ls|show|retry|export|purge|stats`: the work items a map phase could not do."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from prodigyctl.client import Client, dumps, is_tty
from prodigyctl.commands import command, group
from prodigyctl.commands.events import write_export
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.jobs import after_start, executor_options, executor_params
from prodigyctl.options import (
    detach_option,
    format_option,
    id_argument,
    json_option,
    output_option,
    yes_option,
)
from prodigyctl.render import counted
from prodigyd import protocol
from prodigyd.durations import duration_seconds

dlq = group(
    "dlq", "The dead-letter queue: work items a map phase could not do, with every attempt."
)

job_argument = id_argument("job_id", required=False)


@command("ls", dlq)
@job_argument
@click.option(
    "--eligible/--not-eligible",
    default=None,
    help="Only entries a retry may fix by itself (or only those it may not).",
)
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@json_option
def list_entries(*, job_id: str | None, eligible: bool | None, limit: int, as_json: bool) -> int:
    """Entries of JOB_ID (or of every job), newest failure first; --json includes the items."""
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
    # TRANSIENT: `reprocess_eligible`, a failure a retry may fix by itself (a timeout, a
    # network error); `dlq retry` re-runs every entry, transient or not
    header = f"{'JOB':<32} {'ITEM':<10} {'TYPE':<22} {'TRIES':>5} {'TRANSIENT':<9} LAST ERROR"
    click.echo(header)
    for row in rows:
        error = row["failure_history"][-1]["error_message"].splitlines()[0][:60]
        eligible_text = "yes" if row["reprocess_eligible"] else "no"
        click.echo(
            f"{row['job_id']:<32} {row['item_id']:<10} {row['error_type']:<22} "
            f"{row['failure_count']:>5} {eligible_text:<9} {error}"
        )
    return EXIT_OK


@command("show", dlq)
@id_argument("job_id")
@click.argument("item_id")
@json_option
def show(*, job_id: str, item_id: str, as_json: bool) -> int:
    """One entry: the item and every attempt (error, exit code, log file)."""
    with Client.connect() as client:
        entry = client.call(protocol.DLQ_SHOW, {"job_id": job_id, "item_id": item_id})
    if as_json:
        click.echo(dumps(entry))
        return EXIT_OK
    for key in (
        "job_id",
        "item_id",
        "workflow",
        "error_type",
        "error_signature",
        "failure_count",
        "first_attempt",
        "last_attempt",
        "reprocess_eligible",
        "manual_review_required",
    ):
        click.echo(f"{key + ':':<24} {entry.get(key)}")
    click.echo(f"{'item:':<24} {json.dumps(entry['item_data'], ensure_ascii=False)}")
    for attempt in entry["failure_history"]:
        click.echo(
            f"attempt {attempt['attempt_number']} at {attempt['timestamp']} "
            f"({attempt['error_type']}, exit code {attempt.get('exit_code')}, "
            f"{attempt.get('duration_ms', 0)} ms): log {attempt.get('log_path')}"
        )
        click.echo(f"  in: {attempt.get('step_failed')}")
        click.echo("  " + attempt["error_message"].replace("\n", "\n  "))
    return EXIT_OK


@command("retry", dlq)
@id_argument("job_id")
@click.option(
    "--item",
    "item_ids",
    multiple=True,
    metavar="ITEM_ID",
    help="Retry this item (repeatable); default: every entry.",
)
@click.option(
    "--filter",
    "filter_expr",
    metavar="EXPR",
    help="Only items matching this filter expression (as map.filter).",
)
@click.option(
    "--eligible-only",
    is_flag=True,
    help="Only entries whose errors a retry may fix by itself (timeouts, network...).",
)
@click.option("--parallel", type=click.IntRange(1), help="Agents at once (default: max_parallel).")
@click.option(
    "--max-retries",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Attempts per item in this retry.",
)
@executor_options
@yes_option
@detach_option
@json_option
def retry(
    *,
    job_id: str,
    item_ids: tuple[str, ...],
    filter_expr: str | None,
    eligible_only: bool,
    parallel: int | None,
    max_retries: int,
    yes: bool,
    detach: bool,
    as_json: bool,
    **executor: Any,
) -> int:
    """Re-run dead letters of JOB_ID as agents of a new job and merge their work.

    Every entry of the job by default (you ran it: you fixed the cause), or those named
    with --item or kept by --filter; --eligible-only keeps only entries whose errors a
    retry may fix by itself. With nothing left to retry it says so and exits 0.
    """
    params = {
        "job_id": job_id,
        "item_ids": list(item_ids),
        "filter": filter_expr,
        "eligible_only": eligible_only,
        "max_parallel": parallel,
        "max_retries": max_retries,
        "env": dict(os.environ),
        "merge": "auto" if yes else "ask",
        **executor_params(executor),
    }
    with Client.connect() as client:
        record = client.call(protocol.DLQ_RETRY, params)
        if record.get("id") is None:  # nothing left to retry: done, not an error
            click.echo(dumps(record) if as_json else record["message"])
            return EXIT_OK
        if not as_json and not detach:
            retry = record["dlq_retry"]  # its job_id is the whole id, however it was typed
            count = len(retry["item_ids"])
            noun = "item" if count == 1 else "items"
            click.echo(f"retrying {count} {noun} of {retry['job_id']} as job {record['id']}")
        return after_start(client, record, detach=detach, as_json=as_json, yes=yes)


@command("export", dlq)
@job_argument
@format_option()
@output_option
def export(*, job_id: str | None, fmt: str, output: str | None) -> int:
    """Export entries (of JOB_ID, or all) as JSON or CSV."""
    with Client.connect() as client:
        rows = client.call(protocol.DLQ_LIST, {"job_id": job_id, "limit": 1_000_000})
    return write_export(rows, _csv(rows) if fmt == "csv" else None, output, "entry", "entries")


_CSV_COLUMNS = (
    "job_id",
    "item_id",
    "error_type",
    "failure_count",
    "reprocess_eligible",
    "manual_review_required",
    "last_attempt",
    "error_signature",
)


def _csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_CSV_COLUMNS, "last_error", "item"])
    for row in rows:
        writer.writerow(
            [
                *(row.get(column) for column in _CSV_COLUMNS),
                row["failure_history"][-1]["error_message"],
                json.dumps(row["item_data"], ensure_ascii=False, separators=(",", ":")),
            ]
        )
    return buffer.getvalue()


@command("purge", dlq)
@job_argument
@click.option(
    "--item",
    "item_ids",
    multiple=True,
    metavar="ITEM_ID",
    help="Only this item (repeatable; needs JOB_ID).",
)
@click.option("--older-than", metavar="AGE", help="Only entries last failed longer ago (7d).")
@click.option("--yes", is_flag=True, help="Do not ask (required when not on a terminal).")
@json_option
def purge(
    *,
    job_id: str | None,
    item_ids: tuple[str, ...],
    older_than: str | None,
    yes: bool,
    as_json: bool,
) -> int:
    """Delete entries for good (entries never expire by themselves)."""
    seconds = None
    if older_than is not None:
        seconds = duration_seconds(older_than)
        if seconds is None:
            raise click.BadParameter(
                f"{older_than!r} is not a duration such as 7d or 12h", param_hint="--older-than"
            )
    what = f"job {job_id}" if job_id else "every job"
    if not yes:
        if not is_tty():
            raise click.UsageError(f"purging the dead letters of {what} needs --yes")
        click.confirm(f"Delete dead-letter entries of {what}?", abort=True)
    with Client.connect() as client:
        done = client.call(
            protocol.DLQ_PURGE,
            {"job_id": job_id, "item_ids": list(item_ids), "older_than": seconds},
        )
    click.echo(dumps(done) if as_json else f"purged {counted(done['purged'], 'entry', 'entries')}")
    return EXIT_OK


@command("stats", dlq)
@job_argument
@json_option
def stats(*, job_id: str | None, as_json: bool) -> int:
    """Counts by job, error type and error signature (the commonest causes first)."""
    with Client.connect() as client:
        data = client.call(protocol.DLQ_STATS, {"job_id": job_id})
    if as_json:
        click.echo(dumps(data))
        return EXIT_OK
    click.echo(
        f"{counted(data['total'], 'entry', 'entries')}, "
        f"{data['reprocess_eligible']} eligible for retry, "
        f"{data['manual_review_required']} need review"
    )
    for kind, count in sorted(data["by_error_type"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {kind:<24} {count}")
    for signature, cause in list(data["by_signature"].items())[:10]:
        click.echo(f"  {signature}  x{cause['count']}  {cause['example'].splitlines()[0][:70]}")
    return EXIT_OK
