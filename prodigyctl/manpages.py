"""Man pages, generated: never written by hand, so they cannot drift from what they document.

- prodigyctl(1), and one page per command and subcommand (`prodigyctl-dlq-retry(1)`), from
  the click definitions: the same usage, help and option texts `--help` prints.
- prodigyd(8), prodigy-workflow(5) and prodigy-config(5) from `docs/daemon.md`,
  `docs/workflows.md` and `docs/config.md`, through a converter for the Markdown those
  files use (headings, paragraphs, lists, code blocks, tables, inline code and bold).

The pages are checked in under the top-level `man/` and shipped with the package (as
`prodigyctl/man/`, a link to it in the source tree), so `prodigyctl man install` needs
neither the docs nor a build step. After changing a command or one of those docs,
regenerate them: `python -m prodigyctl.manpages`. A test fails while they are stale, and
another renders every page with groff and fails on any warning.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from prodigyctl.examples import EXAMPLES
from prodigyctl.exitcodes import EXIT_CODES
from prodigyd.version import version

MANUAL = "prodigy manual"
#: The pages in the package; in the source tree, the top-level man/ (prodigyctl/man links to it).
SHIPPED = Path(__file__).parent / "man"
#: What the root group's `--help` lists each command with (main.py), made here with the pages.
SUMMARIES = Path(__file__).parent / "command_summaries.py"
DOCS = Path(__file__).parents[1] / "docs"

#: Pages made from the docs: name, section, source, what NAME says after the dash.
DOC_PAGES = (
    ("prodigyd", 8, "daemon.md", "the prodigy daemon: durable job queue and worktree pool"),
    ("prodigy-workflow", 5, "workflows.md", "the language of prodigy workflow files"),
    ("prodigy-config", 5, "config.md", "prodigyd settings in $PRODIGY_HOME/config.toml"),
)

ENVIRONMENT = (
    (
        "PRODIGY_HOME",
        "where prodigy keeps its state, and (when set) the daemon's socket; default ~/.prodigy",
    ),
    ("PRODIGY_CLAUDE_BIN", "the claude executable for claude: steps"),
    (
        "XDG_RUNTIME_DIR",
        "without PRODIGY_HOME, the socket is $XDG_RUNTIME_DIR/prodigy/prodigyd.sock",
    ),
)


def generate() -> dict[str, str]:
    """Every page: file name (`prodigyctl-dlq-retry.1`) -> roff source."""
    from prodigyctl.main import cli

    pages = {}
    for path, command in _commands(cli, ("prodigyctl",)):
        pages[f"{'-'.join(path)}.1"] = _command_page(path, command)
    for name, section, source, summary in DOC_PAGES:
        pages[f"{name}.{section}"] = markdown_page(
            name, section, summary, (DOCS / source).read_text(), see_also=_see_also(name)
        )
    return pages


def shipped_paths() -> list[Path]:
    """The pages in the package, as `generate()` made them when they were last written."""
    return sorted(SHIPPED.glob("*.[158]"))


def shipped() -> dict[str, str]:
    return {path.name: path.read_text() for path in shipped_paths()}


def write(folder: Path = SHIPPED) -> list[str]:
    """Regenerate the shipped pages: write every page and delete the ones no longer made."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = generate()
    for stale in folder.glob("*.[158]"):
        if stale.name not in pages:
            stale.unlink()
    for name, text in pages.items():
        (folder / name).write_text(text)
    return sorted(pages)


def summaries() -> str:
    """The source of command_summaries.py: each top-level command's name and the summary
    its group's listing shows (commands.listed_whole), all click's listing reads of it."""
    from prodigyctl.main import cli

    rows = []
    for name, command in _subcommands(cli):
        first = command.short_help or ""
        rows.append(f"    {json.dumps(name)}: {json.dumps(first, ensure_ascii=False)},\n")
    return (
        '"""Made by `python -m prodigyctl.manpages` from the commands\' help: do not edit.\n\n'
        "What `prodigyctl --help` lists each command with (main.py), so that listing them\n"
        'imports none of their modules."""\n\n'
        "# ruff: noqa: E501\n\n"
        f"SUMMARIES = {{\n{''.join(rows)}}}\n"
    )


# -- commands ---------------------------------------------------------------------------


