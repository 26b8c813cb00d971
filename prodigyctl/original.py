"""The original prodigy's command lines (iepathos/prodigy, src/cli/args.rs), as its users
write them.

`prodigy` is the original's name, and README.md promises that its users' commands work
here. Where prodigy does the same thing under another spelling, the original's spelling is
a hidden alias of prodigy's: `--help`, the man pages and shell completion show prodigy's
own. Where prodigy has nothing that means the same (or only something that means another
thing), the spelling is refused with a usage error (Refused, exit 2) that says what to run
instead, never click's "No such option". A refusal is raised while the command line is
parsed, so tests/unit/test_original_commands.py sees each, for every command line of the
original's book (tests/corpus/prodigy/book-commands.txt).

The tables, by prodigy's command path (`dlq ls`; "" is the root):

- OPTIONS: the original's options of one of prodigy's commands, added to it hidden as
  commands/__init__.py registers it (`dlq purge --older-than-days 30`). Every command that
  has no `-v` also refuses the original's global `-v/--verbose`.
- COMMANDS: the original's names in a group that prodigy's do not have: another name of
  one of prodigy's commands (`dlq clear` for `dlq purge`), a command of the original's own
  operands (Original), or a refusal.
- VARIANTS: the original's form of one of prodigy's commands that takes other operands
  (`config show KEY`), parsed when prodigy's form cannot parse the line.

An Original is a translation: it parses the original's operands, writes them as prodigy's
command line and returns the context prodigy's command makes from that line, so prodigy's
own checks and conversions apply and the command that runs is prodigy's.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast

import click
from click.core import ParameterSource


class Refused(click.UsageError):
    """One of the original's spellings that prodigy has no equivalent for: a usage error
    (exit 2) naming it and saying what to run instead. Printed without a usage line: the
    command it names may be one prodigy does not have."""

    shows_usage = False

    def __init__(self, spelling: str, text: str, *, missing: str = "") -> None:
        if missing:  # the original's command without an option prodigy needs
            super().__init__(f"`{spelling}` without {missing}: {text}")
        else:
            super().__init__(f"`{spelling}` is the original prodigy's; {text}")


class Refusal(NamedTuple):
    """Why prodigy has no equivalent, and what to run instead; `{command}` stands for the
    command it was given to (`prodigy config show`), `{verbose}` for prodigy's commands
    that take -v (`verbose_commands`)."""

    text: str

    def error(self, ctx: click.Context, spelling: str = "", *, missing: bool = False) -> Refused:
        """The error for `spelling` given to `ctx`'s command, or for the command without
        it (`missing`)."""
        command = ctx.command_path
        verbose = verbose_commands(ctx) if "{verbose}" in self.text else ""
        text = self.text.format(command=command, verbose=verbose)
        if missing:
            return Refused(command, text, missing=spelling)
        return Refused(f"{command} {spelling}".strip(), text)


class Opt(NamedTuple):
    """An option of the original's (`decls`: its spellings, space-separated).

    `to` is what it becomes: for one of prodigy's commands (OPTIONS), the name of the
    parameter it sets; for an Original, the words of prodigy's command line it stands
    for, `{}` being its value (`--older-than {}`, or `{}` for an operand). With no `to`
    it is accepted and does nothing: prodigy already does what it asks. `sets`: what a
    flag sets (True by default). `convert`: for an option with a value, a function of it
    returning prodigy's value (None: the same) or a Refusal of it. `refused` refuses the
    option when it is given, `unless_given` when it is not.
    """

    decls: str
    to: str | None = None
    flag: bool = False
    sets: Any = None
    convert: Callable[[Any], Any] | None = None
    type: Any = None
    refused: Refusal | None = None
    unless_given: Refusal | None = None
    metavar: str | None = None


class Arg(NamedTuple):
    """An operand of an Original, as Opt describes an option; `required` is click's (a
    missing operand the original requires is click's usual error)."""

    name: str
    to: str | None = None
    required: bool = True
    refused: Refusal | None = None
    unless_given: Refusal | None = None
    convert: Callable[[Any], Any] | None = None


