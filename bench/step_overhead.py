"""Per-step overhead of the engine against the physical floor, measured in the same run.

Runs a workflow of N `shell: "true"` steps (checkpoint after each, events, variables: the
full step pipeline prodigyd runs) on the chosen event loop and compares the time per step
with the floor: a plain loop of a raw `subprocess.run(["sh", "-c", "true"])` spawn, then
one small record appended and fdatasynced, the two things a durable step cannot skip, in
the order it must do them (a step is announced only once its checkpoint is durable, and
the next starts after). The spawn and the sync, each in a tight loop of its own, and
prodigy's atomic fsync'd JSON write are printed for context. Target (issue 15): <= 1.15x
spawn + fdatasync.

Peer: DBOS (pip, a temporary venv; SQLite system database in the temporary folder): a
workflow of N `@DBOS.step()`s, each the same spawn, timed per step from inside the
workflow (each step's outcome is committed before the next starts).

    python bench/step_overhead.py [--steps 200] [--rounds 3] [--loop uvloop] [--peers]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from benchkit import Peer, Row, add_common_args, emit
from peers import Peers


def spawn_floor(n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        subprocess.run(["sh", "-c", "true"], check=True)
    return (time.perf_counter() - started) / n


def durable_step_floor(folder: Path, n: int) -> float:
    """The floor itself: what a durable step cannot skip, in the order it must run it, as a
    plain loop: the spawn, then one small record appended and fdatasynced before the next.
    Measured so, each sync comes after a spawn as a step's does, and costs what it costs
    there: ~0.19 ms on this machine against ~0.09 in a tight loop of syncs alone (the sum
    of the two tight loops, printed for context, is lower than any real sequence of
    spawns and syncs)."""
    fd = os.open(folder / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        started = time.perf_counter()
        for i in range(n):
            subprocess.run(["sh", "-c", "true"], check=True)
            os.write(fd, b'{"completed_steps": %d}\n' % i)
            os.fdatasync(fd)
        return (time.perf_counter() - started) / n
    finally:
        os.close(fd)


def fdatasync_floor(folder: Path, n: int) -> float:
    """One small write and fdatasync per step, to one file, in a tight loop (context)."""
    fd = os.open(folder / "fdatasync.probe", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        started = time.perf_counter()
        for i in range(n):
            os.pwrite(fd, b'{"completed_steps": %d}\n' % i, 0)
            os.fdatasync(fd)
        return (time.perf_counter() - started) / n
    finally:
        os.close(fd)


def write_floor(folder: Path, n: int) -> float:
    from prodigyd.store.atomic import write_json_atomic

    payload = {"completed_steps": list(range(20)), "variable_state": {"x": "y" * 200}}
    started = time.perf_counter()
    for _ in range(n):
        write_json_atomic(folder / "probe.json", payload)
    return (time.perf_counter() - started) / n


class Clock:
    """prodigyd's real event hub (JSONL log included), timing first step start to last end."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.first: float | None = None
        self.last: float | None = None
        self.completed = 0

    def emit(self, event_type: str, /, **fields: Any) -> None:
        if event_type == "step_started" and self.first is None:
            self.first = time.perf_counter()
        self.hub.emit(event_type, **fields)
        if event_type == "step_completed":
            self.completed += 1
            self.last = time.perf_counter()


@contextlib.asynccontextmanager
async def _unlocked(_: str) -> AsyncIterator[None]:
    yield


