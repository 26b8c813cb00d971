"""Every error's stable code: the one registry docs/errors.md, `prodigyctl explain` and the
error messages take them from.

A code is `E<area><nn>`: E0 general and command line, E1 the workflow file, E2 the daemon and
its connection, E3 git and merges, E4 steps and what they need (claude), E5 the store,
config and disk, E6 sessions and jobs. `E<area>00` is an area's general code, carried by
every error of that area no raise site has a more specific one for. A code is never reused
for another meaning and never renumbered: scripts match on it across versions (the exit
code says only how a command ended; the code says which error it was).

Errors get their code from their class (`ProdigyError.code`) or from `code=` where they are
raised; the daemon sends it in the JSON-RPC error's `data.code`, the client prints it as
`error[E1001]: ...` and under `--json` as `"code"`. Stdlib only: the client imports it for
every command (through prodigyd.protocol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


class ErrorCode(NamedTuple):
    code: str
    title: str  # what went wrong, in a few words
    help: str  # what it means and what to do about it (Markdown, one paragraph)


#: code → its entry, in the order docs/errors.md lists them.
REGISTRY: dict[str, ErrorCode] = {}


def _code(code: str, title: str, help: str) -> str:
    if code in REGISTRY:  # a programming error: any import of this module shows it
        raise ValueError(f"error code {code} is registered twice")
    REGISTRY[code] = ErrorCode(code, title, " ".join(help.split()))
    return code


# E0: general and command line
ERROR = _code(
    "E0001",
    "error",
    """An expected failure with no more specific code. The message says what went wrong;
    the hint, if any, what to do.""",
)
USAGE = _code(
    "E0002",
    "command-line usage error",
    """An option or argument of `prodigyctl` is missing, unknown or malformed (the message
    names it). `--help` after the command shows what it takes. Exit code 2.""",
)
INVALID_PARAMS = _code(
    "E0003",
    "invalid request parameter",
    """The daemon refused a request's parameters (JSON-RPC -32602): `message` names the first
    bad field, `data.errors` lists all of them. From `prodigyctl` this usually means an option
    value the daemon cannot take, or a `prodigyctl` newer than the running daemon: restart it
    with `prodigyctl daemon stop` (running jobs resume on the next start).""",
)

# E1: the workflow file
WORKFLOW = _code(
    "E1000",
    "invalid workflow file",
    """The workflow file cannot be loaded. The message points at the file, line and column;
    the details show the line with a caret and every other problem found. Fix the file and
    check it with `prodigyctl validate FILE`.""",
)
YAML_SYNTAX = _code(
    "E1001",
    "YAML or JSON syntax error",
    """The file is not valid YAML (or JSON, for a `.json` file): a bad indentation, an
    unclosed quote or bracket, a tab where YAML wants spaces, a duplicate key. The caret marks
    where the parser gave up; the mistake is there or just before it.""",
)
UNKNOWN_FIELD = _code(
    "E1002",
    "unknown field",
    """A key the workflow format does not know: usually a typo, and the message suggests the
    nearest known key ("did you mean"), or for a key of another place says where it belongs
    (`'max_attempts' belongs under on_failure: or under retry:, not in step 1`). An unknown
    step kind, a trigger option and a misspelt `on_failure:` key (`fail_workflow`,
    `max_attempts`...) are always errors; other unknown keys are warnings unless `--strict`.
    docs/workflows.md lists every field.""",
)
INVALID_VALUE = _code(
    "E1003",
    "invalid field value",
    """A field has the wrong type or an out-of-range value (a string where a number is
    expected, a required field missing, two fields that exclude each other). The message names
    the field and what it expected.""",
)
WORKFLOW_NOT_FOUND = _code(
    "E1004",
    "workflow file not found or unreadable",
    """The workflow file (or a file it includes or imports) does not exist, is not a regular
    file, or cannot be read or decoded as UTF-8. Check the path: relative paths are taken from
    the directory you run `prodigyctl` in.""",
)
UNDEFINED_VARIABLE = _code(
    "E1005",
    "undefined variable",
    """A `${name}` (or `$name`) names no variable known at that step. With `--strict` (or
    the workflow's `strict_variables: true`) this is an error: when the workflow is loaded
    (`run`, `validate`, `run --dry-run`) for each braced `${name}` nothing defines, nor the
    environment you run it from, nor a `--param`, and when the step runs for any other.
    Without it the reference is left as written, and a shell then expands it to nothing
    (a dotted `${item.fiel}` fails the step: `Bad substitution`); loading the workflow
    warns, with file:line:column and a did-you-mean, of each braced `${name}` nothing
    defines (a bare `$name` is left to the shell, unchecked), a name of a fixed set such
    as `${map.sucessful}` included. Check the spelling, and that the step defining it
    (`capture:`, `env:`, parameters) comes before its use. docs/workflows.md lists the
    built-in variables.""",
)
EXPRESSION = _code(
    "E1006",
    "invalid expression",
    """A `when:`, `filter:`, `sort_by:` or other expression cannot be parsed or evaluated;
    the details show it with a caret at the problem. docs/workflows.md describes the
    expression language.""",
)
JSONPATH = _code(
    "E1007",
    "invalid JSONPath",
    """A `json_path:` (a MapReduce phase's items, a capture) is not a JSONPath prodigy
    understands; the details show it with a caret. Paths look like `$.items[*]`.""",
)
WORKFLOW_TOO_LARGE = _code(
    "E1008",
    "workflow file too large or too deep",
    """The file exceeds a limit that protects the daemon (its size, nesting depth, number of
    aliases, or the time to read it). Split it with `imports:`/`extends:`, or simplify it.""",
)
WORKFLOW_PARAM = _code(
    "E1009",
    "invalid workflow parameter",
    """A `--param NAME=VALUE` or `--param-file` entry does not fit the workflow's
    `parameters:` (an unknown name, a wrong type, a required one missing, a value outside its
    choices). `prodigyctl run FILE --dry-run` shows what the workflow takes.""",
)

# E2: the daemon and the connection to it
DAEMON_UNREACHABLE = _code(
    "E2001",
    "prodigyd is not reachable",
    """No daemon answers on the socket and none could be started for this command (or the
    socket path is unusable, e.g. too long). `prodigyctl daemon start` starts one;
    `prodigyctl status` shows where the client looks ($PRODIGY_HOME). Exit code 5, or 2
    for an unusable socket path (for you to fix: a shorter $PRODIGY_HOME).""",
)
DAEMON_START_FAILED = _code(
    "E2002",
    "prodigyd failed to start",
    """The client started prodigyd but it did not come up; the message names its log
    (`prodigyd.log` under $PRODIGY_HOME/logs/) and its output file. The usual causes: a broken
    config file (`prodigyctl config path`), a full disk, a $PRODIGY_HOME it cannot write.
    Exit code 2 when prodigyd refused its config or its socket path (for you to fix), else
    5.""",
)
CONNECTION_LOST = _code(
    "E2003",
    "lost the connection to prodigyd",
    """The daemon closed the connection mid-request: it was stopped or crashed. Running jobs
    continue (or resume when it starts again): `prodigyctl ps` lists them and `prodigyctl
    logs -f ID` follows one. If it crashed, its log under $PRODIGY_HOME/logs/ says why.
    Exit code 5.""",
)
SHUTTING_DOWN = _code(
    "E2004",
    "prodigyd is shutting down",
    """The daemon is stopping and takes no new work. Run the command again once it has
    stopped: the client starts a new one.""",
)
PROTOCOL = _code(
    "E2005",
    "malformed request",
    """A request the daemon cannot read as JSON-RPC 2.0: not JSON, not a request object, an
    unknown method (JSON-RPC -32700, -32600, -32601). From `prodigyctl`, this means the client
    and daemon versions differ: restart the daemon with `prodigyctl daemon stop`. For your own
    client, docs/protocol.md describes the wire format.""",
)
INTERNAL = _code(
    "E2006",
    "internal error in prodigyd",
    """A bug in prodigyd (JSON-RPC -32603). The message holds a reference to look up in
    prodigyd.log (under $PRODIGY_HOME/logs/), where the traceback is: please report it with
    that log entry.""",
)
CLIENT_CRASH = _code(
    "E2007",
    "prodigyctl crashed",
    """A bug in prodigyctl. The message names the crash log written under
    $PRODIGY_HOME/logs/, or the temp folder when that one cannot take it (the traceback;
    command arguments are left out): please report it with that file. When no log can be
    written, the message holds the traceback. Exit code 70.""",
)

# E3: git, worktrees and merges
GIT = _code(
    "E3000",
    "git error",
    """A git command failed or the repository is in a state prodigy cannot work with; the
    message quotes git. Run the git command yourself to see more.""",
)
NOT_A_REPO = _code(
    "E3001",
    "not a git repository",
    """prodigy runs workflows in a worktree of a git repository: run the command inside one,
    or pass `-p/--path REPO`.""",
)
DETACHED_HEAD = _code(
    "E3002",
    "no branch checked out",
    """The repository's HEAD is detached, so there is no branch to merge the result back
    into (`git switch BRANCH` first); or its branch has no commit yet to start a session
    from (make a first commit).""",
)
MERGE_REFUSED = _code(
    "E3003",
    "merge refused",
    """The session's branch was not merged into yours; nothing in your checkout was changed,
    and the session waits as awaiting_merge (its worktree is kept). The message says why and
    the hint what to do; `prodigyctl merge ID` tries again.""",
)
MERGE_DIRTY = _code(
    "E3004",
    "merge refused: your checkout has changes the merge would touch",
    """Your checkout has uncommitted (or staged) changes to files the session changed, or an
    unfinished git operation (a merge, a rebase). Your files are untouched. Commit or stash
    them (or finish the operation), then `prodigyctl merge ID`.""",
)
MERGE_CONFLICT = _code(
    "E3005",
    "merge conflict",
    """The session's branch conflicts with your branch in the files listed; nothing was
    merged. Merge your branch into the session branch in its worktree, resolve the conflicts
    there and commit, then `prodigyctl merge ID`; or merge the session branch yourself.""",
)
MERGE_WORKFLOW_FAILED = _code(
    "E3006",
    "merge workflow failed",
    """The workflow's own `merge:` steps failed or timed out, so the merge did not happen.
    `prodigyctl logs ID` shows their output; fix the cause and `prodigyctl merge ID`.""",
)

# E4: steps and what they need
STEP = _code(
    "E4000",
    "step error",
    """A step could not be run as written (an unsupported step kind, a bad `working_dir`,
    a path outside the worktree); the message names the step.""",
)
CLAUDE_NOT_FOUND = _code(
    "E4001",
    "claude CLI not found",
    """The workflow has `claude:` steps but no usable `claude` executable was found: at
    $PRODIGY_CLAUDE_BIN, at `claude.binary` in the config, or on the PATH the job was
    submitted with. Install Claude Code (`npm install -g @anthropic-ai/claude-code`) or
    set its path: `prodigyctl config set claude.binary /path/to/claude`. Exit code 2.""",
)
PATH_ESCAPES = _code(
    "E4002",
    "path outside the worktree",
    """A step's `path`, `output_file` or `working_dir` leads outside the session's worktree
    or into a `.git` folder. Steps only write inside their worktree: use a relative path
    within the repository.""",
)
CAPTURE = _code(
    "E4003",
    "output cannot be captured",
    """A step's `capture:` could not turn its output into its `capture_format` (`json`,
    `number`; or the format is unknown). `prodigyctl logs ID` shows what the command
    printed.""",
)
SCORE = _code(
    "E4004",
    "validator score unreadable",
    """A `goal_seek:` or `validate:` command's output has no score prodigy can read. The
    validator must print one: `score: N`, `N%`, `N/100`, `N out of 100`, or a JSON object
    with a numeric `score`; the details show what it printed.""",
)
DYNAMIC_ENV = _code(
    "E4005",
    "dynamic env value failed",
    """The command of an `env:` value given as `{command: ...}` failed or timed out, so the
    variable has no value. Run the command yourself in the repository to see why.""",
)
BUDGET_EXCEEDED = _code(
    "E4006",
    "budget exceeded",
    """The workflow (or step) spent its `budget:` (tokens, cost or time) and was stopped.
    The session's error says which budget and how to resume with a larger one
    (`prodigyctl resume ID --budget-usd N`, `--budget-tokens N`, `--budget-time T`).""",
)
EXECUTOR = _code(
    "E4007",
    "executor not usable",
    """The job's map agents cannot run where its executor says (`[executor]` in config.toml,
    or `--executor`/`--executor-address`): a `dask` executor without a scheduler address or
    with one that is not `[tcp://]HOST:PORT`, or Dask distributed not installed
    (`pip install 'prodigy[dask]'`). Fix the setting or the option and run again
    (docs/dask.md).""",
)
DASK_UNREACHABLE = _code(
    "E4008",
    "Dask scheduler unreachable or without workers",
    """The daemon could not connect to the Dask scheduler at the executor's address, or the
    cluster had no worker within the wait. Check that `dask scheduler` runs at that address
    and that workers joined it (`dask worker ADDRESS`); the job is resumable
    (`prodigyctl resume ID`, with `--executor-address` to point it elsewhere).""",
)
DASK_WORKER_LACKS = _code(
    "E4009",
    "a Dask worker cannot run the agents",
    """A worker of the cluster lacks what the map agents need: git, the `claude` CLI (when
    the agent template has Claude steps) or the same prodigy version. The message names each
    worker and what it lacks; docs/dask.md says what a worker needs and has a worker image
    recipe.""",
)

# E5: the store, the config and the disk
STORE = _code(
    "E5000",
    "store error",
    """A file of prodigy's store under $PRODIGY_HOME (a session record, a checkpoint, the
    journal) is missing, locked, unreadable or damaged; the message names it (a damaged
    checkpoint journal: the line) and the hint what to do. prodigyd.log has more.""",
)
NO_SPACE = _code(
    "E5001",
    "no space left",
    """A file prodigy must write does not fit: the disk (or your quota) is full. The message
    names the filesystem and `path` the file. Nothing was changed by the refused request:
    free some space (`prodigyctl clean --older-than 30d` removes old sessions) and run it
    again. Exit code 6.""",
)
CONFIG = _code(
    "E5002",
    "invalid configuration",
    """The config file ($PRODIGY_HOME/config.toml, `prodigyctl config path`) or a `config set`
    value is invalid: bad TOML, a wrong type, an out-of-range value. docs/config.md lists every
    key; `prodigyctl config unset KEY` returns a key to its default.""",
)
CONFIG_UNKNOWN_KEY = _code(
    "E5003",
    "unknown configuration key",
    """A config key prodigy does not know, usually a typo: the message suggests the nearest
    known one. `prodigyctl config show` lists the keys; `prodigyctl config unset KEY` removes
    one from the file.""",
)
HOME_UNUSABLE = _code(
    "E5004",
    "prodigy's home cannot be used",
    """$PRODIGY_HOME (else ~/.prodigy), where prodigy keeps its store, logs and socket, is not
    a folder prodigy can make or write to: a file, a folder under a file, a read-only or
    foreign folder. The message names the path and why. Set PRODIGY_HOME to a folder you can
    write to (it is made when missing). Exit code 2.""",
)

# E6: sessions, jobs and their state
NOT_FOUND = _code(
    "E6000",
    "not found",
    """A session, job, step, worktree, DLQ item or file you named does not exist. Exit code
    3.""",
)
SESSION_NOT_FOUND = _code(
    "E6001",
    "no such session",
    """No session (or job) has this id or id prefix: it may have been removed by retention or
    `prodigyctl clean`. `prodigyctl sessions ls --all` lists them. Exit code 3.""",
)
AMBIGUOUS_ID = _code(
    "E6002",
    "ambiguous id prefix",
    """The id prefix you gave fits several sessions (the message lists some). Give more of
    the id, as with git and docker. Exit code 2.""",
)
CONFLICT = _code(
    "E6003",
    "conflicts with the current state",
    """The request clashes with the current state: a lock is held, something is already
    running, a file prodigyctl would install over is not its own. The message says what:
    wait for it, stop it or move it away first. Exit code 4.""",
)
WRONG_STATE = _code(
    "E6004",
    "session in the wrong state",
    """The session's status does not allow this (resuming a completed session, merging one
    that is not awaiting_merge, cancelling one that has ended). `prodigyctl sessions show ID`
    shows its status. Exit code 4.""",
)
WORKFLOW_CHANGED = _code(
    "E6005",
    "workflow changed since the session started",
    """The workflow file (or a file it includes) was edited after the session started, so its
    checkpoints may not fit the steps any more. Resume with `--force` to run the remaining steps
    of the edited file, or start a new run. Exit code 4.""",
)
NOTHING_TO_RESUME = _code(
    "E6006",
    "nothing to resume",
    """`prodigyctl resume` without an id found no failed or interrupted session in this
    repository. `prodigyctl sessions ls` lists sessions; give an id to resume another one.
    Exit code 3.""",
)


#: The pydantic error types of request params that have a code of their own.
_PARAMS_CODES = {"ambiguous_id": AMBIGUOUS_ID}


def for_params(errors: Sequence[Mapping[str, Any]]) -> str:
    """The code of a request refused for its params (pydantic's errors): its first error's."""
    return (
        _PARAMS_CODES.get(str(errors[0].get("type")), INVALID_PARAMS) if errors else INVALID_PARAMS
    )


def label(code: str | None) -> str:
    """How a human error line starts: `error[E1001]`, as rustc and cargo print theirs."""
    return f"error[{code}]" if code else "error"


#: docs/errors.md is written by hand down to this line, and from REGISTRY after it.
DOCS_MARKER = "<!-- generated from prodigyd/errorcodes.py: python -m prodigyd.errorcodes -->"


def markdown() -> str:
    """The generated part of docs/errors.md: a section per code."""
    return "".join(f"\n### {e.code}: {e.title}\n\n{e.help}\n" for e in REGISTRY.values())


def docs_text(current: str) -> str:
    """docs/errors.md with its generated part made current."""
    head = current.split(DOCS_MARKER, 1)[0]
    return f"{head}{DOCS_MARKER}\n{markdown()}"


if __name__ == "__main__":  # rewrites docs/errors.md (run from the repository's top)
    import sys
    from pathlib import Path  # here: the client imports this module for every command

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/errors.md")
    target.write_text(docs_text(target.read_text(encoding="utf-8")), encoding="utf-8")
