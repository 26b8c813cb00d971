"""`prodigyctl`: the client of prodigyd.

This is the root group: its help, `--version`, and which module defines each command. The
commands live in prodigyctl/commands/<noun>.py, each on the plain function it runs; a
command's module is imported only when that command runs, so a quick call such as
`run --detach` loads one module, and `--help` none: it lists the commands from
prodigyctl/command_summaries.py, generated from their help. A command returns its exit
code.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from prodigyctl.errors import error_handler
from prodigyctl.exitcodes import EXIT_PIPE, summary

#: Each top-level command or group, and the module of prodigyctl/commands/ that defines it.
COMMANDS = {
    "analytics": "analytics",
    "batch": "generated",
    "cancel": "end",
    "checkpoints": "checkpoints",
    "clean": "clean",
    "completion": "completion",
    "config": "config",
    "daemon": "daemon",
    "dlq": "dlq",
    "events": "events",
    "exec": "generated",
    "explain": "explain",
    "follow": "logs",
    "goal-seek": "generated",
    "hooks": "hooks",
    "init": "init",
    "logs": "logs",
    "man": "man",
    "merge": "end",
    "ps": "sessions",
    "resume": "resume",
    "resume-job": "resume",
    "run": "run",
    "sessions": "sessions",
    "status": "status",
    "template": "template",
    "triggers": "hooks",
    "validate": "validate",
    "watch": "watch",
    "worktree": "worktree",
}

HELP = f"""Run AI-agent workflows in isolated git worktrees, through the prodigyd daemon.

Starts the daemon on first use. State lives in $PRODIGY_HOME (default ~/.prodigy).
Also installed as `prodigy`, the original tool's name: `prodigy run wf.yml` works as written.
Exit codes: {summary()}.
"""


class Root(click.Group):
    """The root group: finds a command by importing the module COMMANDS names for it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, or the original prodigy's of that name (prodigyctl/original.py:
        hidden, as `list_commands` leaves it out), imported only for a name not in COMMANDS."""
        module = COMMANDS.get(cmd_name)
        if module is None:
            from prodigyctl import original

            return original.command("", self, ctx, cmd_name)
        importlib.import_module(f"prodigyctl.commands.{module}")
        from prodigyctl.commands import TOP_LEVEL

        return TOP_LEVEL[cmd_name]

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a reader of its output that stopped early (`prodigyctl events ls
        | head`) ends it quietly with EXIT_PIPE, as SIGPIPE ends `git log | head`'s git
        (click alone exits 1: a failed workflow's code). The daemon's socket closing is
        not this: the client says that (DaemonUnreachable)."""
        with _closed_pipe_exits():
            return super().invoke(ctx)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """As click makes it, with the help's width found cheaply (`help_width`); the
        root's `--help` is printed here, while its arguments are parsed, so a closed pipe
        ends it as one ends a command (`invoke`)."""
        extra.setdefault("terminal_width", help_width())
        with _closed_pipe_exits():
            return super().make_context(info_name, args, parent, **extra)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list `--help` ends with, as click makes it from the commands themselves, but
        made from stand-ins that carry each command's summary (SUMMARIES): the
        commands' modules (over half of what `--help` took) are not imported. A command
        missing from SUMMARIES (it is stale: tests/unit/test_manpages.py says so) is read
        from its module."""
        from prodigyctl.command_summaries import SUMMARIES  # here: only --help needs it

        listed = [
            click.Command(name, short_help=SUMMARIES[name])
            if name in SUMMARIES
            else self.get_command(ctx, name)
            for name in self.list_commands(ctx)
        ]
        click.Group(commands=[c for c in listed if c is not None]).format_commands(ctx, formatter)


@contextlib.contextmanager
def _closed_pipe_exits() -> Iterator[None]:
    """A BrokenPipeError becomes EXIT_PIPE, with nothing more written (see Root.invoke)."""
    try:
        yield
    except BrokenPipeError:
        quiet = os.open(os.devnull, os.O_WRONLY)  # what is still buffered goes nowhere
        for stream in (sys.stdout, sys.stderr):  # `2>&1 | head`: stderr is that pipe too
            os.dup2(quiet, stream.fileno())
        raise click.exceptions.Exit(EXIT_PIPE) from None


def help_width() -> int:
    """The width click's help formatter would pick (the terminal's, at most 80, less 2, at
    least 50), with the terminal's width found as shutil.get_terminal_size finds it, but
    without importing shutil: it imports zlib, bz2 and lzma, 2.5 ms of --help (5%).
    tests/unit/test_commands.py holds it to click's own choice."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return max(min(columns or 80, 80) - 2, 50)


def _verbose_first(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """The original prodigy's global `-v` before the command: refused, saying where
    prodigy's goes (prodigyctl/original.py, imported only then)."""
    if value:
        from prodigyctl import original

        original.verbose_first(ctx, param, value)


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from prodigyd.version import version

        click.echo(f"{ctx.find_root().info_name or 'prodigyctl'}, version {version()}")
        ctx.exit()


cli = Root(
    "prodigyctl",
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    params=[
        click.Option(
            ["--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_show_version,
            help="Show the version and exit.",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            hidden=True,
            expose_value=False,
            callback=_verbose_first,
        ),
    ],
)


#: The names the program answers to: `prodigy` is the original tool's, kept so its users'
#: commands and scripts work unchanged. Usage lines show the name it was called by.
PROGRAM_NAMES = ("prodigyctl", "prodigy")


def main() -> NoReturn:
    called = os.path.basename(sys.argv[0])
    prog_name = called if called in PROGRAM_NAMES else PROGRAM_NAMES[0]
    try:
        with error_handler():
            code = cli.main(standalone_mode=False, prog_name=prog_name)
    except SystemExit as stop:
        code = stop.code
    exit_now(code)


def exit_now(code: str | int | None) -> NoReturn:
    """Exit with `code` as sys.exit does, but without the interpreter's teardown (freeing
    every module and object: a tenth of `--help`, more than prodigyctl's own imports) when
    that teardown would do nothing a user could see: stdout and stderr are flushed, no
    atexit function is registered (logging, multiprocessing and tempfile's finalizers
    register one) and no other thread runs. Otherwise, or for an exit code that is not a
    number, or a flush that fails (a closed pipe: Python reports it as it always does), the
    ordinary sys.exit."""
    import atexit  # built in: no import cost

    threading = sys.modules.get("threading")  # click imports it; a thread needs it
    alone = threading is None or threading.active_count() == 1
    if not isinstance(code, str) and alone and atexit._ncallbacks() == 0:
        try:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()
        except (OSError, ValueError):
            pass
        else:
            os._exit(code or 0)
    sys.exit(code)


if __name__ == "__main__":
    main()
