"""The daemon's resident memory, idle and after many jobs, against a bare asyncio server's.

(a) Idle: prodigyd's VmRSS once ready and answering (a few pings, then a pause) against
    the same for a bare asyncio JSON echo server (rpc_latency.py's, on the same
    interpreter): what any asyncio daemon holds. Target (issue 15): <= 2x.
(b) After --jobs one-step `shell: "true"` jobs, submitted back to back over one connection
    and all finished (merged, their worktrees back in the pool): VmRSS against the idle
    figure. Target: no growth with jobs (<= 1.1x, the noise of an allocator).

The daemon, its store, the repository and HOME live in a temporary directory; the daemon
and the echo server are always stopped at the end.

    python bench/rss.py [--jobs 1000] [--loop uvloop]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchkit import Row, add_common_args, emit, rss_mb, start_daemon, stop
from rpc_latency import ECHO_SERVER, json_rpc, process
from rpc_latency import Conn as EchoConn
from submit_latency import FINISHED, WORKFLOW, Conn, bench_env, make_repo, submit_params

TARGET_IDLE = 2.0
TARGET_GROWTH = 1.1
#: Seconds to let a server settle (its first requests' garbage collected) before reading.
SETTLE = 0.5


def run_jobs(conn: Conn, params: dict[str, object], n: int) -> float:
    """Submit n jobs back to back; wait until all have finished; return the seconds."""
    conn.call("events.subscribe", {})
    started = time.perf_counter()
    for _ in range(n):
        conn.call("jobs.submit", params)
    finished = 0
    while finished < n:
        conn.wait_event(FINISHED)
        finished += sum(1 for _, event in conn.events if event["event_type"] == FINISHED)
        conn.events.clear()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    add_common_args(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root, "home", args.loop)
        repo = make_repo(root, env)
        workflow = repo / WORKFLOW
        echo_sock = root / "echo.sock"
        with process([sys.executable, "-c", ECHO_SERVER, str(echo_sock)], env) as echo_pid:
            echo = EchoConn(echo_sock, json_rpc("echo"))
            echo.round_trips(100)
            echo.close()
            time.sleep(SETTLE)
            floor = rss_mb(echo_pid)
        proc, _ = start_daemon(env)
        try:
            conn = Conn(Path(env["PRODIGY_HOME"]) / "prodigyd.sock")
            for _ in range(100):
                conn.call("ping")
            time.sleep(SETTLE)
            idle = rss_mb(proc.pid)
            took = run_jobs(conn, submit_params(workflow, repo, env), args.jobs)
            conn.close()
            time.sleep(SETTLE)
            after = rss_mb(proc.pid)
        finally:
            stop(proc, timeout=60)
    print(f"python {sys.version.split()[0]}, prodigyd on {args.loop}")
    print(f"    floor: bare asyncio echo server, idle       {floor:7.1f} MB")
    print(f"    prodigyd idle                              {idle:7.1f} MB")
    print(
        f"    prodigyd after {args.jobs} jobs ({took:.1f} s, "
        f"{took / args.jobs * 1000:.1f} ms a job)  {after:7.1f} MB"
    )
    emit(
        Row(
            key="rss_idle",
            metric="daemon RSS, idle",
            unit="MB",
            prodigy=idle,
            floor=floor,
            floor_label="bare asyncio echo server",
            target=TARGET_IDLE,
            loop=args.loop,
        )
    )
    emit(
        Row(
            key="rss_growth",
            metric=f"daemon RSS after {args.jobs:,} jobs",
            unit="MB",
            prodigy=after,
            floor=idle,
            floor_label="the same daemon idle",
            target=TARGET_GROWTH,
            loop=args.loop,
        )
    )


if __name__ == "__main__":
    main()
