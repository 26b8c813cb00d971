"""The README's quick start, run as a user would: examples/quickstart.sh end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A folder with a short path: the script's socket lives under it, and pytest's own
    temporary folders are too deep for a Unix socket path (107 bytes at most)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="pq-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_socket_path_too_long_is_a_clear_error(isolated: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.cli import ctl

    monkeypatch.setenv("PRODIGY_HOME", str(isolated / ("x" * 120)))
    done = ctl("sessions", "ls")
    assert done.returncode == 2 and "allow at most 107" in done.stderr  # the user's to fix
    assert "set PRODIGY_HOME to a shorter folder" in done.stderr


def test_quickstart_runs_both_examples_and_lands_their_work(short_tmp: Path):
    # As a user whose virtualenv is active: its prodigyctl (and python3) come first on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "TMPDIR": str(short_tmp), "PATH": path}
    env.pop("PRODIGY_HOME")  # the script makes its own, in the scratch folder
    done = subprocess.run(
        ["sh", str(EXAMPLES / "quickstart.sh")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count(" completed\n") >= 2  # hello.yml and mapreduce.yml sessions
    assert "# Hello from prodigy" in out
    assert "Map phase completed: 3 successful, 0 failed (total: 3)" in out
    assert "README.md: 1 lines, 4 words" in out  # stats/SUMMARY.txt, written by reduce
    [scratch] = short_tmp.glob("prodigy-quickstart.*")
    assert not (scratch / "prodigy-home" / "prodigyd.sock").exists()  # the daemon stopped
    assert out.rstrip().endswith(f"(remove them with: rm -rf {scratch})")  # said last
