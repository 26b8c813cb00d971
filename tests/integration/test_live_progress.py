"""On a terminal: the live progress line of a map phase and a foreach step, and the merge
prompt's commits and diffstat. Run through a real pseudo-terminal, as a user sees it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.cli import ctl
from tests.gitutil import git

ERASE = "\r\x1b[2K"


def run_on_terminal(
    args: list[str], cwd: Path, answer: tuple[str, str] | None = None, timeout: float = 120
) -> tuple[int, str]:
    """`prodigyctl ARGS` with a pty as stdin, stdout and stderr; `answer` = (prompt, reply)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "prodigyctl.main", *args],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "COLUMNS": "200"},
        close_fds=True,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed: the program ended
                break
            if not chunk:
                break
            out += chunk
            if answer and not answered and answer[0].encode() in out:
                os.write(master, answer[1].encode())
                answered = True
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=10), out.decode(errors="replace")


MAP = """
mode: mapreduce
map:
  input: "seq 1 8"
  max_parallel: 2
  agent_template:
    - shell: "echo item ${item}"
"""


def test_a_map_phase_shows_a_live_progress_line_and_each_items_outcome(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "map.yml"
    wf.write_text(MAP)
    code, out = run_on_terminal(["run", str(wf), "-y"], repo)
    assert code == 0, out
    assert ERASE + "map [" in out and "8/8 · 0 running" in out
    assert out.count("✓ done in") == 8  # one outcome line per item...
    assert "started in" not in out and "│ item" not in out  # ...not its start and output
    code, verbose = run_on_terminal(["run", str(wf), "-y", "-v"], repo)
    assert code == 0, verbose
    assert verbose.count("started in") == 8 and "│ item 3" in verbose


def test_a_foreach_step_shows_its_progress(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "each.yml"
    wf.write_text(
        "- foreach:\n    foreach: [a, b, c]\n    parallel: 2\n    do:\n      - shell: 'echo ${item}'\n"
    )
    code, out = run_on_terminal(["run", str(wf), "-y"], repo)
    assert code == 0, out
    assert ERASE + "foreach 1 [" in out and "2/3 · 1 running" in out
    assert "│ a" not in out  # the items' output is what the progress line stands for


def test_the_merge_prompt_shows_the_commits_and_diffstat_that_would_land(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(
        '- shell: \'printf "a\\nb\\n" > new.txt && git add new.txt && git commit -qm "add new"\'\n'
    )
    code, out = run_on_terminal(["run", str(wf)], repo, answer=("Merge prodigy-", "n\n"))
    assert code == 0, out
    landing = out[out.index("What would land:") : out.index("Merge prodigy-")]
    assert "add new" in landing and "new.txt | 2 ++" in landing
    assert "to merge it: prodigyctl merge" in out
    assert "new.txt" not in git(repo, "ls-files")  # not merged: the answer was no


def test_the_merge_prompt_shows_files_a_workflow_left_uncommitted(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo stamp > stamp.txt'\n")  # no commit of its own
    code, out = run_on_terminal(["run", str(wf)], repo, answer=("Merge prodigy-", "n\n"))
    assert code == 0, out
    landing = out[out.index("What would land:") : out.index("Merge prodigy-")]
    assert "not committed yet (the merge commits them):" in landing
    assert "?? stamp.txt" in landing


def test_ps_and_sessions_ls_count_a_map_jobs_items(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "map.yml"
    wf.write_text(MAP.replace("echo item ${item}", "test ${item} != 3"))
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line for line in ctl("ps", check=True).stdout.splitlines() if "mapreduce-" in line)
    assert "8/8 items, 1 failed" in row
    assert "8/8 items, 1 failed" in ctl("sessions", "ls", check=True).stdout
