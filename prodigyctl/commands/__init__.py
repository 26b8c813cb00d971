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

import sys
from collections.abc import Callable
from typing import Any

import click

from prodigyctl import original
from prodigyctl.options import F

#: Every top-level command and group by name, filed when its module is imported.
TOP_LEVEL: dict[str, click.Command] = {}


class Command(click.Command):
    """A command whose `--help` ends with its examples (examples.py), read when the help is
    made: a command that runs does not import them. It also takes the original prodigy's
    spellings of it (prodigyctl/original.py): hidden options, and the original's form of
    the command where its operands differ."""

    def __init__(self, name: str, *, examples: str, **settings: Any) -> None:
        super().__init__(name, **settings)
        self.examples = examples  # its path, the key of examples.EXAMPLES

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog is None:
            from prodigyctl.examples import epilog

            self.epilog = epilog(self.examples)
        super().format_epilog(ctx, formatter)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Its context, or that of the original's form of it when only that parses the
        line (`config show KEY`): the context of the prodigy command it stands for."""
        variant = original.variant(self.examples)
        if variant is None:
            return super().make_context(info_name, args, parent, **extra)

        def own(words: list[str]) -> click.Context:
            return super(Command, self).make_context(info_name, words, parent, **extra)

        return original.parse(own, variant, args, info_name or str(self.name), parent)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """As click parses them, with what the original's spellings among them give
        prodigy's parameters (`--job-id J` is the JOB_ID operand J)."""
        rest = super().parse_args(ctx, args)
        ctx.params.update(original.given(ctx))
        return rest


def command(name: str, parent: click.Group | None = None, **settings: Any) -> Callable[[F], F]:
    """Make the decorated function the command `name` of `parent` (else a top-level one);
    its docstring is the help, its options the click decorators below this one."""

    def register(function: F) -> F:
        path = f"{parent.name} {name}" if parent is not None else name
        made = click.command(name, cls=Command, examples=path, **settings)(function)
        made.params += original.options(path, made)
        listed_whole(made)
        if parent is None:
            TOP_LEVEL[name] = made
        else:
            parent.add_command(made)
        return function

    return register


class Group(click.Group):
    """A group that also answers to the original prodigy's names of its commands
    (prodigyctl/original.py), which its listing leaves out."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None:
            found = original.command(str(self.name), self, ctx, cmd_name)
        return found


def group(name: str, help: str) -> click.Group:
    """A top-level group of commands."""
    made = Group(name, help=help)
    made.params += original.options(name, made)
    listed_whole(made)
    TOP_LEVEL[name] = made
    return made


def listed_whole(made: click.Command) -> None:
    """List `made` in its group's `--help` with the whole first sentence of its help,
    wrapped: click cuts what it makes of the help to the line's width (`Re-run dead
    letters of JOB_ID as agents of a new job and merge...`), a cut that says less than
    the line it saves. The root's listing reads these (prodigyctl/command_summaries.py)."""
    made.short_help = made.get_short_help_str(limit=sys.maxsize)
