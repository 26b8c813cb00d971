"""Every `prodigyctl` command line README.md and docs/*.md show is one the real command tree
(`prodigyctl.main.cli`) accepts, so the docs cannot show a command or option that does not
exist.

The lines are those of code blocks that start with `prodigyctl` (or `$ prodigyctl`, or pipe
into it: `... | prodigyctl run -`), and inline code starting with `prodigyctl `. They are
read as synopses:

- `a|b|c` are alternatives: each is checked;
- `[...]` is optional: checked with every optional part given, and with none;
- `X...` repeats: given twice;
- an UPPERCASE word is a placeholder: any value, or a valid one for an option that takes a
  number or a choice;
- a lone `...` stands for more, and is dropped; `# ...` is a comment.

Each variant is parsed by click (`make_context`, down the command tree): an unknown command
or option, an option without its value, a bad choice, number or `--since`, or an argument
too many fails. A synopsis may leave out a command's operands (`dlq ls|show|retry`): a
missing argument is allowed; a missing required option is not. A line in a code block that
is shown because it is wrong ends with the comment `# wrong: WHY`, and must fail.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

import click
import pytest

from prodigyctl.examples import EXAMPLES
from prodigyctl.main import cli
from tests.docblocks import docs

DATA = {"yaml", "toml", "json"}  # blocks that hold no command lines
START = re.compile(r"^(?:\$\s+)?(prodigyctl(?:\s.*)?)$|\|\s*(prodigyctl(?:\s.*)?)$")
INLINE = re.compile(r"`(prodigyctl\s[^`]+)`")
WRONG = re.compile(r"#\s*wrong:\s*(\S.*)$")
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class Shown:
    """A command line as a doc shows it."""

    where: str  # "README.md:52"
    text: str  # from `prodigyctl` on
    wrong: str  # why it is shown wrong, or ""

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


def _shown() -> Iterator[Shown]:
    for doc in docs():
        for block in doc.blocks:
            if block.language in DATA:
                continue
            for offset, line in enumerate(block.lines, start=1):
                match = START.search(line)
                if match:
                    wrong = WRONG.search(line)
                    text = match.group(1) or match.group(2)
                    yield Shown(
                        f"{doc.name}:{block.line + offset}", text, wrong.group(1) if wrong else ""
                    )
        for match in INLINE.finditer(doc.prose):
            line = doc.prose.count("\n", 0, match.start()) + 1
            yield Shown(f"{doc.name}:{line}", " ".join(match.group(1).split()), "")
    for path, examples in EXAMPLES.items():  # --help and the man pages show these
        for line, _ in examples:
            yield Shown(f"examples[{path}]", line, "")


SHOWN = list(_shown())


def test_the_docs_show_command_lines() -> None:
    assert len(SHOWN) >= 50  # the extraction finds them


def test_every_command_has_examples_and_every_example_a_command() -> None:
    from prodigyctl.manpages import _commands

    leaves = {
        " ".join(path[1:])
        for path, command in _commands(cli, ("prodigyctl",))
        if not isinstance(command, click.Group)
    }
    assert set(EXAMPLES) == leaves
    for path, examples in EXAMPLES.items():
        assert all(line.startswith(f"prodigyctl {path}") for line, _ in examples), path


@pytest.mark.parametrize("shown", SHOWN, ids=lambda shown: shown.where)
def test_command_line_parses(shown: Shown) -> None:
    try:
        variants = _variants(shown.text)
    except ValueError as exc:
        pytest.fail(f"{shown}: {exc}")
    failures = [
        f"  prodigyctl {shlex.join(words)}: {why}" for words in variants if (why := _parse(words))
    ]
    if shown.wrong:
        assert failures, f"{shown.where}: shown as wrong ({shown.wrong}), but it parses"
        return
    assert not failures, (
        f"{shown.where}: `{shown.text}` is not a prodigyctl command line:\n" + "\n".join(failures)
    )


# --- the synopsis: alternatives, optional parts, repetition ------------------------------


@dataclass
class _Item:
    words: list[str]  # alternatives (a word), or empty for a group
    group: list[_Item]
    optional: bool = False
    repeated: bool = False


def _variants(text: str) -> list[list[str]]:
    """The command lines a synopsis stands for, without the leading `prodigyctl`."""
    items = _items(_symbols(text))[1:]
    found: list[list[str]] = []
    for given in (True, False):
        for words in _expand(items, given):
            if words not in found:
                found.append(words)
    return found


def _symbols(text: str) -> Iterator[str | list[str]]:
    """`[`, `]`, `...`, and words as their alternatives (a quoted word is one literal)."""
    lexer = shlex.shlex(text, posix=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    for token in lexer:
        if token[0] in "'\"":
            yield [shlex.split(token)[0]]
            continue
        while token.startswith("["):
            yield "["
            token = token[1:]
        tail: list[str] = []
        while token.endswith(("]", "...")) and token != "...":
            cut = 1 if token.endswith("]") else 3
            tail.insert(0, token[-cut:])
            token = token[:-cut]
        if token and token != "...":  # a lone `...` stands for more: dropped
            yield token.split("|")
        yield from tail


def _items(symbols: Iterator[str | list[str]], *, inner: bool = False) -> list[_Item]:
    items: list[_Item] = []
    for symbol in symbols:
        if isinstance(symbol, list):
            if "" in symbol:
                raise ValueError(f"an empty alternative in {'|'.join(symbol)}")
            items.append(_Item(symbol, []))
        elif symbol == "[":
            items.append(_Item([], _items(symbols, inner=True), optional=True))
        elif symbol == "]":
            if not inner:
                raise ValueError("a `]` closes no `[`")
            return items
        elif items:  # `...`
            items[-1].repeated = True
        else:
            raise ValueError("a `...` repeats nothing")
    if inner:
        raise ValueError("a `[` is never closed")
    return items


def _expand(items: list[_Item], given: bool) -> Iterator[list[str]]:
    """Each combination of alternatives; optional parts all `given`, or none."""
    choices = [list(_expand_item(item, given)) for item in items]
    for combination in itertools.product(*choices):
        yield [word for part in combination for word in part]


def _expand_item(item: _Item, given: bool) -> Iterator[list[str]]:
    if item.optional and not given:
        yield []
        return
    times = 2 if item.repeated and given else 1
    parts = [[word] for word in item.words] if item.words else list(_expand(item.group, given))
    for part in parts:
        yield part * times


# --- parsing down the real command tree --------------------------------------------------


def _parse(words: list[str]) -> str:
    """Why click refuses the command line, or "" when it accepts it."""
    command: click.Command = cli
    name, parent = "prodigyctl", None
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        parent = _context(command, name, parent)
        found = command.get_command(parent, words[0])
        if found is None:
            return f"no command {words[0]!r} in `{parent.command_path}`"
        command, name, words = found, words[0], words[1:]
    if isinstance(command, click.Group) and not words:
        return ""  # the docs name a group of commands
    try:
        command.make_context(name, _fill(command, words), parent=parent)
    except click.MissingParameter as exc:
        return "" if isinstance(exc.param, click.Argument) else exc.format_message()
    except click.exceptions.Exit:
        return ""
    except click.ClickException as exc:
        return exc.format_message()
    return ""


def _context(group: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """The context click makes for a group on the way to its subcommand (its settings, such
    as `-h` for help, are inherited), without parsing anything."""
    return group.context_class(group, info_name=name, parent=parent, **group.context_settings)


def _fill(command: click.Command, words: list[str]) -> list[str]:
    """`words` with each placeholder value of a typed option made a valid value."""
    options = {
        name: param
        for param in command.params
        for name in param.opts
        if isinstance(param, click.Option)
    }
    filled = list(words)
    for i, word in enumerate(words[1:], start=1):
        option = options.get(words[i - 1])
        if option is None or option.is_flag or not PLACEHOLDER.fullmatch(word):
            continue
        if isinstance(option.type, click.Choice):
            filled[i] = str(option.type.choices[0])
        elif isinstance(option.type, (click.types.IntParamType, click.types.FloatParamType)):
            filled[i] = "1"
    return filled