class Original(NamedTuple):
    """A command as the original spells it, run as prodigy's command `runs` (its path),
    with the words its parameters stand for, then those it does not know (prodigy's own
    options, passed on). With `refused`, it is refused whatever its operands. `prefers`
    says a line is the original's form even though prodigy's form parses it too
    (VARIANTS)."""

    runs: str = ""
    params: tuple[Opt | Arg, ...] = ()
    refused: Refusal | None = None
    help: str = ""
    prefers: Callable[[list[str]], bool] | None = None


def _days(value: int) -> str:
    return f"{value}d"


def _group_by(value: str) -> Refusal | None:
    """`events stats --group-by`: prodigy counts by event type and by job (session) at
    once, but not by agent."""
    if value in ("event_type", "job_id"):
        return None
    return Refusal(
        "prodigy counts events by type and by job, not by agent: run `prodigy events ls "
        "--session JOB_ID --json` and count the agent's events from it"
    )


def _clean_what(value: str) -> Refusal | None:
    """The original's `clean all|worktrees|sessions|logs|state|events|dlq`: all of it is
    prodigy's `clean`; a part is not, since prodigy removes a session with all its data."""
    if value == "all":
        return None
    return Refusal(
        "prodigy removes a session together with its events, logs, checkpoints and "
        "worktrees: run `prodigy clean --older-than AGE` (--dry-run first shows what would "
        "go), `prodigy dlq purge JOB_ID` for dead letters, `prodigy worktree clean` for idle "
        "worktrees"
    )


# -- refusals used in several places -------------------------------------------------------

_EVENT_FILE = Refusal(
    "prodigy reads events from its daemon's store, not from a file: drop --file (`--session "
    "JOB_ID` selects a job's events)"
)
_PER_REPOSITORY = Refusal(
    "prodigy keeps every repository's checkpoints together in $PRODIGY_HOME: drop -p "
    "(`{command}` lists them all)"
)
_PATH_IGNORED = Opt("-p --path", metavar="PATH")  # an id names the session: where is moot
_NO_CONFIRMATION = Opt("-f --force", flag=True)  # prodigy does not ask first here
_DRY_RUN = Opt("--dry-run", to="--dry-run", flag=True)
_RESUMED_AS_STARTED = Refusal(
    "a resumed session keeps the options it was started with: run `prodigy resume "
    "SESSION_ID` (see `prodigy resume --help`)"
)


