"""prodigyd.proc.run with real children: what a child is given, and what it leaves open."""

from __future__ import annotations

import os
from pathlib import Path

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
