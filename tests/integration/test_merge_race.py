"""Merged work is never reverted (issue 8): many jobs at once, each adding files of its
own, session merges into `main` landing while other sessions start from it and map agents
merge into their parents, with and without `kill -9` at random moments. At the end every
acknowledged job's files are on `main`, and no merge on `main` removed or changed a file.

(Before the fix a session that started while a merge landed could get its branch at the
new tip over the old tip's files, and its merge then reverted the other session's work.)
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest

from tests.cli import ctl, wait_for
from tests.daemonkit import Daemon, rpc, submit_until_acked
from tests.gitutil import commit_files, git

JOBS = 24
ITEMS = ("a", "b", "c")
TERMINAL = {"completed", "failed", "cancelled"}

STANDARD = """\
- shell: 'echo one > "f-$PRODIGY_SESSION_ID.txt"'
"""

MAPREDUCE = """\
name: race-map
mode: mapreduce
map:
  input: "printf 'a\\\\nb\\\\nc\\\\n'"
  max_parallel: 3
  agent_template:
    - shell: 'echo ${item} > "m-$PRODIGY_SESSION_ID-${item}.txt" && git add -A && git commit -qm ${item}'
      commit_required: true
"""


def _expected(sid: str, kind: str) -> set[str]:
    if kind == "map":
        return {f"m-{sid}-{item}.txt" for item in ITEMS}
    return {f"f-{sid}.txt"}


def _merges_that_change_files(repo: Path) -> list[str]:
    """Prodigy merge commits on main's first-parent line that delete or change a file
    (every job here only adds files of its own)."""
    bad = []
    log = git(repo, "log", "--first-parent", "--merges", "--format=%H %P", "main")
    for line in log.splitlines():
        commit, first_parent, *_ = line.split()
        changed = git(repo, "diff", "--name-only", "--diff-filter=DMT", first_parent, commit)
        if changed.strip():
            bad.append(f"{commit[:12]}: {changed.split()}")
    return bad


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kills", [0, 15])
def test_every_acknowledged_file_is_on_main(
    isolated: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kills: int
):
    commit_files(repo, {f"src/file-{n}.txt": f"{n}\n" for n in range(300)}, "a bigger tree")
    workflows = {"standard": tmp_path / "standard.yml", "map": tmp_path / "map.yml"}
    workflows["standard"].write_text(STANDARD)
    workflows["map"].write_text(MAPREDUCE)
    monkeypatch.setenv("PRODIGY_MAX_CONCURRENT_JOBS", "4")
    daemon = Daemon(isolated)
    daemon.start()
    acked: dict[str, str] = {}  # job id -> kind
    done_submitting = threading.Event()

    def submit() -> None:
        for number in range(JOBS):
            kind = "map" if number % 4 == 3 else "standard"
            params = {
                "workflow": str(workflows[kind]),
                "cwd": str(repo),
                "env": dict(os.environ),
                "merge": "auto",
                "idempotency_key": f"race-{number}",
            }
            acked[submit_until_acked(isolated, params)] = kind
        done_submitting.set()

    submitter = threading.Thread(target=submit, daemon=True)
    submitter.start()
    rng = random.Random(kills)
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.0, 0.6))
            daemon.kill()
            daemon.start()
        submitter.join(timeout=300)
        assert done_submitting.is_set(), "the submissions were not all acknowledged"

        def all_over() -> bool:
            listed = rpc(isolated, "sessions.list", {"limit": 1000})
            return {r["status"] for r in listed if r["id"] in acked} <= TERMINAL

        wait_for(all_over, timeout=300, what="every acknowledged job to finish")
        listed = {r["id"]: r for r in rpc(isolated, "sessions.list", {"limit": 1000})}
    finally:
        ctl("daemon", "stop")

    assert sorted(listed) == sorted(acked)  # one job per key
    assert {sid: r["status"] for sid, r in listed.items()} == dict.fromkeys(acked, "completed")
    on_main = set(git(repo, "ls-tree", "-r", "--name-only", "main").split())
    missing = {sid: _expected(sid, kind) - on_main for sid, kind in acked.items()}
    assert {sid: files for sid, files in missing.items() if files} == {}
    assert _merges_that_change_files(repo) == []
    assert git(repo, "fsck", "--no-progress", "--no-dangling") == ""
