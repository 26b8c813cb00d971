"""Every benchmark still runs (with tiny sizes): a benchmark that rots unnoticed measures
nothing. Figures are never checked here; these machines are too noisy for that. The rows
of issue 15's table run through bench/all.py (on both event loops, no peers), so the
table it prints is checked too."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"


def _tiny_rows() -> dict[str, list[str]]:
    """bench/all.py's tiny sizes for the row scripts (one home for them)."""
    spec = importlib.util.spec_from_file_location("bench_all", BENCH / "all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return dict(module.TINY)


ROWS = _tiny_rows()

#: At least 50 kill points (issue 8); the soak exits 1 on anything lost, reverted or duplicated.
SOAK = [
    "--jobs",
    "40",
    "--pace",
    "0.02",
    "--kills",
    "50",
    "--kill-interval",
    "0.15",
    "--duration",
    "120",
    "--floor-jobs",
    "2",
    "--settle",
    "200",
]

#: The scripts that are no row of the table, with their tiny sizes.
SMALL = {
    "ab.py": ["--rounds", "1", "--jobs", "1"],  # this tree against HEAD
    "trigger_latency.py": ["--events", "2"],
    "soak.py": SOAK,
    "scale.py": [
        *("--jobs", "30", "--small", "3", "--starts", "1", "--ops", "1"),
        *("--items", "6", "--parallel", "2"),
    ],
}

#: Imported by the scripts, run by nobody on its own, or the runner itself.
NOT_SCRIPTS = {"benchkit.py", "peers.py", "all.py"}


def test_every_benchmark_has_a_small_run():
    scripts = {p.name for p in BENCH.glob("*.py")} - NOT_SCRIPTS
    assert scripts == set(SMALL) | set(ROWS)


@pytest.mark.parametrize("script", sorted(SMALL))
@pytest.mark.timeout(300)
def test_benchmark_runs(script: str):
    if script == "ab.py" and not (BENCH.parent / ".git").exists():
        pytest.skip("ab.py checks a revision out of this repository: not a git checkout")
    done = _run([str(BENCH / script), *SMALL[script]], timeout=280)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio" in done.stdout  # every benchmark prints a ratio against its floor


@pytest.mark.timeout(300)
def test_the_map_phase_on_a_dask_cluster_runs():
    """bench/mapreduce.py --executor dask (issue 13's per-item overhead) with tiny sizes."""
    sizes = ["--items", "4", "--parallel", "2", "--files", "20", "--acquires", "2"]
    done = _run([str(BENCH / "mapreduce.py"), *sizes, "--rounds", "1", "--executor", "dask"], 280)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio to the round trip" in done.stdout, done.stdout


@pytest.mark.parametrize("script", sorted(ROWS))
@pytest.mark.timeout(600)
def test_row_runs_on_both_loops(script: str):
    """The script through bench/all.py: its rows in the table, each with a verdict and
    both loops' figures, no peer measured."""
    done = _run([str(BENCH / "all.py"), "--tiny", "--no-peers", "-v", "--only", script], 580)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    assert lines, done.stdout
    for line in lines:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == 7, line
        assert cells[4].endswith(("PASS", "MISS")), line
        assert cells[5] == "—", line  # --no-peers
        assert cells[6] == "—" or ("asyncio" in cells[6] and "uvloop" in cells[6]), line


def _run(argv: list[str], timeout: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["TMPDIR"] = "/tmp"  # the benchmarks' sockets need short paths
    return subprocess.run(
        [sys.executable, *argv],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        env=env,
    )
