"""Live views against the real daemon: `logs`, `follow`, `events ls|follow|stats|export`,
`status`, and the resumable event cursor of `events.subscribe` across a daemon restart."""

from __future__ import annotations

import csv
import io
import json
import signal
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tests.cli import ctl, json_lines, wait_for

ENVELOPE = ["seq", "timestamp", "session_id", "event_type", "data"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def gated_workflow(tmp_path: Path, name: str, gate: Path) -> tuple[Path, Path]:
    """Three steps; the second signals it started, then holds until `gate` exists."""
    started = tmp_path / f"started-{name}"
    wf = write(
        tmp_path / f"{name}.yml",
        f"""
- shell: "echo before-{name}"
- shell: "touch {started}; while [ ! -f {gate} ]; do sleep 0.05; done; echo waited-{name}"
- shell: "echo after-{name}"
""",
    )
    return wf, started


def held_job(tmp_path: Path, repo: Path) -> tuple[str, Path]:
    """A detached job of `gated_workflow`, held in its second step (its first step's output
    printed), and the gate that lets it go on."""
    gate = tmp_path / "gate"
    wf, started = gated_workflow(tmp_path, "job", gate)
    session_id = detach(wf, repo)
    wait_for(started.exists, what="step 2 to start")
    return session_id, gate


def released(args: tuple[str, ...], note: str, gate: Path) -> tuple[int, str, str]:
    """`prodigyctl ARGS` watching a held job: once it says `note` on stderr (it watches),
    the job is let go; its exit code and what it printed, once the job has ended."""
    watcher = popen(*args)
    try:
        assert note in watcher.stderr.readline()
        gate.touch()
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    return watcher.returncode, out, err


def ticking_workflow(tmp_path: Path, name: str, gate: Path) -> Path:
    """Two steps; the first prints `tick` every 50 ms until `gate` exists, then
    `waited-<name>`. A `--json` follower says nothing until an event comes: one that has
    printed a tick is subscribed (the events of a live subscription arrive from then on)."""
    return write(
        tmp_path / f"{name}.yml",
        f"""
- shell: "until [ -f {gate} ]; do echo tick; sleep 0.05; done; echo waited-{name}"
- shell: "echo after-{name}"
""",
    )


def detach(wf: Path, repo: Path) -> str:
    return ctl("run", str(wf), "--detach", "-y", cwd=repo, check=True).stdout.strip()


def run_to_end(wf: Path, repo: Path, *extra: str) -> str:
    ctl("run", str(wf), *extra, cwd=repo, check=True)
    return json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]


def popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "prodigyctl.main", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def status_of(session_id: str) -> str:
    return json.loads(ctl("sessions", "show", session_id, "--json", check=True).stdout)["status"]


# -- logs --------------------------------------------------------------------------------


def test_logs_of_a_finished_session_show_what_run_showed(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "wf.yml", "- shell: 'echo one'\n- shell: 'echo two'\n")
    ran = ctl("run", str(wf), "-y", cwd=repo, check=True)
    session_id = json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]
    shown = ctl("logs", session_id)
    assert shown.returncode == 0, shown.stderr
    assert ran.stdout in shown.stdout  # the same lines, after the queued one
    assert "[1/2] shell: echo one" in shown.stdout and "│ two" in shown.stdout
    assert shown.stdout.rstrip().endswith(f"session {session_id} completed")
    events = json_lines(ctl("logs", session_id, "--json", check=True).stdout)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["event_type"] == "session_finished"
    followed = ctl("logs", "-f", session_id, "--json", check=True)  # finished: prints, exits
    assert json_lines(followed.stdout) == events


def test_logs_of_a_session_awaiting_merge_end_with_how_to_merge_it(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = write(tmp_path / "wf.yml", "- shell: 'echo one > one.txt'\n")
    ran = ctl("run", str(wf), cwd=repo, check=True)  # no terminal, no -y: it waits
    session_id = json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]
    assert f"to merge it: prodigyctl merge {session_id}" in ran.stdout
    for follow in ((), ("-f",)):
        shown = ctl("logs", *follow, session_id[-6:], check=True)  # by its tag
        assert shown.stderr.strip() == f"(to merge it: prodigyctl merge {session_id})"
    done = run_to_end(write(tmp_path / "two.yml", "- shell: 'true'\n"), repo, "-y")
    assert "to merge it" not in ctl("logs", done, check=True).stderr


