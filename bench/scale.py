"""Scale figures (issue 15): operations with 100 against 10,000 jobs stored, and a 1,000-item
map phase with a kill -9 half-way.

(a) Two stores, --small and --jobs finished jobs, built directly in the journal as
    startup.py builds them, each job with the events of a real one-step job (the events of
    one real run, copied under each job's id). Per store, the daemon's exec -> ready
    (median of --starts, the stores alternating), then on the running daemon the median of
    --ops: `jobs.submit` round trip, `sessions.list` (the newest 100) and `events.list`
    (the newest 100) over the socket, and the wall time of `prodigyctl ps`,
    `prodigyctl sessions ls` and `prodigyctl events ls` (each a new client process).
    Target: no growth beyond O(log n): the 10,000-job figure ~1x the small one. The
    stores are written as a store from before the event index (store/eventindex.py): the
    first `events.list` on each builds it, reading every log once; it is timed apart.
(b) A map phase of --items `shell: true` agents at `max_parallel: --parallel` through the
    daemon (`prodigyctl run -y --json`): its duration against the ideal,
    ceil(items / parallel) x (checkout + spawn) and the same on this machine's cores; the
    daemon's RSS after it; the events written (lines in every event log).
(c) The same job again, detached, with auto_resume off: once half its items have
    completed the daemon gets SIGKILL; a new daemon is started (exec -> ready timed) and
    `prodigyctl resume-job JOB -y --json` is run: the time from its exec to the first
    item started again, to the end of the job, and how many items ran again.

    python bench/scale.py [--jobs 10000] [--small 100] [--items 1000] [--parallel 8]
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import Row, add_common_args, emit, rss_mb, start_daemon, stop
from mapreduce import item_floor, make_repo
from startup import populate
from submit_latency import FINISHED, Conn, bench_env, submit_params

TARGET_GROWTH = 1.1
CTL = [sys.executable, "-m", "prodigyctl.main"]


def template_events(env: dict[str, str], repo: Path, workflow: Path) -> tuple[str, str]:
    """One real job's event log and its id: run it on a scratch daemon."""
    proc, _ = start_daemon(env)
    try:
        conn = Conn(Path(env["PRODIGY_HOME"]) / "prodigyd.sock")
        conn.call("events.subscribe", {})
        record = conn.call("jobs.submit", submit_params(workflow, repo, env))
        conn.wait_event(FINISHED)
        conn.close()
    finally:
        stop(proc, timeout=60)
    logs = list((Path(env["PRODIGY_HOME"]) / "events").rglob(f"{record['id']}/*.jsonl"))
    return logs[0].read_text(), record["id"]


def fill(home: Path, root: Path, jobs: int, env: dict[str, str], events: tuple[str, str]) -> None:
    """`jobs` finished jobs in the journal, each with a copy of the template's event log."""
    ids = populate(home, root, jobs, dict(os.environ))
    text, template_id = events
    for session_id in ids:
        folder = home / "events" / "repo-0123abcd" / session_id
        folder.mkdir(parents=True)
        (folder / "events-bench.jsonl").write_text(text.replace(template_id, session_id))


def rpc_times(sock: Path, calls: dict[str, tuple[str, dict[str, Any]]], n: int) -> dict[str, float]:
    conn = Conn(sock)
    times: dict[str, list[float]] = {label: [] for label in calls}
    try:
        for _ in range(n):
            for label, (method, params) in calls.items():
                started = time.perf_counter()
                conn.call(method, params)
                times[label].append(time.perf_counter() - started)
    finally:
        conn.close()
    return {label: statistics.median(values) for label, values in times.items()}


