"""MapReduce through the real daemon: `prodigyctl run`, a `kill -9` in the middle of the
map phase followed by a restart, and `resume-job`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prodigyd.store import checkpoints
from tests.cli import ctl, json_lines, wait_for
from tests.daemonkit import Daemon, rpc
from tests.gitutil import git


def test_run_shows_the_phases_and_lands_the_agents_work(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("""
name: minimal
mode: mapreduce
setup:
  - shell: "printf '[\\"a\\",\\"b\\",\\"c\\"]' > items.json"
map:
  input: items.json
  max_parallel: 2
  agent_template:
    - shell: "echo ${item} > out-${item}.txt"
reduce:
  - shell: "echo reduced ${map.successful}/${map.total}"
""")
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "── setup phase" in out and "── map phase" in out and "── reduce phase" in out
    assert "Processing 3 items with 2 parallel agents" in out
    assert (
        "[item_1] ✓ done" in out and "Map phase completed: 3 successful, 0 failed (total: 3)" in out
    )
    assert "reduced 3/3" in out
    landed = set(git(repo, "ls-tree", "--name-only", "main").split())
    assert {"out-a.txt", "out-b.txt", "out-c.txt"} <= landed and "items.json" not in landed
    session = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
    assert session["mode"] == "mapreduce" and session["items"] == "3/3"
    events = json_lines(ctl("logs", session["id"], "--json", check=True).stdout)
    agents = [e for e in events if e["event_type"] == "agent_completed"]
    assert sorted(e["item_id"] for e in agents) == ["item_0", "item_1", "item_2"]


@pytest.mark.timeout(300)
def test_kill_9_mid_map_then_restart_finishes_without_rerunning_finished_work(
    isolated: Path, repo: Path, tmp_path: Path
):
    counts = tmp_path / "counts"
    counts.mkdir()
    wf = tmp_path / "wf.yml"
    wf.write_text(f"""
name: crashy
mode: mapreduce
setup:
  - shell: "echo setup >> {counts}/setup; seq 8 > items.txt"
map:
  input: "cat items.txt"
  max_parallel: 2
  agent_template:
    - shell: |
        echo run >> {counts}/item-${{item}}
        sleep 0.4
        echo ${{item}} > out-${{item}}.txt
reduce:
  - shell: "echo reduce >> {counts}/reduce; ls out-*.txt | wc -l > total.txt"
""")
    daemon = Daemon(isolated)
    daemon.start()
    try:
        job = rpc(
            isolated,
            "jobs.submit",
            {
                "workflow": str(wf),
                "cwd": str(repo),
                "env": __import__("os").environ.copy(),
                "merge": "auto",
            },
        )
        wait_for(lambda: _recorded(job["id"]) >= 3, timeout=120, what="three items to finish")
        daemon.kill()
        finished_before = _recorded_items(job["id"])
        daemon.start()  # auto_resume picks the job up again
        wait_for(
            lambda: (
                rpc(isolated, "sessions.show", {"session_id": job["id"]})["status"]
                in ("completed", "failed")
            ),
            timeout=180,
            what="the resumed job to finish",
        )
        final = rpc(isolated, "sessions.show", {"session_id": job["id"]})
    finally:
        ctl("daemon", "stop")
    assert final["status"] == "completed", final["error"]
    assert (counts / "setup").read_text() == "setup\n"  # setup was not run again
    assert (counts / "reduce").read_text() == "reduce\n"  # reduce ran exactly once
    for item in finished_before:
        assert (counts / f"item-{item}").read_text() == "run\n", f"finished item {item} ran again"
    assert all((counts / f"item-{n}").exists() for n in range(1, 9))
    assert git(repo, "show", "main:total.txt").strip() == "8"
    merges = git(repo, "log", "--merges", "--format=%s", "main").splitlines()
    agent_merges = [m for m in merges if m.startswith("Merge agent ")]
    assert len(agent_merges) == len(set(agent_merges)) == 8  # each item merged exactly once


def _recorded(job_id: str) -> int:
    return len(_recorded_items(job_id))


def _recorded_items(job_id: str) -> list[str]:
    recorded = checkpoints.records(job_id, "map")
    return [r["result"]["item"] for r in recorded if r.get("kind") == "result"]


def test_resume_job_continues_a_failed_mapreduce_job(daemon: Path, repo: Path, tmp_path: Path):
    flag = tmp_path / "fixed"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"""
mode: mapreduce
map:
  input: "printf '1\\n2\\n'"
  agent_template:
    - shell: "echo ${{item}} > out-${{item}}.txt"
reduce:
  - shell: "test -f {flag}"
