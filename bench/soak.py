"""Crash soak: jobs whose every step leaves a recorded side effect, while a killer `kill -9`s
prodigyd at random moments; then an audit of what the crashes did.

Jobs are submitted at a steady pace (each with an idempotency key, retried across crashes until
acknowledged); most are a three-step workflow, every fifth a map-reduce job whose agents
each add a file, so session merges into `main` and agent merges into their parents
interleave. Every job adds only new files, each named for its session. A step appends
`<session> <step> <start time>` to an effects log before doing anything else.

After the killing stops the daemon runs until every acknowledged job is over, then the
audit reports:

- kill points: how many times the daemon was killed;
- acknowledged jobs, and lost ones: acknowledged but missing from the store, or completed
  without every one of their files on `main`;
- completed steps re-run: a step that started again after its completion was announced
  (a `step_completed` event) or recorded (its checkpoint); a step in flight at a crash
  runs again by design (at-least-once) and is counted apart;
- merges reverted (a prodigy merge commit on `main` that deletes or changes a file: jobs
  only add files) or duplicated (a session merged twice, or one key making two jobs);
- stuck jobs (not over within the settle time) and failed ones;
- `git fsck` of the repository.

The ratio is the wall time per job under kills against a floor measured in the same run:
the same jobs with no kills. The exit code is 1 when anything was lost, reverted,
duplicated, stuck or failed, a completed step ran again, or fsck complains.

    python bench/soak.py [--jobs 300] [--kill-interval 0.7] [--duration 900] [--kills N]
                         [--pace 0.5] [--floor-jobs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchkit import start_daemon, stop
from submit_latency import bench_env, make_repo

STEPS = 3  # steps of the standard job
ITEMS = ("a", "b")  # work items of the map-reduce job
MAP_EVERY = 5  # every fifth job is a map-reduce job
RESOLUTION = 0.001  # event and checkpoint times are recorded to the millisecond
TERMINAL = {"completed", "failed", "cancelled"}
MERGE_PREFIX = "Merge prodigy session "


def effect(effects: Path, step: str) -> str:
    """The shell that records a step's start: its side effect, before anything else."""
    return f'echo "$PRODIGY_SESSION_ID {step} $(date +%s.%N)" >> {effects}'


def write_workflows(root: Path, effects: Path) -> tuple[Path, Path]:
    """The standard job (each step adds a file; the last leaves it for the merge to commit)
    and the map-reduce job (each agent adds a file; reduce adds one)."""
    commit = "git add -A && (git diff --cached --quiet || git commit -qm step)"
    steps = []
    for n in range(STEPS):
        add = f'echo {n} > "f-$PRODIGY_SESSION_ID-{n}.txt"'
        tail = f" && {commit}" if n < STEPS - 1 else ""
        steps.append(f"- shell: '{effect(effects, str(n))} && {add}{tail}'\n")
    standard = root / "standard.yml"
    standard.write_text("".join(steps))
    mapreduce = root / "mapreduce.yml"
    printf_lines = "".join(f"{item}\\\\n" for item in ITEMS)  # YAML "\\n" -> printf's \n
    mapreduce.write_text(
        "name: soak-map\nmode: mapreduce\n"
        "map:\n"
        f"  input: \"printf '{printf_lines}'\"\n"
        "  max_parallel: 2\n"
        "  agent_template:\n"
        f"    - shell: 'echo ${{item}} > \"m-$PRODIGY_SESSION_ID-${{item}}.txt\" && {commit}'\n"
        "      commit_required: true\n"
        "reduce:\n"
        f"  - shell: 'echo done > \"r-$PRODIGY_SESSION_ID.txt\" && {commit}'\n"
    )
    return standard, mapreduce


def expected_files(sid: str, kind: str) -> set[str]:
    if kind == "map":
        return {f"m-{sid}-{item}.txt" for item in ITEMS} | {f"r-{sid}.txt"}
    return {f"f-{sid}-{n}.txt" for n in range(STEPS)}


# -- the daemon and its socket --------------------------------------------------------------


