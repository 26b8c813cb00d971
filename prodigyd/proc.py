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
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: How long a process group gets between SIGTERM and SIGKILL when we stop it. Long enough
#: for a well-behaved tool to flush its output, short enough that `cancel` feels immediate.
KILL_GRACE_SECONDS = 2.0

#: How long a finished child's pipes may stay open (held by a process it left running)
#: before we stop reading them. Whatever is still in its process group is then killed: a
#: step never leaks background processes, and a stray daemon never blocks the workflow.
PIPE_DRAIN_SECONDS = 2.0

#: How long a child runs before the loop watches its pipes. Most children (a `shell: true`,
#: a quick git) are gone sooner: their output is then read once, after their exit, and
#: their pipes never enter the loop's poller (with uvloop, ~11 system calls a pipe to add
#: and remove). A longer-running child's lines reach their sinks (live logs, claude's
#: stream) from here on, what it wrote meanwhile first; one that fills a pipe (64 KiB)
#: sooner waits this long at most. (A quick child's stdout lines then reach their sink
#: before its stderr lines, as two pipes read in one turn of the loop always could.)
PIPE_WATCH_DELAY_SECONDS = 0.002

#: At most this much is read from a pipe at once after its child's exit (`read_now`):
#: a process the child left behind may keep writing, and the loop must not be held by it.
READ_NOW_CHUNKS = 4

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
    stopped: bool = False  # killed because `stop` was set (a budget was spent)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.stopped


LineSink = Callable[[str], None]

#: The umask every child gets: the user's own, saved by `keep_store_private()` when the
#: daemon narrows its own; -1 (inherit) until then, as in the engine's in-process tests.
_child_umask = -1


#: /dev/null, opened once for every child's stdin (see `run`).
_devnull: int | None = None


def _dev_null() -> int:
    global _devnull
    if _devnull is None:
        _devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _devnull


def keep_store_private() -> None:
    """Make everything the daemon creates itself private (folders 0700, files 0600) on
    every path of creation, while its children keep the user's umask: a file a step makes,
    or a merge writes into the user's checkout, gets the modes the user expects."""
    global _child_umask
    _child_umask = os.umask(0o077)


def write_as_user(path: Path, data: bytes, *, parents: bool = True) -> None:
    """Write a file into a worktree as the user's own tools would: folders made on the way
    (with `parents`) and a new file get the modes of the user's umask, not the daemon's
    private 077. An existing file keeps its mode (an executable stays one)."""
    missing = []
    folder = path.parent
    while parents and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
            _as_user(folder, 0o777)
    new = not path.exists()
    path.write_bytes(data)
    if new:
        _as_user(path, 0o666)


def as_user_mode(mode: int) -> int:
    """`mode` as the user's umask leaves it (unchanged until keep_store_private ran)."""
    return mode & ~_child_umask if _child_umask >= 0 else mode


def _as_user(path: Path, mode: int) -> None:
    if _child_umask >= 0:
        os.chmod(path, as_user_mode(mode))


