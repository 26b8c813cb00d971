"""What prodigy's own commits leave out: caches a command left behind, and the map input
file a setup wrote (test what lands on the user's branch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import ctl
from tests.gitutil import git


def tracked(repo: Path) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", "main").split())


def test_a_setups_map_input_and_caches_are_not_merged(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text(
        """
mode: mapreduce
setup:
  - shell: "echo '[\\"a\\", \\"b\\"]' > items.json && echo kept > notes.txt"
  - shell: "mkdir -p src/__pycache__ && touch src/__pycache__/m.cpython-311.pyc stale.pyc"
map:
  input: items.json
  agent_template:
    - shell: "echo ${item} > out-${item}.txt && mkdir -p __pycache__ && touch __pycache__/x.pyc"
reduce:
  - shell: "test -f items.json && echo done > summary.txt"
"""
    )
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    files = tracked(repo)
    assert {"notes.txt", "out-a.txt", "out-b.txt", "summary.txt"} <= files
    assert "items.json" not in files  # the job's input, not its result
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_a_setups_map_input_outside_the_worktree_runs(
    daemon: Path, repo: Path, tmp_path: Path, where: str
):
    """The original's test-mapreduce-resume.yml: the setup writes the items to /tmp. No
    commit of prodigy's can leave out a file git does not have (git refused the job)."""
    items = tmp_path / "items.json" if where == "absolute" else Path("../items.json")
    wf = tmp_path / "wf.yml"
    wf.write_text(
        f"""
mode: mapreduce
setup:
  - shell: "echo '[\\"a\\", \\"b\\"]' > {items} && echo kept > notes.txt"
map:
  input: {items}
  agent_template:
    - shell: "echo ${{item}} > out-${{item}}.txt"
"""
    )
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {"notes.txt", "out-a.txt", "out-b.txt"} <= tracked(repo)


def test_an_input_file_the_workflow_commits_itself_is_merged(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(
        """
mode: mapreduce
setup:
  - shell: "echo '[1]' > items.json && git add items.json && git commit -qm items"
map:
  input: items.json
  agent_template:
    - shell: "echo ${item} > one.txt"
"""
    )
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {"items.json", "one.txt"} <= tracked(repo)


def test_exec_commits_what_the_command_left_but_not_its_caches(daemon: Path, repo: Path):
    done = ctl(
        "exec", "mkdir __pycache__ && touch __pycache__/a.pyc && echo x > real.txt", cwd=repo
    )
    assert done.returncode == 0, done.stdout + done.stderr
    files = tracked(repo)
    assert "real.txt" in files and "__pycache__/a.pyc" not in files
