"""What ends agents on a cluster: a cancel kills the running step on its worker; a worker
killed mid-task is `WorkerLost` and goes to the DLQ; a daemon killed outright stops its
tasks on the workers, and its restart merges no agent twice."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.cli import ctl, json_lines, wait_for
from tests.daemonkit import Daemon
from tests.dask.cluster import Cluster
from tests.gitutil import git

#: Each agent writes its step's pid outside its clone, then waits for GO (or forever).
WAITING = """
name: waiting
mode: mapreduce
setup:
  - shell: "echo '[0, 1, 2]' > items.json"
map:
  input: items.json
  max_parallel: 3
  agent_template:
    - shell: |
        echo $$ > {pids}/${{item}}.tmp && mv {pids}/${{item}}.tmp {pids}/${{item}}.pid
        if [ ${{item}} != {quick} ]; then
          while [ ! -f {go} ]; do sleep 0.05; done
        fi
        echo ${{item}} > out-${{item}}.txt && git add -A && git commit -qm "item ${{item}}"
"""


def waiting(tmp_path: Path, quick: int = -1) -> tuple[Path, Path, Path]:
    """The workflow file, the folder of pid files, and the file that lets agents go on
    (`quick`: the item that does not wait)."""
    pids, go = tmp_path / "pids", tmp_path / "GO"
    pids.mkdir()
    wf = tmp_path / "wf.yml"
    wf.write_text(WAITING.format(pids=pids, go=go, quick=quick))
    return wf, pids, go


def pid_of(pids: Path, item: int) -> int:
    return int((pids / f"{item}.pid").read_text())  # written whole: made, then renamed


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill(pid: int) -> None:
    """A step a killed worker left behind (its own process group): the test's to stop."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def events(job: str, kind: str) -> list[dict]:
    listed = ctl("events", "ls", "--session", job, "--type", kind, "--json", check=True)
    return json_lines(listed.stdout)


def latest() -> dict:
    return json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]


def test_cancel_kills_the_running_steps_on_the_workers(
    daemon: Path, repo: Path, tmp_path: Path, two_workers: Cluster
):
    wf, pids, _go = waiting(tmp_path)
    address = two_workers.address
    ctl("run", str(wf), "-y", "--detach", "--executor-address", address, cwd=repo, check=True)
    wait_for(lambda: len(list(pids.glob("*.pid"))) == 3, timeout=60, what="three agents running")
    running = [pid_of(pids, item) for item in range(3)]
    assert all(alive(pid) for pid in running)
    ctl("cancel", latest()["id"], check=True)
    wait_for(lambda: not any(alive(pid) for pid in running), timeout=30, what="steps killed")
    assert latest()["status"] == "cancelled"


def test_a_worker_killed_mid_task_is_worker_lost_and_dead_lettered(
    daemon: Path, repo: Path, tmp_path: Path, two_workers: Cluster
):
    wf, pids, go = waiting(tmp_path, quick=0)
    address = two_workers.address
    ctl("run", str(wf), "-y", "--detach", "--executor-address", address, cwd=repo, check=True)
    job = latest()["id"]
    wait_for(lambda: len(list(pids.glob("*.pid"))) == 3, timeout=60, what="three agents running")
    started = {e["item_id"]: e["worker"] for e in events(job, "agent_started")}
    victim = started["item_1"]
    lost = [item for item, worker in started.items() if worker == victim and item != "item_0"]
    try:
        two_workers.kill_worker(victim)
        go.write_text("go\n")  # the agents on the other worker finish
        wait_for(lambda: latest()["status"] != "running", timeout=60, what="the job to end")
    finally:
        for item in range(3):
            kill(pid_of(pids, item))
    entries = json.loads(ctl("dlq", "ls", job, "--json", check=True).stdout)
    daemon_log = (daemon / "logs" / "prodigyd.log").read_text()
    assert sorted(e["item_id"] for e in entries) == sorted(lost), daemon_log[-6000:]
    assert {e["error_type"] for e in entries} == {"WorkerLost"}
    merged = git(repo, "log", "--format=%s", "main")
    assert "item 1" not in merged and "item 0" in merged


