"""From a change in a repository to its triggered run's start, against the floors measured
in the same run.

(a) `on: files`: a file written -> `session_started` of the run it fired, through the
    daemon's watch of a watched repository (settle, .gitignore check, snapshot commit,
    submit, worktree). The floor is a bare watchfiles `awatch` on a temporary folder with
    the daemon's own step: file written -> event delivered, the least any inotify watcher
    pays. When `watchman` is on PATH, its trigger at the default settle is measured too
    (file written -> the trigger's command ran); without it that line is skipped.
    Target: p50 <= 20 ms plus the settle (20 ms by default).
(b) `git commit` -> `session_started` of an `on: commit` run: seen by the watcher alone
    (no hooks), and by the post-commit hook alone (no watch).
(c) `git update-ref` -> `session_started` of an `on: ref` run (the watcher).

Each figure also shows its part from `session_queued` to `session_started` (mostly the
run's worktree) and how many runs got a pooled worktree: every run keeps its worktree
(`merge: never`; `on: files` runs never merge by themselves), so the next one takes the
spare slot made meanwhile (worktree_config.spare; PRODIGY_WORKTREE_CONFIG__SPARE=0 in the
environment measures without: each run pays a `git worktree add`).

Every run is let finish before the next change, so each change meets an idle daemon. The
daemon, its store, the repository and HOME live in a temporary directory; the daemon is
stopped at the end.

    python bench/trigger_latency.py [--events 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rpc_latency import connect, process, watchman_argv
from submit_latency import Conn, bench_env, daemon, make_repo, ms

TARGET_EXTRA_MS = 20.0
SETTLE_MS = 20.0
STEP_MS = 10  # the daemon's watch step (prodigyd/watch/refwatch.py)
IDLE_PAUSE = 0.2
WAIT_SECONDS = 60.0
WORKFLOWS = {
    "files.yml": "on: {files: {paths: ['src/**']}}\ncommands:\n  - shell: 'true'\n",
    "commit.yml": "on: {commit: {merge: never}}\ncommands:\n  - shell: 'true'\n",
    "ref.yml": "on: {ref: {branches: ['bench-*'], merge: never}}\ncommands:\n  - shell: 'true'\n",
}


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] * 1000
    return statistics.quantiles(values, n=20, method="inclusive")[18] * 1000


def row(label: str, values: list[float], floor: list[float]) -> str:
    return (
        f"    {label:<40} p50 {ms(values):8.2f} ms   p95 {p95(values):8.2f} ms   "
        f"ratio to floor {ms(values) / ms(floor):6.2f}x"
    )


def runs_rows(label: str, runs: Runs, floor: list[float]) -> str:
    part = runs.queued_to_started
    return (
        f"{row(label, runs.started, floor)}\n"
        f"    {'  of which session_queued -> started':<40} p50 {ms(part):8.2f} ms   "
        f"p95 {p95(part):8.2f} ms   pooled worktree {runs.reused}/{len(part)}"
    )


@dataclass
class Runs:
    """Seconds from each change to the `session_started` it causes, the part of it from
    `session_queued` to `session_started` (the run's start: mostly its worktree), and how
    many runs got a pooled worktree instead of a new `git worktree add`."""

    started: list[float] = field(default_factory=list)
    queued_to_started: list[float] = field(default_factory=list)
    reused: int = 0


def timed_runs(conn: Conn, n: int, change: Callable[[int], None]) -> Runs:
    runs = Runs()
    for i in range(n):
        conn.events.clear()
        time.sleep(IDLE_PAUSE)
        begun = time.perf_counter()
        change(i)
        started = conn.wait_event("session_started")
        runs.started.append(started - begun)
        runs.queued_to_started.append(started - conn.wait_event("session_queued"))
        runs.reused += any(
            e["event_type"] == "session_started" and e["worktree_reused"] for _, e in conn.events
        )
        conn.wait_event("session_finished")
    return runs


def inotify_floor(n: int) -> list[float]:
    """File written -> a bare watchfiles `awatch` delivers it, with the daemon's step."""
    from watchfiles import awatch

    async def measure(folder: Path) -> list[float]:
        stop = asyncio.Event()
        changes = awatch(folder, debounce=50, step=STEP_MS, stop_event=stop).__aiter__()
        times = []
        try:
            for i in range(-3, n):  # the first ones only make sure the watch is set up
                waiting = asyncio.ensure_future(changes.__anext__())
                await asyncio.sleep(0.05)
                started = time.perf_counter()
                (folder / "f.txt").write_text(f"{i}\n")
                await waiting
                if i >= 0:
                    times.append(time.perf_counter() - started)
        finally:
            stop.set()
        return times

    with tempfile.TemporaryDirectory(prefix="prodigy-floor-") as tmp:
        return asyncio.run(measure(Path(tmp)))


def watchman_trigger(n: int) -> list[float] | None:
    """File written -> a watchman trigger (default settle) ran; None without watchman. The
    watchman server is a private one (rpc_latency.py's), stopped at the end: the user's own
    server, which outlives whoever started it, is never used."""
    binary = shutil.which("watchman")
    if binary is None:
        return None
    with tempfile.TemporaryDirectory(prefix="prodigy-watchman-") as tmp:
        root, mark, server = Path(tmp, "root"), Path(tmp, "mark"), Path(tmp, "server")
        root.mkdir()
        stamp = f"date +%s.%N > {mark}.tmp && mv {mark}.tmp {mark}"
        spec = {"name": "bench", "expression": ["name", "f.txt"], "command": ["sh", "-c", stamp]}
        client = [binary, f"--sockname={server / 'sock'}"]
        with process(watchman_argv(Path(binary), server), dict(os.environ)):
            connect(server / "sock").close()  # the server listens
            for command in (["watch", str(root)], ["trigger", str(root), spec]):
                subprocess.run(
                    [*client, "-j"],
                    input=json.dumps(command),
                    text=True,
                    check=True,
                    capture_output=True,
                )
            times = []
            for i in range(n):
                mark.unlink(missing_ok=True)
                time.sleep(IDLE_PAUSE)
                started = time.time()
                (root / "f.txt").write_text(f"{i}\n")
                while not mark.exists():
                    time.sleep(0.001)
                times.append(float(mark.read_text()) - started)
            return times


@contextlib.contextmanager
def bench_repo() -> Iterator[tuple[Path, dict[str, str]]]:
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root, "home")
        env["PRODIGY_TRIGGERS__MAX_RUNS"] = "0"  # more runs a minute than the default 10
        repo = make_repo(root, env)
        folder = repo / ".prodigy" / "workflows"
        folder.mkdir(parents=True)
        for name, text in WORKFLOWS.items():
            (folder / name).write_text(text)
        (repo / "src").mkdir()
        (repo / "src" / "a.txt").write_text("start\n")
        subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", "triggers"], cwd=repo, env=env, check=True)
        yield repo, env