def rpc(home: Path, method: str, params: dict[str, Any]) -> Any:
    """One JSON-RPC call on a fresh connection; OSError/ValueError when the daemon is down."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(home / "prodigyd.sock"))
        message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        sock.sendall(json.dumps(message).encode() + b"\n")
        reply = json.loads(sock.makefile("rb").readline())
    if "error" in reply:
        raise ValueError(reply["error"])
    return reply["result"]


@dataclass
class Run:
    """What the submitter was told: key -> (session id, job kind)."""

    acked: dict[str, tuple[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def submit_jobs(
    home: Path,
    repo: Path,
    env: dict[str, str],
    workflows: tuple[Path, Path],
    prefix: str,
    count: int,
    run: Run,
    stop_event: threading.Event,
    pace: float = 0.0,
) -> None:
    """Submit `count` jobs, one every `pace` seconds, each key retried until acknowledged.

    `stop_event` stops it between keys only: a key once sent is retried until acknowledged
    (the daemon may have made its job already), so no job exists that nobody was told of.
    """
    for number in range(count):
        if stop_event.wait(pace):
            return
        kind = "map" if number % MAP_EVERY == MAP_EVERY - 1 else "standard"
        key = f"{prefix}-{number}"
        params = {
            "workflow": str(workflows[kind == "map"]),
            "cwd": str(repo),
            "env": env,
            "merge": "auto",
            "idempotency_key": key,
        }
        while True:
            try:
                sid = rpc(home, "jobs.submit", params)["id"]
            except (OSError, ValueError):
                time.sleep(0.01)  # down (or not answering yet): the same key again
                continue
            with run.lock:
                run.acked[key] = (sid, kind)
            break


def statuses(home: Path) -> dict[str, str]:
    return {r["id"]: r["status"] for r in rpc(home, "sessions.list", {"limit": 10_000})}


def wait_all_over(home: Path, run: Run, timeout: float) -> dict[str, str]:
    """Poll until every acknowledged job is over (or `timeout`); the last statuses seen."""
    deadline = time.monotonic() + timeout
    while True:
        seen = statuses(home)
        with run.lock:
            ids = [sid for sid, _ in run.acked.values()]
        if all(seen.get(sid) in TERMINAL for sid in ids) or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


# -- phases ---------------------------------------------------------------------------------


def floor_phase(
    home: Path,
    repo: Path,
    env: dict[str, str],
    workflows: tuple[Path, Path],
    jobs: int,
    run: Run,
    settle: float,
) -> float:
    """Seconds per job with no kills."""
    proc, _ = start_daemon(env)
    try:
        started = time.perf_counter()
        submit_jobs(home, repo, env, workflows, "floor", jobs, run, threading.Event())
        wait_all_over(home, run, settle)
        return (time.perf_counter() - started) / max(jobs, 1)
    finally:
        stop(proc, timeout=60)


def soak_phase(
    home: Path,
    repo: Path,
    env: dict[str, str],
    workflows: tuple[Path, Path],
    args: argparse.Namespace,
    run: Run,
) -> tuple[int, float]:
    """Submit while killing; returns (kill points, seconds per job, settling included)."""
    rng = random.Random(args.seed)
    stop_submitting = threading.Event()
    submitter = threading.Thread(
        target=submit_jobs,
        args=(home, repo, env, workflows, "soak", args.jobs, run, stop_submitting, args.pace),
        daemon=True,
    )
    proc, _ = start_daemon(env)
    started = time.perf_counter()
    submitter.start()
    kills = 0
    try:
        while time.perf_counter() - started < args.duration and (
            args.kills is None or kills < args.kills
        ):
            time.sleep(rng.uniform(0.0, 2 * args.kill_interval))
            proc.kill()
            proc.wait()
            kills += 1
            if kills % 100 == 0:  # a long soak says it is alive, on stderr
                print(f"{kills} kill points, {len(run.acked)} jobs acknowledged", file=sys.stderr)
            proc, _ = start_daemon(env)
        stop_submitting.set()  # the killing is over: the key in flight is the last
        submitter.join(timeout=args.settle)
        wait_all_over(home, run, args.settle)
        soak_jobs = sum(1 for key in run.acked if key.startswith("soak-"))
        return kills, (time.perf_counter() - started) / max(soak_jobs, 1)
    finally:
        stop_submitting.set()
        stop(proc, timeout=60)


# -- the audit ------------------------------------------------------------------------------


@dataclass
class Audit:
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    reruns_in_flight: int = 0  # at-least-once: the step in flight at a crash ran again
    rerun_after_announced: list[str] = field(default_factory=list)
    rerun_after_recorded: list[str] = field(default_factory=list)
    fsck: str = ""

    @property
    def ok(self) -> bool:
        bad = (
            self.lost,
            self.stuck,
            self.failed,
            self.reverted,
            self.duplicated,
            self.rerun_after_announced,
            self.rerun_after_recorded,
        )
        return not any(bad) and self.fsck == "ok"


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)


def audit(home: Path, repo: Path, run: Run, seen: dict[str, str], effects: Path) -> Audit:
    result = Audit()
    on_main = set(git(repo, "ls-tree", "-r", "--name-only", "main").stdout.split())
    for key, (sid, kind) in sorted(run.acked.items()):
        status = seen.get(sid)
        if status is None or (status == "completed" and not expected_files(sid, kind) <= on_main):
            result.lost.append(f"{key} ({sid})")
        elif status not in TERMINAL:
            result.stuck.append(f"{sid} {status}")
        elif status != "completed":
            result.failed.append(f"{sid} {status}")
    acked_ids = {sid for sid, _ in run.acked.values()}
    result.duplicated += [
        f"job {sid} made for no acknowledged key" for sid in seen if sid not in acked_ids
    ]
    audit_merges(repo, result)
    audit_steps(home, repo, run, effects, result)
    fsck = git(repo, "fsck", "--no-progress", "--no-dangling")
    result.fsck = (
        "ok"
        if fsck.returncode == 0 and not fsck.stdout.strip()
        else (f"exit {fsck.returncode}: {(fsck.stdout + fsck.stderr).strip()[:300]}")
    )
    return result


def audit_merges(repo: Path, result: Audit) -> None:
    """Every prodigy merge on main's first-parent line only adds files; each session once."""
    log = git(repo, "log", "--first-parent", "--format=%H %P%x09%s", "main").stdout
    merged: Counter[str] = Counter()
    for line in log.splitlines():
        shas, _, subject = line.partition("\t")
        commit, *parents = shas.split()
        if not subject.startswith(MERGE_PREFIX) or len(parents) < 2:
            continue
        merged[subject.removeprefix(MERGE_PREFIX).split()[0]] += 1
        changed = git(repo, "diff", "--name-only", "--diff-filter=DMT", parents[0], commit)
        if changed.stdout.strip():
            files = ", ".join(changed.stdout.split()[:5])
            result.reverted.append(f"{commit[:12]} ({subject}) changes {files}")
    result.duplicated += [f"session {sid} merged {n} times" for sid, n in merged.items() if n > 1]