async def run(
    argv: Sequence[str],
    *,
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    on_stdout_line: LineSink | None = None,
    on_stderr_line: LineSink | None = None,
    stop: asyncio.Event | None = None,
    stdin_data: bytes | None = None,
) -> Completed:
    """Run `argv` to completion in its own process group.

    `stdin_data`: what the child reads on its standard input, through a pipe (else it
    reads /dev/null). Written from the loop as the child reads; a child that exits
    without reading it all leaves the rest unwritten, as a shell pipeline would.

    `on_*_line` receive each decoded line (without its newline) as it arrives, for live
    progress and stream parsing. On timeout the group is terminated and the result has
    `timed_out=True`, `returncode=-1`; so it is when `stop` is set (by a line sink, say),
    with `stopped=True`. If the awaiting task is cancelled the group is
    killed before the cancellation propagates, so no orphan outlives its job. Once the child
    exits, processes it left in its group are killed too (see PIPE_DRAIN_SECONDS).

    Spawning uses `subprocess.Popen` (vfork) and waits on a pidfd and the pipes from the
    event loop: asyncio's subprocess transport costs a thread per child and roughly
    doubles the per-step floor (bench/step_overhead.py). The pipes are plain descriptors,
    made here, and stdin (without `stdin_data`) is one /dev/null kept open: Popen's file
    objects and its /dev/null cost syscalls and Python work on every spawn. Needs Linux
    >= 5.3.
    """
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    # not inheritable: the child gets them as 0 (with stdin_data), 1 and 2
    out_read, out_write, err_read, err_write, *stdin_pipe = _pipes(2 if stdin_data is None else 3)
    in_read, in_write = stdin_pipe or (_dev_null(), -1)
    try:
        proc = _spawn(list(argv), str(cwd), env, (in_read, out_write, err_write))
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        if in_write >= 0:
            os.close(in_write)
        raise
    finally:
        os.close(out_write)  # the child's copies are the only ones: EOF once it is gone
        os.close(err_write)
        if in_write >= 0:
            os.close(in_read)
    feed = _Feed(loop, in_write, stdin_data) if stdin_data is not None else None
    out_pipe = _Pipe(loop, out_read, on_stdout_line)
    err_pipe = _Pipe(loop, err_read, on_stderr_line)
    try:
        exit_watch = _Exit(loop, proc)
    except OSError:  # no pidfd (too many open files): the child must not run unwatched
        out_pipe.close()
        err_pipe.close()
        if feed is not None:
            feed.close()
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    watchers: tuple[_Pipe | _Exit | _Feed, ...] = (out_pipe, err_pipe, exit_watch)
    if feed is not None:
        watchers += (feed,)
    watch_pipes = loop.call_later(PIPE_WATCH_DELAY_SECONDS, _watch, out_pipe, err_pipe)
    timed_out = stopped = False
    try:
        try:
            exited = await asyncio.wait_for(_exit_or_stop(exit_watch, stop), timeout)
        except TimeoutError:
            exited, timed_out = False, True
        if not exited:
            stopped = not timed_out
            await _kill_group(proc, exit_watch.done)
        rc = await exit_watch.done
        watch_pipes.cancel()
        out_pipe.read_now()
        err_pipe.read_now()
        # The child has exited; a process it left behind may still hold the pipes open.
        if not (out_pipe.done.done() and err_pipe.done.done()):
            await asyncio.wait({out_pipe.done, err_pipe.done}, timeout=PIPE_DRAIN_SECONDS)
        _signal_group(proc.pid, signal.SIGKILL)  # leftovers of the step's process group
    except BaseException:
        await _kill_group(proc, exit_watch.done)
        raise
    finally:
        watch_pipes.cancel()
        for watcher in watchers:
            watcher.close()
    return Completed(
        argv=list(argv),
        returncode=-1 if timed_out or stopped else rc,
        stdout=out_pipe.text(),
        stderr=err_pipe.text(),
        duration=time.monotonic() - started,
        timed_out=timed_out,
        stopped=stopped,
    )


def _spawn(
    argv: list[str], cwd: str, env: Mapping[str, str] | None, fds: tuple[int, int, int]
) -> subprocess.Popen[bytes]:
    """Popen, in a new session, with `fds` as its stdin, stdout and stderr, the program
    found on the PATH once (`_found`)."""

    def spawn(executable: str | None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            executable=executable,
            cwd=cwd,
            env=env,
            stdin=fds[0],
            stdout=fds[1],
            stderr=fds[2],
            start_new_session=True,
            umask=_child_umask,
        )

    executable = _found(argv[0], env)
    try:
        return spawn(executable)
    except FileNotFoundError as exc:
        if executable is None or exc.filename != executable:
            raise  # not found on the PATH, or the folder to run in is missing
        _FOUND.clear()  # gone since it was found: the PATH is searched again
        return spawn(None)