def _commands(
    command: click.Command, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    for name, sub in _subcommands(command):
        yield from _commands(sub, (*path, name))


def _subcommands(command: click.Command) -> Iterator[tuple[str, click.Command]]:
    """A group's commands by name, found as `prodigyctl` finds them (the root group imports
    their modules); none for a command."""
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield name, sub


def _context(path: tuple[str, ...]) -> click.Context:
    """A context whose `command_path` is the command's full name (`prodigyctl dlq retry`)."""
    from prodigyctl.main import cli

    ctx = click.Context(cli, info_name=path[0], **cli.context_settings)
    command: click.Command = cli
    for name in path[1:]:
        command = dict(_subcommands(command))[name]
        ctx = click.Context(command, info_name=name, parent=ctx)
    return ctx


def _command_page(path: tuple[str, ...], command: click.Command) -> str:
    ctx = _context(path)
    name = "-".join(path)
    out = _header(name, 1)
    out += [".SH NAME", f"{_esc(name)} \\- {_esc(_summary(command))}"]
    out += [".SH SYNOPSIS", f".B {_esc(' '.join(path))}"]
    out.append(_esc(_usage(command)))
    out += [".SH DESCRIPTION", *_help_paragraphs(command.help or "")]
    options = [_option_record(p) for p in command.get_params(ctx) if _documented(p)]
    if options:
        out.append(".SH OPTIONS")
        for flags, text in options:
            out += [".TP", f"\\fB{_code(flags)}\\fR", _inline(text)]
    if isinstance(command, click.Group):
        out.append(".SH COMMANDS")
        for sub, subcommand in _subcommands(command):
            summary = _inline(_summary(subcommand))
            out += [".TP", f"\\fB{_esc(sub)}\\fR", f"{summary}."]
            out.append(f"See \\fB{_esc('-'.join((*path, sub)))}\\fR(1).")
    examples = EXAMPLES.get(" ".join(path[1:]))
    if examples:
        out.append(".SH EXAMPLES")
        for line, what in examples:
            out += [".PP", _inline(what[0].upper() + what[1:] + ":"), ".PP", ".RS 4", ".nf"]
            out += [_line(line), ".fi", ".RE"]
    if len(path) == 1:
        out.append(".SH EXIT STATUS")
        for code, _, meaning in EXIT_CODES:
            out += [".TP", f"\\fB{code}\\fR", _esc(meaning)]
        out.append(".SH ENVIRONMENT")
        for variable, meaning in ENVIRONMENT:
            out += [".TP", f"\\fB{variable}\\fR", _esc(meaning)]
    parent = "-".join(path[:-1]) if len(path) > 1 else None
    out += [".SH SEE ALSO", _see_also(name, parent)]
    return "\n".join(out) + "\n"


# The synopsis and option lists are written here from the parameters' declared attributes,
# not by click's help formatter: that formatter's output changes between click releases
# (8.5 began listing arguments among the options), and the shipped pages must be the same
# whichever click a machine resolves.


def _usage(command: click.Command) -> str:
    """`[OPTIONS] JOB_ID [ITEM]...`, or `[OPTIONS] COMMAND [ARGS]...` for a group."""
    pieces = ["[OPTIONS]"]
    for param in command.params:
        if isinstance(param, click.Argument):
            name = param.metavar or (param.name or "").upper()
            name += "..." if param.nargs == -1 else ""
            pieces.append(name if param.required else f"[{name}]")
    if isinstance(command, click.Group):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def _documented(param: click.Parameter) -> bool:
    return isinstance(param, click.Option) and not param.hidden


def _option_record(option: click.Parameter) -> tuple[str, str]:
    """An option's flags with their value's name, and its help with default and range."""
    assert isinstance(option, click.Option)
    flags = ", ".join(option.opts)
    if option.secondary_opts:
        flags += " / " + ", ".join(option.secondary_opts)
    if not option.is_flag and not option.count:
        flags += f" {option.metavar or _type_name(option.type)}"
    extras = []
    if option.show_default and option.default is not None and not callable(option.default):
        default = option.default
        shown = ("true" if default else "false") if isinstance(default, bool) else str(default)
        extras.append(f"default: {shown}")
    if isinstance(option.type, click.IntRange | click.FloatRange):
        extras.append(_range(option.type))
    if option.required:
        extras.append("required")
    parts = [inspect.cleandoc(option.help or "").replace("\n", " ")]
    parts += [f"[{'; '.join(extras)}]"] if extras else []
    return flags, "  ".join(part for part in parts if part)


def _type_name(kind: click.ParamType) -> str:
    if isinstance(kind, click.Choice):
        return f"[{'|'.join(str(c) for c in kind.choices)}]"
    if isinstance(kind, click.IntRange):
        return "INTEGER RANGE"
    if isinstance(kind, click.FloatRange):
        return "FLOAT RANGE"
    return kind.name.upper()


def _range(kind: click.IntRange | click.FloatRange) -> str:
    """`x>=0`, `1<=x<=1000000`: the bounds as click's help shows them."""
    below = "<" if kind.min_open else "<="
    above = "<" if kind.max_open else "<="
    if kind.min is not None and kind.max is not None:
        return f"{kind.min}{below}x{above}{kind.max}"
    if kind.min is not None:
        return f"x{below.replace('<', '>')}{kind.min}"
    return f"x{above}{kind.max}"


def _summary(command: click.Command) -> str:
    """The first sentence of the help, as click's command list shows it (unshortened)."""
    text = inspect.cleandoc(command.help or command.short_help or "")
    first = text.split("\n\n")[0].replace("\n", " ")
    return first.rstrip(".")


def _help_paragraphs(help_text: str) -> list[str]:
    out = []
    for paragraph in inspect.cleandoc(help_text).split("\n\n"):
        if paragraph.startswith("\b\n"):  # click's "do not rewrap" marker
            out += [".PP", ".nf", *(_line(line) for line in paragraph[2:].splitlines()), ".fi"]
        else:
            out += [".PP", _inline(paragraph.replace("\n", " "))]
    return out


# -- markdown -------------------------------------------------------------------------


def markdown_page(name: str, section: int, summary: str, text: str, *, see_also: str) -> str:
    """A man page from a Markdown document; its `# title` gives way to the NAME section."""
    body = list(_blocks(text.splitlines()))
    tables = any(line == ".TS" for line in body)
    out = (["'\\\" t"] if tables else []) + _header(name, section)
    out += [".SH NAME", f"{_esc(name)} \\- {_esc(summary)}"]
    if body and not body[0].startswith(".SH"):  # the text before the first `##` heading
        out.append(".SH DESCRIPTION")
    out += body
    out += [".SH SEE ALSO", see_also]
    return "\n".join(out) + "\n"


RELATED = (("prodigyctl", 1), ("prodigyd", 8), ("prodigy-workflow", 5), ("prodigy-config", 5))


def _see_also(name: str, parent: str | None = None) -> str:
    """The parent command's page first, then the four main pages (never the page itself)."""
    pages = ([(parent, 1)] if parent else []) + [p for p in RELATED if p[0] not in (name, parent)]
    return ", ".join(f"\\fB{_esc(page)}\\fR({section})" for page, section in pages)


LIST_ITEM = re.compile(r"^(\s*)(?:[-*]|(\d+)\.)\s+(.*)$")


def _blocks(lines: list[str]) -> Iterator[str]:
    """roff for a Markdown document's blocks."""
    i = 0
    depth = 0  # open .RS levels of nested lists
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next(
                (j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines)
            )
            yield from (
                ".PP",
                ".RS 4",
                ".nf",
                *(_line(c) for c in lines[i + 1 : end]),
                ".fi",
                ".RE",
            )
            i = end + 1
            continue
        if line.startswith("#"):
            level, title = len(line) - len(line.lstrip("#")), line.lstrip("#").strip()
            if level == 2:
                yield f'.SH "{_inline(title).upper()}"'
            elif level >= 3:
                yield f'.SS "{_inline(title)}"'
            i += 1
            continue
        if line.startswith("|"):
            end = next(
                (j for j in range(i, len(lines)) if not lines[j].startswith("|")), len(lines)
            )
            yield from _table(lines[i:end])
            i = end
            continue
        match = LIST_ITEM.match(line)
        if match:
            indent, number, first = len(match.group(1)), match.group(2), match.group(3)
            level = indent // 2
            while depth > level:
                yield ".RE"
                depth -= 1
            while depth < level:
                yield ".RS 2"
                depth += 1
            end = i + 1
            while (
                end < len(lines)
                and lines[end].startswith(" " * (indent + 2))
                and not (LIST_ITEM.match(lines[end]))
            ):
                end += 1
            text = " ".join([first, *(c.strip() for c in lines[i + 1 : end])])
            mark = f"{number}." if number else "\\(bu"
            yield f".IP {mark} {4 if number else 2}"
            yield _inline(text)
            i = end
            continue
        while depth:
            yield ".RE"
            depth -= 1
        if not line.strip():
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() and not _starts_block(lines[end]):
            end += 1
        yield ".PP"
        yield _inline(" ".join(c.strip() for c in lines[i:end]))
        i = end


def _starts_block(line: str) -> bool:
    return line.startswith(("```", "#", "|")) or bool(LIST_ITEM.match(line))


def _table(rows: list[str]) -> Iterator[str]:
    cells = [_cells(row) for row in rows if not re.fullmatch(r"[\s|:-]+", row)]
    columns = max(len(row) for row in cells)
    # cells are filled but not adjusted (`.na`): a narrow column cannot be justified, and
    # troff warns "cannot adjust line" for each such line when man renders the page
    yield from (".PP", ".na", ".TS", "allbox tab(@);", " ".join(["lb"] * columns))
    yield " ".join(["lx"] * columns) + "."
    for row in cells:
        padded = row + [""] * (columns - len(row))
        yield "@".join(f"T{{\n{_breakable(_inline(cell))}\nT}}" for cell in padded)
    yield from (".TE", ".ad")


def _breakable(text: str) -> str:
    """Let a narrow cell break a long name after its underscores and slashes (`\\:` is a
    break point that prints nothing): `PRODIGY_MAX_CONCURRENT_JOBS` or a path is wider than
    its column at 80 columns, and troff warns "can't break line"."""
    return text.replace("_", "_\\:").replace("/", "/\\:")


def _cells(row: str) -> list[str]:
    """A table row's cells; a `|` inside backticks or escaped (`\\|`) is not a border."""
    cells, current, in_code, i = [], "", False, 0
    body = row.strip().removeprefix("|").removesuffix("|")
    while i < len(body):
        char = body[i]
        if char == "\\" and body[i + 1 : i + 2] == "|":
            current, i = current + "|", i + 2
            continue
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
        i += 1
    cells.append(current.strip())
    return cells


# -- roff text -----------------------------------------------------------------------


def _header(name: str, section: int) -> list[str]:
    return [f'.TH "{_esc(name.upper())}" "{section}" "" "prodigy {version()}" "{MANUAL}"']


INLINE = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|\[([^\]]+)\]\([^)]*\)")