def audit_steps(home: Path, repo: Path, run: Run, effects: Path, result: Audit) -> None:
    """Compare each standard step's starts with its completion: announced, and recorded."""
    os.environ["PRODIGY_HOME"] = str(home)  # the store modules read it at call time
    from prodigyd import paths
    from prodigyd.store import checkpoints
    from prodigyd.store.events import read_events

    starts: dict[tuple[str, int], list[float]] = {}
    for line in effects.read_text().splitlines() if effects.exists() else []:
        sid, step, stamp = line.split()
        if step.isdigit():
            starts.setdefault((sid, int(step)), []).append(float(stamp))
    repo_id = paths.repo_id(repo)
    for sid, kind in run.acked.values():
        if kind != "standard":
            continue
        saved = checkpoints.load(sid) or {}
        recorded = {
            s["step_index"]: _seconds(s["completed_at"]) for s in saved.get("completed_steps", [])
        }
        announced: dict[int, float] = {}
        for event in read_events(repo_id, sid):
            if event.get("event_type") == "step_completed" and "index" in event:  # 1-based
                announced.setdefault(event["index"] - 1, _seconds(event["timestamp"]))
        for step in range(STEPS):
            runs = sorted(starts.get((sid, step), []))
            result.reruns_in_flight += max(len(runs) - 1, 0)
            for label, done_at, bucket in (
                ("announced", announced.get(step), result.rerun_after_announced),
                ("recorded", recorded.get(step), result.rerun_after_recorded),
            ):
                if done_at is not None and any(t > done_at + RESOLUTION for t in runs):
                    bucket.append(f"{sid} step {step} (after its completion was {label})")


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# -- report ---------------------------------------------------------------------------------


