"""`completion bash|zsh|fish`: the shell script that completes prodigyctl's commands,
options and session ids, from click's own completion mechanism (no second copy of the
command tree to keep in step)."""

from __future__ import annotations

import click

from prodigyctl.commands import command
from prodigyctl.exitcodes import EXIT_OK

SHELLS = ("bash", "zsh", "fish")


@command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, *, shell: str) -> int:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
      eval "$(prodigyctl completion bash)"   # in ~/.bashrc
      eval "$(prodigyctl completion zsh)"    # in ~/.zshrc
      prodigyctl completion fish > ~/.config/fish/completions/prodigyctl.fish

    It completes commands, options, and session and job ids (any unique prefix of an id
    is accepted too) from a running daemon; with none running it offers no ids and never
    starts one. Run it as `prodigy completion SHELL` for the `prodigy` name.
    """
    from click.shell_completion import get_completion_class

    root = ctx.find_root()
    prog_name = root.info_name or "prodigyctl"
    complete_var = f"_{prog_name}_COMPLETE".replace("-", "_").upper()
    completer = get_completion_class(shell)
    assert completer is not None  # click ships all three
    click.echo(completer(root.command, {}, prog_name, complete_var).source())
    return EXIT_OK
