"""prodigyd.paths: the store is where the environment says at each call, although the
answer is kept between calls (every journal access asks for it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prodigyd import paths


def test_the_store_follows_its_variables_as_they_change(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("PRODIGY_HOME", str(tmp_path / "a"))
    assert paths.journal_file() == tmp_path / "a" / "journal.db"
    monkeypatch.setenv("PRODIGY_HOME", str(tmp_path / "b"))
    assert paths.journal_file() == tmp_path / "b" / "journal.db"
    monkeypatch.delenv("PRODIGY_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert paths.journal_file() == tmp_path / "user" / ".prodigy" / "journal.db"
    monkeypatch.setenv("HOME", str(tmp_path / "other"))
    assert paths.home() == tmp_path / "other" / ".prodigy"
    monkeypatch.setenv("PRODIGY_HOME", "~/store")
    assert paths.home() == tmp_path / "other" / "store"


def test_a_relative_prodigy_home_is_taken_from_the_working_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("PRODIGY_HOME", "store")
    for folder in (tmp_path / "x", tmp_path / "y"):
        folder.mkdir()
        monkeypatch.chdir(folder)
        assert paths.journal_file() == folder / "store" / "journal.db"
    monkeypatch.setenv("PRODIGY_HOME", "~/store")  # relative too, once HOME is
    monkeypatch.setenv("HOME", "user")
    for folder in (tmp_path / "x", tmp_path / "y"):
        monkeypatch.chdir(folder)
        assert paths.home() == folder / "user" / "store"


def test_a_repository_is_known_by_its_name_and_real_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """Two repositories named `app` never share storage; one reached through a link, by a
    relative path or with a trailing slash is the same repository."""
    one, two = tmp_path / "a" / "app", tmp_path / "b" / "app"
    one.mkdir(parents=True)
    two.mkdir(parents=True)
    (tmp_path / "link").symlink_to(one)
    monkeypatch.chdir(tmp_path / "a")
    ids = {paths.repo_id(path) for path in (one, tmp_path / "link", Path("app"), f"{one}/")}
    assert len(ids) == 1
    (first,) = ids
    name, _, digest = first.rpartition("-")
    assert name == "app" and len(digest) == 8 and int(digest, 16) >= 0
    assert paths.repo_id(two).startswith("app-") and paths.repo_id(two) != first


def test_the_real_path_is_realpaths_for_what_is_there_and_what_is_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """paths.real_path asks the kernel (a descriptor's name) where realpath walks the
    parts: the same answer through links, `..`, a relative path, a file, and (by realpath
    itself) a path that is not there or a link loop."""
    real = tmp_path / "real" / "deep"
    real.mkdir(parents=True)
    (real / "file").write_text("x")
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    monkeypatch.chdir(tmp_path)
    for path in (
        tmp_path / "link",
        f"{tmp_path}/link/../deep/./file",
        "link/file",
        tmp_path / "link" / "missing" / "x",
        tmp_path / "loop",
        "",
    ):
        assert paths.real_path(path) == os.path.realpath(path), path
