"""watch/inotify.py: the hook inbox's watch wakes on a finished entry, sleeps otherwise, and
says when its folder is gone."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from prodigyd.watch.inotify import FolderWatch


async def test_wakes_on_a_written_file_once_it_is_closed(tmp_path: Path) -> None:
    async with FolderWatch(tmp_path) as watch:
        fd = os.open(tmp_path / "1-1.event", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"version=1\n")
        await asyncio.sleep(0.1)  # the loop reads what inotify has: nothing finished yet
        assert not watch._changed.is_set()
        os.close(fd)
        await asyncio.sleep(0.1)
        assert watch._changed.is_set()
        assert await watch.wait(5)
        assert not watch._changed.is_set()  # taken by that wait


async def test_wakes_on_a_file_moved_in(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    (tmp_path / "entry").write_text("x")
    async with FolderWatch(folder) as watch:
        (tmp_path / "entry").rename(folder / "entry")
        assert await watch.wait(5)
        assert (folder / "entry").exists()


async def test_says_when_the_folder_is_gone(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    async with FolderWatch(folder) as watch:
        shutil.rmtree(folder)
        assert not await watch.wait(5)