OPTIONS: dict[str, tuple[Opt, ...]] = {
    "checkpoints ls": (
        Opt(
            "--workflow-id",
            refused=Refusal("to see one session's checkpoints, run `prodigy checkpoints show ID`"),
        ),
        Opt("-p --path", refused=_PER_REPOSITORY),
    ),
    "checkpoints show": (
        Opt(
            "--version",
            refused=Refusal(
                "prodigy keeps a session's latest checkpoint only, which a resume continues "
                "from: run `prodigy checkpoints show ID`"
            ),
        ),
        Opt("--detailed", flag=True),  # the original's `checkpoints mapreduce`: shows it all
        _PATH_IGNORED,
    ),
    "checkpoints delete": (_PATH_IGNORED,),
    "dlq ls": (Opt("--job-id", to="job_id"),),
    "dlq purge": (
        Opt("--older-than-days", to="older_than", type=click.IntRange(min=0), convert=_days),
        Opt("--job-id", to="job_id"),
    ),
    "dlq retry": (Opt("--force", flag=True),),  # prodigy retries every entry, eligible or not
    "dlq stats": (
        Opt("--job-id", to="job_id"),  # the original's `dlq analyze`
        Opt("--workflow-id", to="job_id"),
        Opt(
            "--export",
            refused=Refusal("run `prodigy dlq stats JOB_ID --json > FILE` instead"),
        ),
    ),
    "events ls": (
        Opt("--job-id", to="session_id"),
        Opt("--event-type", to="event_type"),
        Opt(
            "--agent-id",
            refused=Refusal(
                "prodigy filters events by job and type, not by agent: run `prodigy events ls "
                "--session JOB_ID --json` and pick the agent's events from it"
            ),
        ),
        Opt("--file", refused=_EVENT_FILE),
    ),
    "events follow": (
        Opt("--job-id", to="session_id"),
        Opt("--event-type", to="event_type"),
        Opt("--file", refused=_EVENT_FILE),
    ),
    "events stats": (
        Opt("--group-by", convert=_group_by),  # prodigy shows both groupings at once
        Opt("--file", refused=_EVENT_FILE),
    ),
    "events export": (Opt("--file", refused=_EVENT_FILE),),
    "init": (Opt("-c", to="commands"),),
    "logs": (
        Opt(
            "--latest",
            flag=True,
            refused=Refusal(
                "the original's `logs` shows Claude's own log files, prodigy's `logs` a "
                "session's progress: `prodigy sessions ls` lists sessions, newest first, and "
                "`prodigy logs ID -vv` shows one with what Claude said (-f to follow it)"
            ),
        ),
        Opt("--tail", to="follow", flag=True),
        Opt(
            "--summary",
            flag=True,
            refused=Refusal(
                "run `prodigy sessions show ID`: each Claude invocation's tools, turns, "
                "tokens and cost"
            ),
        ),
    ),
    "resume": (
        Opt(
            "--from-checkpoint",
            refused=Refusal(
                "prodigy keeps one checkpoint per session, its latest, and resumes from it: "
                "run `prodigy resume ID`, or `prodigy resume ID --from STEP` to run again "
                "from a step on"
            ),
        ),
        _PATH_IGNORED,
    ),
    "resume-job": (
        Opt(
            "--max-retries",
            refused=Refusal(
                "resuming leaves the items that failed in the dead-letter queue: run "
                "`prodigy resume-job JOB_ID`, then `prodigy dlq retry JOB_ID --max-retries N`"
            ),
        ),
        _PATH_IGNORED,
    ),
    "template delete": (Opt("-f --force", to="yes", flag=True),),
    "template register": (Opt("-t", to="tags"), Opt("-a", to="author")),
    "validate": (Opt("--format"), Opt("--suggest", flag=True)),  # the original ignores both
    "worktree clean": (
        Opt("-a --all", to="target", flag=True, sets="all"),
        _NO_CONFIRMATION,  # prodigy removes a worktree whatever files it holds
        *(
            Opt(
                decls,
                flag=flag,
                refused=Refusal(
                    "prodigy's `worktree clean` removes idle worktrees, which hold no "
                    "session's work: run `prodigy worktree ls` to see them, `prodigy worktree "
                    "clean [NAME]` to remove them, `prodigy worktree gc --dry-run` for "
                    "orphaned ones"
                ),
            )
            for decls, flag in (
                ("--merged-only", True),
                ("--mapreduce", True),
                ("--older-than", False),
                ("--dry-run", True),
                ("--job-id", False),
            )
        ),
    ),
    "worktree ls": (
        Opt(
            "-d --detailed",
            flag=True,
            refused=Refusal("run `prodigy worktree ls --json`: every worktree with every field"),
        ),
    ),
}


