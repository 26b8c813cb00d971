"""prodigyd.proc.run with real children: what a child is given, and what it leaves open."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import itertools
import os
import resource
from pathlib import Path

import pytest

from prodigyd import proc

#: fcntl's F_SETPIPE_SZ (Linux; Python 3.10+ names it on Linux only).
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


async def test_a_child_reads_dev_null_and_its_streams_come_back_apart(tmp_path: Path):
    script = 'cat; echo "in=$(readlink /proc/$$/fd/0)"; echo oops >&2; ls /proc/$$/fd; exit 3'
    done = await proc.run(["sh", "-c", script], cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert lines[0] == "in=/dev/null"
    assert sorted(lines[1:]) == ["0", "1", "2"]  # nothing of the daemon's but its streams
    assert done.stderr == "oops\n"
    assert done.returncode == 3 and not done.ok


async def test_stdin_data_past_a_pipes_size_reaches_a_slow_reader_whole(tmp_path: Path):
    data = os.urandom(48_000).hex().encode()  # 96 KB: more than a 64 KiB pipe holds
    ticks = 0

    async def tick() -> None:  # the loop turns while the child reads: nothing blocks it
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticking = asyncio.create_task(tick())
    try:
        done = await proc.run(["sh", "-c", "sleep 0.2; sha256sum"], cwd=tmp_path, stdin_data=data)
    finally:
        ticking.cancel()
    assert done.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    assert ticks >= 10


async def test_a_child_that_reads_no_stdin_data_neither_fails_nor_leaks(tmp_path: Path):
    await proc.run(["true"], cwd=tmp_path)  # the first run opens what is kept (/dev/null)
    before = _open_fds()
    done = await proc.run(["sh", "-c", "exit 4"], cwd=tmp_path, stdin_data=b"x" * 200_000)
    assert done.returncode == 4  # its stdin closed unread: EPIPE, not an error of the run
    assert _open_fds() == before


async def test_runs_leave_no_descriptor_open(tmp_path: Path):
    await proc.run(["true"], cwd=tmp_path)  # the first run opens what is kept (/dev/null)
    before = _open_fds()
    for _ in range(20):
        await proc.run(["sh", "-c", "echo out; echo err >&2"], cwd=tmp_path)
    await proc.run(["sh", "-c", "sleep 5 & echo started"], cwd=tmp_path)  # killed after
    assert _open_fds() == before


async def test_a_command_that_cannot_start_leaves_no_descriptor_open(tmp_path: Path):
    await proc.run(["true"], cwd=tmp_path)
    before = _open_fds()
    for argv, cwd in ((["no-such-command-xyz"], tmp_path), (["true"], tmp_path / "missing")):
        try:
            await proc.run(argv, cwd=cwd)
        except OSError:
            pass
        else:
            raise AssertionError(f"{argv} in {cwd} started")
    assert _open_fds() == before


@pytest.mark.parametrize("stdin_data", [None, b"prompt"])
async def test_too_many_open_files_leaves_none_of_the_pipes_made_open(
    tmp_path: Path, stdin_data: bytes | None
):
    await proc.run(["true"], cwd=tmp_path)  # the first run opens what is kept (/dev/null)
    before = _open_fds()
    free = (fd for fd in range(max(before) + 4) if fd not in before)
    third = next(itertools.islice(free, 2, None))  # room for three new descriptors: one pipe
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (third + 1, hard))
    try:
        with pytest.raises(OSError):
            await proc.run(["true"], cwd=tmp_path, stdin_data=stdin_data)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert _open_fds() == before


async def test_a_cancelled_run_terminates_its_process_group_first(tmp_path: Path):
    ready, term, pid = tmp_path / "ready", tmp_path / "term", tmp_path / "pid"
    script = (
        f'trap "echo term > {term}; exit 0" TERM; echo $$ > {pid}; sleep 30 & touch {ready}; wait'
    )
    task = asyncio.ensure_future(proc.run(["sh", "-c", script], cwd=tmp_path))
    for _ in range(300):
        if ready.exists():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert term.exists()  # SIGTERM first: a well-behaved tool may flush its output
    group = int(pid.read_text())
    for _ in range(500):  # a killed process takes a moment to die
        if not _alive_in_group(group):
            break
        await asyncio.sleep(0.01)
    assert _alive_in_group(group) == []  # and nothing of its group runs on


def _alive_in_group(pgid: int) -> list[int]:
    """Processes of group `pgid` that are not dead (a zombie waits for init, harmlessly)."""
    alive = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            alive.append(int(entry.name))
    return alive


@pytest.fixture
def read_after_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pipes the loop watches only long after any of these children is gone: their output
    is read by `read_now`, whatever the machine's load."""
    monkeypatch.setattr(proc, "PIPE_WATCH_DELAY_SECONDS", 30.0)


