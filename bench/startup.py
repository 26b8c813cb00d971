"""Daemon start and journal state transitions against their floors, with 10 and 10,000 jobs.

The journal promises that history costs nothing: startup reads only active rows and a
state transition is one UPDATE by primary key (store/journal.py). This measures both with
a small store (10 finished jobs) and a large one (10,000), built directly through
prodigyd.store.journal with realistic rows (a real SessionRecord, the environment the job
was submitted with), in the same run:

(a) exec -> ready: Popen of `python -m prodigyd.main --ready-fd W` until the pipe says
    `ready`; median of several starts per store, the two stores alternating, each daemon
    stopped with SIGTERM. Floor: the interpreter importing what any such daemon cannot
    avoid (asyncio, json, socket, sqlite3, and pydantic, which its records are built on:
    pydantic's own `import pydantic` loads none of its model layer, so the floor defines
    one one-field model, as the first record or setting of any pydantic daemon does),
    exiting with os._exit. For context: `python -c pass`, the daemon's own imports
    (`import prodigyd.main` plus what it imports to serve, also os._exit, as interpreter
    teardown does not come before `ready`) and the `PRAGMA quick_check` the journal runs on
    open, whose cost grows with the file. Targets (issue 15): <= 2x the floor with 10,000
    jobs, and no growth against the small store (<= 1.1x, the noise of a start).
    Peer: DBOS (pip, a temporary venv): exec -> `DBOS.launch()` returned, SQLite system
    database, the same way (a line on a pipe, then the process is killed).
(b) one state transition (`journal.update` of a job's status and record): median of
    several hundred after a warm-up, alternating in blocks with the floor: a bare SQLite
    single-row UPDATE+COMMIT (WAL, synchronous=FULL) in a fresh database. Target: the
    10,000-job figure is ~1.0x the 10-job one.

    python bench/startup.py [--jobs 10000] [--starts 7] [--updates 500] [--loop uvloop] [--peers]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchkit import Peer, Row, add_common_args, emit, start_daemon, stop
from peers import Peers

TARGET_READY = 2.0
TARGET_GROWTH = 1.1
#: What a daemon of this kind cannot avoid importing: its loop, protocol, socket, journal
#: and the validation library its records are built on. pydantic 2's `import pydantic`
#: is lazy (no BaseModel, no schema builder): a record is what makes it load them, and the
#: plugin look-up (importlib.metadata) that the first model's validator does.
UNAVOIDABLE = (
    "import asyncio, json, socket, sqlite3, os\n"
    "from pydantic import BaseModel\n"
    "class Record(BaseModel):\n"
    "    id: str = ''\n"
    "os._exit(0)"
)

DBOS_LAUNCH = """
import sys
from dbos import DBOS

DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{sys.argv[1]}"})
DBOS.launch()
print("ready", flush=True)
sys.stdin.read()
"""

DAEMON_IMPORTS = (
    "import prodigyd.main, prodigyd.server, prodigyd.scheduler, prodigyd.api.handlers, "
    "prodigyd.engine.context"
)


def bench_env(root: Path, home: Path, loop: str = "asyncio") -> dict[str, str]:
    return {
        **os.environ,
        "PRODIGY_HOME": str(home),
        "HOME": str(root),
        "PRODIGY_EVENT_LOOP": loop,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }


def record_for(index: int, root: Path, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """A realistic finished job: its SessionRecord as the daemon stores it."""
    from prodigyd.clock import now_iso
    from prodigyd.store.ids import new_session_id
    from prodigyd.store.sessions import SessionRecord, Status

    session_id = new_session_id()
    record = SessionRecord(
        id=session_id,
        workflow=str(root / "repo" / "workflows" / "implement.yml"),
        workflow_name="implement",
        workflow_sha256="0" * 64,
        status=Status.COMPLETED,
        completed_at=now_iso(),
        repo=str(root / "repo"),
        repo_id="repo-0123abcd",
        original_branch="main",
        worktree=str(root / "home" / "worktrees" / "repo-0123abcd" / session_id),
        branch=f"prodigy-{session_id}",
        cwd=str(root / "repo"),
        args=[str(index)],
        merge_policy="auto",
        total_steps=5,
        completed_steps=5,
        merged=True,
        merge_commit="f" * 40,
    )
    return record.model_dump(mode="json"), session_id


def populate(home: Path, root: Path, jobs: int, env: dict[str, str]) -> list[str]:
    """Insert `jobs` completed jobs in one transaction; return their ids."""
    import json

    from prodigyd.store import journal

    os.environ["PRODIGY_HOME"] = str(home)
    private = json.dumps({"env": env, "args": []}, separators=(",", ":"))
    now = time.time()
    ids = []
    with journal.transaction() as conn:
        for index in range(jobs):
            record, session_id = record_for(index, root, env)
            conn.execute(
                "INSERT INTO jobs (id, status, record, private, created_at, updated_at)"
                " VALUES (?, 'completed', ?, ?, ?, ?)",
                (session_id, json.dumps(record, separators=(",", ":")), private, now, now),
            )
            ids.append(session_id)
    journal.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ids


def time_ready(env: dict[str, str]) -> float:
    """exec -> `ready` on the pipe; then SIGTERM the daemon and wait for it to exit."""
    proc, elapsed = start_daemon(env)
    stop(proc, timeout=60)
    return elapsed


def dbos_launch(python: Path, folder: Path) -> float:
    """exec -> DBOS.launch() returned (a line on its stdout); the process is then killed."""
    started = time.perf_counter()
    with subprocess.Popen(
        [str(python), "-c", DBOS_LAUNCH, str(folder / "dbos.sqlite")],
        cwd=folder,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        word = proc.stdout.readline()
        elapsed = time.perf_counter() - started
        proc.kill()
    if word.strip() != b"ready":
        raise SystemExit("DBOS did not launch")
    return elapsed


def wall(argv: list[str], n: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True)
        times.append(time.perf_counter() - started)
    return times


def quick_check(path: Path) -> float:
    """The integrity check the daemon runs each time it opens the journal (store/journal.py)."""
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA quick_check").fetchone()
    finally:
        conn.close()
    return time.perf_counter() - started


Update = Callable[[int], None]


def bare_update(folder: Path, body: str) -> Update:
    """The floor: one row in a fresh WAL database with synchronous=FULL, updated in place."""
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT, record TEXT)")
    conn.execute("INSERT INTO jobs VALUES ('job', 'queued', ?)", (body,))

    def update(i: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE jobs SET status = ?, record = ? WHERE id = 'job'",
            ("running" if i % 2 else "completed", body),
        )
        conn.execute("COMMIT")

    return update


def journal_update(home: Path, job_id: str) -> Update:
    """prodigyd's state transition: journal.update of one job's status and record."""
    import json

    from prodigyd.store import journal

    os.environ["PRODIGY_HOME"] = str(home)
    record = json.loads(journal.get(job_id)["record"])

    def update(i: int) -> None:
        os.environ["PRODIGY_HOME"] = str(home)  # journal.connection() follows PRODIGY_HOME
        record["status"] = "running" if i % 2 else "completed"
        journal.update(job_id, record=record)

    return update


def interleaved(updates: dict[str, Update], n: int, block: int = 50) -> dict[str, list[float]]:
    """n timed calls of each, alternating in blocks so all see the same machine state."""
    times: dict[str, list[float]] = {label: [] for label in updates}
    for start in range(0, n, block):
        for label, update in updates.items():
            for i in range(start, min(start + block, n)):
                started = time.perf_counter()
                update(i)
                times[label].append(time.perf_counter() - started)
    return times


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] * 1000


def row(label: str, values: list[float], *, tail: bool = True) -> str:
    text = f"    {label:<46} p50 {ms(values):8.3f} ms"
    if tail and len(values) >= 20:
        text += f"   p99 {p99(values):8.3f} ms"
    else:
        text += f"   min {min(values) * 1000:8.3f} ms   max {max(values) * 1000:8.3f} ms"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="finished jobs in the big store")
    parser.add_argument("--small", type=int, default=100, help="finished jobs in the small store")
    parser.add_argument("--starts", type=int, default=7, help="daemon starts per store")
    parser.add_argument("--updates", type=int, default=500, help="transitions per store")
    add_common_args(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        homes = {"small": root / "home-small", "big": root / "home-big"}
        envs = {label: bench_env(root, home, args.loop) for label, home in homes.items()}
        os.environ.update({k: v for k, v in envs["small"].items() if k != "PRODIGY_HOME"})
        job_env = dict(os.environ)  # what `prodigyctl run` submits, stored with each job
        started = time.perf_counter()
        ids = {
            "small": populate(homes["small"], root, args.small, job_env),
            "big": populate(homes["big"], root, args.jobs, job_env),
        }
        fill = time.perf_counter() - started
        from prodigyd.store import journal

        journal.close_all()  # the daemons are the only ones holding the journals from here on
        size = (homes["big"] / "journal.db").stat().st_size
        labels = {"small": f"{args.small} jobs", "big": f"{args.jobs:,} jobs"}
        print(
            f"python {sys.version.split()[0]}; stores of {args.small} and {args.jobs:,} "
            f"completed jobs (filled in {fill:.1f} s; the big journal.db is "
            f"{size / 1e6:.1f} MB, {size / args.jobs / 1e3:.1f} kB a job)"
        )

        # (a) exec -> ready, everything interleaved so each figure sees the same machine
        probes: dict[str, list[str]] = {
            "context: python -c pass": [sys.executable, "-c", "pass"],
            "floor: unavoidable imports": [sys.executable, "-c", UNAVOIDABLE],
            "context: import prodigyd.main (no teardown)": [
                sys.executable,
                "-c",
                "import prodigyd.main, os; os._exit(0)",
            ],
            "context: + every module it serves with": [
                sys.executable,
                "-c",
                f"{DAEMON_IMPORTS}, os; os._exit(0)",
            ],
        }
        dbos_python = Peers(args, root).get("dbos")
        if dbos_python is not None:
            dbos_launch(dbos_python, root)  # creates its database: later launches find it
        walls: dict[str, list[float]] = {label: [] for label in probes}
        dbos: list[float] = []
        ready: dict[str, list[float]] = {"small": [], "big": []}
        checks: dict[str, list[float]] = {"small": [], "big": []}
        time_ready(envs["small"])  # warm the page cache for the interpreter and modules
        for _ in range(args.starts):
            for label, argv in probes.items():
                walls[label].extend(wall(argv, 1, envs["small"]))
            for label in ready:
                ready[label].append(time_ready(envs[label]))
                checks[label].append(quick_check(homes[label] / "journal.db"))
            if dbos_python is not None:
                dbos.append(dbos_launch(dbos_python, root))
        print(
            f"(a) daemon exec -> ready on {args.loop}, {args.starts} starts per store,"
            " interleaved (medians)"
        )
        print(f"    unavoidable imports: {'; '.join(UNAVOIDABLE.splitlines())}")
        for label, values in walls.items():
            print(row(label, values, tail=False))
        for label in ("small", "big"):
            print(row(f"context: PRAGMA quick_check, {labels[label]}", checks[label], tail=False))
        for label, values in ready.items():
            print(row(f"prodigyd ready, {labels[label]}", values, tail=False))
        if dbos:
            print(row("peer: DBOS exec -> launched", dbos, tail=False))
        big, small = ms(ready["big"]), ms(ready["small"])
        emit(
            Row(
                key="ready",
                metric=f"daemon exec -> ready, {labels['big']} stored",
                unit="ms",
                prodigy=big,
                floor=ms(walls["floor: unavoidable imports"]),
                floor_label="`python -c` + imports it cannot avoid",
                target=TARGET_READY,
                loop=args.loop,
                peers=[Peer("DBOS", ms(dbos), "exec -> DBOS.launch() returned")] if dbos else [],
            )
        )
        emit(
            Row(
                key="ready_growth",
                metric=f"daemon exec -> ready, growth {labels['small']} -> {labels['big']}",
                unit="ms",
                prodigy=big,
                floor=small,
                floor_label=f"ready with {labels['small']}",
                target=TARGET_GROWTH,
                loop=args.loop,
            )
        )

        # (b) one state transition
        os.environ["PRODIGY_HOME"] = str(homes["small"])
        body = journal.get(ids["small"][0])["record"]
        updates = {
            "floor": bare_update(root, body),
            **{
                label: journal_update(homes[label], ids[label][len(ids[label]) // 2])
                for label in homes
            },
        }
        interleaved(updates, 3 * args.updates)  # warm-up: WAL files at working size, cached
        times = interleaved(updates, args.updates)
        journal.close_all()
        print(f"(b) one state transition (journal.update: status + record), {args.updates} each")
        print(row("floor: bare SQLite UPDATE+COMMIT, fresh db", times["floor"]))
        for label in ("small", "big"):
            print(row(f"journal.update, {labels[label]}", times[label]))
        u_big, u_small, floor_update = ms(times["big"]), ms(times["small"]), ms(times["floor"])
        print(
            f"    ratio {labels['big']} / {labels['small']}: {u_big / u_small:.2f}x (target ~1.0x);"
            f" vs floor: {u_small / floor_update:.2f}x and {u_big / floor_update:.2f}x"
        )


if __name__ == "__main__":
    main()
