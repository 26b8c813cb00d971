"""`prodigyctl analytics`: cost and tokens as the fake claude reports them, outcomes and
groups, summed by the real daemon from its journal."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli import ctl


def test_cost_tokens_and_outcomes_per_workflow_status_and_day(
    daemon: Path, repo: Path, tmp_path: Path
):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "match": "review",
                        "cost_usd": 0.25,
                        "input_tokens": 1000,
                        "output_tokens": 200,
                    }
                ]
            }
        )
    )
    env = {**os.environ, "FAKE_CLAUDE_SCENARIO": str(scenario)}
    review = tmp_path / "review.yml"
    review.write_text("name: review\ncommands:\n  - claude: /review a\n  - claude: /review b\n")
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\ncommands:\n  - shell: 'exit 3'\n")
    for _ in range(2):
        assert ctl("run", str(review), "-y", cwd=repo, env=env).returncode == 0
    assert ctl("run", str(broken), "-y", cwd=repo, env=env).returncode == 1
    assert ctl("run", str(broken), "-y", cwd=repo, env=env).returncode == 1
    given_up = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    ctl("cancel", given_up, check=True)  # failed, then closed for good: cancelled

    result = json.loads(ctl("analytics", "--json", check=True).stdout)
    by_workflow = {row["key"]: row for row in result["rows"]}
    assert [row["key"] for row in result["rows"]] == ["review", "broken"]  # costliest first
    assert by_workflow["review"] | {"duration_seconds": 0, "failed_seconds": 0} == {
        "key": "review",
        "sessions": 2,
        "succeeded": 2,
        "failed": 0,
        "cancelled": 0,
        "success_rate": 1.0,
        "cost_usd": 1.0,
        "input_tokens": 4000,
        "output_tokens": 800,
        "duration_seconds": 0,
        "failed_seconds": 0,
    }
    assert by_workflow["broken"]["success_rate"] == 0.0
    assert (by_workflow["broken"]["failed"], by_workflow["broken"]["cancelled"]) == (1, 1)
    assert result["total"]["sessions"] == 4 and result["total"]["success_rate"] == 0.6667
    assert [job["cost_usd"] for job in result["top"]] == [0.5, 0.5]

    statuses = json.loads(ctl("analytics", "--by", "status", "--json", check=True).stdout)
    assert {row["key"]: row["sessions"] for row in statuses["rows"]} == {
        "completed": 2,
        "failed": 1,
        "cancelled": 1,
    }
    table = ctl("analytics", "--by", "day", check=True).stdout
    assert table.splitlines()[0].split()[:5] == ["DAY", "sessions", "ok", "failed", "cancelled"]
    [total] = [line.split()[:5] for line in table.splitlines() if line.startswith("total")]
    assert total == ["total", "4", "2", "1", "1"], table
    assert "total" in table and "$1.0000" in table and "costliest sessions:" in table
    later = ctl("analytics", "--since", "2999-01-01T00:00:00Z", check=True)
    assert later.stdout.strip() == "no sessions since 2999-01-01T00:00:00.000Z"


def test_failed_sessions_time_counts_and_is_shown_apart(daemon: Path, repo: Path, tmp_path: Path):
    """A failed job ran as long as it ran: its time is in the total (it was left out when
    only completed jobs had an end time) and in `failed_seconds`."""
    slow_failure = tmp_path / "slow.yml"
    slow_failure.write_text("name: slow\ncommands:\n  - shell: 'sleep 1.2; exit 3'\n")
    assert ctl("run", str(slow_failure), "-y", cwd=repo).returncode == 1
    quick = tmp_path / "quick.yml"
    quick.write_text("name: quick\ncommands:\n  - shell: 'true'\n")
    assert ctl("run", str(quick), "-y", cwd=repo).returncode == 0

    result = json.loads(ctl("analytics", "--json", check=True).stdout)
    total = result["total"]
    assert total["failed"] == 1
    assert total["failed_seconds"] >= 1.2  # the sleep, at least
    assert total["duration_seconds"] > total["failed_seconds"]  # quick's time too
    by_workflow = {row["key"]: row for row in result["rows"]}
    assert by_workflow["quick"]["failed_seconds"] == 0
    assert by_workflow["slow"]["duration_seconds"] == by_workflow["slow"]["failed_seconds"]
    header = ctl("analytics", check=True).stdout.splitlines()[0]
    assert header.endswith("failed time")
