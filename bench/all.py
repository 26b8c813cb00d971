"""Every row of issue 15's table in one run, printed as one Markdown table.

Runs each row's script (small but meaningful sizes, a few minutes on 2 cores) once per
event loop of the daemon (uvloop, prodigyd's default, and asyncio), collects the rows they
print and prints: metric | prodigy | floor | ratio | target | peer (ratio) | asyncio vs
uvloop. The prodigy, floor and peer figures come from the daemon's default loop; the last
column gives each loop's figure and ratio (each against the floor of its own run) and
which loop wins on the ratio. Peers are measured in the first loop's run only. A MISS is
a finding, not a failure: the exit status says only whether every script ran.

    python bench/all.py [--peers] [--loops asyncio,uvloop] [--only rss.py,...] [--tiny] [-v]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import LOOPS, ROW_PREFIX, Peer, Row, fmt

BENCH = Path(__file__).parent

#: Each row script and the sizes the table is made with.
SIZES: dict[str, list[str]] = {
    "step_overhead.py": ["--steps", "100", "--rounds", "3"],
    "rpc_latency.py": ["--requests", "3000", "--warmup", "300"],
    "submit_latency.py": ["--submits", "100", "--runs", "20", "--cli-runs", "10"],
    "startup.py": ["--jobs", "10000", "--small", "100", "--starts", "5", "--updates", "200"],
    "mapreduce.py": ["--items", "20", "--parallel", "8", "--files", "200", "--acquires", "5"],
    "hook_latency.py": ["--commits", "20", "--burst", "10"],
    "rss.py": ["--jobs", "1000"],
}

#: The same scripts with tiny sizes: the suite's (tests/integration/test_bench.py).
TINY: dict[str, list[str]] = {
    "step_overhead.py": ["--steps", "5", "--rounds", "1"],
    "rpc_latency.py": ["--requests", "50", "--warmup", "10"],
    "submit_latency.py": ["--submits", "3", "--runs", "2", "--cli-runs", "1"],
    "startup.py": ["--jobs", "30", "--small", "3", "--starts", "1", "--updates", "5"],
    "mapreduce.py": [
        *("--items", "4", "--parallel", "2", "--rounds", "1"),
        *("--files", "20", "--acquires", "2"),
    ],
    "hook_latency.py": ["--commits", "2", "--burst", "2"],
    "rss.py": ["--jobs", "3"],
}


def run_script(
    script: str, sizes: list[str], loop: str, extra: list[str], verbose: bool
) -> list[Row] | str:
    """The rows a script printed, or why it failed."""
    started = time.perf_counter()
    print(f"running {script} on {loop} ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *sizes, "--loop", loop, *extra],
        cwd=BENCH,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if verbose:
        print(done.stdout, done.stderr, sep="", file=sys.stderr)
    print(f"  ... {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"{script} failed ({lines[-1] if lines else done.returncode})"
    return [
        row_from(json.loads(line[len(ROW_PREFIX) :]))
        for line in done.stdout.splitlines()
        if line.startswith(ROW_PREFIX)
    ]


def row_from(data: dict[str, Any]) -> Row:
    peers = [Peer(**peer) for peer in data.pop("peers")]
    return Row(**data, peers=peers)


def table(rows: dict[str, dict[str, Row]], loops: list[str]) -> str:
    """One Markdown line per row key; figures from the first loop's run."""
    lines = [
        "| metric | prodigy | floor | ratio | target | peer (ratio) | uvloop vs asyncio |",
        "|---|---|---|---|---|---|---|",
    ]
    for by_loop in rows.values():
        row = by_loop.get(loops[0]) or next(iter(by_loop.values()))
        verdict = "PASS" if row.passes else "MISS"
        target = f"+{row.target:g} {row.unit}" if row.over else f"{row.target:g}x"
        peers = "; ".join(
            f"{peer.name} {fmt(peer.value, row.unit)} ({peer.value / row.floor:.2f}x)"
            for peer in row.peers
        )
        lines.append(
            f"| {row.metric} | {fmt(row.prodigy, row.unit)} "
            f"| {fmt(row.floor, row.unit)} ({row.floor_label}) "
            f"| {row.ratio:.2f}x ({'+' if row.prodigy >= row.floor else '-'}"
            f"{fmt(abs(row.prodigy - row.floor), row.unit)}) "
            f"| <= {target} {verdict} | {peers or '—'} | {loops_cell(by_loop, row)} |"
        )
    return "\n".join(lines)


def loops_cell(by_loop: dict[str, Row], row: Row) -> str:
    """Each loop's figure and ratio and the winner on the ratio; '—' for a client-only row."""
    if row.loop is None or len(by_loop) < 2:
        return "—"
    figures = " / ".join(
        f"{loop} {fmt(r.prodigy, r.unit)} ({r.ratio:.2f}x)" for loop, r in by_loop.items()
    )
    winner = min(by_loop, key=lambda loop: by_loop[loop].ratio)
    return f"{figures}: {winner}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", action="store_true", help="install missing peer tools")
    parser.add_argument("--no-peers", action="store_true", help="measure no peer at all")
    parser.add_argument(
        "--peer-dir", type=Path, help="keep pip and npm peers here (default: a temporary folder)"
    )
    parser.add_argument("--loops", default=",".join(LOOPS), help="event loops, the default first")
    parser.add_argument("--only", help="comma-separated scripts (default: every row script)")
    parser.add_argument("--tiny", action="store_true", help="the suite's tiny sizes")
    parser.add_argument("-v", "--verbose", action="store_true", help="echo each script's output")
    args = parser.parse_args()
    sizes = TINY if args.tiny else SIZES
    scripts = args.only.split(",") if args.only else list(sizes)
    loops = args.loops.split(",")
    if unknown := (set(scripts) - set(sizes)) | (set(loops) - set(LOOPS)):
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    rows: dict[str, dict[str, Row]] = {}
    failures = []
    started, load = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-peers-") as tmp:
        peer_dir = str(args.peer_dir or tmp)
        for script in scripts:
            for index, loop in enumerate(loops):
                extra = ["--peer-dir", peer_dir]
                if args.no_peers or index > 0:
                    extra.append("--no-peers")
                elif args.peers:
                    extra.append("--peers")
                result = run_script(script, sizes[script], loop, extra, args.verbose)
                if isinstance(result, str):
                    failures.append(result)
                    continue
                for row in result:
                    rows.setdefault(row.key, {})[loop] = row
    took = time.perf_counter() - started
    print(
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores (nproc), python "
        f"{platform.python_version()} ({os.path.abspath(sys.executable)}), {took:.0f} s, load"
        f" average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end;"
        f" `python bench/all.py {' '.join(sys.argv[1:])}`"
    )
    print()
    print(table(rows, loops))
    for failure in failures:
        print(f"\n{failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
