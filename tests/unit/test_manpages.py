"""The man pages: generated from the click commands and the docs, shipped fresh, and
clean for groff."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click
import pytest

from prodigyctl import manpages
from prodigyctl.main import cli

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_pages_are_the_top_level_man_folder():
    assert manpages.SHIPPED.resolve() == ROOT / "man"  # the prodigyctl/man link
    assert '"man/*.1"' in (ROOT / "pyproject.toml").read_text()  # shipped as package data


def test_the_shipped_pages_are_what_the_generator_makes_now():
    assert manpages.shipped() == manpages.generate(), (
        "the man pages are stale: run `python -m prodigyctl.manpages` and commit man/"
    )


def test_the_command_summaries_are_what_the_generator_makes_now():
    assert manpages.SUMMARIES.read_text() == manpages.summaries(), (
        "prodigyctl/command_summaries.py is stale: run `python -m prodigyctl.manpages`"
    )


@pytest.mark.parametrize("width", [40, 80, 200])
def test_help_lists_the_commands_as_click_does_from_the_commands_themselves(width: int):
    """`--help` lists stand-ins made from command_summaries.py: what it prints is what click
    prints from the real commands (every module imported), at any terminal width."""
    real = click.Group("prodigyctl", commands=dict(manpages._subcommands(cli)))
    listed, expected = (
        click.HelpFormatter(width=width),
        click.HelpFormatter(width=width),
    )
    cli.format_commands(click.Context(cli), listed)
    real.format_commands(click.Context(real), expected)
    assert listed.getvalue() == expected.getvalue()
    assert "run " in listed.getvalue()


def walk(command: click.Command, path: tuple[str, ...]):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


def test_every_command_has_a_page_naming_each_of_its_options():
    pages = manpages.shipped()
    for path, command in walk(cli, ("prodigyctl",)):
        page = pages[f"{'-'.join(path)}.1"]
        assert f".B {' '.join(path)}\n" in page
        flags = [
            flag
            for p in command.params
            if isinstance(p, click.Option) and not p.hidden  # the original's spellings
            for flag in p.opts
        ]
        for flag in flags:
            assert flag.replace("-", "\\-") in page, (path, flag)  # as roff writes a minus
    assert {"prodigyd.8", "prodigy-workflow.5", "prodigy-config.5", "prodigyctl.1"} <= set(pages)


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("name", sorted(manpages.shipped()))
def test_groff_renders_the_page_without_warnings(name: str):
    page = manpages.SHIPPED / name
    lint = subprocess.run(
        ["groff", "-t", "-man", "-Tutf8", "-ww", "-z", str(page)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0 and lint.stderr == "", lint.stderr


def render(text: str) -> str:
    done = subprocess.run(
        ["groff", "-t", "-man", "-Tutf8", "-P-cbou"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_markdown_becomes_sections_lists_code_and_tables():
    text = manpages.markdown_page(
        "demo",
        5,
        "a demo",
        """# Demo

Intro with `--flag` and **bold** and a [link](other.md).

## Usage

- first item
  continued here
  - nested item
- second item

```sh
.starts with a dot
back\\slash
```

| key | meaning |
|---|---|
| `a|b` | pipe in code |
| plain \\| escaped | café → ok |
""",
        see_also="\\fBother\\fR(1)",
    )
    out = render(text)
    assert "DESCRIPTION" in out and "Intro with --flag and bold and a link." in out
    assert "USAGE" in out and "first item continued here" in out and "nested item" in out
    assert ".starts with a dot" in out and "back\\slash" in out
    assert "a|b" in out and "pipe in code" in out and "plain | escaped" in out
    assert "café → ok" in out
    assert "SEE ALSO" in out and "other(1)" in out


def test_arguments_are_in_the_synopsis_and_never_listed_as_options():
    """click 8.5's help formatter began listing arguments among the options; the pages are
    written from the parameters themselves, so a new click release cannot change them."""
    pages = manpages.shipped()
    for path, command in walk(cli, ("prodigyctl",)):
        page = pages[f"{'-'.join(path)}.1"]
        synopsis = page.split(".SH SYNOPSIS\n", 1)[1].split(".SH", 1)[0]
        options = (
            page.split(".SH OPTIONS\n", 1)[-1].split(".SH", 1)[0] if ".SH OPTIONS" in page else ""
        )
        for argument in (p for p in command.params if isinstance(p, click.Argument)):
            name = (argument.metavar or argument.name or "").upper()
            assert name in synopsis, (path, name)
            assert f"\\fB{name}\\fR\n" not in options, (path, name)


def test_every_page_man_ls_names_is_found_by_that_name():
    from prodigyctl.commands.man import find
    from prodigyctl.manpages import shipped_paths

    pages = shipped_paths()
    assert pages and all(find(page.name) == page for page in pages)  # `prodigyd.8`
    assert find("prodigyd") == find("prodigyd.8") and find("daemon stop") is not None
    assert find("prodigyd.9") is None
