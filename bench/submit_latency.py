"""Submitting a job to a running prodigyd, against the physical floors, measured in the same run.

Three figures, each next to the cost it cannot go below:

(a) `jobs.submit` round trip over the socket. The job is committed to the journal (SQLite
    WAL, synchronous=FULL) before the reply, so the floor is one fsync'd INSERT+COMMIT in a
    fresh database; a `ping` round trip is printed for context. Target <= 1 ms
    (task-spooler, a C queue daemon, takes 1.3 ms here).
(b) submit -> `step_started` on a warm, idle daemon, as `prodigyctl run` sees it: submit,
    subscribe from the reply's `event_seq`, time until the first step starts. The floor is
    one `sh -c true` spawn; `git worktree add` (every session gets a worktree) is printed
    for context. Target <= 5 ms.
(c) `prodigyctl run --detach` wall time, a new client process each time. The floor is the
    interpreter's start (`python -c pass`); `python -c "import click"` is printed for
    context. Target <= 50 ms.

Submitted jobs really run, one at a time (`PRODIGY_MAX_CONCURRENT_JOBS=1`): a one-step
`shell: "true"` workflow, merged on success (`-y`: with nothing to merge, the worktree
goes straight back to the pool, as it does after a real run). The daemon, its store, the
repository and HOME live in a temporary directory; the daemon is always stopped at the end.

    python bench/submit_latency.py [--submits 200] [--runs 30] [--cli-runs 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchkit import start_daemon, stop

TARGET_SUBMIT_MS = 1.0
TARGET_FIRST_STEP_MS = 5.0
TARGET_CLI_MS = 50.0

FINISHED = "session_finished"


# -- environment --------------------------------------------------------------------------


def bench_env(root: Path, home: str) -> dict[str, str]:
    return {
        **os.environ,
        "PRODIGY_HOME": str(root / home),
        "HOME": str(root),
        "PRODIGY_MAX_CONCURRENT_JOBS": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }


def make_repo(root: Path, env: dict[str, str]) -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / "README").write_text("bench\n")
    for args in (["init", "-q", "-b", "main"], ["add", "README"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    return repo


@contextlib.contextmanager
def daemon(env: dict[str, str]) -> Iterator[Path]:
    """Start prodigyd (readiness on a pipe, as prodigyctl does); always SIGTERM it and wait."""
    proc, _ = start_daemon(env)
    try:
        yield Path(env["PRODIGY_HOME"]) / "prodigyd.sock"
    finally:
        stop(proc, timeout=60)


class Conn:
    """A blocking JSON-RPC connection like prodigyctl's, keeping notifications with the
    time they arrived."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")
        self.next_id = 0
        self.events: list[tuple[float, dict[str, Any]]] = []

    def send(self, method: str, params: dict[str, Any]) -> int:
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.sock.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
        return self.next_id

    def reply(self, msg_id: int) -> Any:
        while True:
            line = self.reader.readline()
            if not line:
                raise SystemExit("prodigyd closed the connection")
            message = json.loads(line)
            if message.get("id") == msg_id:
                if "error" in message:
                    raise SystemExit(f"RPC error: {message['error']}")
                return message["result"]
            if message.get("method") == "event":
                self.events.append((time.perf_counter(), message["params"]["event"]))

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.reply(self.send(method, params or {}))

    def wait_event(self, event_type: str) -> float:
        """Block until an event of this type arrives (or has); return when it arrived."""
        while True:
            for at, event in self.events:
                if event["event_type"] == event_type:
                    return at
            line = self.reader.readline()
            if not line:
                raise SystemExit("prodigyd closed the connection")
            message = json.loads(line)
            if message.get("method") == "event":
                self.events.append((time.perf_counter(), message["params"]["event"]))

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


# -- floors -------------------------------------------------------------------------------


def sqlite_commit_floor(folder: Path, n: int, payload: str) -> list[float]:
    """One INSERT+COMMIT per job into a fresh WAL database with synchronous=FULL."""
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, body TEXT)")
    times = []
    for i in range(n):
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO jobs (id, body) VALUES (?, ?)", (f"job-{i}", payload))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - started)
    conn.close()
    return times