#: Where a program named without a folder was found on a PATH, and when (time.monotonic()):
#: (name, PATH) -> (path, found at). Popen searches the PATH for it at every spawn, the
#: child trying each folder in turn, where the program found is run straight away
#: (Popen's `executable`; argv[0], `$0` to a shell, stays the name): ~70 µs of each
#: step's spawn. Kept FOUND_SECONDS, so a program installed on the PATH meanwhile is
#: found within that time; one gone meanwhile is searched for again at once.
_FOUND: dict[tuple[str, str], tuple[str | None, float]] = {}
FOUND_SECONDS = 10.0


def _found(name: str, env: Mapping[str, str] | None) -> str | None:
    """The program `name` runs (`env`'s PATH, else the daemon's), or None: Popen searches
    (a name with a folder, a PATH it is not on, a PATH with a relative folder, which means
    another folder to the child, run elsewhere, than to the daemon)."""
    if "/" in name:
        return None
    path = (os.environ if env is None else env).get("PATH", os.defpath)
    now = time.monotonic()
    hit = _FOUND.get((name, path))
    if hit is not None and now - hit[1] < FOUND_SECONDS:
        return hit[0]
    if not all(folder.startswith("/") for folder in path.split(os.pathsep)):
        return None  # (never kept)
    if len(_FOUND) >= 64:
        _FOUND.clear()
    found = shutil.which(name, path=path)
    _FOUND[(name, path)] = (found, now)
    return found


def _pipes(count: int) -> list[int]:
    """`count` pipes' descriptors, read end first; on a failure (too many open files) none
    of those already made stays open."""
    opened: list[int] = []
    try:
        for _ in range(count):
            opened += os.pipe()
    except OSError:
        for fd in opened:
            os.close(fd)
        raise
    return opened


async def _exit_or_stop(exit_watch: _Exit, stop: asyncio.Event | None) -> bool:
    """Wait for the child's exit (True) or for `stop` (False), whichever comes first."""
    exited = exit_watch.done
    if stop is None:
        await exit_watch.waiter()
        return True
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    waiting: set[asyncio.Future[Any]] = {exited, stopping}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    return exited.done()


async def _kill_group(proc: subprocess.Popen[bytes], exited: asyncio.Future[int]) -> None:
    """SIGTERM the child's process group, then SIGKILL it after a grace period."""
    if not exited.done():
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(exited), KILL_GRACE_SECONDS)
    _signal_group(proc.pid, signal.SIGKILL)  # the leader, or stragglers left in its group
    with contextlib.suppress(ChildProcessError):
        proc.wait()


