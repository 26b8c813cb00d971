"""The client's hot path (`--help`, `run --detach`, the hooks' daemon start) imports only
what it uses: click, the paths and the protocol. The store, the engine and their libraries
(sqlite3, pydantic, yaml, asyncio), and platformdirs, load only in the commands that need
them, and a command loads its own module of prodigyctl/commands/ alone (`--help` loads
none: it lists the commands from prodigyctl/command_summaries.py)."""

from __future__ import annotations

import subprocess
import sys

from prodigyd import PLUGIN_LOADER

HEAVY = (
    "sqlite3",
    "pydantic",
    "yaml",
    "asyncio",
    "platformdirs",
    "prodigyd.store",
    "prodigyd.engine",
)

PROBE = """
import contextlib, io, sys
from prodigyctl.main import cli
with contextlib.redirect_stdout(io.StringIO()):
    try:
        cli.main(sys.argv[1:], standalone_mode=False)
    except SystemExit:
        pass
print("\\n".join(sorted(sys.modules)))
"""


def loaded(*args: str) -> list[str]:
    """The modules `prodigyctl ARGS` has imported once click has parsed ARGS."""
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    ).stdout.split()


def heavy(modules: list[str]) -> list[str]:
    """Not the stand-in for pydantic's plugin loader that importing prodigyd registers (a
    module object and two functions; pydantic itself is not imported)."""
    return [
        m
        for m in modules
        if m != PLUGIN_LOADER and any(m == h or m.startswith(h + ".") for h in HEAVY)
    ]


def test_help_imports_no_store_engine_or_their_libraries():
    assert heavy(loaded("--help")) == []


def test_help_imports_no_command_module_and_not_the_protocol():
    """Nor json, the protocol and the error codes, which only talking to the daemon (or an
    error) needs, nor shutil (main.help_width)."""
    modules = loaded("--help")
    assert [m for m in modules if m.startswith("prodigyctl.commands")] == []
    assert {
        "prodigyd.protocol",
        "prodigyd.errorcodes",
        "prodigyctl.client",
        "json",
        "shutil",
    }.isdisjoint(modules)


def test_a_command_imports_its_own_module_and_no_other():
    modules = loaded("run", "--help")
    assert [m for m in modules if m.startswith("prodigyctl.commands.")] == [
        "prodigyctl.commands.run"
    ]
    assert heavy(modules) == []


def test_run_builds_its_own_command_and_no_other():
    """`run --detach` pays for the click options of `run` alone, not for those of the
    other commands that start jobs (exec, batch, goal-seek, resume...)."""
    probe = (
        "import prodigyctl.commands.run\n"
        "from prodigyctl.commands import TOP_LEVEL\n"
        "print(' '.join(TOP_LEVEL))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["run"]


def test_a_command_that_runs_does_not_import_the_examples_its_help_ends_with():
    assert "prodigyctl.examples" not in loaded("completion", "bash")
    assert "prodigyctl.examples" in loaded("completion", "--help")
