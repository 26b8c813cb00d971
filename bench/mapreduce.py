"""MapReduce and the worktree pool, against the physical floors measured in the same run.

(a) A map phase of `--items` trivial agents (`shell: "true"`) at `max_parallel: --parallel`,
    run through the daemon (`prodigyctl run -y --json`), twice: the first run fills the
    worktree pool, the second is the warm steady state (the map phase's duration as the
    engine reports it). The floor is the same work done by `xargs -P PARALLEL`: for each
    item, in a worktree made beforehand, what an agent cannot avoid: pointing it at a commit
    (`git checkout --force --detach`) and spawning its step (`sh -c true`); its wall time.
    Target (issue 15): <= 1.15x. Also printed: ideal = ceil(items / parallel) x one item's
    floor, and that ideal on the machine's cores.
(b) Getting a worktree of a `--files`-file repository: a raw `git worktree add` against
    the pool's acquire of a warm slot (the pool's own API, in-process). Target: the pool is
    at least 5x faster.
(c) With `--executor dask`: a map phase of `--items` agents that each commit a file, in a
    `--files`-file repository, run by the local runner and then on a Dask cluster (a
    scheduler and two worker processes on this machine, `distributed.LocalCluster`), at
    `max_parallel: --parallel`; the per-item overhead of the cluster against the bare
    bundle round trip an agent cannot avoid there (bundle the branch, clone it, bundle the
    agent's commit, unbundle it), measured in the same run.

Everything lives in a temporary directory; the daemon is always stopped at the end.

    python bench/mapreduce.py [--items 20] [--parallel 8] [--rounds 9] [--files 2000]
        [--acquires 20] [--loop uvloop] [--executor dask]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import Row, add_common_args, emit, start_daemon, stop

TARGET_POOL_SPEEDUP = 5.0
TARGET_MAP = 1.15


def bench_env(root: Path, loop: str = "asyncio") -> dict[str, str]:
    return {
        **os.environ,
        "PRODIGY_HOME": str(root / "home"),
        "HOME": str(root),
        "PRODIGY_EVENT_LOOP": loop,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }


def make_repo(path: Path, files: int, env: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for number in range(files):
        (path / f"f{number:05d}.txt").write_text(f"{number}\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return path


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def timed(argv: list[str], cwd: Path, env: dict[str, str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


# -- (a) map phase ------------------------------------------------------------------------------


def item_floor(repo: Path, root: Path, env: dict[str, str], n: int = 30) -> float:
    """Seconds per item an agent cannot go below: reset a worktree, spawn its step."""
    worktree = root / "floor-wt"
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(worktree)], cwd=repo, env=env, check=True
    )
    reset = timed(["git", "checkout", "-q", "--force", "--detach", "HEAD"], worktree, env, n)
    spawn = timed(["sh", "-c", "true"], worktree, env, n)
    subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=repo, env=env)
    return statistics.median(reset) + statistics.median(spawn)


class XargsFloor:
    """`xargs -P parallel` doing each item's checkout + spawn, one worktree per item made
    beforehand (as a warm pool has them); `run` times one round (wall seconds)."""

    def __init__(
        self, repo: Path, root: Path, env: dict[str, str], items: int, parallel: int
    ) -> None:
        self.repo, self.env, self.items = repo, env, items
        self.folder = root / "xargs-wt"
        for number in range(items):
            subprocess.run(
                ["git", "worktree", "add", "-q", "--detach", str(self.folder / str(number))],
                cwd=repo,
                env=env,
                check=True,
            )
        item = 'cd "$0/$1" && git checkout -q --force --detach HEAD && sh -c true'
        self.argv = ["xargs", "-P", str(parallel), "-n", "1", "sh", "-c", item, str(self.folder)]

    def run(self) -> float:
        started = time.perf_counter()
        subprocess.run(
            self.argv,
            input="".join(f"{number}\n" for number in range(self.items)),
            text=True,
            env=self.env,
            check=True,
        )
        return time.perf_counter() - started

    def close(self) -> None:
        for number in range(self.items):
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(self.folder / str(number))],
                cwd=self.repo,
                env=self.env,
            )


def map_run(
    workflow: Path, repo: Path, env: dict[str, str], cluster: Any = None
) -> tuple[float, float]:
    """(map phase seconds as the engine measured it, wall seconds of the whole run); on the
    Dask `cluster` when one is given."""
    dask = ["--executor-address", cluster.scheduler_address] if cluster is not None else []
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "prodigyctl.main", "run", str(workflow), "-y", "--json", *dask],
        cwd=repo,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"the run failed:\n{done.stdout}{done.stderr}")
    wall = time.perf_counter() - started
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    phase = next(e for e in events if e["event_type"] == "map_phase_completed")
    assert phase["successful"] == phase["total"], phase
    return phase["duration"], wall


def bench_map(
    root: Path, env: dict[str, str], items: int, parallel: int, rounds: int, loop: str
) -> None:
    repo = make_repo(root / "map-repo", 1, env)
    workflow = root / "map.yml"
    workflow.write_text(
        f"mode: mapreduce\nmap:\n  input: 'seq {items}'\n  max_parallel: {parallel}\n"
        "  agent_template:\n    - shell: 'true'\n"
    )
    floor = item_floor(repo, root, env)
    cores = os.cpu_count() or 1
    ideal = math.ceil(items / parallel) * floor
    ideal_cores = math.ceil(items / min(parallel, cores)) * floor
    xargs_floor = XargsFloor(repo, root, env, items, parallel)
    proc, _ = start_daemon(env)
    try:
        cold, cold_wall = map_run(workflow, repo, env)
        walls, runs = [], []
        for _ in range(rounds):  # the floor and the phase in turn: the same machine state
            walls.append(xargs_floor.run())
            runs.append(map_run(workflow, repo, env))
        xargs = statistics.median(walls)
        warm, warm_wall = (statistics.median(values) for values in zip(*runs, strict=True))
    finally:
        stop(proc, timeout=60)
        xargs_floor.close()
    print(f"(a) map phase: {items} `shell: true` agents, max_parallel {parallel}, {cores} cores")
    print(
        f"    floor: xargs -P {parallel} checkout --detach + sh -c true {xargs * 1000:8.1f} ms"
        f"   (median of {rounds}, a round before each warm phase)"
    )
    print(f"    context per item: checkout --detach + sh -c true {floor * 1000:8.2f} ms")
    print(f"    ideal: ceil({items}/{parallel}) x floor              {ideal * 1000:8.1f} ms")
    print(
        f"    ideal on {cores} cores: ceil({items}/{min(parallel, cores)}) x floor        "
        f"{ideal_cores * 1000:8.1f} ms"
    )
    print(
        f"    map phase, cold pool (worktrees made)       {cold * 1000:8.1f} ms"
        f"   (whole run {cold_wall * 1000:.0f} ms)"
    )
    print(
        f"    map phase, warm pool (median of {rounds})          {warm * 1000:8.1f} ms"
        f"   (whole run {warm_wall * 1000:.0f} ms)"
    )
    print(
        f"    ratio warm / ideal {warm / ideal:.2f}x, warm / ideal on these cores "
        f"{warm / ideal_cores:.2f}x; per item {warm / items * 1000:.2f} ms"
    )
    emit(
        Row(
            key="map",
            metric=f"{items}-item map phase, `max_parallel: {parallel}`, warm",
            unit="ms",
            prodigy=warm * 1000,
            floor=xargs * 1000,
            floor_label=f"`xargs -P {parallel}` checkout + spawn",
            target=TARGET_MAP,
            loop=loop,
        )
    )


# -- (b) pool acquire ------------------------------------------------------------------------------


def raw_worktree_add(repo: Path, root: Path, env: dict[str, str], n: int) -> list[float]:
    times = []
    for number in range(n):
        path = root / "raw" / str(number)
        started = time.perf_counter()
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(path), "HEAD"],
            cwd=repo,
            env=env,
            check=True,
        )
        times.append(time.perf_counter() - started)
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=repo, env=env)
    return times


async def pool_acquires(repo: Path, n: int) -> list[float]:
    from prodigyd.pool import WorktreePool

    pool = WorktreePool()
    warm = await pool.acquire(repo, owner="warm-up", session_id="bench", start="HEAD")
    await pool.release(warm.path)
    times = []
    for number in range(n):
        started = time.perf_counter()
        lease = await pool.acquire(repo, owner=f"o{number}", session_id="bench", start="HEAD")
        times.append(time.perf_counter() - started)
        assert lease.reused
        await pool.release(lease.path)
    return times


def bench_pool(root: Path, env: dict[str, str], files: int, n: int) -> None:
    repo = make_repo(root / "big-repo", files, env)
    raw = raw_worktree_add(repo, root, env, n)
    os.environ.update(env)  # the pool's bookkeeping lives under this PRODIGY_HOME
    pooled = asyncio.run(pool_acquires(repo, n))
    speedup = statistics.median(raw) / statistics.median(pooled)
    print(f"(b) a worktree of a {files}-file repository, {n} times")
    print(f"    floor: git worktree add --detach              p50 {median_ms(raw):8.2f} ms")
    print(f"    pool acquire of a warm slot                   p50 {median_ms(pooled):8.2f} ms")
    verdict = "meets" if speedup >= TARGET_POOL_SPEEDUP else "MISSES"
    print(f"    speedup {speedup:.1f}x; target >= {TARGET_POOL_SPEEDUP:g}x: {verdict} it")


# -- (c) map agents on a Dask cluster -------------------------------------------------------------

COMMITTING = """mode: mapreduce
map:
  input: 'seq {items}'
  max_parallel: {parallel}
  agent_template:
    - shell: |
        echo $PRODIGY_AGENT_ID > out-${{item}}.txt
        git add -A && git commit -qm "item ${{item}}"
