"""Variables a workflow uses and never defines: `${isue}` for `${issue}` (issue 14).

Without `--strict` a reference that does not resolve is left as written, and a shell then
expands it to nothing (a typo runs silently with an empty value), or, for a dotted name
such as `${item.fiel}`, fails the step with `Bad substitution`. This finds, when the
workflow is loaded, the `${name}` references that can be known to be undefined, so `run`,
`validate` and `run --dry-run` warn with file:line:column and a did-you-mean.

Known: what the workflow defines (env, secrets, profiles' env, parameters and defaults,
captures, setup's capture_outputs, a step's env, sub-workflow outputs), the built-in names
(engine/admission.py, engine/runs.py) and the namespaces the engine fills at run time
(`${shell.*}`, `${item.*}`, ... every `name.` of BUILTIN_NAMESPACES), but of the
namespaces whose names are a fixed set (FIXED_NAMESPACES: `${map.*}`, `${trigger.*}`...)
only those names: `${map.sucessful}` passed every check and broke the reduce phase at
the end of a run, `${trigger.commit}` reached a file as written. When unsure, no
warning: a reference with a default (`${x:-y}`), one that is not a plain path (shell
syntax such as `${#a[@]}`), one in a `when:` or an env `condition:` (a missing variable
reads as false there, by design), a name the same text assigns (a shell loop's
`for f in ...; do ${f}`), and a name the job environment may hold (the environment is the
caller's: `unresolved` filters those with the one it knows; with `env_files:` any
upper-case name may come from them). Only braced references are checked: `$NAME` is the
shell's far more often than ours.

With strict variables (`strict_variables: true`, `--strict`) the run stops at the first
step using a reference that does not resolve, after its session and worktree were made:
then these are refused when the workflow is loaded instead (`refuse_unresolved`).

The text is a client's, so the pass is linear in it (a closing brace is found once for all
the `${` before it, a string's shell assignments are collected once, a reference's line is
looked up in an index) and it runs under the load's deadline (limits.LOAD_SECONDS).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path

from prodigyd import errorcodes
from prodigyd.closest import closest
from prodigyd.errors import Location, WorkflowError
from prodigyd.watch.variables import NAMES as TRIGGER_NAMES
from prodigyd.workflow.interpolate import parse_path
from prodigyd.workflow.limits import Deadline
from prodigyd.workflow.load.diagnostics import raise_together
from prodigyd.workflow.load.nodes import Map, Mark, Seq
from prodigyd.workflow.model import Workflow, every_step

#: Names the engine sets (admission.py `_builtin_variables`, runs.py, agent.py, foreach.py,
#: step.py); tests/unit/test_undefined_variables.py runs that code and holds them to this.
BUILTIN_NAMES = frozenset(
    {
        "ARG",
        "ARGUMENT",
        "FILE",
        "FILE_PATH",
        "INDEX",
        "TOTAL",
        "ITERATION",
        "PROJECT_ROOT",
        "WORKTREE",
        "SESSION_ID",
        "CAPTURED_OUTPUT",
        "item",
        "item_json",
        "item_id",
        "item_index",
        "item_total",
        "index",  # a foreach item's (engine/commands/foreach.py)
        "total",
        "uuid",
    }
)

#: `${<namespace>.anything}` (and `${<namespace>}`, `${<namespace>:...}`): filled at run time.
BUILTIN_NAMESPACES = frozenset(
    {
        "shell",
        "claude",
        "test",
        "foreach",
        "write_file",
        "handler",
        "analyze",
        "error",
        "validation",
        "step",
        "workflow",
        "map",
        "item",
        "merge",
        "last",
        "goal",
        "worker",
        "trigger",
        "env",
        "file",
        "cmd",
        "json",
        "date",
        "git",  # the original's documented `${git.staged_files}`...
    }
)

#: What a step's commits are told as, `${step.*}` and `${workflow.*}` (engine/gitvars.py
#: sets them).
GIT_NAMES = (
    "files_added",
    "files_modified",
    "files_deleted",
    "files_changed",
    "commits",
    "commit_count",
    "insertions",
    "deletions",
)
#: Namespaces of BUILTIN_NAMESPACES whose names are all known: any other name in them is a
#: typo (engine/mapreduce/map_phase.py, admission.py, runs.py, phase.py, gitvars.py,
#: git/merge.py, watch/variables.py set them; tests/unit/test_undefined_variables.py runs
#: that code and holds them to this).
FIXED_NAMESPACES: dict[str, tuple[str, ...]] = {
    "map": ("results", "results_json", "successful", "failed", "total", "success_rate"),
    "worker": ("id",),
    "workflow": ("name", "id", "iteration", *GIT_NAMES),
    "step": ("name", "index", *GIT_NAMES),
    "merge": (
        "worktree",
        "source_branch",
        "target_branch",
        "session_id",
        "commits",
        "commit_count",
        "commit_ids",
        "modified_files",
        "file_count",
        "file_list",
    ),
    "trigger": tuple(TRIGGER_NAMES),
}

#: Offered by the did-you-mean along with the workflow's own names.
_SUGGESTED = (
    "shell.output",
    "shell.exit_code",
    "claude.output",
    "item_id",
    "item_json",
    "validation.gaps",
    "error.message",
    "last.output",
    *(f"{space}.{name}" for space, names in FIXED_NAMESPACES.items() for name in names),
)
#: What users guess the event's new commit is called, which no spelling is close to.
_TRIGGER_GUESSES = {f"trigger.{guess}": "trigger.after" for guess in ("commit", "sha", "head")}

#: Expressions in which a missing variable reads as false by design: not checked.
_CONDITIONS = frozenset({"when", "condition"})

_ENV_LIKE = re.compile(r"[A-Z][A-Z0-9_]*")
_ARG_N = re.compile(r"ARG_\d+|\d+")
_BRACED = re.compile(r"\$\{")
#: A reference as it may stand on one line of the file (no brace nor newline inside).
_ON_A_LINE = re.compile(r"\$\{[^{}\n]*\}")
#: What a shell in the text assigns: `name=`, `for name in`, `read ... name`, `local name`.
_ASSIGNED = re.compile(r"(?:^|(?<=[\s;&|(]))([^\s;&|(=]+)=")
_LOOP = re.compile(r"\bfor\s+(\S+)\s+in\b")
_READ = re.compile(r"\bread\b")
_DECLARED = re.compile(r"\b(?:local|declare|export|typeset|readonly)\s+(?:-\w+\s+)*(\w+)\b")
_READ_ENDS = re.compile(r"[;\n|&]")


#: A name a shell's `${name}` expands (anything else there is a syntax error to it).
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Undefined:
    """One reference to a name nothing defines."""

    reference: str  # as written: `${isue}`
    name: str  # the variable: `isue`
    where: Location  # file:line:column
    suggestion: str | None

    def warning(self) -> str:
        shell = (  # `${item.x}` is no shell variable's name: sh stops the step at it
            "makes it empty"
            if _SHELL_NAME.fullmatch(self.name)
            else "fails on it (`Bad substitution`)"
        )
        return (
            f"{self.where}: {self._unknown()}: it is left as written, and a shell "
            f"{shell}{self._did_you_mean()}"
        )

    def error(self) -> WorkflowError:
        """The reference as a problem: variables are strict, so the run would stop at it."""
        return WorkflowError(
            self._unknown() + self._did_you_mean(),
            location=self.where,
            hint=_STRICT_HINT,
            code=errorcodes.UNDEFINED_VARIABLE,
        )

    def _unknown(self) -> str:
        space = _fixed_namespace(self.name)  # only a name not among its names comes here
        what = "defined by the workflow (env, parameters, captures) nor built in"
        if space is not None:
            listed = ", ".join(f"${{{space}.{name}}}" for name in FIXED_NAMESPACES[space])
            what = f"a {space} variable (those are {listed})"
        return f"{self.reference} is not {what}"

    def _did_you_mean(self) -> str:
        return f"; did you mean ${{{self.suggestion}}}?" if self.suggestion else ""


_STRICT_HINT = (
    "variables are strict (strict_variables: true or --strict): the run would stop at the "
    "step using it; define it before that step (env:, parameters:, a capture) or give it a "
    "default, ${name:-value}"
)


def unresolved(undefined: list[Undefined], environment: Container[str]) -> list[Undefined]:
    """The references still undefined for a job with `environment` (the job's): a name it
    holds is the shell's, which expands it (strict variables leave such names to it too)."""
    return [entry for entry in undefined if entry.name not in environment]


def warnings_for(undefined: list[Undefined], environment: Container[str]) -> list[str]:
    return [entry.warning() for entry in unresolved(undefined, environment)]


def refuse_unresolved(undefined: list[Undefined], environment: Container[str]) -> None:
    """A WorkflowError naming every reference still undefined for a job with `environment`
    (the first is the message, each is one of its problems), if there is one."""
    raise_together([entry.error() for entry in unresolved(undefined, environment)])


def find_undefined(
    doc: object, workflow: Workflow, source: str, text: str, deadline: Deadline | None = None
) -> list[Undefined]:
    """Every reference in `doc` (the positioned document `workflow` was read from) that
    nothing defines; `text` is the source's own text (columns are found in it). Past
    `deadline` (the load's), a WorkflowError like the reader's."""
    known = defined_names(workflow)
    candidates = sorted({*known, *_SUGGESTED})
    suggestions: dict[str, str | None] = {}
    lines = _Lines(source, text)
    found: list[Undefined] = []
    for string, mark, file in _strings(doc, None, source):
        for reference, name in _unknown(string, known):
            if deadline is not None and deadline.expired():
                line, column = mark or (None, None)
                raise WorkflowError(deadline.problem, location=Location(file, line, column))
            if workflow.env_files and _ENV_LIKE.fullmatch(name):
                continue  # any upper-case name may come from them
            if name not in suggestions:
                suggestions[name] = _suggestion(name, candidates)
            found.append(
                Undefined(
                    reference=reference,
                    name=name,
                    where=lines.where(file, mark, reference),
                    suggestion=suggestions[name],
                )
            )
    return found


def _suggestion(name: str, candidates: list[str]) -> str | None:
    """The name probably meant: in a fixed namespace, one of its names."""
    space = _fixed_namespace(name)
    if space is not None:
        candidates = [f"{space}.{known}" for known in FIXED_NAMESPACES[space]]
    return _TRIGGER_GUESSES.get(name) or closest(name, candidates, cutoff=0.75)


def _fixed_namespace(name: str) -> str | None:
    """The fixed namespace `name` is in (`map` for `map.sucessful`), or None."""
    space, dot, _ = name.partition(".")
    return space if dot and space in FIXED_NAMESPACES else None


def defined_names(workflow: Workflow) -> set[str]:
    """The names the workflow itself defines."""
    names = {*workflow.env, *workflow.secrets, *workflow.parameters, *workflow.defaults}
    for profile in workflow.profiles.values():
        names.update(profile.env)
    if workflow.setup is not None:
        names.update(workflow.setup.capture_outputs)
    steps = (*workflow.phase_steps, *(workflow.merge.steps if workflow.merge else ()))
    for step in every_step(steps):
        names.update(step.env)
        if step.id:  # `${<id>.output}`, `${<id>.<outputs name>}` (engine/step.py)
            names.add(step.id)
        if step.capture:
            names.add(step.capture)
        if isinstance(step.capture_output, str):
            names.add(step.capture_output)
        for sub in step.sub_workflows:  # `${<name>.<output>}`, `${<name>.success}` after it
            names.update(f"{sub.name}.{output}" for output in (*sub.outputs, "success"))
            names.update(sub.parameters)
            names.update(sub.values)
            names.update(sub.inputs)
    return names


def _unknown(text: str, known: set[str]) -> Iterator[tuple[str, str]]:
    """(reference as written, its variable) of each `${...}` in `text` nothing defines."""
    if "${" not in text:
        return
    close = -1
    assigned: set[str] | None = None
    for match in _BRACED.finditer(text):
        start = match.end()
        if close < start:  # the next `}` is the same for every `${` before it: found once
            close = text.find("}", start)
            if close < 0:
                return
        if text.find("{", start, close) >= 0 or text.find(":-", start, close) >= 0:
            continue  # a default (the author expects it may be missing), or nested
        path = text[start:close].split(":", 1)[0]
        steps = parse_path(path)
        if steps is None:
            continue  # shell syntax, never ours
        head = str(steps[0][1])
        if _is_known(path, head, [str(key) for _, key in steps], known):
            continue
        if assigned is None:
            assigned = _assigned_in(text)
        if head in assigned:
            continue
        yield text[match.start() : close + 1], path.split("[", 1)[0]


def _is_known(path: str, head: str, keys: list[str], known: set[str]) -> bool:
    # a name may hold dots (`shell.output`, a capture `x.y`): any prefix of the path counts
    prefixes = {".".join(keys[:count]) for count in range(1, len(keys) + 1)}
    if prefixes & known or path in known:
        return True
    if head in FIXED_NAMESPACES and len(keys) > 1:
        return keys[1] in FIXED_NAMESPACES[head]
    if head in BUILTIN_NAMES or head in BUILTIN_NAMESPACES or _ARG_N.fullmatch(head):
        return True
    return head.startswith("PRODIGY_")  # the job environment's own (session.py, runs.py...)


def _assigned_in(text: str) -> set[str]:
    """The names a shell in `text` sets itself (an assignment, a loop, `read`, `local`...),
    collected in one pass over it."""
    names = {*_ASSIGNED.findall(text), *_LOOP.findall(text), *_DECLARED.findall(text)}
    for piece in _READ_ENDS.split(text):  # `read` takes the words up to `;`, `|`, `&`, EOL
        read = _READ.search(piece)
        if read is not None:
            names.update(re.findall(r"\w+", piece[read.end() :]))
    return names


def _strings(node: object, mark: Mark | None, file: str) -> Iterator[tuple[str, Mark | None, str]]:
    """(text, mark of its key or list item, file) of every string in the document."""
    if isinstance(node, str):
        yield node, mark, file
    elif isinstance(node, Map):
        for key, value in node.items():
            if key in _CONDITIONS:
                continue
            yield from _strings(value, node.key_marks.get(key, mark), node.source_of(key) or file)
    elif isinstance(node, Seq):
        for index, item in enumerate(node):
            item_mark = node.item_marks[index] if index < len(node.item_marks) else mark
            yield from _strings(item, item_mark, node.source_of(index) or file)


class _Lines:
    """Where a reference is: the first line at or after its key's that holds it."""

    def __init__(self, source: str, text: str) -> None:
        self._index: dict[str, dict[str, list[tuple[int, int]]] | None] = {
            source: _index(text.splitlines())
        }

    def where(self, file: str, mark: Mark | None, reference: str) -> Location:
        index = self._lines(file)
        first = mark[0] if mark else 1
        places = (index or {}).get(reference, [])
        at = bisect.bisect_left(places, (first, 0))
        if at < len(places):
            number, column = places[at]
            return Location(file, number, column + 1)
        return Location(file, *mark) if mark else Location(file)

    def _lines(self, file: str) -> dict[str, list[tuple[int, int]]] | None:
        if file not in self._index:  # an included file: read once
            try:
                lines = Path(file).read_text(errors="replace").splitlines()
            except OSError:
                self._index[file] = None
            else:
                self._index[file] = _index(lines)
        return self._index[file]


def _index(lines: list[str]) -> dict[str, list[tuple[int, int]]]:
    """Each reference on the lines: (line, 0-based column of its first use there), in order."""
    index: dict[str, list[tuple[int, int]]] = {}
    for number, line in enumerate(lines, start=1):
        if "${" not in line:
            continue
        for match in _ON_A_LINE.finditer(line):
            places = index.setdefault(match.group(), [])
            if not places or places[-1][0] != number:
                places.append((number, match.start()))
    return index