class _Exit:
    """The child's exit status, woken by its pidfd (no watcher thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes]) -> None:
        self.loop, self.proc = loop, proc
        self.done: asyncio.Future[int] = loop.create_future()
        self._waiters: list[asyncio.Future[int]] = []
        self.pidfd: int | None = os.pidfd_open(proc.pid)
        loop.add_reader(self.pidfd, self._reap)

    def waiter(self) -> asyncio.Future[int]:
        """A future of the exit status that its awaiter may cancel, leaving `done` for the
        kill that follows. The reap resolves it itself: awaiting `asyncio.shield(done)`
        would take one more turn of the loop (the shield's callback) to wake the awaiter."""
        if self.done.done():
            return self.done
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        return waiter

    def _reap(self) -> None:
        self.close()
        if not self.done.done():
            status = self.proc.wait()
            for future in (self.done, *self._waiters):
                if not future.done():
                    future.set_result(status)

    def close(self) -> None:
        if self.pidfd is not None:
            self.loop.remove_reader(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None


def _watch(*pipes: _Pipe) -> None:
    for pipe in pipes:
        pipe.watch()


class _Feed:
    """Writes `data` to a child's stdin pipe (and owns its descriptor), as much as the pipe
    takes now, the rest whenever the child has read some; closed once all is written (the
    child sees its end) or the child has gone (EPIPE)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, data: bytes) -> None:
        self.loop, self.fd = loop, fd
        self.rest = memoryview(data)
        self.watched = False
        os.set_blocking(fd, False)
        self._write()

    def _write(self) -> None:
        try:
            while self.rest:
                self.rest = self.rest[os.write(self.fd, self.rest) :]
        except BlockingIOError:
            if not self.watched:
                self.watched = True
                self.loop.add_writer(self.fd, self._write)
            return
        except OSError:  # EPIPE: the child closed its stdin, or exited, unread
            pass
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            if self.watched:
                self.loop.remove_writer(self.fd)
            os.close(self.fd)
            self.fd = -1


class _Pipe:
    """Reads one child pipe (and owns its descriptor): collects text, feeds whole lines to
    a sink. Read from the loop once `watch`ed, and by `read_now` once the child is gone
    (PIPE_WATCH_DELAY_SECONDS)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, sink: LineSink | None) -> None:
        self.loop, self.fd, self.sink = loop, fd, sink
        self.chunks: list[bytes] = []
        self.size = 0
        self.partial = b""
        self.open = True
        self.watched = False
        self.done: asyncio.Future[None] = loop.create_future()
        os.set_blocking(fd, False)

    def watch(self) -> None:
        """Read from the loop whenever there is something to read, until EOF."""
        if self.open and not self.watched:
            self.loop.add_reader(self.fd, self._readable)
            self.watched = True

    def read_now(self) -> None:
        """Read what the pipe holds (READ_NOW_CHUNKS at most); watch it from the loop if it
        is not at its end yet (a process the child left behind holds it open). A sink that
        raises is reported as one called from the loop would be, and reading goes on."""
        for _ in range(READ_NOW_CHUNKS):
            if not self.open or self.watched:
                return
            try:
                if not self._readable():
                    break
            except Exception as exc:
                self.loop.call_exception_handler(
                    {"message": "a child's output sink failed", "exception": exc}
                )
        self.watch()

    def _readable(self) -> bool:
        """Read one chunk: False when there was none yet (the pipe is still open)."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._eof()
            return True
        if self.size < MAX_CAPTURE_BYTES:
            self.chunks.append(data)
            self.size += len(data)
        if self.sink is not None:
            lines = (self.partial + data).split(b"\n")
            self.partial = lines.pop()
            for line in lines:
                self.sink(line.decode(errors="replace"))
        return True

    def _eof(self) -> None:
        self.close()
        if self.sink is not None and self.partial:
            self.sink(self.partial.decode(errors="replace"))
        if not self.done.done():
            self.done.set_result(None)

    def text(self) -> str:
        """Everything read so far (all of it once `done`)."""
        return b"".join(self.chunks).decode(errors="replace")

    def close(self) -> None:
        if self.open:
            if self.watched:
                self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.open = False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def with_environment(entry: str) -> list[int]:
    """The processes of this user whose environment holds `entry` (`NAME=value`): a
    child a killed daemon left running, found by the mark it was started with (Linux:
    reads /proc; another user's environment is not readable, and is skipped)."""
    wanted = entry.encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if wanted in environ.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


def kill_processes_in(folder: Path) -> int:
    """SIGKILL the process group of every process whose working directory is in `folder`.

    A daemon killed with -9 cannot stop its children: their steps run on in their own
    process groups. Before a session resumes, its worktree is cleared of such orphans so
    the re-run step never races the old one. Linux only (reads /proc); returns how many
    process groups were killed.
    """
    root = str(folder.resolve())
    groups = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            if cwd == root or cwd.startswith(root + os.sep):
                groups.add(os.getpgid(int(entry.name)))
        except (OSError, ProcessLookupError):
            continue
    groups.discard(os.getpgrp())
    for group in groups:
        _signal_group(group, signal.SIGKILL)
    return len(groups)
