"""Submitting a job to a running prodigyd, against the physical floors, measured in the same run.

Three figures, each next to the cost it cannot go below:

(a) `jobs.submit` round trip over the socket. The job is committed to the journal (SQLite
    WAL, synchronous=FULL) before the reply, so the floor is one fsync'd INSERT+COMMIT in a
    fresh database plus a round trip to a bare asyncio echo server (rpc_latency.py's);
    a `ping` round trip is printed for context. Target (issue 15): <= 2x that floor.
    Each submit goes onto an idle queue (the job before it has finished; the wait is not
    timed), as the floor and the peers are measured; the same number back to back, with
    the earlier jobs running on the same cores, is printed for context.
    Peers: task-spooler's and nq's submit, the wall time of their client process
    (`tsp true`, `nq true`: a C process that hands the job over and returns; each with
    its socket or queue folder in the temporary folder), each job done before the next.
(b) submit -> `step_started` on a warm, idle daemon, as `prodigyctl run` sees it: a submit
    that subscribes its connection to the job's events (`follow`), time until the first
    step starts. The floor is
    one `sh -c true` spawn; `git worktree add` (every session gets a worktree) is printed
    for context. Target: <= 2.5x the spawn. Peers: task-spooler and nq end to end per job:
    as many `true` jobs as runs submitted back to back, then waited for (`tsp -w`,
    `nq -w`), divided by their number.
(c) `prodigyctl --help` and `prodigyctl run --detach` wall time, a new client process each
    time (the venv's console script, never a pyenv shim). The floor is the interpreter
    importing click (`python -c "import click"`, the same interpreter); `python -c pass`
    is printed for context. Targets: <= 1.15x (--help), <= 1.25x (run --detach).

Submitted jobs really run, one at a time (`PRODIGY_MAX_CONCURRENT_JOBS=1`): a one-step
`shell: "true"` workflow committed in the repository, merged on success (`-y`: with
nothing to merge, the worktree goes straight back to the pool, as it does after a real
run). The daemon, its store, the
repository and HOME live in a temporary directory; the daemon is always stopped at the end.

    python bench/submit_latency.py [--submits 200] [--runs 30] [--cli-runs 20] [--loop uvloop]
        [--peers]
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

from benchkit import Peer, Row, add_common_args, emit, start_daemon, stop
from peers import Peers
from rpc_latency import ECHO_SERVER, json_rpc, process
from rpc_latency import Conn as EchoConn

TARGET_SUBMIT = 2.0
TARGET_FIRST_STEP = 2.5
TARGET_HELP = 1.15
TARGET_DETACH = 1.25

FINISHED = "session_finished"


# -- environment --------------------------------------------------------------------------


def bench_env(root: Path, home: str, loop: str = "asyncio") -> dict[str, str]:
    return {
        **os.environ,
        "PRODIGY_HOME": str(root / home),
        "HOME": str(root),
        "PRODIGY_EVENT_LOOP": loop,
        "PRODIGY_MAX_CONCURRENT_JOBS": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }


def make_repo(root: Path, env: dict[str, str]) -> Path:
    """A repository with one commit: a README and WORKFLOW, a one-step `shell: "true"`
    workflow (committed in the repository, as a project keeps its workflows)."""
    repo = root / "repo"
    repo.mkdir()
    (repo / "README").write_text("bench\n")
    (repo / WORKFLOW).write_text('- shell: "true"\n')
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    return repo


WORKFLOW = "one-step.yml"


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


class FloorJournal:
    """The submit's floor: one INSERT+COMMIT per job into a fresh WAL database with
    synchronous=FULL (payload: about the size of the row a submit commits)."""

    def __init__(self, path: Path, payload: str) -> None:
        self.payload, self.count = payload, 0
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, body TEXT)")

    def commit(self) -> float:
        """Seconds for one durable INSERT+COMMIT."""
        self.count += 1
        started = time.perf_counter()
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(
            "INSERT INTO jobs (id, body) VALUES (?, ?)", (f"job-{self.count}", self.payload)
        )
        self.conn.execute("COMMIT")
        return time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


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


def durable_submits(
    sock: Path, echo: EchoConn, floor: FloorJournal, params: dict[str, Any], n: int
) -> dict[str, list[float]]:
    """(a): n submits onto an idle queue, each once the job before it has finished (the
    wait is not timed), as the peers are measured (`tsp -w`/`nq -w` between submits).
    After each, a ping, an echo round trip and a floor commit, so all four meet the same
    machine: one that has just been idle, where a commit or a round trip costs more than
    in a tight loop (the floor's commits in a tight loop are printed for context). Then,
    also for context, n submits back to back, the earlier jobs running on the same
    cores."""
    conn, watch = Conn(sock), Conn(sock)
    try:
        watch.call("events.subscribe", {})
        for _ in range(200):
            conn.call("ping")
        echo.round_trips(200)
        times: dict[str, list[float]] = {
            "idle": [],
            "ping": [],
            "echo": [],
            "commit": [],
            "busy": [],
        }
        for _ in range(n):
            started = time.perf_counter()
            conn.call("jobs.submit", params)
            times["idle"].append(time.perf_counter() - started)
            watch.wait_event(FINISHED)
            watch.events.clear()
            started = time.perf_counter()
            conn.call("ping")
            times["ping"].append(time.perf_counter() - started)
            times["echo"].extend(echo.round_trips(1))
            times["commit"].append(floor.commit())
        for _ in range(n):
            started = time.perf_counter()
            conn.call("jobs.submit", params)
            times["busy"].append(time.perf_counter() - started)
        finished = 0
        while finished < n:
            watch.wait_event(FINISHED)
            finished += sum(1 for _, event in watch.events if event["event_type"] == FINISHED)
            watch.events.clear()
    finally:
        conn.close()
        watch.close()
    return times


def peer_env(root: Path, name: str) -> dict[str, str]:
    """A peer queue's own socket or folder, and its job output, in the temporary folder."""
    folder = root / f"peer-{name}"
    folder.mkdir(exist_ok=True)
    return {
        **os.environ,
        "TS_SOCKET": str(folder / "sock"),
        "NQDIR": str(folder),
        "TMPDIR": str(folder),
    }


def peer_queue(binary: Path, root: Path, n: int) -> tuple[list[float], float]:
    """A peer queue (task-spooler or nq): n submit walls of `BINARY true`, one job done
    before the next submit; then seconds per job end to end, n jobs submitted back to back
    and waited for (`-w`)."""
    env = peer_env(root, binary.name)
    folder = Path(env["NQDIR"])
    submits = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run([str(binary), "true"], env=env, cwd=folder, check=True, capture_output=True)
        submits.append(time.perf_counter() - started)
        subprocess.run([str(binary), "-w"], env=env, cwd=folder, check=True, capture_output=True)
    started = time.perf_counter()
    for _ in range(n):
        subprocess.run([str(binary), "true"], env=env, cwd=folder, check=True, capture_output=True)
    subprocess.run([str(binary), "-w"], env=env, cwd=folder, check=True, capture_output=True)
    e2e = (time.perf_counter() - started) / n
    if binary.name in ("tsp", "ts"):
        subprocess.run([str(binary), "-K"], env=env, check=False, capture_output=True)
    return submits, e2e


def first_steps(sock: Path, params: dict[str, Any], n: int) -> dict[str, list[float]]:
    """(b): submit -> reply, session_started, step_started, session_finished; one at a time."""
    marks: dict[str, list[float]] = {
        "submit reply": [],
        "session_started": [],
        "step_started": [],
        "step_completed": [],
        FINISHED: [],
    }
    early = 0
    for _ in range(n):
        conn = Conn(sock)  # a fresh connection per run, as each `prodigyctl run` has
        try:
            started = time.perf_counter()
            conn.call("jobs.submit", {**params, "follow": True})  # subscribed by the submit
            replied = time.perf_counter()
            marks["submit reply"].append(replied - started)
            for event_type in ("session_started", "step_started", "step_completed", FINISHED):
                marks[event_type].append(conn.wait_event(event_type) - started)
            early += sum(1 for at, _ in conn.events if at <= replied)
        finally:
            conn.close()
    print(f"  note: {early} events of {n} runs arrived before their submit's reply")
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
    parser.add_argument(
        "--submits", type=int, default=200, help="(a) submits, idle and back to back"
    )
    parser.add_argument("--runs", type=int, default=30, help="(b) submit -> first step runs")
    parser.add_argument("--cli-runs", type=int, default=20, help="(c) prodigyctl processes")
    add_common_args(parser)
    args = parser.parse_args()
    print(
        f'python {sys.version.split()[0]}, prodigyd on {args.loop}, one-step `shell: "true"`'
        " workflow, merge: auto"
    )
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root, "home-a", args.loop)
        repo = make_repo(root, env)
        workflow = repo / WORKFLOW
        params = submit_params(workflow, repo, env)
        payload = json.dumps(params)  # about the size of the row a submit commits
        peers = Peers(args, root)
        binaries = {name: binary for name in ("task-spooler", "nq") if (binary := peers.get(name))}
        queues = {
            name: peer_queue(binary, root, max(args.submits // 4, 1))
            for name, binary in binaries.items()
        }

        # (a) a burst of durable submits to one daemon
        echo_sock = root / "echo.sock"
        with (
            process([sys.executable, "-c", ECHO_SERVER, str(echo_sock)], env),
            daemon(env) as sock,
        ):
            echo = EchoConn(echo_sock, json_rpc("echo"))
            floor = FloorJournal(root / "floor.db", payload)
            try:
                times = durable_submits(sock, echo, floor, params, args.submits)
                hot = [floor.commit() for _ in range(args.submits)]
            finally:
                echo.close()
                floor.close()
        commit = times["commit"]
        gits = git_floor(repo, env, 50)
        print(f"(a) jobs.submit round trip, {args.submits} onto an idle queue, one connection")
        print(row("floor: SQLite WAL sync=FULL INSERT+COMMIT", commit))
        print(row("context: the same commits in a tight loop", hot))
        print(row("floor: bare asyncio echo round trip", times["echo"]))
        print(row("context: ping round trip (between submits)", times["ping"]))
        print(row("context: 3 git spawns (prepare reads .git instead)", gits))
        for name, (walls, _) in queues.items():
            print(row(f"peer: {name} submit (client process wall)", walls))
        print(row("context: jobs.submit back to back (jobs running)", times["busy"]))
        print(row("prodigyd jobs.submit", times["idle"]))
        emit(
            Row(
                key="submit",
                metric="durable `jobs.submit` p50",
                unit="ms",
                prodigy=ms(times["idle"]),
                floor=ms(commit) + ms(times["echo"]),
                floor_label="SQLite FULL commit + asyncio echo",
                target=TARGET_SUBMIT,
                loop=args.loop,
                peers=[
                    Peer(name, ms(walls), f"`{binaries[name].name} true` client wall, p50")
                    for name, (walls, _) in queues.items()
                ],
            )
        )

        # (b) and (c) on a fresh, idle daemon
        env = bench_env(root, "home-b", args.loop)
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
            emit(
                Row(
                    key="first_step",
                    metric="submit -> first step started, warm",
                    unit="ms",
                    prodigy=ms(marks["step_started"]),
                    floor=ms(spawn),
                    floor_label="spawn `sh -c true`",
                    target=TARGET_FIRST_STEP,
                    loop=args.loop,
                    peers=[
                        Peer(
                            name,
                            e2e * 1000,
                            f"e2e per job, {max(args.submits // 4, 1)} `true` jobs",
                        )
                        for name, (_, e2e) in queues.items()
                    ],
                )
            )
            if args.cli_runs:  # --cli-runs 0: the daemon rows only
                cli_rows(args, workflow, repo, env, sock)


def cli_rows(
    args: argparse.Namespace, workflow: Path, repo: Path, env: dict[str, str], sock: Path
) -> None:
    """(c): the client's wall time for `--help` and `run --detach`, against importing click."""
    script = Path(sys.executable).with_name("prodigyctl")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "prodigyctl.main"]
    interp = wall([sys.executable, "-c", "pass"], args.cli_runs, env=env)
    click = wall([sys.executable, "-c", "import click"], args.cli_runs, env=env)
    client_import = wall([sys.executable, "-c", "import prodigyctl.main"], args.cli_runs, env=env)
    helps = wall([*argv, "--help"], args.cli_runs, env=env)
    detaches = cli_detach(argv, workflow, repo, env, sock, args.cli_runs)
    print(f"(c) prodigyctl wall time, {args.cli_runs} new processes each ({' '.join(argv)})")
    print(row("context: python -c pass", interp))
    print(row("floor: python -c 'import click'", click))
    print(row("context: python -c 'import prodigyctl.main'", client_import))
    print(row("prodigyctl --help", helps))
    print(row("prodigyctl run --detach", detaches))
    for key, label, values, target in (
        ("cli_help", "`prodigyctl --help` wall", helps, TARGET_HELP),
        ("cli_detach", "`prodigyctl run --detach` wall", detaches, TARGET_DETACH),
    ):
        emit(
            Row(
                key=key,
                metric=label,
                unit="ms",
                prodigy=ms(values),
                floor=ms(click),
                floor_label='`python -c "import click"`',
                target=target,
                loop=args.loop if key == "cli_detach" else None,
            )
        )


if __name__ == "__main__":
    main()