def cli_times(commands: dict[str, list[str]], env: dict[str, str], n: int) -> dict[str, float]:
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(n):
        for label, args in commands.items():
            started = time.perf_counter()
            subprocess.run(
                [*CTL, *args],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            times[label].append(time.perf_counter() - started)
    return {label: statistics.median(values) for label, values in times.items()}


def store_figures(
    args: argparse.Namespace, root: Path, env: dict[str, str], repo: Path, workflow: Path
) -> None:
    """(a): per store, start, RPCs and CLI commands; then the growth of each."""
    events = template_events(bench_env(root, "home-template", args.loop), repo, workflow)
    sizes = {"small": args.small, "big": args.jobs}
    envs = {label: bench_env(root, f"home-{label}", args.loop) for label in sizes}
    started = time.perf_counter()
    for label, jobs in sizes.items():
        fill(Path(envs[label]["PRODIGY_HOME"]), root, jobs, envs[label], events)
    from prodigyd.store import journal

    journal.close_all()
    took = time.perf_counter() - started
    print(f"(a) stores of {args.small:,} and {args.jobs:,} jobs (filled in {took:.1f} s)")
    figures: dict[str, dict[str, float]] = {label: {} for label in sizes}
    first: dict[str, float] = {}
    starts: dict[str, list[float]] = {label: [] for label in sizes}
    for _ in range(args.starts):
        for label in sizes:
            proc, elapsed = start_daemon(envs[label])
            stop(proc, timeout=60)
            starts[label].append(elapsed)
    for label in sizes:
        figures[label]["daemon exec -> ready"] = statistics.median(starts[label])
        env = envs[label]
        proc, _ = start_daemon(env)
        try:
            sock = Path(env["PRODIGY_HOME"]) / "prodigyd.sock"
            first[label] = rpc_times(sock, {"first": ("events.list", {"limit": 100})}, 1)["first"]
            params = {**submit_params(workflow, repo, env), "merge": "never"}
            figures[label].update(
                rpc_times(
                    sock,
                    {
                        "jobs.submit": ("jobs.submit", params),
                        "sessions.list (100)": ("sessions.list", {"limit": 100}),
                        "events.list (100)": ("events.list", {"limit": 100}),
                    },
                    args.ops,
                )
            )
            figures[label].update(
                cli_times(
                    {
                        "prodigyctl ps": ["ps"],
                        "prodigyctl sessions ls": ["sessions", "ls"],
                        "prodigyctl events ls": ["events", "ls"],
                    },
                    env,
                    args.ops,
                )
            )
        finally:
            stop(proc, timeout=120)
    print(f"    {'operation':<28} {args.small:>10,} jobs {args.jobs:>10,} jobs   growth")
    for operation in figures["small"]:
        small, big = figures["small"][operation] * 1000, figures["big"][operation] * 1000
        print(f"    {operation:<28} {small:10.2f} ms {big:10.2f} ms   ratio {big / small:.2f}x")
    print(
        f"    {'events.list, first (index)':<28} {first['small'] * 1000:10.2f} ms"
        f" {first['big'] * 1000:10.2f} ms   (once per store: builds the event index)"
    )
    for operation in figures["small"]:
        emit(
            Row(
                key=f"scale {operation}",
                metric=f"{operation}, {args.jobs:,} jobs stored",
                unit="ms",
                prodigy=figures["big"][operation] * 1000,
                floor=figures["small"][operation] * 1000,
                floor_label=f"the same with {args.small:,} jobs",
                target=TARGET_GROWTH,
                loop=args.loop,
            )
        )


def map_workflow(root: Path, items: int, parallel: int) -> Path:
    workflow = root / "map.yml"
    workflow.write_text(
        f"mode: mapreduce\nmap:\n  input: 'seq {items}'\n  max_parallel: {parallel}\n"
        "  agent_template:\n    - shell: 'true'\n"
    )
    return workflow


def event_lines(home: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in (home / "events").rglob("*.jsonl"))


def json_lines(stdout: Any) -> Any:
    """Each JSON event a `prodigyctl ... --json` prints, with when it arrived."""
    import json

    for line in stdout:
        if line.strip():
            yield time.perf_counter(), json.loads(line)


def map_figures(args: argparse.Namespace, root: Path) -> None:
    """(b) and (c)."""
    env = bench_env(root, "home-map", args.loop)
    env["PRODIGY_AUTO_RESUME"] = "false"
    home = Path(env["PRODIGY_HOME"])
    repo = make_repo(root / "map-repo", 1, env)
    workflow = map_workflow(root, args.items, args.parallel)
    floor = item_floor(repo, root, env)
    cores = os.cpu_count() or 1
    ideal = math.ceil(args.items / args.parallel) * floor
    ideal_cores = math.ceil(args.items / min(args.parallel, cores)) * floor
    proc, _ = start_daemon(env)
    try:
        idle = rss_mb(proc.pid)
        before = event_lines(home)
        started = time.perf_counter()
        done = subprocess.run(
            [*CTL, "run", str(workflow), "-y", "--json"],
            cwd=repo,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        after_rss = rss_mb(proc.pid)
        written = event_lines(home) - before
        phase = next(
            event
            for _, event in json_lines(done.stdout.splitlines())
            if event["event_type"] == "map_phase_completed"
        )
    finally:
        stop(proc, timeout=120)
    print(f"(b) map phase: {args.items:,} `shell: true` agents, max_parallel {args.parallel}")
    print(f"    context per item: checkout --detach + sh -c true {floor * 1000:8.2f} ms")
    print(f"    ideal ceil(items/parallel) x item      {ideal * 1000:10.0f} ms")
    print(f"    ideal on {cores} cores                      {ideal_cores * 1000:10.0f} ms")
    print(
        f"    map phase (engine)                     {phase['duration'] * 1000:10.0f} ms"
        f"   (whole run {wall * 1000:.0f} ms)"
    )
    print(f"    daemon RSS idle {idle:.1f} MB, after the job {after_rss:.1f} MB")
    print(f"    events written: {written:,} ({written / args.items:.1f} an item)")
    emit(
        Row(
            key="scale map",
            metric=f"{args.items:,}-item map phase, `max_parallel: {args.parallel}`",
            unit="ms",
            prodigy=phase["duration"] * 1000,
            floor=ideal_cores * 1000,
            floor_label=f"ideal on {cores} cores: ceil(items/cores) x (checkout + spawn)",
            target=1.15,
            loop=args.loop,
        )
    )
    resume_figures(args, env, repo, workflow)


def resume_figures(
    args: argparse.Namespace, env: dict[str, str], repo: Path, workflow: Path
) -> None:
    """(c): kill -9 the daemon at half the items, then resume-job on a new one."""
    half = max(args.items // 2, 1)
    proc, _ = start_daemon(env)
    try:
        conn = Conn(Path(env["PRODIGY_HOME"]) / "prodigyd.sock")
        conn.call("events.subscribe", {})
        done = subprocess.run(
            [*CTL, "run", str(workflow), "--detach", "-p", str(repo)],
            cwd=repo,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        job = done.stdout.strip()
        completed: set[str] = set()
        while len(completed) < half:
            conn.wait_event("agent_completed")
            completed.update(
                e["item_id"] for _, e in conn.events if e["event_type"] == "agent_completed"
            )
            conn.events.clear()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        conn.close()
    finally:
        stop(proc, timeout=60)
    proc, ready = start_daemon(env)
    try:
        started = time.perf_counter()
        first: float | None = None
        ran: list[str] = []
        with subprocess.Popen(
            [*CTL, "resume-job", job, "-y", "--json"],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as resumed:
            assert resumed.stdout is not None
            for at, event in json_lines(resumed.stdout):
                if event["event_type"] == "agent_started":
                    first = first or at - started
                    ran.append(event["item_id"])
            code = resumed.wait()
        total = time.perf_counter() - started
    finally:
        stop(proc, timeout=120)
    if code != 0 or first is None:
        raise SystemExit(f"resume-job {job} failed (exit {code}, {len(ran)} items started)")
    again = completed & set(ran)
    print(
        f"(c) kill -9 once {len(completed)} of {args.items} items had sent agent_completed;"
        f" a new daemon ready in {ready * 1000:.0f} ms"
    )
    print(f"    resume-job exec -> first item started again {first * 1000:8.0f} ms")
    print(f"    resume-job exec -> job done                 {total * 1000:8.0f} ms")
    print(
        f"    items started on resume: {len(ran)} ({len(set(ran))} distinct); of them"
        f" {len(again)} had sent agent_completed before the kill"
    )
    print(f"    ratio pick-up / daemon ready {first / ready:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="finished jobs, big store")
    parser.add_argument("--small", type=int, default=100, help="finished jobs, small store")
    parser.add_argument("--starts", type=int, default=3, help="daemon starts per store")
    parser.add_argument("--ops", type=int, default=5, help="times each operation is timed")
    parser.add_argument("--items", type=int, default=1000, help="map phase items")
    parser.add_argument("--parallel", type=int, default=8)
    add_common_args(parser, peers=False)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, prodigyd on {args.loop}")
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root, "home-setup", args.loop)
        os.environ.update({k: v for k, v in env.items() if k != "PRODIGY_HOME"})
        repo = make_repo(root / "repo", 1, env)
        workflow = root / "one-step.yml"
        workflow.write_text('- shell: "true"\n')
        store_figures(args, root, env, repo, workflow)
        map_figures(args, root)


if __name__ == "__main__":
    main()
