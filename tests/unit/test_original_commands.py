"""The original prodigy's command lines work here as its users write them
(prodigyctl/original.py): every `prodigy ...` line of the original's book
(tests/corpus/prodigy/book-commands.txt) parses, or is refused with a usage error that says
what to run instead, never click's "No such option"; each spelling README.md pairs with
prodigy's runs prodigy's command with the very same values; and none of it shows in
`--help`.

A line is parsed by the real command tree (`cli.main`), down to the command it would run:
that command's function is not called, but what it would be called with is recorded.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from prodigyctl.main import COMMANDS, cli
from prodigyctl.original import Refused
from tests.cli import ctl

ROOT = Path(__file__).parents[2]
BOOK = ROOT / "tests" / "corpus" / "prodigy" / "book-commands.txt"

#: Stand-ins for the book's placeholders.
PLACEHOLDERS = {
    "<job_id>": "mapreduce-1234567890",
    "{job_id}": "mapreduce-1234567890",
    "<workflow_id>": "mapreduce-1234567890",
    "<session_id>": "session-1234567890",
    "<agent_id>": "agent-1",
    "<correlation_id>": "0f6a2c",
}

#: Lines of the book the original itself does not accept (its src/cli/args.rs has no such
#: spelling): the book's own mistakes, which prodigy refuses as click does.
NOT_THE_ORIGINALS = {
    "prodigy dlq show <job_id>": "no `dlq show` (prodigy's needs an ITEM_ID)",
    "prodigy dlq retry <job_id> --max-parallel 5": "dlq retry takes --parallel",
    "prodigy dlq retry <job_id> --max-parallel 10": "dlq retry takes --parallel",
    "prodigy dlq retry <job_id> --dry-run": "dlq retry has no --dry-run",
    "prodigy dlq clean --completed": "no `dlq clean`",
    "prodigy run workflows/book-docs-drift.yml --stop-after setup": "run has no --stop-after",
    "prodigy run workflow.yml --dry-run --show-composition": "run has no --show-composition",
    "prodigy events <job_id>": "events needs a subcommand",
    "prodigy events {job_id}": "events needs a subcommand",
    "prodigy events show <job_id>": "no `events show`",
}


@dataclass(frozen=True)
class Parsed:
    """What a command line comes to: the function it runs and its arguments, or the error
    (`refused`: one of the original's spellings prodigy has no equivalent for)."""

    runs: str = ""
    arguments: tuple[tuple[str, Any], ...] = ()
    error: str = ""
    refused: bool = False


def parse(words: list[str]) -> Parsed:
    """`prodigy WORDS...` parsed by the real command tree, its command not run."""
    ran: list[Parsed] = []

    def record(ctx: click.Context, callback: Any, /, *args: Any, **kwargs: Any) -> int:
        name = f"{callback.__module__}.{callback.__qualname__}"
        ran.append(Parsed(name, tuple(sorted(kwargs.items()))))
        return 0

    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setattr(click.Context, "invoke", record)
        try:
            cli.main(words, prog_name="prodigy", standalone_mode=False)
        except Refused as refused:
            return Parsed(error=refused.format_message(), refused=True)
        except click.ClickException as error:
            return Parsed(error=error.format_message())
    return ran[0] if ran else Parsed(runs="(help or version)")


def book() -> Iterator[tuple[str, str]]:
    for line in BOOK.read_text().splitlines():
        if line and not line.startswith("#"):
            where, text = line.split("\t")
            yield where, text


BOOK_LINES = list(book())


def words_of(text: str) -> list[str]:
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    assert not re.search(r"<[a-z_-]+>|\{[a-z_]+\}", text.split("--file")[0]), text
    return shlex.split(text)[1:]


def test_the_corpus_holds_the_books_command_lines():
    assert len(BOOK_LINES) >= 150
    assert set(NOT_THE_ORIGINALS) <= {text for _, text in BOOK_LINES}


@pytest.mark.parametrize(("where", "text"), BOOK_LINES, ids=[w for w, _ in BOOK_LINES])
def test_each_command_line_of_the_book_parses_or_is_refused_clearly(where: str, text: str):
    parsed = parse(words_of(text))
    if text in NOT_THE_ORIGINALS:
        assert parsed.error and not parsed.refused, f"{where}: {text} now parses: {parsed}"
        return
    assert not parsed.error or parsed.refused, f"{where}: `{text}`: {parsed.error}"
    if parsed.refused:
        said = parsed.error.split("`", 2)[2]  # after the spelling it names
        assert re.search(r"`[^`]+`", said), f"it says what to run instead: {parsed.error}"


# -- README.md's table: the original's spelling and prodigy's ----------------------------------


def readme_pairs() -> Iterator[tuple[str, str]]:
    lines = (ROOT / "README.md").read_text().splitlines()
    for line in lines[lines.index("| The original's | prodigy's |") + 2 :]:
        if not line.startswith("|"):
            break
        theirs, ours = line.strip("|").split("|")
        (mine,) = re.findall(r"`(prodigy [^`]+)`", ours)
        for spelling in re.findall(r"`(prodigy [^`]+)`", theirs):
            yield spelling, mine


PAIRS = list(readme_pairs())


def test_the_readme_pairs_the_spellings_it_promises():
    assert len(PAIRS) >= 20
    assert ("prodigy run wf.yml --resume ID", "prodigy resume ID") in PAIRS


@pytest.mark.parametrize(("theirs", "ours"), PAIRS, ids=[theirs for theirs, _ in PAIRS])
def test_the_originals_spelling_runs_prodigys_command_with_the_same_values(theirs, ours):
    mine = parse(shlex.split(ours)[1:])
    assert mine.runs and not mine.error, f"`{ours}`: {mine.error}"
    assert parse(shlex.split(theirs)[1:]) == mine


# -- a few of them, closer -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        # --job-id also works where prodigy's is an operand of the same command
        ("dlq purge --older-than-days 30 --yes", "dlq purge --older-than 30d --yes"),
        ("dlq stats --job-id J", "dlq stats J"),
        ("dlq analyze", "dlq stats"),
        ("dlq clear J", "dlq purge J"),
        ("dlq export dlq-items.csv --format csv", "dlq export --format csv -o dlq-items.csv"),
        ("dlq export dlq-items.json", "dlq export -o dlq-items.json"),
        ("dlq inspect I --job-id J --json", "dlq show J I --json"),  # prodigy's own passed on
        ("events stats --group-by job_id", "events stats"),  # it counts by job already
        ("run wf.yml --resume ID -y --detach -vv", "resume ID -y --detach -vv"),
        ("run wf.yml -p . --resume ID", "resume ID"),
        ("resume ID -p /repo", "resume ID"),
        ("worktree clean -a", "worktree clean all"),
        ("worktree clean-orphaned", "worktree gc"),
        ("config trace", "config show"),
        ("config show log_level --json", "config get log_level --json"),
        ("validate wf.yml --format simplified --suggest", "validate wf.yml"),
        ("checkpoints mapreduce J --detailed -p .", "checkpoints show J"),
        ("events list", "events ls"),
        ("watch remove", "watch rm"),
    ],
)
def test_more_spellings_of_the_original(theirs: str, ours: str):
    mine = parse(ours.split())
    assert mine.runs and not mine.error, f"`{ours}`: {mine.error}"
    assert parse(theirs.split()) == mine


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("-v run wf.yml", "`prodigy run WORKFLOW -v`"),
        ("dlq -v ls", "`prodigy dlq`"),
        ("config show --verbose", "`prodigy config show`"),
        ("run wf.yml --resume ID --param a=1", "`prodigy resume SESSION_ID`"),
        ("resume ID --from-checkpoint 2", "`prodigy resume ID --from STEP`"),
        ("resume-job J --max-retries 2", "`prodigy dlq retry JOB_ID --max-retries N`"),
        ("dlq inspect I", "`prodigy dlq show JOB_ID ITEM_ID`"),
        ("events ls --since 30", "`--since 30m`"),
        ("events ls --file f.jsonl", "--session JOB_ID"),
        ("clean all --older-than 7d", "`prodigy clean --older-than AGE`"),
        ("clean state", "`prodigy clean --older-than AGE`"),
        ("worktree clean --dry-run", "`prodigy worktree ls`"),
        ("worktree clean-orphaned J --dry-run", "`prodigy worktree gc`"),
        ("migrate-yaml workflows/ --dry-run", "`prodigy validate WORKFLOW`"),
        ("changelog generate", "workflow step"),
        ("checkpoints validate CP --repair", "`prodigy checkpoints show ID`"),
        ("sessions clean --all -f", "`prodigy clean --older-than AGE`"),
        ("progress J --web 8080", "`prodigy sessions show JOB_ID`"),
    ],
)
def test_what_prodigy_has_no_equivalent_for_is_refused_saying_what_to_run(line, says):
    parsed = parse(line.split())
    assert parsed.refused, parsed
    assert says in parsed.error