def test_logs_of_an_unknown_session_exit_3(daemon: Path):
    done = ctl("logs", "workflow-1-nosuch")
    assert done.returncode == 3 and "workflow-1-nosuch" in done.stderr


def test_logs_follow_prints_the_backlog_then_live_events_once(
    daemon: Path, repo: Path, tmp_path: Path
):
    session_id, gate = held_job(tmp_path, repo)
    human = popen("logs", "-f", session_id)
    as_json = popen("logs", "--follow", "--json", session_id)
    try:
        for line in human.stdout:  # the backlog arrives while the step still waits
            if "[2/3]" in line:
                break
        gate.touch()
        out, err = human.communicate(timeout=60)
        json_out, json_err = as_json.communicate(timeout=60)
    finally:
        human.kill()
        as_json.kill()
    assert human.returncode == 0, err
    assert "│ waited-job" in out and "│ after-job" in out
    assert out.rstrip().endswith(f"session {session_id} completed")
    assert as_json.returncode == 0, json_err
    events = json_lines(json_out)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # no gap, no repeat
    assert events[-1]["event_type"] == "session_finished"


def test_logs_follow_exits_as_run_would_have(daemon: Path, repo: Path, tmp_path: Path):
    gate = tmp_path / "gate"
    wf = write(
        tmp_path / "fails.yml",
        f"- shell: 'while [ ! -f {gate} ]; do sleep 0.05; done; exit 3'\n",
    )
    session_id = detach(wf, repo)
    follower = popen("logs", "-f", session_id)
    try:
        gate.touch()
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 1, out + err  # `run` of it exits 1
    assert f"session {session_id} failed" in out
    again = ctl("logs", session_id)  # over: printing its history is no failure of logs
    assert again.returncode == 0 and f"session {session_id} failed" in again.stdout


def test_logs_without_follow_does_not_wait_for_a_running_session(
    daemon: Path, repo: Path, tmp_path: Path
):
    session_id, gate = held_job(tmp_path, repo)
    try:
        shown = ctl("logs", session_id, timeout=30)
        assert shown.returncode == 0, shown.stderr
        assert "│ before-job" in shown.stdout and "after-job" not in shown.stdout
        assert f"prodigyctl logs -f {session_id}" in shown.stderr
    finally:
        gate.touch()
    wait_for(lambda: status_of(session_id) == "completed", what="the session to finish")


# -- follow ------------------------------------------------------------------------------


def test_follow_tags_the_lines_of_concurrent_jobs(daemon: Path, repo: Path, tmp_path: Path):
    gate = tmp_path / "gate"
    wf_a, started_a = gated_workflow(tmp_path, "alpha", gate)
    wf_b, started_b = gated_workflow(tmp_path, "beta", gate)
    ids = {"alpha": detach(wf_a, repo), "beta": detach(wf_b, repo)}
    wait_for(lambda: started_a.exists() and started_b.exists(), what="both jobs to hold")
    code, out, err = released(("follow",), "Following 2 active job(s)", gate)
    assert code == 0, err
    lines = out.splitlines()
    for name, session_id in ids.items():
        tag = f"[{session_id[-6:]}] "
        mine = [line for line in lines if line.startswith(tag)]
        assert f"{tag}  │ waited-{name}" in mine and f"{tag}  │ after-{name}" in mine
        assert mine[-1] == f"{tag}session {session_id} completed"
        held = mine.index(f"{tag}  │ waited-{name}")  # the step it joined is named first
        assert mine[held - 1].startswith(f"{tag}[2/3] shell: touch "), mine
        assert f"{tag}  │ before-{name}" not in mine  # nor anything before that step
    assert all(line.startswith("[") for line in lines)


def test_follow_with_nothing_active(daemon: Path):
    done = ctl("follow")
    assert done.returncode == 0 and done.stdout.strip() == "No active jobs."
    as_json = ctl("follow", "--json")  # no lines: no note either, on stdout or stderr
    assert (as_json.returncode, as_json.stdout, as_json.stderr) == (0, "", "")