def spawn_floor(n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(["sh", "-c", "true"], check=True)
        times.append(time.perf_counter() - started)
    return times


def worktree_floor(repo: Path, root: Path, env: dict[str, str], n: int) -> list[float]:
    """`git worktree add -b` of the repo's HEAD (what every session starts with); removed
    again outside the timing."""
    times = []
    for i in range(n):
        path = root / "wt-floor" / str(i)
        started = time.perf_counter()
        subprocess.run(
            ["git", "worktree", "add", "-q", "-b", f"floor-{i}", str(path), "HEAD"],
            cwd=repo,
            env=env,
            check=True,
        )
        times.append(time.perf_counter() - started)
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=repo, env=env)
        subprocess.run(["git", "branch", "-q", "-D", f"floor-{i}"], cwd=repo, env=env)
    return times


def git_floor(repo: Path, env: dict[str, str], n: int) -> list[float]:
    """The three git processes `prepare()` runs on every submit, run back to back."""
    calls = (
        ["rev-parse", "--show-toplevel"],
        ["symbolic-ref", "--quiet", "HEAD"],
        ["rev-parse", "--quiet", "--verify", "HEAD^{commit}"],
    )
    times = []
    for _ in range(n):
        started = time.perf_counter()
        for args in calls:
            subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def wall(argv: list[str], n: int, **kwargs: Any) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)
        times.append(time.perf_counter() - started)
    return times


# -- measurements -------------------------------------------------------------------------


def submit_params(workflow: Path, repo: Path, env: dict[str, str]) -> dict[str, Any]:
    return {"workflow": str(workflow), "cwd": str(repo), "env": env, "merge": "auto"}


def durable_submits(sock: Path, params: dict[str, Any], n: int) -> tuple[list[float], ...]:
    """(a): n back-to-back submits on one connection; pings for context, interleaved."""
    conn = Conn(sock)
    try:
        for _ in range(200):
            conn.call("ping")
        submits, pings = [], []
        for _ in range(n):
            started = time.perf_counter()
            conn.call("jobs.submit", params)
            submits.append(time.perf_counter() - started)
            started = time.perf_counter()
            conn.call("ping")
            pings.append(time.perf_counter() - started)
    finally:
        conn.close()
    return submits, pings


def first_steps(sock: Path, params: dict[str, Any], n: int) -> dict[str, list[float]]:
    """(b): submit -> reply, session_started, step_started, session_finished; one at a time."""
    marks: dict[str, list[float]] = {
        "submit reply": [],
        "session_started": [],
        "step_started": [],
        "step_completed": [],
        FINISHED: [],
    }
    late = 0
    for _ in range(n):
        conn = Conn(sock)  # a fresh connection per run, as each `prodigyctl run` has
        try:
            started = time.perf_counter()
            record = conn.call("jobs.submit", params)
            marks["submit reply"].append(time.perf_counter() - started)
            since = int(record["event_seq"])
            conn.call("events.subscribe", {"session_id": record["id"], "since": since})
            subscribed = time.perf_counter()
            for event_type in ("session_started", "step_started", "step_completed", FINISHED):
                marks[event_type].append(conn.wait_event(event_type) - started)
            if conn.events and conn.events[0][0] <= subscribed:
                late += 1  # the step had started before we subscribed: replayed, not live
        finally:
            conn.close()
    if late:
        print(f"  note: {late}/{n} runs got step_started from the replay, not live")
    return marks


def wait_idle(sock: Path, session_id: str) -> None:
    conn = Conn(sock)
    try:
        while conn.call("sessions.show", {"session_id": session_id})["status"] in (
            "queued",
            "running",
        ):
            time.sleep(0.01)
    finally:
        conn.close()


