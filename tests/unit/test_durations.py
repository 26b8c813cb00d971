"""One duration grammar for workflow files and the command line (prodigyd/durations.py):
`--since` takes every unit a workflow's `timeout:` does and the other way round, and only
the command line insists on a unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
import pytest

from prodigyctl.commands.events import parse_since
from prodigyd.workflow.load import parse_workflow
from tests.cli import ctl

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _ago(seconds: float) -> str:
    moment = NOW - timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("1h30m", 5400),
        ("3d", 3 * 86400),
        ("1w", 7 * 86400),
        ("500ms", 0.5),
        ("1.5h", 5400),
        ("1h 30m", 5400),
        ("2 minutes", 120),
    ],
)
def test_since_takes_the_units_a_workflow_takes(written: str, seconds: float) -> None:
    assert parse_since(written, now=NOW) == _ago(seconds)


def test_a_workflow_timeout_takes_weeks_as_since_does() -> None:
    loaded = parse_workflow("- shell: 'true'\n  timeout: 1w\n", source="wf.yml")
    assert loaded.workflow.steps[0].timeout == 7 * 86400


def test_on_the_command_line_a_number_without_a_unit_is_no_duration() -> None:
    assert parse_since("20261125", now=NOW) == "2026-11-25T00:00:00.000Z"  # a date
    refused = ctl("dlq", "purge", "--older-than", "90", "--yes")
    assert refused.returncode == 2
    assert "'90' is not a duration such as 7d or 12h" in refused.stderr


@pytest.mark.parametrize("written", ["0001-01-01T00:00:00+01:00", "999999999d"])
def test_a_since_before_the_year_1_is_a_usage_error_not_a_crash(written: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_since(written, now=NOW)
