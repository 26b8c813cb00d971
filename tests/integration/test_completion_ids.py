"""Shell completion (click's mechanism, ids from the daemon) and ids given by a unique prefix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli import ctl


def complete(words: str, isolated_env: dict[str, str] | None = None) -> list[str]:
    """What bash completion offers for the last word of `words`, as the shell asks for it."""
    parts = words.split(" ")
    env = {
        **(isolated_env or os.environ),
        "_PRODIGYCTL_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(parts) - 1),
    }
    done = ctl(env=env)
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]


def run_one(repo: Path) -> str:
    done = ctl("exec", "true", "--json", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[-1])["session_id"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_for_each_shell(shell: str):
    done = ctl("completion", shell)
    assert done.returncode == 0, done.stderr
    assert "_PRODIGYCTL_COMPLETE" in done.stdout and f"{shell}_complete" in done.stdout


def test_commands_and_session_ids_complete_from_the_running_daemon(daemon: Path, repo: Path):
    assert "sessions" in complete("prodigyctl sess")
    first, second = run_one(repo), run_one(repo)
    offered = complete("prodigyctl sessions show ")
    assert first in offered and second in offered
    assert complete(f"prodigyctl logs {first[:-2]}") == [first]


def test_completion_without_a_daemon_offers_no_ids_and_starts_none(isolated: Path):
    assert complete("prodigyctl sessions show w") == []
    assert not (isolated / "prodigyd.sock").exists()
    assert not (isolated / "prodigyd.pid").exists()


def test_a_unique_prefix_names_a_session_with_or_without_its_kind_word(daemon: Path, repo: Path):
    first, second = run_one(repo), run_one(repo)
    digits = first.split("-", 1)[1]
    for ref in (first[: len(first) - 3], digits[: len(digits) - 3]):
        if second.startswith(ref) or second.split("-", 1)[1].startswith(ref):
            continue  # the two ids share this much: not unique, tested below
        shown = json.loads(ctl("sessions", "show", ref, "--json", check=True).stdout)
        assert shown["id"] == first
    ambiguous = ctl("sessions", "show", "workflow-")
    assert ambiguous.returncode == 2, ambiguous.stdout + ambiguous.stderr
    assert "starts more than one id" in ambiguous.stderr and first in ambiguous.stderr
    assert "Value error" not in ambiguous.stderr
    missing = ctl("sessions", "show", "workflow-0")
    assert missing.returncode != 0 and "no session 'workflow-0'" in missing.stderr


def test_the_tag_output_shows_for_a_job_names_it(daemon: Path, repo: Path):
    """`run`, `follow` and `events ls` show a job as the 6 hex digits that end its id: what
    a user copies from there names the job too, and for a `dlq show` of a job that does
    not exist the job is what is said missing."""
    first, second = run_one(repo), run_one(repo)
    tag = first[-6:]
    assert not second.endswith(tag)  # two random 24-bit tags: equal once in 16 million
    lines = ctl("events", "ls", "--session", first, check=True).stdout
    assert f" {tag} " in lines  # the tag as `events ls` shows it
    shown = json.loads(ctl("sessions", "show", tag, "--json", check=True).stdout)
    assert shown["id"] == first
    listed = ctl("events", "ls", "--session", tag, "--json", check=True).stdout
    events = [json.loads(line) for line in listed.splitlines()]
    assert events and {event["session_id"] for event in events} == {first}
    gone = ctl("dlq", "show", "abcdef", "item_1")
    assert gone.returncode != 0 and "no session 'abcdef'" in gone.stderr, gone.stderr