def cli_detach(
    argv: list[str], workflow: Path, repo: Path, env: dict[str, str], sock: Path, n: int
) -> list[float]:
    """(c): `prodigyctl run WF --detach -p REPO` wall time; each job finishes before the next."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        done = subprocess.run(
            [*argv, "run", str(workflow), "--detach", "-p", str(repo)],
            cwd=repo,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - started)
        wait_idle(sock, done.stdout.strip())
    return times


# -- report -------------------------------------------------------------------------------


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[98] * 1000


def row(label: str, values: list[float]) -> str:
    return f"    {label:<44} p50 {ms(values):8.3f} ms   p99 {p99(values):8.3f} ms"


def verdict(value_ms: float, target_ms: float) -> str:
    return f"{value_ms:.2f} ms {'meets' if value_ms <= target_ms else 'MISSES'} it"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=200, help="(a) back-to-back submits")
    parser.add_argument("--runs", type=int, default=30, help="(b) submit -> first step runs")
    parser.add_argument("--cli-runs", type=int, default=20, help="(c) prodigyctl processes")
    args = parser.parse_args()
    print(f'python {sys.version.split()[0]}, one-step `shell: "true"` workflow, merge: auto')
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root, "home-a")
        repo = make_repo(root, env)
        workflow = root / "one-step.yml"
        workflow.write_text('- shell: "true"\n')
        params = submit_params(workflow, repo, env)
        payload = json.dumps(params)  # about the size of the row a submit commits

        # (a) a burst of durable submits to one daemon
        with daemon(env) as sock:
            submits, pings = durable_submits(sock, params, args.submits)
        commit = sqlite_commit_floor(root, args.submits, payload)
        gits = git_floor(repo, env, 50)
        print(f"(a) jobs.submit round trip, {args.submits} back to back on one connection")
        print(row("floor: SQLite WAL sync=FULL INSERT+COMMIT", commit))
        print(row("context: ping round trip (between submits)", pings))
        print(row("context: 3 git spawns (prepare reads .git instead)", gits))
        print(row("prodigyd jobs.submit", submits))
        print(f"    ratio submit / commit floor {ms(submits) / ms(commit):21.2f}x")
        print(
            f"    target <= {TARGET_SUBMIT_MS:g} ms (task-spooler 1.3 ms): "
            f"{verdict(ms(submits), TARGET_SUBMIT_MS)}"
        )

        # (b) and (c) on a fresh, idle daemon
        env = bench_env(root, "home-b")
        params = submit_params(workflow, repo, env)
        with daemon(env) as sock:
            marks = first_steps(sock, params, args.runs)
            spawn = spawn_floor(200)
            worktree = worktree_floor(repo, root, env, 10)
            print(f"(b) submit -> step_started on a warm idle daemon, {args.runs} runs")
            print(row("floor: subprocess.run(sh -c true)", spawn))
            print(row("context: git worktree add -b (a new session)", worktree))
            for label, values in marks.items():
                print(row(f"submit -> {label}", values))
            first = ms(marks["step_started"])
            print(f"    ratio first step / spawn floor {first / ms(spawn):18.2f}x")
            print(
                f"    target <= {TARGET_FIRST_STEP_MS:g} ms: {verdict(first, TARGET_FIRST_STEP_MS)}"
            )

            clients: list[tuple[str, list[str]]] = [
                ("python -m prodigyctl.main", [sys.executable, "-m", "prodigyctl.main"])
            ]
            script = Path(sys.executable).with_name("prodigyctl")
            if script.exists():
                clients.append(("console script prodigyctl (no pyenv shim)", [str(script)]))
            interp = wall([sys.executable, "-c", "pass"], args.cli_runs, env=env)
            click = wall([sys.executable, "-c", "import click"], args.cli_runs, env=env)
            client_import = wall(
                [sys.executable, "-c", "import prodigyctl.main"], args.cli_runs, env=env
            )
            print(f"(c) prodigyctl run --detach wall time, {args.cli_runs} new processes each")
            if script.exists():
                print(f"    (console script: {script})")
            print(row("floor: python -c pass", interp))
            print(row("context: python -c 'import click'", click))
            print(row("context: python -c 'import prodigyctl.main'", client_import))
            for label, argv in clients:
                times = cli_detach(argv, workflow, repo, env, sock, args.cli_runs)
                print(row(label, times))
                print(
                    f"      ratio / interpreter floor {ms(times) / ms(interp):19.2f}x;"
                    f" target <= {TARGET_CLI_MS:g} ms: {verdict(ms(times), TARGET_CLI_MS)}"
                )


if __name__ == "__main__":
    main()