COMMANDS: dict[str, dict[str, str | Original]] = {
    "": {
        "changelog": Original(
            refused=Refusal(
                "prodigy has no changelog commands: run your changelog tool as a workflow "
                "step (`prodigy exec 'shell: git cliff -o CHANGELOG.md'`)"
            ),
        ),
        "migrate-yaml": Original(
            refused=Refusal(
                "prodigy reads the original's workflows as they are, old syntax or new: run "
                "`prodigy validate WORKFLOW` to check one"
            ),
        ),
        "progress": Original(
            "sessions show",
            (
                Arg("job_id", to="{}"),
                *(
                    Opt(
                        decls,
                        refused=Refusal(
                            "run `prodigy sessions show JOB_ID` (its items, done and failed; "
                            "--json for a file) or `prodigy follow` to watch it live"
                        ),
                    )
                    for decls in ("--export", "--format", "--web")
                ),
            ),
            help="The original's `progress JOB_ID`: `sessions show JOB_ID`.",
        ),
    },
    "checkpoints": {
        "clean": Original(
            "checkpoints delete",
            (
                Opt(
                    "--workflow-id",
                    to="{}",
                    unless_given=Refusal(
                        "prodigy deletes one session's checkpoints at a time: run `prodigy "
                        "checkpoints delete ID` (`prodigy checkpoints ls` lists them), or "
                        "`prodigy clean --older-than AGE` to remove old sessions whole"
                    ),
                ),
                Opt(
                    "--all",
                    flag=True,
                    refused=Refusal(
                        "prodigy deletes one session's checkpoints at a time: run `prodigy "
                        "checkpoints delete ID`, or `prodigy clean --older-than AGE` to "
                        "remove old sessions whole"
                    ),
                ),
                _NO_CONFIRMATION,
                _PATH_IGNORED,
            ),
            help="The original's `checkpoints clean --workflow-id ID`: `checkpoints delete ID`.",
        ),
        "mapreduce": "show",
        "validate": Original(
            refused=Refusal(
                "prodigy checks a checkpoint when it resumes from it: run `prodigy "
                "checkpoints show ID`, which says whether it is resumable"
            ),
        ),
    },
    "config": {
        "trace": Original(
            "config show",
            (
                Arg(
                    "path",
                    required=False,
                    refused=Refusal(
                        "run `prodigy config get KEY --json`: its value and where it comes from"
                    ),
                ),
                Opt("--all", flag=True),  # config show: every value and where it comes from
                Opt(
                    "--overrides",
                    flag=True,
                    refused=Refusal(
                        "run `prodigy config show`: its SOURCE column says which values the "
                        "file or the environment set"
                    ),
                ),
                Opt(
                    "--diagnose",
                    flag=True,
                    refused=Refusal(
                        "run `prodigy config show`, which reports a bad file or value, and "
                        "`prodigy daemon status`"
                    ),
                ),
                Opt("--json", to="--json", flag=True),
            ),
            help="The original's `config trace`: `config show`, every value with its source.",
        ),
    },
    "dlq": {
        "analyze": "stats",
        "clear": "purge",
        "inspect": Original(
            "dlq show",
            (
                Opt(
                    "--job-id",
                    to="{}",
                    unless_given=Refusal(
                        "prodigy needs the item's job: run `prodigy dlq show JOB_ID ITEM_ID` "
                        "(`prodigy dlq ls` lists both)"
                    ),
                ),
                Arg("item_id", to="{}"),
            ),
            help="The original's `dlq inspect ITEM_ID --job-id JOB_ID`: `dlq show JOB_ID ITEM_ID`.",
        ),
    },
    "events": {
        "clean": Original(
            refused=Refusal(
                "prodigy removes events together with their session: run `prodigy clean "
                "--older-than AGE` (--dry-run first shows what would go)"
            ),
        ),
        "search": Original(
            refused=Refusal(
                "prodigy has no event search: run `prodigy events ls --json --limit 1000000` "
                "and filter it (grep, jq)"
            ),
        ),
    },
    "sessions": {
        "clean": Original(
            "clean",
            (
                Opt(
                    "--all",
                    flag=True,
                    refused=Refusal(
                        "prodigy removes sessions by age only, never one that can be resumed "
                        "or merged: run `prodigy clean --older-than AGE` (--dry-run first)"
                    ),
                ),
                _NO_CONFIRMATION,
            ),
            help="The original's `sessions clean`: `clean`, by the retention policy.",
        ),
    },
    "worktree": {
        "clean-orphaned": Original(
            "worktree gc",
            (
                Arg(
                    "job_id",
                    required=False,
                    refused=Refusal(
                        "prodigy reclaims the orphaned worktrees of every job at once, and by "
                        "itself: run `prodigy worktree gc` (--dry-run: what it would do)"
                    ),
                ),
                _DRY_RUN,
                _NO_CONFIRMATION,
            ),
            help="The original's `worktree clean-orphaned`: `worktree gc`.",
        ),
        "merge": Original(
            "merge",
            (
                Arg(
                    "name",
                    to="{}",
                    required=False,
                    unless_given=Refusal(
                        "run `prodigy merge ID` for each session awaiting merge (`prodigy "
                        "sessions ls --status awaiting_merge` lists them)"
                    ),
                ),
                Opt(
                    "--all",
                    flag=True,
                    refused=Refusal(
                        "run `prodigy merge ID` for each session awaiting merge (`prodigy "
                        "sessions ls --status awaiting_merge` lists them)"
                    ),
                ),
            ),
            help="The original's `worktree merge NAME`: `merge NAME`.",
        ),
    },
}

