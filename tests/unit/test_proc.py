"""prodigyd.proc.run with real children: what a child is given, and what it leaves open."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from prodigyd import proc


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


async def test_a_quick_childs_output_is_read_whole_after_its_exit(tmp_path: Path):
    """Gone before the loop watches its pipes (PIPE_WATCH_DELAY_SECONDS): every line,
    the last one without its newline too, reaches the sink, in order."""
    lines: list[str] = []
    done = await proc.run(
        ["sh", "-c", "echo one; echo two; printf three"], cwd=tmp_path, on_stdout_line=lines.append
    )
    assert lines == ["one", "two", "three"] and done.stdout == "one\ntwo\nthree"


async def test_a_child_that_fills_its_pipe_is_read_until_it_ends(tmp_path: Path):
    """More than a pipe holds (64 KiB), on both streams: the child blocks until the loop
    watches its pipes, and nothing it wrote is lost."""
    script = "head -c 300000 /dev/zero | tr '\\0' x; head -c 200000 /dev/zero | tr '\\0' y >&2"
    done = await proc.run(["sh", "-c", script], cwd=tmp_path)
    assert done.stdout == "x" * 300000 and done.stderr == "y" * 200000


async def test_lines_reach_the_sink_while_the_child_runs(tmp_path: Path):
    """The child waits for a file the sink makes when it sees the child's first line."""
    go = tmp_path / "go"
    lines: list[str] = []

    def sink(line: str) -> None:
        lines.append(line)
        go.touch()

    script = f"echo ready; while [ ! -e {go} ]; do sleep 0.01; done; echo seen"
    done = await proc.run(["sh", "-c", script], cwd=tmp_path, timeout=10, on_stdout_line=sink)
    assert not done.timed_out and lines == ["ready", "seen"]


async def test_output_a_left_behind_process_holds_open_is_read_until_its_kill(tmp_path: Path):
    """The child exits at once; the process it left keeps the pipe open and writes later:
    what it wrote within the drain (PIPE_DRAIN_SECONDS) is kept, then it is killed."""
    script = "(sleep 0.2; echo later; sleep 30) & echo now"
    done = await proc.run(["sh", "-c", script], cwd=tmp_path)
    assert done.stdout == "now\nlater\n"