def _inline(text: str) -> str:
    """Markdown inline code and bold as bold; links as their text; the rest escaped."""
    out, last = [], 0
    for match in INLINE.finditer(text):
        out.append(_esc(text[last : match.start()]))
        code, bold, link = match.groups()
        if code is not None:
            out.append(f"\\fB{_code(code)}\\fR")
        elif bold is not None:
            out.append(f"\\fB{_esc(bold)}\\fR")
        else:
            out.append(_esc(link))
        last = match.end()
    out.append(_esc(text[last:]))
    return _guard("".join(out))


def _code(text: str) -> str:
    """Literal text: hyphens as the minus sign a reader can copy into a shell."""
    return _esc(text).replace("-", "\\-")


def _line(text: str) -> str:
    """One line of a no-fill block."""
    return _guard(_code(text))


def _esc(text: str) -> str:
    """Backslashes, and non-ASCII characters as groff's `\\[uXXXX]` (not every man reads
    UTF-8 input)."""
    text = text.replace("\\", "\\e")
    return NON_ASCII.sub(lambda m: f"\\[u{ord(m.group()):04X}]", text)


NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _guard(line: str) -> str:
    """A line starting with `.` or `'` would be a roff request."""
    return f"\\&{line}" if line.startswith((".", "'")) else line


def main() -> int:
    """`python -m prodigyctl.manpages`: regenerate the shipped pages and the summaries."""
    for name in write():
        print(SHIPPED / name)
    SUMMARIES.write_text(summaries())
    print(SUMMARIES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
