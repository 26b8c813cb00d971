"""read_regular: a name someone else gave never hangs or floods the daemon."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prodigyd.files import Unreadable, read_regular


@pytest.mark.timeout(30)  # a FIFO opened the plain way waits for a writer: a hang
@pytest.mark.parametrize("make", ["fifo", "folder", "device"])
def test_anything_but_a_regular_file_is_refused_unread(tmp_path: Path, make: str):
    path = {"fifo": tmp_path / "fifo", "folder": tmp_path, "device": Path("/dev/zero")}[make]
    if make == "fifo":
        os.mkfifo(path)
    with pytest.raises(Unreadable, match="not a regular file"):
        read_regular(path, limit=10)


def test_a_regular_file_is_read_up_to_the_limit(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    data, info = read_regular(path, limit=10)
    assert (data, info.st_size) == (b"x" * 10, 10)
    with pytest.raises(Unreadable, match="larger than 9 bytes"):
        read_regular(path, limit=9)


def test_links_and_owners_when_asked(tmp_path: Path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "link").symlink_to("f")
    assert read_regular(tmp_path / "link", limit=5)[0] == b"x"
    with pytest.raises(OSError):  # ELOOP
        read_regular(tmp_path / "link", limit=5, follow_links=False)
    with pytest.raises(Unreadable, match=f"owned by uid {os.getuid()}, not by uid 12345"):
        read_regular(tmp_path / "f", limit=5, owner=12345)


def test_past_the_limit_only_one_byte_more_is_read_when_asked(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    data, _ = read_regular(path, limit=10, refuse_larger=False)
    assert data == b"x" * 11  # the caller says where the limit is crossed
    data, _ = read_regular(path, limit=1000, refuse_larger=False)
    assert data == b"x" * 100