#: Names any group takes for its `ls` and `rm`, as the original's groups do (`list`).
SYNONYMS = {"list": "ls", "remove": "rm"}


VARIANTS: dict[str, Original] = {
    "clean": Original(
        "clean",
        (
            Arg("what", convert=_clean_what),
            Opt("--older-than", to="--older-than {}"),
            Opt(
                "--all-repos",
                flag=True,
                unless_given=Refusal(
                    "the original's `clean all` cleans one repository's storage, prodigy's "
                    "`clean` every repository's sessions at once: run `prodigy clean "
                    "--older-than AGE` (--dry-run first shows what would go)"
                ),
            ),
            _DRY_RUN,
            _NO_CONFIRMATION,
        ),
        help="The original's `clean all --all-repos`: `clean`.",
    ),
    "config show": Original(
        "config get",
        (Arg("path", to="{}"), Opt("--json", to="--json", flag=True)),
        help="The original's `config show KEY`: `config get KEY`.",
    ),
    # Its operand is the file to write (prodigy's is the job): a line whose first word names
    # a .json or .csv file is the original's, as no job id ends so.
    "dlq export": Original(
        "dlq export",
        (
            Opt("--job-id", to="{}"),
            Arg("output", to="-o {}"),
            Opt("--format", to="--format {}"),
        ),
        help="The original's `dlq export FILE [--job-id JOB_ID]`: `dlq export JOB_ID -o FILE`.",
        prefers=lambda args: bool(args) and args[0].endswith((".json", ".csv")),
    ),
    "run": Original(
        "resume",
        (
            Arg("workflow"),  # the session knows its workflow
            Opt("--resume", to="{}", metavar="SESSION_ID"),
            _PATH_IGNORED,
            *(
                Opt(decls, flag=flag, refused=_RESUMED_AS_STARTED)
                for decls, flag in (
                    ("-n --max-iterations", False),
                    ("--map", False),
                    ("--args", False),
                    ("--fail-fast", True),
                    ("--dry-run", True),
                    ("--param", False),
                    ("--param-file", False),
                )
            ),
        ),
        help="The original's `run WORKFLOW --resume SESSION_ID`: `resume SESSION_ID`.",
    ),
}


# -- the original's global -v ------------------------------------------------------------


def verbose_commands(ctx: click.Context) -> str:
    """Prodigy's commands that take -v, as the refusals of the original's global one name
    them: read from the command tree (every command module is imported: an error's
    cost), so the list cannot go stale as commands gain or lose it."""
    root = ctx.find_root()
    names: list[str] = []

    def walk(group: click.Group, parent: click.Context, prefix: str) -> None:
        for name in group.list_commands(parent):
            command = group.get_command(parent, name)
            if command is None or command.hidden:
                continue
            if isinstance(command, click.Group):
                walk(
                    command,
                    click.Context(command, parent=parent, info_name=name),
                    prefix + name + " ",
                )
            elif any(
                isinstance(p, click.Option) and "-v" in p.opts and not p.hidden
                for p in command.params
            ):
                names.append(prefix + name)

    walk(cast(click.Group, root.command), root, "")
    return f"{', '.join(names[:-1])} and {names[-1]} take it" if len(names) > 1 else "".join(names)