"""


def bundle_round_trip(repo: Path, root: Path, env: dict[str, str], n: int) -> float:
    """Seconds of the git work a remote agent cannot avoid: the branch as a bundle, a clone
    of it, the agent's commit as a bundle, and that bundle unbundled in the repository."""
    times = []
    for number in range(n):
        folder = root / "round-trip" / str(number)
        folder.mkdir(parents=True)
        started = time.perf_counter()
        steps = [
            (repo, ["bundle", "create", "-q", str(folder / "base.bundle"), "main"]),
            (folder, ["clone", "-q", "-b", "main", str(folder / "base.bundle"), "clone"]),
            (folder / "clone", ["commit", "-q", "--allow-empty", "-m", "agent"]),
            (folder / "clone", ["update-ref", "refs/heads/agent", "HEAD"]),
            (
                folder / "clone",
                [
                    "bundle",
                    "create",
                    "-q",
                    str(folder / "agent.bundle"),
                    "refs/heads/agent",
                    "^HEAD~",
                ],
            ),
            (repo, ["bundle", "unbundle", str(folder / "agent.bundle")]),
        ]
        for cwd, args in steps:
            subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_dask(root: Path, env: dict[str, str], items: int, parallel: int, files: int) -> None:
    from distributed import LocalCluster

    repo = make_repo(root / "dask-repo", files, env)
    workflow = root / "committing.yml"
    workflow.write_text(COMMITTING.format(items=items, parallel=parallel))
    floor = bundle_round_trip(repo, root, env, 10)
    threads = max(1, math.ceil(parallel / 2))
    cluster = LocalCluster(  # every server on 127.0.0.1, the HTTP ones too (":0" is 0.0.0.0)
        n_workers=2,
        threads_per_worker=threads,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address="127.0.0.1:0",
    )
    proc, _ = start_daemon(env)
    try:
        local, _ = map_run(workflow, repo, env)
        remote, _ = map_run(workflow, repo, env, cluster)
    finally:
        stop(proc, timeout=60)
        cluster.close()
    per_local, per_remote = local / items * 1000, remote / items * 1000
    overhead = per_remote - per_local
    print(f"(c) {items} committing agents in a {files}-file repository, max_parallel {parallel}")
    print(f"    floor: bundle, clone, bundle back, unbundle   {floor * 1000:8.1f} ms per item")
    print(
        f"    map phase, local runner                     {local * 1000:8.1f} ms"
        f"   ({per_local:.1f} ms per item)"
    )
    print(
        f"    map phase, Dask (2 workers x {threads} threads)     {remote * 1000:8.1f} ms"
        f"   ({per_remote:.1f} ms per item)"
    )
    print(
        f"    overhead per item over local {overhead:.1f} ms; ratio to the round trip "
        f"{overhead / (floor * 1000):.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=9, help="warm map phases and floor rounds, in turn (median)"
    )
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--acquires", type=int, default=20)
    add_common_args(parser)
    parser.add_argument("--executor", choices=["local", "dask"], default="local")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root, args.loop)
        bench_map(root, env, args.items, args.parallel, args.rounds, args.loop)
        bench_pool(root, env, args.files, args.acquires)
        if args.executor == "dask":
            bench_dask(root, env, args.items, args.parallel, args.files)


if __name__ == "__main__":
    main()
