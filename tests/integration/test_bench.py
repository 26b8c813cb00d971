"""Every benchmark still runs (with tiny sizes): a benchmark that rots unnoticed measures
nothing. Figures are never checked here; these machines are too noisy for that."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"

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

SMALL = {
    "step_overhead.py": ["--steps", "5", "--rounds", "1"],
    "rpc_latency.py": ["--requests", "50", "--warmup", "10"],
    "submit_latency.py": ["--submits", "3", "--runs", "2", "--cli-runs", "1"],
    "startup.py": ["--jobs", "30", "--small", "3", "--starts", "1", "--updates", "5"],
    "mapreduce.py": [
        *("--items", "4", "--parallel", "2", "--files", "20", "--acquires", "2"),
        *("--executor", "dask"),
    ],
    "hook_latency.py": ["--commits", "2"],
    "trigger_latency.py": ["--events", "2"],
    "soak.py": SOAK,
}


def test_every_benchmark_has_a_small_run():
    scripts = {p.name for p in BENCH.glob("*.py")} - {"benchkit.py"}
    assert scripts == set(SMALL)


@pytest.mark.parametrize("script", sorted(SMALL))
@pytest.mark.timeout(300)
def test_benchmark_runs(script: str):
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *SMALL[script]],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=280,
        stdin=subprocess.DEVNULL,
        check=False,
        env=_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio" in done.stdout  # every benchmark prints a ratio against its floor


def _env() -> dict[str, str]:
    """The benchmarks make their own PRODIGY_HOME and HOME in a temporary folder."""
    import os

    env = dict(os.environ)
    env["TMPDIR"] = "/tmp"  # the benchmarks' sockets need short paths
    return env