def git(repo: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=env, check=True)


def ctl(repo: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "prodigyctl.main", *args],
        cwd=repo,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30, help="changes per measurement")
    args = parser.parse_args()
    n = args.events
    floor = inotify_floor(n)
    watchman = watchman_trigger(n)
    with bench_repo() as (repo, env), daemon(env) as sock:
        conn = Conn(sock)
        conn.sock.settimeout(WAIT_SECONDS)  # a run that never starts ends the benchmark
        conn.call("events.subscribe", {})
        ctl(repo, env, "hooks", "install")  # no watch yet: the hook alone
        hook = timed_runs(
            conn, n, lambda i: git(repo, env, "commit", "-q", "--allow-empty", "-m", f"hook {i}")
        )
        ctl(repo, env, "hooks", "uninstall")
        conn.call("watch.add", {"path": str(repo)})
        watcher = timed_runs(
            conn, n, lambda i: git(repo, env, "commit", "-q", "--allow-empty", "-m", f"watcher {i}")
        )
        ref = timed_runs(
            conn, n, lambda i: git(repo, env, "update-ref", f"refs/heads/bench-{i}", "HEAD")
        )
        files = timed_runs(conn, n, lambda i: (repo / "src" / "a.txt").write_text(f"{i}\n"))
        conn.close()
    report(n, floor, watchman, files, watcher, hook, ref)


def report(
    n: int,
    floor: list[float],
    watchman: list[float] | None,
    files: Runs,
    watcher: Runs,
    hook: Runs,
    ref: Runs,
) -> None:
    print(f"python {sys.version.split()[0]}, {n} changes each, {os.cpu_count()} cores")
    print(f"(a) file written -> run started (on: files, default settle {SETTLE_MS:g} ms)")
    print(row("floor: inotify via watchfiles awatch", floor, floor))
    if watchman is None:
        print("    watchman: not on PATH, skipped")
    else:
        print(row("watchman trigger, default settle", watchman, floor))
    print(runs_rows("prodigy on: files", files, floor))
    target = TARGET_EXTRA_MS + SETTLE_MS
    print(
        f"    target p50 <= {target:g} ms (20 ms + settle): {ms(files.started):.2f} ms "
        f"{'meets' if ms(files.started) <= target else 'MISSES'} it"
    )
    print("(b) git commit -> run started (on: commit)")
    print(runs_rows("through the watcher (no hooks)", watcher, floor))
    print(runs_rows("through the post-commit hook (no watch)", hook, floor))
    print("(c) git update-ref -> run started (on: ref)")
    print(runs_rows("through the watcher", ref, floor))


if __name__ == "__main__":
    main()
