"""`ruff check` and `ruff format --check` pass on the whole tree, so the suite (and CI's
`.ci/run`, the same command) is the whole style check, as tests/unit/test_types.py is for
the types. The formatter's version is bounded in pyproject.toml: ruff changes its style
only with a minor release, so a fresh machine formats as this tree is formatted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_passes_on_the_whole_tree(check: list[str]):
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *check, "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
