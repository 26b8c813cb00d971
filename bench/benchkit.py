"""What the benchmarks share: stopping the daemon processes they start."""

from __future__ import annotations

import signal
import subprocess


def stop(proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM a process we started (a daemon checkpoints on it), SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
