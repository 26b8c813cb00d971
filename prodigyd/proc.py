"""The one way prodigy runs a child process.

Every child (shell step, claude, git) runs in its own process group so that a timeout or a
cancel kills the whole tree, never just the `sh` at its top. stdin is always /dev/null: the
daemon never has a terminal to give and a child that waits for input must not hang a job.

The result is a plain `Completed` record; callers decide what a non-zero exit means.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: How long a process group gets between SIGTERM and SIGKILL when we stop it. Long enough
#: for a well-behaved tool to flush its output, short enough that `cancel` feels immediate.
KILL_GRACE_SECONDS = 2.0

#: Cap on the stdout/stderr kept in memory per process; the rest is dropped (and said so).
#: Output files and logs are written by the callers that need the whole stream.
MAX_CAPTURE_BYTES = 16 * 1024 * 1024


@dataclass
class Completed:
    """What a finished child left behind."""

    argv: list[str]
    returncode: int  # -1 when killed for a timeout
    stdout: str
    stderr: str
    duration: float  # seconds
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


LineSink = Callable[[str], None]


async def run(
    argv: Sequence[str],
    *,
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    on_stdout_line: LineSink | None = None,
    on_stderr_line: LineSink | None = None,
) -> Completed:
    """Run `argv` to completion in its own process group.

    `on_*_line` receive each decoded line (without its newline) as it arrives, for live
    progress and stream parsing. On timeout the group is terminated and the result has
    `timed_out=True`, `returncode=-1`. If the awaiting task is cancelled the group is
    killed before the cancellation propagates, so no orphan outlives its job.
    """
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd),
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    finished = asyncio.gather(
        _collect(proc.stdout, on_stdout_line),
        _collect(proc.stderr, on_stderr_line),
        proc.wait(),
    )
    timed_out = False
    try:
        try:
            out, err, rc = await asyncio.wait_for(asyncio.shield(finished), timeout)
        except TimeoutError:
            timed_out = True
            await kill_group(proc)
            out, err, rc = await finished
    except BaseException:
        await kill_group(proc)
        finished.cancel()
        raise
    return Completed(
        argv=list(argv),
        returncode=-1 if timed_out else rc,
        stdout=out,
        stderr=err,
        duration=time.monotonic() - started,
        timed_out=timed_out,
    )


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the child's process group, then SIGKILL it after a grace period."""
    if proc.returncode is not None:
        _signal_group(proc.pid, signal.SIGKILL)  # reap stragglers left in the group
        return
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_GRACE_SECONDS)
    except TimeoutError:
        pass
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _collect(stream: asyncio.StreamReader, sink: LineSink | None) -> str:
    """Read a pipe to EOF, feeding whole lines to `sink` as they come."""
    if sink is None:
        data = await stream.read(MAX_CAPTURE_BYTES)
        while await stream.read(65536):  # drain the excess so the child never blocks
            pass
        return data.decode(errors="replace")
    chunks: list[str] = []
    size = 0
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line longer than the reader's limit: take what is buffered
            raw = await stream.read(65536)
        if not raw:
            break
        text = raw.decode(errors="replace")
        if size < MAX_CAPTURE_BYTES:
            chunks.append(text)
            size += len(raw)
        sink(text.rstrip("\n"))
    return "".join(chunks)
