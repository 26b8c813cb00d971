"""`prodigyctl man ls|show|install`: the real client, real files, the real `man`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli import ctl


def test_install_puts_every_page_in_its_section_and_uninstall_removes_only_ours(tmp_path: Path):
    names = json.loads(ctl("man", "ls", "--json", check=True).stdout)
    assert {"prodigyctl.1", "prodigyctl-exec.1", "prodigyd.8", "prodigy-workflow.5"} <= set(names)
    folder = tmp_path / "man"
    done = ctl("man", "install", "--dir", str(folder), "--json", check=True)
    installed = json.loads(done.stdout)["installed"]
    assert len(installed) == len(names)
    assert (folder / "man8" / "prodigyd.8").is_file()
    assert (folder / "man5" / "prodigy-config.5").is_file()
    assert (folder / "man1" / "prodigyctl-dlq-retry.1").is_file()
    theirs = folder / "man1" / "git.1"
    theirs.write_text(".TH GIT 1\n")
    ctl("man", "install", "--dir", str(folder), "--uninstall", check=True)
    assert [p for p in folder.rglob("*") if p.is_file()] == [theirs]


def test_install_defaults_to_the_xdg_data_folder(tmp_path: Path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    done = ctl("man", "install", env=env, check=True)
    assert (
        f"installed {len(list((tmp_path / 'data' / 'man').rglob('*.*')))} man pages" in done.stdout
    )
    if shutil.which("man"):
        found = subprocess.run(
            ["man", "-w", "prodigyctl-batch"],
            capture_output=True,
            text=True,
            env={**env, "MANPATH": str(tmp_path / "data" / "man")},
            check=False,
        )
        assert found.stdout.strip() == str(
            tmp_path / "data" / "man" / "man1" / "prodigyctl-batch.1"
        )


def test_install_ignores_a_relative_xdg_data_home(tmp_path: Path):
    env = {**os.environ, "XDG_DATA_HOME": "data"}
    ctl("man", "install", env=env, cwd=tmp_path, check=True)
    assert (Path.home() / ".local" / "share" / "man" / "man1" / "prodigyctl.1").is_file()
    assert not (tmp_path / "data").exists()


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_show_formats_a_command_page_and_refuses_an_unknown_topic():
    done = ctl("man", "show", "dlq", "retry", check=True)
    assert "prodigyctl dlq retry [OPTIONS] JOB_ID" in done.stdout
    missing = ctl("man", "show", "nonsense")
    assert missing.returncode == 3
    assert "no man page for 'nonsense'" in missing.stderr