""")
    first = ctl("run", str(wf), "-y", cwd=repo)
    assert first.returncode == 1
    sid = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    flag.touch()
    again = ctl("resume-job", sid, "-y", cwd=repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 of 2 items done, 0 failed" in again.stdout
    assert "Processing" not in again.stdout  # no item ran again
    assert {"out-1.txt", "out-2.txt"} <= set(git(repo, "ls-tree", "--name-only", "main").split())
    standard = tmp_path / "std.yml"
    standard.write_text("- shell: 'false'\n")
    ctl("run", str(standard), cwd=repo)
    other = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    refused = ctl("resume-job", other)
    assert refused.returncode == 2 and "not a MapReduce job" in refused.stderr


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.timeout(900)
def test_a_thousand_items_at_eight_parallel_in_bounded_memory(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text("""
name: thousand
mode: mapreduce
map:
  input: "seq 1000"
  max_parallel: 8
  agent_template:
    - shell: "test -n ${item}"
reduce:
  - shell: "echo ${map.successful}/${map.total} > count.txt"
""")
    pid = int((daemon / "prodigyd.pid").read_text())
    job = json.loads(ctl("run", str(wf), "-y", "--detach", "--json", cwd=repo, check=True).stdout)
    wait_for(lambda: _recorded(job["id"]) >= 100, timeout=300, what="100 items")
    early = _rss_mb(pid)
    wait_for(
        lambda: (
            json.loads(ctl("sessions", "show", job["id"], "--json").stdout)["status"] == "completed"
        ),
        timeout=800,
        what="the job to complete",
    )
    late = _rss_mb(pid)
    print(f"\ndaemon RSS after 100 items: {early:.1f} MB, after 1000: {late:.1f} MB")
    assert git(repo, "show", "main:count.txt") == "1000/1000\n"
    pooled = json.loads(ctl("worktree", "ls", "--json", check=True).stdout)
    # 8 agents' slots, the session's and a spare, reused, never 1000 (the pool keeps those
    # beyond parallel_worktrees a minute, for the next run)
    assert len(pooled) <= 10
    assert late - early < 25, f"RSS grew {late - early:.1f} MB over 900 items"


@pytest.mark.parametrize("resumable", [False, True], ids=["cancel", "cancel-resumable"])
def test_every_agent_a_cancel_stops_gets_an_end_in_the_events(
    daemon: Path, repo: Path, tmp_path: Path, resumable: bool
):
    wf = tmp_path / "wf.yml"
    wf.write_text("""
mode: mapreduce
map:
  input: "seq 4"
  max_parallel: 2
  agent_template:
    - shell: "sleep 60"
""")
    ctl("run", str(wf), "--detach", cwd=repo, check=True)
    job = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]

    def events(kind: str) -> list[dict]:
        listed = ctl("events", "ls", "--session", job, "--type", kind, "--json", check=True)
        return json_lines(listed.stdout)

    wait_for(lambda: len(events("agent_started")) == 2, what="two agents running")
    ctl("cancel", job, *(["--resumable"] if resumable else []), check=True)
    started = {e["item_id"] for e in events("agent_started")}
    wait_for(lambda: len(events("agent_stopped")) == 2, what="each agent's end")
    stopped = events("agent_stopped")
    assert {e["item_id"] for e in stopped} == started and len(started) == 2
    assert all(e["attempt"] == 1 for e in stopped)
    assert events("agent_failed") == [] and events("agent_completed") == []


def test_after_a_kill_9_the_job_shows_the_items_its_map_journal_holds(
    isolated: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The record's item counts are saved at most once a second; the map journal is the
    account. A daemon killed mid-phase showed fewer items done than had been."""
    monkeypatch.setenv("PRODIGY_AUTO_RESUME", "false")  # the counts as recovery left them
    wf = tmp_path / "wf.yml"
    wf.write_text("""
mode: mapreduce
map:
  input: "seq 400"
  max_parallel: 4
  agent_template:
    - shell: "if [ ${item} = 3 ]; then exit 1; fi"
""")
    daemon = Daemon(isolated)
    daemon.start()
    try:
        params = {"workflow": str(wf), "cwd": str(repo), "env": dict(os.environ), "merge": "auto"}
        job = rpc(isolated, "jobs.submit", params)["id"]
        wait_for(lambda: _recorded(job) >= 30, timeout=120, what="thirty items to finish")
        daemon.kill()
        daemon.start()
        shown = rpc(isolated, "sessions.show", {"session_id": job})
    finally:
        ctl("daemon", "stop")
    results = [r["result"] for r in checkpoints.records(job, "map") if r.get("kind") == "result"]
    assert shown["status"] == "interrupted"
    assert shown["processed_items"] == len(results) >= 30
    assert shown["failed_items"] == sum(1 for r in results if not r["success"]) == 1