def report(
    kills: int, run: Run, result: Audit, floor: float, soaked: float, args: argparse.Namespace
) -> None:
    print(
        f"python {sys.version.split()[0]}, {args.jobs} jobs, a kill every "
        f"0-{2 * args.kill_interval:g} s (mean {args.kill_interval:g} s), "
        f"at most {args.duration:g} s"
    )
    rows = [
        ("kill points", kills),
        ("acknowledged jobs", len(run.acked)),
        ("lost jobs", len(result.lost)),
        ("completed steps re-run (after step_completed)", len(result.rerun_after_announced)),
        ("completed steps re-run (after the checkpoint)", len(result.rerun_after_recorded)),
        ("in-flight steps re-run (at-least-once, expected)", result.reruns_in_flight),
        ("merges reverted", len(result.reverted)),
        ("merges or jobs duplicated", len(result.duplicated)),
        ("stuck jobs", len(result.stuck)),
        ("failed jobs", len(result.failed)),
    ]
    for name, value in rows:
        print(f"  {name:<50} {value:>8}")
    print(f"  {'git fsck':<50} {result.fsck:>8}")
    print(f"  floor: seconds per job, no kills {floor:21.3f}")
    print(f"  seconds per job under kills {soaked:26.3f}")
    print(f"    ratio soak / no-kill floor {soaked / floor if floor else 0.0:24.2f}x")
    for name, items in (
        ("lost", result.lost),
        ("reverted", result.reverted),
        ("duplicated", result.duplicated),
        ("stuck", result.stuck),
        ("failed", result.failed),
        ("re-run after step_completed", result.rerun_after_announced),
        ("re-run after the checkpoint", result.rerun_after_recorded),
    ):
        for item in items[:10]:
            print(f"  {name}: {item}")
    print("verdict:", "PASS" if result.ok else "FAIL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs submitted while killing")
    parser.add_argument(
        "--kill-interval",
        type=float,
        default=0.7,
        help="mean seconds from a daemon's start to its kill",
    )
    parser.add_argument("--duration", type=float, default=900.0, help="seconds of killing")
    parser.add_argument("--pace", type=float, default=0.5, help="seconds between submissions")
    parser.add_argument("--kills", type=int, default=None, help="stop after this many kills")
    parser.add_argument("--floor-jobs", type=int, default=20, help="jobs of the no-kill floor")
    parser.add_argument(
        "--settle",
        type=float,
        default=600.0,
        help="seconds the jobs get to finish once the killing stops",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="max_concurrent_jobs")
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prodigy-soak-") as tmp:
        root = Path(tmp)
        env = bench_env(root, "home")
        env["PRODIGY_MAX_CONCURRENT_JOBS"] = str(args.concurrency)
        home = Path(env["PRODIGY_HOME"])
        repo = make_repo(root, env)
        effects = root / "effects.log"
        workflows = write_workflows(root, effects)
        floor_run, run = Run(), Run()
        floor = floor_phase(home, repo, env, workflows, args.floor_jobs, floor_run, args.settle)
        kills, soaked = soak_phase(home, repo, env, workflows, args, run)
        run.acked.update(floor_run.acked)
        proc, _ = start_daemon(env)  # the audit reads statuses over the socket
        try:
            seen = statuses(home)
        finally:
            stop(proc, timeout=60)
        result = audit(home, repo, run, seen, effects)
        report(kills, run, result, floor, soaked, args)
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
