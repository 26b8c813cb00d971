"""Synchronous git helpers for tests that need a real repository to work on.

Plain functions, not fixtures: each test module wires them into its own fixtures, because
tests/conftest.py belongs to the whole suite.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from prodigyd.git.cli import REPO_PINNING_VARS

#: A fixed identity and no system/global config (GIT_CONFIG_GLOBAL needs git >= 2.32), so
#: commits work on any machine and no user setting (commit.gpgsign, merge.ff, hooks)
#: changes what git does in a test.
GIT_TEST_ENV = {
    "GIT_AUTHOR_NAME": "Prodigy Test",
    "GIT_AUTHOR_EMAIL": "test@prodigy.invalid",
    "GIT_COMMITTER_NAME": "Prodigy Test",
    "GIT_COMMITTER_EMAIL": "test@prodigy.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def use_git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give this test (and every git it starts, ours or the code's) the test identity.

    Also drops GIT_DIR and friends, in case the suite itself runs from a git hook.
    """
    for key, value in GIT_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    for key in REPO_PINNING_VARS:
        monkeypatch.delenv(key, raising=False)


def use_own_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """git reading the same configuration files as libgit2 (none redirected; HOME is the
    test's own), so the in-process reads of git/objects.py answer instead of git."""
    from prodigyd.git.objects import CONFIG_VARS

    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)


def no_git_process(*args: object, **kwargs: object) -> None:
    """Put in place of prodigyd.git.cli.run by a test that proves git is not started."""
    raise AssertionError(f"a git process was started: {args}")


def git(path: Path, *args: str) -> str:
    """Run git in `path` and return its stdout; fail the test loudly if git fails."""
    done = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def write_files(path: Path, files: dict[str, str]) -> None:
    """Write `files` (relative path -> text) under `path`, creating directories."""
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def commit_files(path: Path, files: dict[str, str], message: str = "change") -> str:
    """Write `files`, commit everything, and return the new commit's sha."""
    write_files(path, files)
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD").strip()


def make_repo(path: Path, files: dict[str, str] | None = None, branch: str = "main") -> Path:
    """A new repository at `path` on `branch` with one commit holding `files`."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "-b", branch)
    commit_files(path, {"README.md": "# test\n"} if files is None else files, "initial")
    return path