def test_the_refusal_of_a_global_v_names_the_commands_that_take_it():
    """The list is read from the command tree: each command it names takes -v (its help
    shows it), and a command without -v is not named."""
    error = parse(["-v", "ps"]).error
    named = re.search(r"\((.*) take it\)", error)
    assert named, error
    commands = re.split(r", | and ", named.group(1))
    assert {"run", "exec", "logs", "sessions replay"} <= set(commands), commands
    assert "ps" not in commands and "config show" not in commands
    for command in commands:
        assert re.search(r"^\s+-v\b", ctl(*command.split(), "--help", check=True).stdout, re.M)
    assert f"({named.group(1)} take it)" in parse(["dlq", "-v", "ls"]).error


def test_an_operand_that_looks_like_an_option_of_the_originals_stays_an_operand():
    parsed = parse(["config", "set", "claude.extra_args", "-v"])
    assert dict(parsed.arguments) == {"key": "claude.extra_args", "value": "-v"}


def test_a_refusal_is_a_usage_error_without_a_usage_line():
    done = ctl("events", "search", "error")
    assert done.returncode == 2
    assert done.stderr.startswith("error[E0002]: `prodigyctl events search` is the original")
    assert "Usage:" not in done.stderr and "No such" not in done.stderr


def test_a_line_neither_form_takes_gets_prodigys_error():
    """A mistake in prodigy's own spelling is reported as ever, not as the original's."""
    for line in ("config show --bogus", "template init --bogus", "clean --bogus"):
        assert parse(line.split()).error.startswith("No such option '--bogus'."), line
    assert parse(["run", "wf.yml", "--bogus"]).error.startswith("No such option '--bogus'.")
    # ... and one in a line that is the original's is that form's
    error = parse(["run", "wf.yml", "--resume", "ID", "--bogus"]).error
    assert error.startswith("No such option '--bogus'.")