def verbose_first(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """The root's hidden `-v` (main.py): the original's was global, so `prodigy -v run
    wf.yml` was one of its command lines; prodigy's goes after the command."""
    if value and not ctx.resilient_parsing:
        raise Refused(
            f"{ctx.command_path} -v COMMAND",
            f"prodigy's -v goes after the command ({verbose_commands(ctx)}): "
            "run `prodigy run WORKFLOW -v`",
        )


_NO_VERBOSE = Opt(
    "-v --verbose",
    flag=True,
    refused=Refusal("only commands that show a job's output have -v ({verbose}): run `{command}`"),
)


# -- building them into click ----------------------------------------------------------------

#: What the hidden options of a command being parsed give prodigy's parameters, by its
#: context (weakly: a context that failed to parse leaves nothing behind).
_given: weakref.WeakKeyDictionary[click.Context, dict[str, Any]] = weakref.WeakKeyDictionary()


def options(path: str, command: click.Command) -> list[click.Parameter]:
    """The hidden options of prodigy's command or group `path`: those OPTIONS lists, and
    the refusal of the original's `-v` when it has no `-v` of its own, unless words that
    look like options are its operands (`config set claude.extra_args --verbose`)."""
    entries = [*OPTIONS.get(path, ())]
    operands = command.context_settings.get("ignore_unknown_options", False)
    if not operands and not any("-v" in getattr(p, "opts", ()) for p in command.params):
        entries.append(_NO_VERBOSE)
    return _params(entries, hidden=True)


def given(ctx: click.Context) -> dict[str, Any]:
    """What the hidden options of the command `ctx` has just parsed give prodigy's
    parameters: commands/__init__.py's Command puts them in ctx.params."""
    return _given.pop(ctx, {})


def command(path: str, group: click.Group, ctx: click.Context, name: str) -> click.Command | None:
    """The command the original calls `name` in prodigy's group `path` ("" for the root),
    which has no command of that name: one of prodigy's, an Original, or None."""
    entry = COMMANDS.get(path, {}).get(name) or (SYNONYMS.get(name) if path else None)
    if isinstance(entry, str):
        return click.Group.get_command(group, ctx, entry)
    return None if entry is None else OriginalCommand(name, entry)


def variant(path: str) -> Original | None:
    """The original's form of prodigy's command `path`, if it has one (VARIANTS)."""
    return VARIANTS.get(path)


def parse(
    own: Callable[[list[str]], click.Context],
    spec: Original,
    args: list[str],
    info_name: str,
    parent: click.Context | None,
) -> click.Context:
    """The context of prodigy's command (`own` makes it) or of the original's form of it
    (`spec`), whichever the line `args` is. prodigy's is tried first, unless the original's
    form `prefers` the line; the original's then only when prodigy's stumbles on its
    operands or on an option only the original's form has (`run --resume`): a mistake in
    a line of prodigy's (`config show --bogus`) is reported as ever. The original's form
    is made only then: `run` pays nothing for it."""
    original = functools.partial(OriginalCommand, info_name, spec)

    def theirs(words: list[str]) -> click.Context:
        return original().make_context(info_name, words, parent)

    if spec.prefers is not None and spec.prefers(args):
        try:
            return theirs(list(args))  # a copy: click's parser consumes the list
        except Refused:
            raise
        except click.UsageError:
            return own(list(args))
    try:
        return own(list(args))
    except Refused:
        raise
    except click.NoSuchOption as mine:
        if mine.option_name not in original().spellings():
            raise
        return theirs(list(args))  # the original's form: its error if any
    except click.UsageError as mine:  # an operand too many or missing, a value
        try:
            return theirs(list(args))
        except Refused:
            raise
        except click.UsageError:
            raise mine from None


class OriginalCommand(click.Command):
    """A command with the original's operands (Original). Parsing it makes the context of
    prodigy's command for the line those operands stand for, so prodigy's command is the
    one that runs; or it refuses the line."""

    def __init__(self, name: str, spec: Original) -> None:
        super().__init__(
            name,
            help=spec.help or None,
            hidden=True,
            params=_params(spec.params, hidden=False),
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            add_help_option=spec.refused is None,  # a refused command has no help
        )
        self.spec = spec

    def spellings(self) -> set[str]:
        return {opt for param in self.params for opt in getattr(param, "opts", ())}

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """The context of prodigy's command, made from the words the original's operands
        stand for and those this one does not know; or the refusal, once they parsed."""
        ctx = super().make_context(info_name, args, parent, **extra)
        if self.spec.refused is not None:
            raise self.spec.refused.error(ctx)
        words = [word for param in self.params for word in ctx.params.get(param.name) or ()]
        return _make(ctx, self.spec.runs, [*words, *ctx.args])


def _make(ctx: click.Context, path: str, args: list[str]) -> click.Context:
    """The context prodigy's command `path` makes from `args`, under `ctx`'s root."""
    parent = ctx.find_root()
    *groups, name = path.split()
    for group in groups:
        parent = click.Context(_command(parent, group), info_name=group, parent=parent)
    # click's own make_context: not prodigy's Command's, which would try this form again
    return click.Command.make_context(_command(parent, name), name, args, parent=parent)


def _command(ctx: click.Context, name: str) -> click.Command:
    group = ctx.command
    assert isinstance(group, click.Group), ctx.command_path
    found = group.get_command(ctx, name)
    assert found is not None, f"{ctx.command_path} {name}"
    return found


def _params(entries: Iterable[Opt | Arg], *, hidden: bool) -> list[click.Parameter]:
    """The click parameters of the original's spellings. Those of prodigy's commands
    (hidden) give their values through `given`; an Original's hold the words of prodigy's
    command line they stand for."""
    made: list[click.Parameter] = []
    for number, entry in enumerate(entries):
        name = f"original_{number}"
        settings: dict[str, Any] = {"callback": _callback(entry)}
        if isinstance(entry, Arg):
            made.append(
                click.Argument(
                    [name], required=entry.required, metavar=entry.name.upper(), **settings
                )
            )
        else:
            made.append(
                click.Option(
                    [*entry.decls.split(), name],
                    is_flag=entry.flag,
                    metavar=entry.metavar,
                    type=entry.type,
                    hidden=hidden,
                    expose_value=not hidden,
                    **settings,
                )
            )
    return made


def _callback(entry: Opt | Arg) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def spelled(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        """Refuse the spelling, or pass on what it gives: an Original's parameter holds
        the words of prodigy's command line it stands for; a hidden option of prodigy's
        command sets the value of prodigy's parameter (`given`)."""
        if ctx.resilient_parsing:
            return None
        if isinstance(entry, Opt):
            spelling = "/".join(param.opts)
        else:
            spelling = entry.name.upper() if value is None else str(value)
        if ctx.get_parameter_source(str(param.name)) is not ParameterSource.COMMANDLINE:
            if entry.unless_given is not None:
                raise entry.unless_given.error(ctx, spelling, missing=True)
            return None
        if entry.refused is not None:
            raise entry.refused.error(ctx, spelling)
        if entry.convert is not None:
            converted = entry.convert(value)
            if isinstance(converted, Refusal):
                raise converted.error(ctx, spelling)
            value = value if converted is None else converted
        elif isinstance(entry, Opt) and entry.sets is not None:
            value = entry.sets
        if entry.to is None:
            return None
        if isinstance(ctx.command, OriginalCommand):
            return [word.format(value) for word in entry.to.split()]
        _given.setdefault(ctx, {})[entry.to] = value
        return None

    return spelled
