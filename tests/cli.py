"""Run the real `prodigyctl` as a subprocess, the way a user or a script would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Generous: CI machines are slow and noisy; tests assert outcomes, never timings.
DEFAULT_TIMEOUT = 120


def ctl(
    *args: str,
    cwd: Path | str | None = None,
    check: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`prodigyctl ARGS...` with stdin closed (never a TTY); returns the finished process."""
    done = subprocess.run(
        [sys.executable, "-m", "prodigyctl.main", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"prodigyctl {' '.join(args)} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def ctl_started(*args: str, cwd: Path | str | None = None) -> subprocess.Popen[str]:
    """`prodigyctl ARGS...` started, not awaited (a `run` to signal or to outlive its
    daemon), stdin closed, its output piped: `communicate()` collects it."""
    return subprocess.Popen(
        [sys.executable, "-m", "prodigyctl.main", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll `predicate` until true: tests wait on conditions, never on fixed sleeps."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
