"""The client's commands, one module per noun: each command's click wiring sits on the plain
function it runs (pre-commit's shape), and that function returns the exit code.

`command` registers a function with click and hands it back unchanged, so it stays an
ordinary function to call; `group` makes a group. Both file top-level ones in TOP_LEVEL,
where main.py's root group finds them: it imports a command's module only when that command
runs (`--help` lists them from prodigyctl/command_summaries.py). So each module imports its
heavy libraries (the store, pydantic, git, csv...) inside the functions that use them, and
a command starts fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from prodigyctl.options import F

#: Every top-level command and group by name, filed when its module is imported.
TOP_LEVEL: dict[str, click.Command] = {}


class Command(click.Command):
    """A command whose `--help` ends with its examples (examples.py), read when the help is
    made: a command that runs does not import them."""

    def __init__(self, name: str, *, examples: str, **settings: Any) -> None:
        super().__init__(name, **settings)
        self.examples = examples  # its path, the key of examples.EXAMPLES

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog is None:
            from prodigyctl.examples import epilog

            self.epilog = epilog(self.examples)
        super().format_epilog(ctx, formatter)


def command(name: str, parent: click.Group | None = None, **settings: Any) -> Callable[[F], F]:
    """Make the decorated function the command `name` of `parent` (else a top-level one);
    its docstring is the help, its options the click decorators below this one."""

    def register(function: F) -> F:
        path = f"{parent.name} {name}" if parent is not None else name
        made = click.command(name, cls=Command, examples=path, **settings)(function)
        if parent is None:
            TOP_LEVEL[name] = made
        else:
            parent.add_command(made)
        return function

    return register


#: The original prodigy's names for subcommands, accepted as aliases (not listed in help,
#: which shows one name per command): `sessions list`, `dlq inspect`, `dlq clear`.
ALIASES = {"list": "ls", "inspect": "show", "clear": "purge", "remove": "rm"}


class Group(click.Group):
    """A group that also answers to the original's subcommand names (ALIASES)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in ALIASES:
            found = super().get_command(ctx, ALIASES[cmd_name])
        return found


def group(name: str, help: str) -> click.Group:
    """A top-level group of commands."""
    made = Group(name, help=help)
    TOP_LEVEL[name] = made
    return made
