"""The daemon's temporary folders live in the store, and a new daemon removes what a killed
one left there (prodigyd/store/scratch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.store import scratch


def test_a_temporary_folder_is_made_in_the_store_and_removed_after(isolated: Path):
    with scratch.folder("prodigy-test-") as made:
        folder = Path(made)
        assert folder.parent == isolated / "tmp" and folder.name.startswith("prodigy-test-")
        (folder / "agent.bundle").write_bytes(b"x")
    assert not folder.exists()
    assert (isolated / "tmp").stat().st_mode & 0o777 == 0o700


def test_clear_removes_what_an_earlier_daemon_left(isolated: Path):
    scratch.clear()  # no folder yet: nothing to do, no error
    left = isolated / "tmp" / "prodigy-dask-abc"
    (left / "nested").mkdir(parents=True)
    (left / "nested" / "delta.bundle").write_bytes(b"x")
    (isolated / "tmp" / "stray").write_text("x")
    outside = isolated / "keep"
    outside.mkdir()
    (isolated / "tmp" / "link").symlink_to(outside)
    scratch.clear()
    assert list((isolated / "tmp").iterdir()) == []
    assert outside.is_dir()  # a link is removed, never followed


def test_a_folder_that_cannot_be_removed_is_logged_and_left(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    (isolated / "tmp" / "prodigy-dask-stuck").mkdir(parents=True)

    def refuse(path: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(scratch.shutil, "rmtree", refuse)
    scratch.clear()
    assert (isolated / "tmp" / "prodigy-dask-stuck").is_dir()
    assert any("cannot remove" in record.getMessage() for record in caplog.records)
