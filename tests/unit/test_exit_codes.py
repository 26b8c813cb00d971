"""The exit codes users read about are the ones prodigyctl exits with: README.md's table,
docs/protocol.md's last column and `prodigyctl --help` say what prodigyctl/exitcodes.py
holds (prodigyctl(1) is generated from it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyctl.exitcodes import EXIT_CODES, exit_for_error, exit_for_errors
from tests.cli import ctl

ROOT = Path(__file__).parents[2]


def table(path: Path, header: str) -> list[list[str]]:
    """The cells of the Markdown table under `header`, code spans unwrapped."""
    lines = path.read_text().splitlines()
    rows = []
    for line in lines[lines.index(header) + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def test_the_readme_lists_every_exit_code_as_the_man_page_does():
    rows = table(ROOT / "README.md", "| code | meaning |")
    assert rows == [[str(code), meaning] for code, _, meaning in EXIT_CODES]


def test_protocol_md_gives_each_daemon_error_the_exit_code_prodigyctl_exits_with():
    rows = table(ROOT / "docs" / "protocol.md", "| code | meaning | `prodigyctl` exit code |")
    documented = {int(code): int(exit_code) for code, _, exit_code in rows}
    assert set(exit_for_errors()) <= set(documented)
    assert documented == {code: exit_for_error(code) for code in documented}


def test_help_names_every_exit_code():
    shown = " ".join(ctl("--help", check=True).stdout.split())
    listed = ", ".join(f"{code} {name}" for code, name, _ in EXIT_CODES)
    assert f"Exit codes: {listed}." in shown


@pytest.mark.parametrize(
    "argv",
    [["completion", "bash"], ["--help"]],  # a command's output; the root's help, printed
    ids=["command", "root-help"],  # while click parses the arguments, before any command
)
def test_output_whose_reader_stopped_ends_quietly_with_its_own_code(argv):
    """`prodigyctl ... | head` whose head has exited: not exit 1 (a failed workflow, as
    click alone would say), no traceback, nothing on stderr."""
    import os
    import subprocess
    import sys

    from prodigyctl.exitcodes import EXIT_PIPE

    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "prodigyctl.main", *argv],
            stdin=subprocess.DEVNULL,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == EXIT_PIPE == 141
    assert done.stderr == ""