def test_help_man_pages_and_completion_show_only_prodigys_spellings():
    """The aliases are hidden: `--help` lists prodigy's options and commands alone (the man
    pages, made from the same commands, are held to them by test_manpages.py)."""
    assert "--job-id" not in ctl("dlq", "ls", "--help", check=True).stdout
    assert "--older-than-days" not in ctl("dlq", "purge", "--help", check=True).stdout
    assert "--verbose" not in ctl("config", "show", "--help", check=True).stdout

    def listed(*group: str) -> set[str]:
        shown = ctl(*group, "--help", check=True).stdout
        return {line.split()[0] for line in shown.split("Commands:")[1].splitlines() if line}

    assert not {"inspect", "analyze", "clear", "list"} & listed("dlq")
    assert not {"progress", "migrate-yaml", "changelog"} & listed()
    assert "--verbose" not in ctl("--help", check=True).stdout


def test_no_spelling_of_the_originals_shadows_one_of_prodigys():
    """Every option string of a command is one parameter's: a hidden alias never takes
    the place of prodigy's own option of the same spelling."""
    from prodigyctl.manpages import _commands

    for path, command in _commands(cli, ("prodigy",)):
        spellings = [opt for param in command.params for opt in param.opts]
        assert len(spellings) == len(set(spellings)), (path, spellings)


def test_every_table_entry_names_a_command_and_parameter_prodigy_has():
    """A typo in prodigyctl/original.py's tables would silently alias nothing."""
    from prodigyctl import original
    from prodigyctl.manpages import _commands

    commands = {" ".join(path[1:]): command for path, command in _commands(cli, ("prodigy",))}
    for path, entries in original.OPTIONS.items():
        names = {param.name for param in commands[path].params}
        assert {entry.to for entry in entries if entry.to} <= names, path
    for group, names in original.COMMANDS.items():
        assert group in commands
        for name, entry in names.items():
            assert name not in getattr(commands[group], "commands", {}), (group, name)
            assert group or name not in COMMANDS, name
            if isinstance(entry, original.Original) and not entry.runs:
                assert entry.refused is not None, (group, name)  # runs nothing: refused
            else:
                runs = f"{group} {entry}".strip() if isinstance(entry, str) else entry.runs
                assert runs in commands, (group, name)
    for path, spec in original.VARIANTS.items():
        assert path in commands and spec.runs in commands, path