def test_follow_all_sees_jobs_submitted_later_until_ctrl_c(
    daemon: Path, repo: Path, tmp_path: Path
):
    gate = tmp_path / "gate"
    ticking = detach(ticking_workflow(tmp_path, "ticking", gate), repo)
    watcher = popen("follow", "--all", "--json")
    try:
        assert json.loads(watcher.stdout.readline())["session_id"] == ticking  # subscribed
        wf = write(tmp_path / "wf.yml", "- shell: 'echo later'\n")
        session_id = run_to_end(wf, repo, "-y")
        seen = []
        for line in watcher.stdout:
            seen.append(json.loads(line))
            if seen[-1]["event_type"] == "session_finished":
                break
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
        gate.touch()
    assert watcher.returncode == 130
    assert "Following" not in err  # no note under --json
    assert {e["session_id"] for e in seen} == {ticking, session_id}
    assert seen[-1]["session_id"] == session_id
    assert any(e.get("line") == "later" for e in seen)
    wait_for(lambda: status_of(ticking) == "completed", what="the ticking job to finish")


# -- events ------------------------------------------------------------------------------


def test_events_ls_filters_by_session_type_and_time(daemon: Path, repo: Path, tmp_path: Path):
    first = run_to_end(write(tmp_path / "a.yml", "- shell: 'echo a'\n"), repo, "-y")
    second = run_to_end(
        write(tmp_path / "b.yml", "- shell: 'echo b'\n- shell: 'true'\n"), repo, "-y"
    )

    def ls(*args: str) -> list[dict[str, Any]]:
        return json_lines(
            ctl("events", "ls", "--json", "--limit", "100000", *args, check=True).stdout
        )

    everything = ls()
    assert {e["session_id"] for e in everything} == {first, second}
    mine = ls("--session", first)
    assert mine and {e["session_id"] for e in mine} == {first}
    assert [e["seq"] for e in mine] == list(range(1, len(mine) + 1))
    completed = ls("--type", "step_completed")
    assert len(completed) == 3 and {e["event_type"] for e in completed} == {"step_completed"}
    assert ls("--session", second, "--type", "step_completed")[-1]["display"] == "shell: true"
    assert ls("--since", "10m") == everything
    assert ls("--since", "2999-01-01T00:00:00Z") == []
    assert ls("--since", everything[-1]["timestamp"])[-1] == everything[-1]
    newest = ctl("events", "ls", "--json", "--limit", "2", check=True)
    assert (json_lines(newest.stdout), newest.stderr) == (everything[-2:], "")  # --limit bounds
    cut = ctl("events", "ls", "--limit", "2", check=True)
    assert cut.stderr == "(the newest 2 matching events; --limit shows more)\n"
    human = ctl("events", "ls", "--session", second, check=True).stdout
    assert f"{second[-6:]} step_output" in " ".join(human.split()) and "line=b" in human
    bad = ctl("events", "ls", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr
    assert ctl("events", "ls", "--session", "workflow-1-nosuch").returncode == 3


def test_events_stats_count_by_type_and_session(daemon: Path, repo: Path, tmp_path: Path):
    first = run_to_end(write(tmp_path / "a.yml", "- shell: 'echo a'\n"), repo, "-y")
    second = run_to_end(
        write(tmp_path / "b.yml", "- shell: 'echo b'\n- shell: 'true'\n"), repo, "-y"
    )
    everything = json_lines(ctl("events", "ls", "--json", "--limit", "100000", check=True).stdout)
    stats = json.loads(ctl("events", "stats", "--json", check=True).stdout)
    assert stats["total"] == len(everything)
    assert stats["by_type"]["step_completed"] == 3 and stats["by_type"]["session_finished"] == 2
    assert set(stats["by_session"]) == {first, second}
    assert (
        stats["first"] == everything[0]["timestamp"]
        and stats["last"] == everything[-1]["timestamp"]
    )
    one = json.loads(ctl("events", "stats", "--session", first, "--since", "1h", "--json").stdout)
    assert set(one["by_session"]) == {first} and one["by_type"]["step_completed"] == 1
    human = ctl("events", "stats", check=True).stdout
    assert f"{len(everything)} events" in human and "step_completed" in human and second in human


def test_events_export_csv_and_json(daemon: Path, repo: Path, tmp_path: Path):
    session_id = run_to_end(write(tmp_path / "a.yml", "- shell: 'echo \"a, b\"'\n"), repo, "-y")
    stored = json_lines(ctl("events", "ls", "--json", "--limit", "100000", check=True).stdout)
    exported = ctl("events", "export", "--format", "csv", "--session", session_id, check=True)
    reader = csv.DictReader(io.StringIO(exported.stdout))
    assert reader.fieldnames == ENVELOPE
    rows = list(reader)
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in stored]
    output = next(r for r in rows if r["event_type"] == "step_output")
    assert json.loads(output["data"])["line"] == "a, b"
    target = tmp_path / "out" / "events.json"
    target.parent.mkdir()
    done = ctl("events", "export", "--type", "step_output", "--output", str(target), check=True)
    assert done.stdout == "" and str(target) in done.stderr
    assert [e["line"] for e in json.loads(target.read_text())] == ["a, b"]
    assert list(target.parent.iterdir()) == [target]  # no temp file left behind


