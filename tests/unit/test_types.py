"""mypy passes on the packages ([tool.mypy] in pyproject.toml), so the suite (and CI's
`.ci/run`, the same command) is the whole check, with no second command to forget."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_packages_type_check():
    done = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