@pytest.fixture
def watched_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proc, "PIPE_WATCH_DELAY_SECONDS", 0.0)


async def test_a_quick_childs_output_is_read_whole_after_its_exit(
    tmp_path: Path, read_after_exit: None
):
    """Every line, the last one without its newline too, reaches the sink, in order."""
    lines: list[str] = []
    done = await proc.run(
        ["sh", "-c", "echo one; echo two; printf three; echo oops >&2"],
        cwd=tmp_path,
        on_stdout_line=lines.append,
    )
    assert lines == ["one", "two", "three"] and done.stdout == "one\ntwo\nthree"
    assert done.stderr == "oops\n"


async def test_a_child_that_fills_its_pipe_is_read_until_it_ends(tmp_path: Path):
    """More than a pipe holds (64 KiB), on both streams: the child blocks until the loop
    watches its pipes (PIPE_WATCH_DELAY_SECONDS), and nothing it wrote is lost."""
    script = "head -c 300000 /dev/zero | tr '\\0' x; head -c 200000 /dev/zero | tr '\\0' y >&2"
    done = await proc.run(["sh", "-c", script], cwd=tmp_path, timeout=20)
    assert not done.timed_out
    assert done.stdout == "x" * 300000 and done.stderr == "y" * 200000


async def test_lines_reach_the_sink_while_the_child_runs(tmp_path: Path, watched_at_once: None):
    """The child waits for a file the sink makes when it sees the child's first line."""
    go = tmp_path / "go"
    lines: list[str] = []

    def sink(line: str) -> None:
        lines.append(line)
        go.touch()

    script = f"echo ready; while [ ! -e {go} ]; do sleep 0.01; done; echo seen"
    done = await proc.run(["sh", "-c", script], cwd=tmp_path, timeout=10, on_stdout_line=sink)
    assert not done.timed_out and lines == ["ready", "seen"]


async def test_output_a_left_behind_process_holds_open_is_read_until_its_kill(
    tmp_path: Path, read_after_exit: None, monkeypatch: pytest.MonkeyPatch
):
    """The child exits at once; the process it left keeps the pipe open and writes later:
    what it wrote within the drain (PIPE_DRAIN_SECONDS) is kept, then it is killed."""
    monkeypatch.setattr(proc, "PIPE_DRAIN_SECONDS", 0.5)
    script = "(sleep 0.2; echo later; sleep 30) & echo now"
    done = await proc.run(["sh", "-c", script], cwd=tmp_path)
    assert done.stdout == "now\nlater\n"


async def test_a_left_behind_writer_does_not_hold_the_loop(
    tmp_path: Path, read_after_exit: None, monkeypatch: pytest.MonkeyPatch
):
    """A process the child left behind writes without end, faster than the sink takes its
    lines: the pipe is never empty, and the output is read a chunk at a time, the loop's
    other work (here a ticker) going on, until the drain's limit ends it."""
    monkeypatch.setattr(proc, "PIPE_DRAIN_SECONDS", 0.5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    lines = 0

    def sink(line: str) -> None:
        nonlocal lines
        lines += 1

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)  # the ticker's first wait begins before the run
    try:
        done = await proc.run(["sh", "-c", "yes &"], cwd=tmp_path, on_stdout_line=sink)
    finally:
        ticking.cancel()
    assert done.stdout.startswith("y\ny\n") and lines > 0
    assert ticks >= 2  # held by the reading, the loop would have ticked once at most