def test_events_follow_one_session_filtered_by_type(daemon: Path, repo: Path, tmp_path: Path):
    session_id, gate = held_job(tmp_path, repo)
    args = ("events", "follow", "--session", session_id, "--type", "step_output")
    code, out, err = released(args, "Following the events of", gate)
    assert code == 0, err  # ended by session_finished, though not shown
    assert [line.split("line=")[1] for line in out.splitlines()] == ["waited-job", "after-job"]


def test_events_follow_replay_prints_what_came_before_then_follows(
    daemon: Path, repo: Path, tmp_path: Path
):
    session_id, gate = held_job(tmp_path, repo)
    args = ("events", "follow", "--session", session_id, "--type", "step_output", "--replay")
    code, out, err = released(args, "Following the events of", gate)
    assert code == 0, err
    lines = [line.split("line=")[1] for line in out.splitlines()]
    assert lines == ["before-job", "waited-job", "after-job"]  # the first was before it began
    over = ctl(*args, check=True)  # finished: the stored story, then the end is said
    assert [line.split("line=")[1] for line in over.stdout.splitlines()] == lines
    assert "is completed: no more events" in over.stderr
    refused = ctl("events", "follow", "--replay")
    assert refused.returncode == 2 and "--replay needs --session" in refused.stderr


def test_events_follow_json_prints_the_events_alone(daemon: Path, repo: Path, tmp_path: Path):
    gate = tmp_path / "gate"
    session_id = detach(ticking_workflow(tmp_path, "job", gate), repo)
    watcher = popen("events", "follow", "--session", session_id, "--type", "step_output", "--json")
    try:
        assert json.loads(watcher.stdout.readline())["line"] == "tick"  # subscribed
        gate.touch()
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
        gate.touch()
    assert (watcher.returncode, err) == (0, "")  # ended by session_finished, though not shown
    lines = [e["line"] for e in json_lines(out)]
    assert lines[-2:] == ["waited-job", "after-job"] and set(lines[:-2]) <= {"tick"}
    finished = ctl("events", "follow", "--session", session_id, "--json", check=True)
    assert (finished.stdout, finished.stderr) == ("", "")  # it is over: no note, no lines


# -- status ------------------------------------------------------------------------------


def test_status_reports_the_daemon(daemon: Path, repo: Path, tmp_path: Path):
    run_to_end(write(tmp_path / "a.yml", "- shell: 'true'\n"), repo, "-y")
    info = json.loads(ctl("status", "--json", check=True).stdout)
    assert info["running"] is True
    assert info["pid"] == int((daemon / "prodigyd.pid").read_text())
    assert info["home"] == str(daemon) and info["store_bytes"] > 0
    assert info["jobs"] == {"completed": 1} and info["running_sessions"] == []
    assert info["max_concurrent_jobs"] >= 1 and info["accepting"] is True
    assert info["version"] == version("prodigy") and info["uptime"] >= 0
    human = ctl("status", check=True).stdout
    assert f"pid:{' ' * 13}{info['pid']}" in human and "1 completed" in human
    assert "store:" in human and "B" in human and str(daemon) in human


