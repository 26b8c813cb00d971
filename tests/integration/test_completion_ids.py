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