def merges_per_item(repo: Path, branch: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for subject in git(repo, "log", "--format=%s", branch).splitlines():
        if subject.startswith("Merge agent "):
            item = subject.rsplit("(", 1)[1].rstrip(")")
            counts[item] = counts.get(item, 0) + 1
    return counts


def resumed_job_end() -> dict:
    """The newest job's record once its resume has ended (neither waiting nor running)."""
    wait_for(
        lambda: latest()["status"] not in ("queued", "running", "interrupted"),
        timeout=90,
        what="the resumed job to end",
    )
    return latest()


def test_a_daemon_killed_mid_phase_stops_its_tasks_and_merges_nothing_twice(
    isolated: Path, repo: Path, tmp_path: Path, two_workers: Cluster
):
    wf, pids, go = waiting(tmp_path, quick=0)
    daemon = Daemon(isolated)
    daemon.start()
    try:
        address = two_workers.address
        ctl("run", str(wf), "-y", "--detach", "--executor-address", address, cwd=repo, check=True)
        job = latest()["id"]
        wait_for(lambda: len(list(pids.glob("*.pid"))) == 3, timeout=60, what="agents running")
        wait_for(lambda: events(job, "agent_completed"), timeout=60, what="item 0 merged")
        orphans = [pid_of(pids, 1), pid_of(pids, 2)]
        daemon.kill()
        # the two agents in flight kept their bundle folders in the store, not in /tmp
        left = sorted((isolated / "tmp").glob("prodigy-dask-*"))
        assert len(left) == 2, left
        # the scheduler drops the dead client's tasks; their far sides kill their steps
        wait_for(lambda: not any(alive(pid) for pid in orphans), timeout=30, what="orphans gone")
        go.write_text("go\n")
        daemon.start()  # auto_resume runs the job on
        record = resumed_job_end()
    finally:
        stopped = ctl("daemon", "stop")
        assert daemon.proc is not None
        daemon.proc.wait(timeout=60)
        for item in range(3):
            if (pids / f"{item}.pid").exists():
                kill(pid_of(pids, item))
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert record["id"] == job and record["status"] == "completed", record
    assert merges_per_item(repo, "main") == {"item_0": 1, "item_1": 1, "item_2": 1}
    assert git(repo, "show", "main:out-2.txt") == "2\n"
    assert not any(folder.exists() for folder in left)  # the next daemon removed them


def test_a_daemon_stop_lets_remote_steps_finish_and_the_resume_runs_them_once(
    isolated: Path, repo: Path, tmp_path: Path, two_workers: Cluster
):
    """A graceful stop: each agent finishes the step it is in (they run on when GO comes);
    whatever of it was merged before the daemon stopped is not run again, the rest is, and
    no item is merged twice."""
    wf, pids, go = waiting(tmp_path)
    daemon = Daemon(isolated)
    daemon.start()
    try:
        address = two_workers.address
        ctl("run", str(wf), "-y", "--detach", "--executor-address", address, cwd=repo, check=True)
        job = latest()["id"]
        wait_for(lambda: len(list(pids.glob("*.pid"))) == 3, timeout=60, what="agents running")
        first = [pid_of(pids, item) for item in range(3)]
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGTERM)  # as `daemon stop` asks it
        go.write_text("go\n")  # the steps in flight end well, after the stop request
        daemon.proc.wait(timeout=60)
        assert not any(alive(pid) for pid in first)
        daemon.start()
        record = resumed_job_end()
    finally:
        stopped = ctl("daemon", "stop")
        assert daemon.proc is not None
        daemon.proc.wait(timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert record["id"] == job and record["status"] == "completed", record
    assert merges_per_item(repo, "main") == {"item_0": 1, "item_1": 1, "item_2": 1}
