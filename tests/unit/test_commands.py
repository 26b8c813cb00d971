"""Every command the modules of prodigyctl/commands/ define is one `prodigyctl` runs: the
root group's index (main.COMMANDS) names each top-level command's module, and leaves none
out. The version all of them report is the installed distribution's."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from importlib.metadata import version

import click
import pytest

from prodigyctl import commands
from prodigyctl.commands import TOP_LEVEL
from prodigyctl.main import COMMANDS, help_width
from tests.cli import ctl


def test_the_root_group_indexes_every_top_level_command():
    for module in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"prodigyctl.commands.{module.name}")
    assert sorted(TOP_LEVEL) == sorted(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_loads_by_itself(name: str):
    """In a new process, as a user runs it: only the module COMMANDS names is imported."""
    done = ctl(name, "--help", check=True)
    assert done.stdout.startswith(f"Usage: prodigyctl {name} ")


def test_the_client_and_the_daemon_report_the_installed_version():
    installed = version("prodigy")
    assert ctl("--version", check=True).stdout == f"prodigyctl, version {installed}\n"
    daemon = subprocess.run(
        [sys.executable, "-m", "prodigyd.main", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert daemon.stdout == f"prodigyd {installed}\n"


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        (("sessions", "list"), ("sessions", "ls")),
        (("dlq", "analyze"), ("dlq", "stats")),
        (("dlq", "clear"), ("dlq", "purge")),
        (("worktree", "list"), ("worktree", "ls")),
    ],
)
def test_the_original_subcommand_names_are_aliases(alias: tuple[str, str], name: tuple[str, str]):
    aliased = ctl(*alias, "--help", check=True).stdout
    assert aliased.split("\n", 1)[1] == ctl(*name, "--help", check=True).stdout.split("\n", 1)[1]
    assert alias[1] not in ctl(alias[0], "--help", check=True).stdout.split("Commands:")[1]


@pytest.mark.parametrize("columns", ["", "0", "junk", "30", "57", "80", "81", "300"])
def test_the_help_width_is_the_one_click_picks(monkeypatch: pytest.MonkeyPatch, columns: str):
    """help_width() finds the terminal as shutil does, without importing it: the width is
    the one click's help formatter picks by itself (no terminal here: 80 columns)."""
    import click

    monkeypatch.setenv("COLUMNS", columns)
    assert help_width() == click.HelpFormatter().width


def _top_level() -> dict[str, click.Command]:
    """Every top-level command, each module imported."""
    from prodigyctl import manpages
    from prodigyctl.main import cli

    return dict(manpages._subcommands(cli))


def _listing(help_text: str) -> dict[str, str]:
    """The Commands section of a `--help`: each name with its summary, its wrapped lines
    joined (a line broken after a hyphen, as click wraps, without a space)."""
    listed: dict[str, str] = {}
    name = ""
    for line in help_text.split("Commands:\n", 1)[1].splitlines():
        words = line.split()
        if line.startswith("  ") and not line.startswith("   "):
            name = words.pop(0)
        before = listed.get(name, "")
        glue = "" if not before or before.endswith("-") else " "
        listed[name] = before + glue + " ".join(words)
    return listed


@pytest.mark.parametrize(
    "group", ["", *sorted(n for n, c in _top_level().items() if isinstance(c, click.Group))]
)
def test_help_lists_each_command_with_the_whole_first_sentence_of_its_help(group: str):
    """Not cut to the line with `...` (click's default): the sentence, wrapped."""
    listed = _top_level() if not group else _top_level()[group].commands  # type: ignore[attr-defined]
    shown = _listing(ctl(*([group] if group else []), "--help", check=True).stdout)
    assert sorted(shown) == sorted(n for n, c in listed.items() if not c.hidden)
    for name, text in shown.items():
        first = " ".join((listed[name].help or "").partition("\n\n")[0].split())
        assert first.startswith(text), (name, text)
        assert text.endswith(".") and not text.endswith("..."), (name, text)
