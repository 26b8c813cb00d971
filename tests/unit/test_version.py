"""prodigyd.version: the installed version, read from the first `prodigy` distribution's
METADATA on sys.path by hand, and from importlib.metadata when that is not plain."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd import version as version_module

read = version_module.version.__wrapped__  # not the process's cached answer


@pytest.fixture
def from_importlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version_module, "_from_importlib", lambda: "from importlib.metadata")


def _dist(folder: Path, name: str, metadata: bytes | None) -> None:
    info = folder / name
    info.mkdir(parents=True)
    if metadata is not None:
        (info / "METADATA").write_bytes(metadata)


def test_the_first_distribution_on_the_path_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_importlib: None
):
    _dist(tmp_path / "a", "prodigy_extra-7.0.dist-info", b"Name: prodigy-extra\nVersion: 7.0\n")
    _dist(
        tmp_path / "b",
        "Prodigy-2.1.0.dist-info",
        b"Metadata-Version: 2.1\nName: Prodigy\nVersion: 2.1.0\n\nVersion: not a header\n",
    )
    _dist(tmp_path / "c", "prodigy-0.1.0.dist-info", b"Name: prodigy\nVersion: 0.1.0\n")
    monkeypatch.setattr(
        "sys.path", [str(tmp_path / "missing"), *(str(tmp_path / d) for d in "abc")]
    )
    assert read() == "2.1.0"


def test_a_source_checkouts_egg_info_first_on_the_path_is_read_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_importlib: None
):
    """`pip install -e` leaves `prodigy.egg-info` at the checkout's top: first on sys.path
    when a process runs from there, as importlib.metadata would take it."""
    info = tmp_path / "checkout" / "prodigy.egg-info"
    info.mkdir(parents=True)
    (info / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: prodigy\nVersion: 0.2.0\n")
    _dist(tmp_path / "site", "prodigy-0.1.0.dist-info", b"Name: prodigy\nVersion: 0.1.0\n")
    monkeypatch.setattr("sys.path", [str(tmp_path / "checkout"), str(tmp_path / "site")])
    assert read() == "0.2.0"


@pytest.mark.parametrize(
    ("name", "metadata"),
    [
        ("prodigy-0.1.0.dist-info", None),  # no METADATA
        ("prodigy-0.1.0.dist-info", b"Name: prodigy\n"),  # no version in it
    ],
)
def test_a_first_one_that_says_no_version_is_left_to_importlib(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    from_importlib: None,
    name: str,
    metadata: bytes | None,
):
    _dist(tmp_path / "a", name, metadata)
    _dist(tmp_path / "b", "prodigy-0.1.0.dist-info", b"Name: prodigy\nVersion: 0.1.0\n")
    monkeypatch.setattr("sys.path", [str(tmp_path / "a"), str(tmp_path / "b")])
    assert read() == "from importlib.metadata"


def test_metadata_that_is_not_utf8_still_gives_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_importlib: None
):
    _dist(tmp_path, "prodigy-0.1.0.dist-info", b"Name: prodigy\nSummary: caf\xe9\nVersion: 0.1.0\n")
    monkeypatch.setattr("sys.path", [str(tmp_path)])
    assert read() == "0.1.0"
