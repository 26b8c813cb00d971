"""Interleaved A/B of two versions of prodigyd: submit -> reply, first step, end of a job.

Single runs of the row scripts move by 10-40% on a busy machine, more than most changes
gain, so a change to the start or the end of a job is judged side by side: a daemon of
each version (A: the git revision `--base`, checked out into a temporary worktree; B:
this tree), each with its own store and repository, the same one-step job submitted to
each in turn, `--jobs` at a time, each version first in every other round: each job
submitted as `prodigyctl run` does (`follow`: its events marked), then one more as a plain
`jobs.submit` (its reply timed, as submit_latency.py's row (a)). Both run
the same interpreter and libraries (this virtualenv); only `prodigyd` differs. Prints
each mark's p50 for A and B, B - A and the ratio B/A. A B/A under 1 is B faster; a
difference that changes sign when the order does is noise. `--idle` waits before each
submission, as `prodigyctl run` usually finds a daemon.

    python bench/ab.py [--base HEAD] [--rounds 8] [--jobs 15] [--idle 0] [--loop uvloop]

The daemons run from `/` (with `python -m`, the current folder comes first on sys.path:
from the repository's top, both daemons would import this tree).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchkit import add_common_args
from submit_latency import (
    FINISHED,
    WORKFLOW,
    Conn,
    bench_env,
    daemon,
    first_steps,
    make_repo,
    submit_params,
)

TOP = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def checkout(rev: str, folder: Path) -> Iterator[Path]:
    """`rev` of this repository in `folder` (a detached worktree), removed afterwards."""
    subprocess.run(
        ["git", "worktree", "add", "--quiet", "--detach", str(folder), rev], cwd=TOP, check=True
    )
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=TOP, check=False)


def plain_submit(sock: Path, params: dict[str, Any]) -> float:
    """Seconds for a `jobs.submit` without `follow` (what row (a) of submit_latency.py
    times), its job then waited for, untimed."""
    conn, watch = Conn(sock), Conn(sock)
    try:
        watch.call("events.subscribe", {})
        started = time.perf_counter()
        conn.call("jobs.submit", params)
        took = time.perf_counter() - started
        watch.wait_event(FINISHED)
        return took
    finally:
        conn.close()
        watch.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="A: a git revision (default HEAD)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=15, help="jobs a side per round")
    parser.add_argument("--idle", type=float, default=0.0, help="seconds before each job")
    add_common_args(parser, peers=False)
    args = parser.parse_args()
    os.chdir("/")
    with (
        tempfile.TemporaryDirectory(prefix="prodigy-ab-") as tmp,
        checkout(args.base, Path(tmp) / "base") as base,
        contextlib.ExitStack() as daemons,
    ):
        trees = {"A": base, "B": TOP}
        socks, params = {}, {}
        for name, tree in trees.items():
            root = Path(tmp) / name
            root.mkdir()
            env = bench_env(root, "home", args.loop)
            repo = make_repo(root, env)
            params[name] = submit_params(repo / WORKFLOW, repo, env)
            socks[name] = daemons.enter_context(daemon({**env, "PYTHONPATH": str(tree)}))
        marks: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        for name in trees:  # warm: the first jobs import the engine
            with contextlib.redirect_stdout(io.StringIO()):
                first_steps(socks[name], params[name], 3)
        for round_ in range(args.rounds):
            for name in list(trees) if round_ % 2 == 0 else list(reversed(trees)):
                for _ in range(args.jobs):
                    time.sleep(args.idle)
                    with contextlib.redirect_stdout(io.StringIO()):
                        one = first_steps(socks[name], params[name], 1)
                    for mark, values in one.items():
                        marks[name].setdefault(mark, []).extend(values)
                    time.sleep(args.idle)
                    took = plain_submit(socks[name], params[name])
                    marks[name].setdefault("plain submit", []).append(took)
    described = subprocess.run(
        ["git", "rev-parse", "--short", args.base], cwd=TOP, capture_output=True, text=True
    ).stdout.strip()
    print(f"A: {args.base} ({described}); B: this tree ({TOP}); {args.loop}")
    print(f"{args.rounds} rounds x {args.jobs} jobs a side, {args.idle * 1000:g} ms idle each")
    for mark in marks["A"]:
        a = statistics.median(marks["A"][mark]) * 1000
        b = statistics.median(marks["B"][mark]) * 1000
        print(f"  {mark:18s} A {a:7.2f} ms  B {b:7.2f} ms  B-A {b - a:+6.2f} ms", end="")
        print(f"  ratio B/A {b / a:.2f}")


if __name__ == "__main__":
    sys.exit(main())