async def engine_per_step(repo: Path, workflow: Path) -> float:
    from prodigyd.engine.admission import RunRequest, prepare
    from prodigyd.engine.context import EngineSettings
    from prodigyd.engine.journal import StoreJournal
    from prodigyd.engine.mapreduce.runner import LocalAgentRunner
    from prodigyd.engine.session import Session
    from prodigyd.eventhub import EventHub
    from prodigyd.pool import WorktreePool

    request = RunRequest(
        workflow=str(workflow), cwd=str(repo), env=dict(os.environ), merge_policy="never"
    )
    record, loaded = await prepare(request)
    clock = Clock(EventHub(record))
    pool = WorktreePool()
    session = Session(
        record,
        loaded,
        env=dict(os.environ),
        events=clock,
        settings=EngineSettings(),
        merge_lock=_unlocked,
        pool=pool,
        runner=LocalAgentRunner(pool),
        journal=StoreJournal(),
    )
    await session.run()
    steps = len(loaded.workflow.steps)
    done = ("awaiting_merge", "completed")  # completed: it changed nothing to merge
    if record.status.value not in done or clock.completed != steps:
        raise SystemExit(f"workflow did not complete: {record.status} {record.error}")
    assert clock.first is not None and clock.last is not None
    return (clock.last - clock.first) / steps


DBOS_STEPS = """
import json, subprocess, sys, time
from dbos import DBOS

DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{sys.argv[1]}"})
marks = []

@DBOS.step()
def spawn() -> None:
    subprocess.run(["sh", "-c", "true"], check=True)

@DBOS.workflow()
def steps(n: int) -> None:
    for _ in range(n):
        spawn()
        marks.append(time.perf_counter())

DBOS.launch()
n = int(sys.argv[2])
steps(n)
marks.clear()
started = time.perf_counter()
steps(n)
print(json.dumps((time.perf_counter() - started) / n))
DBOS.destroy()
"""


def dbos_per_step(python: Path, folder: Path, steps: int) -> float | None:
    """Seconds per durable DBOS step (the second of two workflows, the first warms up)."""
    done = subprocess.run(
        [str(python), "-c", DBOS_STEPS, str(folder / "dbos.sqlite"), str(steps)],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        print(f"  peer dbos: failed ({lines[-1] if lines else done.returncode})")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    return repo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    add_common_args(parser)
    args = parser.parse_args()
    loop_factory = None
    if args.loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        os.environ["PRODIGY_HOME"] = str(root / "home")
        repo = make_repo(root)
        workflow = root / "steps.yml"
        workflow.write_text("".join('- shell: "true"\n' for _ in range(args.steps)))
        floors, spawns, syncs, engine = [], [], [], []
        for _ in range(args.rounds):
            floors.append(durable_step_floor(root, args.steps))
            spawns.append(spawn_floor(args.steps))
            syncs.append(fdatasync_floor(root, args.steps))
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                engine.append(runner.run(engine_per_step(repo, workflow)))
        write = write_floor(root, args.steps)
        python = Peers(args, root).get("dbos")
        dbos = dbos_per_step(python, root, args.steps) if python else None
    floor, spawn, sync, step = (statistics.median(v) for v in (floors, spawns, syncs, engine))
    print(
        f"python {sys.version.split()[0]}, {args.loop}, {args.steps} steps x {args.rounds}"
        " rounds (medians)"
    )
    print(f"  floor: spawn, then append + fdatasync {floor * 1000:7.3f} ms")
    print(f"  context: subprocess.run(sh -c true) {spawn * 1000:7.3f} ms (a tight loop)")
    print(f"  context: small write + fdatasync    {sync * 1000:7.3f} ms (a tight loop)")
    print(f"  context: atomic fsync'd JSON write  {write * 1000:7.3f} ms")
    print(f"  prodigy step (spawn+checkpoint+events) {step * 1000:7.3f} ms")
    print(f"  ratio step / spawn-only floor       {step / spawn:7.2f}x")
    # A step's completion is announced only once its checkpoint is durable (issue 8), so
    # the physical floor of a recorded step is a spawn plus an fdatasync, in sequence.
    peers = []
    if dbos is not None:
        peers.append(Peer("DBOS", dbos * 1000, "a @DBOS.step() running the same spawn"))
    emit(
        Row(
            key="step",
            metric="durable `shell: true` step, per step",
            unit="ms",
            prodigy=step * 1000,
            floor=floor * 1000,
            floor_label="spawn, then append + fdatasync",
            target=1.15,
            loop=args.loop,
            peers=peers,
        )
    )


if __name__ == "__main__":
    main()
