"""`prodigyctl init`: the Claude commands the workflows use, from shipped templates."""

from __future__ import annotations

import json
import os
from pathlib import Path

from prodigyctl.commands.init import shipped
from tests.cli import ctl

WORKFLOW = """
- claude: "/prodigy-lint src"
  on_failure:
    claude: "/prodigy-debug-test-failure --output ${shell.output}"
- shell: "make test"
- claude: "/my-own-command"
"""


def test_init_installs_what_the_workflows_use_and_keeps_the_users_files(repo: Path):
    workflows = repo / ".prodigy" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(WORKFLOW)
    mine = repo / ".claude" / "commands" / "prodigy-lint.md"
    mine.parent.mkdir(parents=True)
    mine.write_text("my own lint prompt\n")

    done = ctl("init", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    rows = {row["command"]: row["status"] for row in json.loads(done.stdout)}
    assert rows == {
        "prodigy-lint": "kept",
        "prodigy-debug-test-failure": "installed",
        "my-own-command": "no_template",
    }
    assert mine.read_text() == "my own lint prompt\n"
    installed = repo / ".claude" / "commands" / "prodigy-debug-test-failure.md"
    assert installed.read_text() == shipped()["prodigy-debug-test-failure"].read_text()
    assert installed.stat().st_mode & 0o777 == 0o644  # a file of the user's repository

    forced = ctl("init", "--force", cwd=repo)
    assert forced.returncode == 0 and "/prodigy-lint: replaced (--force)" in forced.stdout
    assert mine.read_text() == shipped()["prodigy-lint"].read_text()


def test_init_takes_named_workflows_commands_or_all(repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("- claude: /prodigy-coverage\n")
    assert "/prodigy-coverage: installed" in ctl("init", str(wf), cwd=repo, check=True).stdout
    picked = ctl("init", "--commands", "prodigy-code-review,/prodigy-lint", cwd=repo, check=True)
    assert "/prodigy-code-review: installed" in picked.stdout
    assert "/prodigy-lint: installed" in picked.stdout
    everything = ctl("init", "--all", "--json", cwd=repo, check=True)
    assert {row["command"] for row in json.loads(everything.stdout)} == set(shipped())
    unknown = ctl("init", "--commands", "nope", cwd=repo)
    assert unknown.returncode == 2 and "no template for nope" in unknown.stderr


def test_init_with_nothing_to_install_says_how_to_choose(repo: Path):
    (repo / "broken.yml").write_text("- shell: [unclosed\n")
    done = ctl("init", cwd=repo)
    assert done.returncode == 0
    assert "--all" in done.stdout and "prodigy-lint" in done.stdout
    assert "broken.yml: not read" in done.stderr
    assert not (repo / ".claude").exists()


def test_init_outside_a_repository_says_where_it_installs(tmp_path: Path):
    folder = tmp_path / "not-a-repo"
    folder.mkdir()
    ceiling = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)}  # no repository above
    done = ctl("init", "--commands", "prodigy-lint", cwd=folder, env=ceiling)
    assert done.returncode == 0, done.stderr
    assert f"note: {folder} is not in a git repository; installing into it" in done.stderr
    assert (folder / ".claude" / "commands" / "prodigy-lint.md").is_file()
    as_json = ctl("init", "--all", "--json", cwd=folder, env=ceiling)
    assert as_json.returncode == 0 and as_json.stderr == ""  # the rows name the paths
    json.loads(as_json.stdout)