def test_status_without_a_daemon_exits_5_and_starts_none(isolated: Path):
    done = ctl("status")
    assert done.returncode == 5 and done.stdout.strip() == "prodigyd is not running"
    assert json.loads(ctl("status", "--json").stdout) == {"running": False}
    assert not (isolated / "prodigyd.sock").exists() and not (isolated / "prodigyd.pid").exists()


# -- the resumable cursor ------------------------------------------------------------------


class Subscriber:
    """events.subscribe spoken by hand, to see exactly what the daemon sends."""

    def __init__(self, home: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(home / "prodigyd.sock"))
        self.reader = self.sock.makefile("rb")
        self.replied = False

    def subscribe(self, session_id: str, since: int) -> None:
        msg = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "events.subscribe",
            "params": {"session_id": session_id, "since": since},
        }
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def events_until(self, last_seq: int) -> list[dict[str, Any]]:
        """Events up to `last_seq`; the reply to the subscribe must come too."""
        events: list[dict[str, Any]] = []
        while not (self.replied and events and events[-1]["seq"] >= last_seq):
            message = json.loads(self.reader.readline())
            if message.get("id") == 1:
                assert "result" in message, message
                self.replied = True
            else:
                events.append(message["params"]["event"])
        return events

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def test_a_cursor_yields_exactly_the_missed_events_across_restarts(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = write(tmp_path / "wf.yml", "- shell: 'echo x > x.txt'\n- shell: 'echo two'\n")
    session_id = run_to_end(wf, repo)  # no -y, no TTY: awaiting_merge, more events to come
    stored = json_lines(ctl("logs", session_id, "--json", check=True).stdout)
    last = stored[-1]["seq"]
    cursor = 3
    sub = Subscriber(daemon)
    sub.subscribe(session_id, cursor)
    before = sub.events_until(last)
    sub.close()
    assert before == stored[cursor:]

    ctl("daemon", "stop", check=True)
    ctl("daemon", "start", check=True)
    sub = Subscriber(daemon)
    sub.subscribe(session_id, cursor)
    assert sub.events_until(last) == before  # the same cursor: the same events, none twice
    sub.close()

    live = Subscriber(daemon)
    live.subscribe(session_id, last)
    ctl("merge", session_id, check=True)
    after = live.events_until(last + 1)
    while after[-1]["event_type"] != "session_finished":
        after += live.events_until(after[-1]["seq"] + 1)
    live.close()
    assert [e["seq"] for e in after] == list(range(last + 1, last + 1 + len(after)))
    every = json_lines(ctl("logs", session_id, "--json", check=True).stdout)
    assert every == stored + after


def test_sessions_ls_takes_several_statuses(daemon: Path, repo: Path, tmp_path: Path):
    ok = write(tmp_path / "ok.yml", "- shell: 'true'\n")
    bad = write(tmp_path / "bad.yml", "- shell: 'exit 3'\n")
    ids = {"completed": detach(ok, repo), "failed": detach(bad, repo)}
    for status, session_id in ids.items():
        wait_for(lambda s=session_id, want=status: status_of(s) == want, what=status)

    def listed(*args: str) -> set[str]:
        rows = json.loads(ctl("sessions", "ls", *args, "--json", check=True).stdout)
        return {row["id"] for row in rows}

    assert listed("--status", "failed") == {ids["failed"]}
    both = set(ids.values())
    assert listed("--status", "failed", "--status", "completed") == both  # any of them
    assert listed("--status", "failed,completed") == both
    refused = ctl("sessions", "ls", "--status", "failed,done")
    assert refused.returncode == 2 and "'done' is not a status" in refused.stderr


def test_sessions_show_says_which_completed_steps_their_when_skipped(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = write(tmp_path / "when.yml", "- shell: 'true'\n- shell: 'echo big'\n  when: 'false'\n")
    session_id = run_to_end(wf, repo, "-y")
    shown = ctl("sessions", "show", session_id, check=True).stdout
    assert "  1. shell: true (" in shown and "skipped" not in shown.split("  2.")[0]
    assert "  2. shell: echo big (0.00s) (skipped: when condition is false)" in shown
    steps = json.loads(ctl("sessions", "show", session_id, "--json", check=True).stdout)
    assert [s["skipped"] for s in steps["completed"]] == [False, True]
    assert "(skipped: when condition is false)" in ctl("checkpoints", "show", session_id).stdout