async def test_a_sink_that_fails_is_reported_and_the_output_kept(
    tmp_path: Path, read_after_exit: None
):
    """As for a sink the loop calls: the loop's exception handler hears of it, and the run
    returns what the child wrote."""
    loop = asyncio.get_running_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))

    def failing(line: str) -> None:
        raise OSError(28, "No space left on device")

    try:
        done = await proc.run(
            ["sh", "-c", "echo one; echo two >&2"], cwd=tmp_path, on_stdout_line=failing
        )
    finally:
        loop.set_exception_handler(None)
    assert done.returncode == 0 and done.stdout == "one\n" and done.stderr == "two\n"
    assert [type(exc) for exc in reported] == [OSError]


async def test_reading_after_exit_stops_after_a_few_chunks_and_hands_over_to_the_loop():
    """What `read_now` reads of a pipe that stays full (here: one made to hold 1 MiB)."""
    read_fd, write_fd = os.pipe()
    try:
        fcntl.fcntl(write_fd, F_SETPIPE_SZ, 1 << 20)
        os.set_blocking(write_fd, False)
        written = 0
        with contextlib.suppress(BlockingIOError):
            while written < 1 << 20:
                written += os.write(write_fd, b"y\n" * 32768)
        assert written > proc.READ_NOW_CHUNKS * 65536
        pipe = proc._Pipe(asyncio.get_running_loop(), read_fd, None)
        pipe.read_now()
        assert pipe.size == proc.READ_NOW_CHUNKS * 65536 and pipe.watched
        pipe.close()
    finally:
        os.close(write_fd)


def _program(folder: Path, says: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "prodigy-test-tool"
    tool.write_text(f'#!/bin/sh\necho "{says}"\n')
    tool.chmod(0o755)


async def test_a_program_is_found_on_the_childs_path_once_and_found_again_when_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`proc._found`: argv[0] stays the name (a shell's $0), the job's PATH is searched, a
    program gone since is searched for again, and one installed earlier on the PATH is
    found once FOUND_SECONDS have passed."""
    first, second = tmp_path / "first", tmp_path / "second"
    env = {"PATH": f"{first}:{second}:/usr/bin:/bin"}
    _program(second, "second")
    done = await proc.run(["prodigy-test-tool"], cwd=tmp_path, env=env)
    assert done.stdout == "second\n"
    done = await proc.run(["sh", "-c", 'echo "$0"'], cwd=tmp_path, env=env)
    assert done.stdout == "sh\n"
    _program(first, "first")  # installed earlier on the PATH: the kept answer stands ...
    done = await proc.run(["prodigy-test-tool"], cwd=tmp_path, env=env)
    assert done.stdout == "second\n"
    (second / "prodigy-test-tool").unlink()  # ... until the program it names is gone
    done = await proc.run(["prodigy-test-tool"], cwd=tmp_path, env=env)
    assert done.stdout == "first\n"
    _program(first.parent / "zeroth", "zeroth")
    env = {"PATH": f"{tmp_path / 'zeroth'}:{env['PATH']}"}  # another PATH: searched anew
    done = await proc.run(["prodigy-test-tool"], cwd=tmp_path, env=env)
    assert done.stdout == "zeroth\n"
    (tmp_path / "zeroth" / "prodigy-test-tool").unlink()
    _program(tmp_path / "zeroth-b", "ignored")
    monkeypatch.setattr(proc, "FOUND_SECONDS", 0.0)  # kept no time: found anew each run
    done = await proc.run(["prodigy-test-tool"], cwd=tmp_path, env=env)
    assert done.stdout == "first\n"


async def test_a_relative_folder_on_the_path_is_the_childs_own(tmp_path: Path):
    """PATH=bin:...: `bin` below the folder the child runs in, never the daemon's."""
    _program(tmp_path / "bin", "relative")
    done = await proc.run(["prodigy-test-tool"], cwd=tmp_path, env={"PATH": "bin:/usr/bin:/bin"})
    assert done.stdout == "relative\n"
