"""Everything prodigy keeps is private to its user, however it was made: the client
starting the daemon, the daemon's own store writes, a git hook's spool entry. Files that
steps make (and merges bring into the user's checkout) keep the user's umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import ctl, wait_for
from tests.gitutil import commit_files

WORKFLOW = """
commands:
  - shell: "echo made by a step > step.txt"
  - write_file:
      path: sub/written.txt
      create_dirs: true
      content: "made by write_file"
  - shell: "echo made by output_file"
    output_file: out/captured.txt
  - shell: "stat -c '%n %a' sub sub/written.txt out out/captured.txt > modes.txt"
  - shell: "git add -A && git commit -qm 'files'"
"""

ON_COMMIT = """
on: commit
commands:
  - shell: "true"
"""


@pytest.fixture
def user_umask() -> Iterator[None]:
    """The common umask 022, under which `mkdir(parents=True)` makes 0755 parents."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(root: Path, skip: set[Path]) -> list[tuple[str, str]]:
    """(path, mode) for every file and folder under `root`, skipping the folders in `skip`
    (worktree slots: checkouts of the user's files, made by git with the user's umask)."""
    found = [(str(root), oct(stat.S_IMODE(root.stat().st_mode)))]
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder, d) not in skip]
        for name in dirs + files:
            path = Path(folder, name)
            if path.is_symlink() or path.is_socket():
                continue
            found.append((str(path), oct(stat.S_IMODE(path.lstat().st_mode))))
    return found


def test_the_store_is_private_on_every_path_of_creation(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch, user_umask: None
):
    # The default layout: no PRODIGY_HOME, the socket in $XDG_RUNTIME_DIR/prodigy.
    monkeypatch.delenv("PRODIGY_HOME")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    store = Path(os.environ["HOME"]) / ".prodigy"
    commit_files(repo, {".prodigy/workflows/hooked.yml": ON_COMMIT}, "add a trigger")
    try:
        (repo / "wf.yml").write_text(WORKFLOW)
        ctl("run", "-y", "wf.yml", cwd=repo, check=True)  # autostarts the daemon
        ctl("hooks", "install", cwd=repo, check=True)
        commit_files(repo, {"src.txt": "x\n"}, "fires the hook")
        wait_for(lambda: not list((store / "spool").glob("*.event")), what="the spool drained")
    finally:
        ctl("daemon", "stop", check=True)

    assert oct(stat.S_IMODE((repo / "step.txt").stat().st_mode)) == "0o644"
    assert oct(stat.S_IMODE((repo / "sub" / "written.txt").stat().st_mode)) == "0o644"
    # as the daemon itself made them in the worktree (write_file, output_file):
    assert (repo / "modes.txt").read_text().split("\n")[:4] == [
        "sub 755",
        "sub/written.txt 644",
        "out 755",
        "out/captured.txt 644",
    ]
    slots = {p for p in store.glob("worktrees/*/*") if p.is_dir()}
    assert slots, "the run used a worktree"
    found = modes(store, slots) + modes(runtime / "prodigy", set())
    assert any(p.endswith("prodigyd.log") for p, _ in found)
    assert any("/spool" in p for p, _ in found)
    public = [
        (path, mode)
        for path, mode in found
        if mode != ("0o700" if Path(path).is_dir() else "0o600")
    ]
    assert public == []
