"""Files made ahead (prodigyd/store/spares.py): `create` renames a spare into place when
one is ready and makes the file as before otherwise; either way the caller gets the same
file, with the same mode, and what it writes lands at the path."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import uuid
from pathlib import Path

import pytest

from prodigyd import paths
from prodigyd.store import spares


def _spares_dir() -> Path:
    return paths.spares_dir()


async def _made() -> None:
    """Wait for the batch `create` asked for (made in a worker thread)."""
    for _ in range(500):
        if not spares._MAKING:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no batch of spares was made")


def test_a_file_is_a_spare_renamed_into_place_once_a_batch_is_made(isolated: Path, tmp_path: Path):
    async def scenario() -> None:
        with spares.create(tmp_path / "first.log") as first:  # none ready: made as before
            first.write("one\n")
        await _made()
        ready = {entry.stat().st_ino: entry.name for entry in _spares_dir().iterdir()}
        assert len(ready) == spares.BATCH
        with spares.create(tmp_path / "second.log") as second:
            second.write("two\n")
        taken = (tmp_path / "second.log").stat().st_ino
        assert taken in ready  # the very file made ahead
        assert not (_spares_dir() / ready[taken]).exists()
        assert len(list(_spares_dir().iterdir())) == spares.BATCH - 1

    asyncio.run(scenario())
    assert (tmp_path / "first.log").read_text() == "one\n"
    assert (tmp_path / "second.log").read_text() == "two\n"


def test_a_spare_has_the_mode_a_file_made_as_before_has(isolated: Path, tmp_path: Path):
    old = os.umask(0o027)
    try:

        async def scenario() -> None:
            spares.create(tmp_path / "plain.log").close()
            await _made()
            spares.create(tmp_path / "spare.log").close()

        asyncio.run(scenario())
    finally:
        os.umask(old)
    made = {
        name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("plain.log", "spare.log")
    }
    assert made == {"plain.log": 0o640, "spare.log": 0o640}


def test_without_an_event_loop_no_spare_is_made(isolated: Path, tmp_path: Path):
    with spares.create(tmp_path / "x.log") as log:
        log.write("x")
    assert (tmp_path / "x.log").read_text() == "x"
    assert not _spares_dir().exists()


def test_spares_gone_meanwhile_leave_files_made_as_before(isolated: Path, tmp_path: Path):
    """A daemon's start empties the store's temporary folder (store/scratch.py)."""

    async def scenario() -> None:
        spares.create(tmp_path / "a.log").close()
        await _made()
        for entry in _spares_dir().iterdir():
            entry.unlink()
        with spares.create(tmp_path / "b.log") as log:
            log.write("b")

    asyncio.run(scenario())
    assert (tmp_path / "b.log").read_text() == "b"


def test_spares_on_another_file_system_are_given_up(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The store's temporary folder on another file system than the files (a rename there
    fails with EXDEV): the files are made as before, and no spare is tried again."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    elsewhere = shm / f"prodigy-test-{uuid.uuid4().hex}"
    elsewhere.mkdir()
    try:
        paths.scratch_dir().parent.mkdir(parents=True, exist_ok=True)
        paths.scratch_dir().symlink_to(elsewhere)
        renames: list[str] = []
        rename = os.rename

        def counted(source: str, target: str | Path) -> None:
            renames.append(str(target))
            rename(source, target)

        async def scenario() -> None:
            spares.create(tmp_path / "a.log").close()
            await _made()
            monkeypatch.setattr(os, "rename", counted)
            for name in ("b.log", "c.log"):
                with spares.create(tmp_path / name) as log:
                    log.write(name)

        asyncio.run(scenario())
        assert renames == [str(tmp_path / "b.log")]  # tried once, then given up
        assert [(tmp_path / n).read_text() for n in ("b.log", "c.log")] == ["b.log", "c.log"]
    finally:
        shutil.rmtree(elsewhere)


def test_an_idle_daemon_tops_up_the_spares_of_a_store_that_used_some(
    isolated: Path, tmp_path: Path
):
    async def scenario() -> None:
        spares.top_up()  # no file made so far: no spare either
        await _made()
        assert not _spares_dir().exists()
        spares.create(tmp_path / "a.log").close()
        await _made()
        for name in ("b.log", "c.log"):
            spares.create(tmp_path / name).close()
        assert len(list(_spares_dir().iterdir())) == spares.BATCH - 2
        spares.top_up()
        await _made()
        assert len(list(_spares_dir().iterdir())) == spares.READY

    asyncio.run(scenario())


def test_a_batch_asked_for_by_a_loop_that_closed_meanwhile_does_not_stop_the_next(
    isolated: Path, tmp_path: Path
):
    """A loop closed without waiting for its worker threads (`loop.close()`, not
    `asyncio.run`) never gets its batch: the next loop asks for one again."""

    async def ask() -> None:
        spares.create(tmp_path / "a.log").close()  # no spare yet: a batch asked for

    first = asyncio.new_event_loop()
    first.run_until_complete(ask())
    first.close()

    async def next_loop() -> None:
        spares.create(tmp_path / "b.log").close()
        await _made()
        with spares.create(tmp_path / "c.log") as log:
            log.write("c")

    asyncio.run(next_loop())
    ready = spares._READY[str(_spares_dir())]
    assert len(ready) == spares.BATCH - 1  # the second batch, less the spare c.log took
    assert (tmp_path / "c.log").read_text() == "c"
