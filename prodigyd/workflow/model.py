"""The workflow language as data: the frozen models the engine runs.

Why a canonical model separate from the YAML: the original accepted many spellings of the same
thing (`on_failure` alone has eight) and normalised them differently in two engines, silently
dropping fields on the way (reference §2.5). Here the loader (`load/`) maps every accepted
spelling onto ONE shape and these models are that shape: each field has one meaning and one
type, and a nested step (a handler, a foreach body, a validation or merge command) is the same
`Step` as a top-level one.

Division of labour: the loader owns structural spellings (which shape, legacy forms, a key
written under another name); validators here only normalise single values (durations, octal
modes, `parallel: true`), so engine code and tests can build models directly with the same
values a user would write. A check of one value is its field's validator, not the model's:
the loader then reports it at that field's line (`map.max_parallel`), not at the section's.
The keys a workflow file may use are these models' fields (the loader derives its lists
from them), so a new field is added here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from prodigyd.durations import parse_duration

CaptureFormat = Literal["string", "json", "lines", "number", "boolean"]
StepKind = Literal[
    "shell", "claude", "write_file", "foreach", "analyze", "goal_seek", "sub_workflow"
]
ParameterType = Literal["string", "number", "boolean", "array", "object", "any"]
ScorerKind = Literal["quality", "tests", "spec"]
Backoff = Literal["fixed", "linear", "exponential", "fibonacci", "custom"]
RecoveryStrategy = Literal["recovery", "fallback", "cleanup", "custom"]

#: Built on first use, not at import: the daemon imports these models (a job record holds a
#: `Budget`) long before it loads its first workflow, and building them all costs its start.
_FROZEN = ConfigDict(frozen=True, extra="forbid", defer_build=True)

# ---------------------------------------------------------------------------------------------
# value normalisers


def _timeout(value: object) -> float | None:
    """A timeout of 0 would kill the step at once; it is always a typo for "no timeout"."""
    if value is None:
        return None
    seconds = parse_duration(value)
    if seconds == 0:
        raise ValueError("a timeout must be greater than 0 (leave it out for no timeout)")
    return seconds


def _optional_duration(value: object) -> float | None:
    return None if value is None else parse_duration(value)


def scalar_text(value: object) -> object:
    """Scalars as the text the user typed: `MAX_RETRIES: 3` and `when: true` are strings.

    Anything that is not a bool or number is returned unchanged for the caller to judge.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _file_mode(value: object) -> object:
    """An octal mode string. An unquoted `mode: 0644` reaches us as the integer 644 (YAML 1.2
    reads it as decimal), so an integer's digits are taken as the octal digits it was meant as."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an octal file mode like '0644', got {value!r}")
    text = str(value).strip().removeprefix("0o")
    if not re.fullmatch(r"[0-7]{3,4}", text):
        raise ValueError(f"expected an octal file mode like '0644', got {value!r}")
    return text.zfill(4)


def _parallel(value: object) -> object:
    """`parallel: true` means "a sensible default" (10); `false` means one at a time."""
    if value is True:
        return 10
    if value is False:
        return 1
    return value


def _capture_output(value: object) -> object:
    """True/false, or the name of the variable that receives the output."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, bool) or (isinstance(value, str) and value.strip()):
        return value.strip() if isinstance(value, str) else value
    raise ValueError(f"expected true, false or a variable name, got {value!r}")


def _foreach_items(value: object) -> object:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(f"expected a shell command or a list of items, got {value!r}")


_RETRY_MATCHERS = ("network", "timeout", "server_error", "rate_limit")


def _retry_matchers(value: object) -> tuple[str, ...]:
    """`retry_on` entries as strings; `{pattern: re}` becomes "pattern:<re>" (regex checked)."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of matchers, got {value!r}")
    return tuple(_retry_matcher(entry) for entry in value)


def _retry_matcher(entry: object) -> str:
    if isinstance(entry, dict) and set(entry) == {"pattern"}:
        entry = f"pattern:{entry['pattern']}"
    if isinstance(entry, str) and entry.startswith("pattern:"):
        try:
            re.compile(entry.removeprefix("pattern:"))
        except re.error as exc:
            raise ValueError(f"invalid retry_on pattern {entry[8:]!r}: {exc}") from None
        return entry
    if entry in _RETRY_MATCHERS:
        return str(entry)
    raise ValueError(
        f"unknown retry_on matcher {entry!r} "
        "(expected network, timeout, server_error, rate_limit or {pattern: <regex>})"
    )


Seconds = Annotated[float, BeforeValidator(parse_duration)]
OptionalSeconds = Annotated[float | None, BeforeValidator(_optional_duration)]
Timeout = Annotated[float | None, BeforeValidator(_timeout)]
Text = Annotated[str, BeforeValidator(scalar_text)]

# ---------------------------------------------------------------------------------------------
# leaf specs


class CaptureStreams(BaseModel):
    """Which parts of a step's result `capture: NAME` records (`${NAME.stderr}` etc.)."""

    model_config = _FROZEN

    stdout: bool = True
    stderr: bool = False
    exit_code: bool = True
    success: bool = True
    duration: bool = True


def _inside_worktree(path: str) -> str:
    """A `write_file` path the file alone shows leaving the worktree (absolute, `..` above
    it, into `.git`) is refused by `validate`, not found at run time after the steps before
    it ran. One with a variable is checked when it is written (engine/context.py)."""
    if "$" in path:
        return path
    parts = [part for part in path.split("/") if part not in ("", ".")]  # as the kernel splits
    if path.startswith(("/", "~")):
        raise ValueError(f"{path!r} is not relative to the worktree; steps only write inside it")
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise ValueError(f"{path!r} escapes the worktree; steps only write inside it")
        if part.casefold() == ".git":
            raise ValueError(f"{path!r} is inside .git; steps never write git's own files")
    return path


class WriteFileSpec(BaseModel):
    """`write_file:` (reference §2.12); `path` and `content` are interpolated at run time."""

    model_config = _FROZEN

    path: Annotated[str, AfterValidator(_inside_worktree)]
    content: str = ""
    format: Literal["text", "json", "yaml"] = "text"
    mode: Annotated[str | None, BeforeValidator(_file_mode)] = None  # "0644"
    create_dirs: bool = False


class RetrySpec(BaseModel):
    """Automatic re-execution of a step before failure handling (reference §2.7).

    Defaults follow the original: 3 attempts, exponential backoff with base 2 from 1 s,
    capped at 30 s. `increment` None means "the initial delay" for linear backoff.
    `attempts` counts every run, the first one included.
    """

    model_config = _FROZEN

    attempts: int = Field(3, ge=1)
    backoff: Backoff = "exponential"
    initial_delay: Seconds = 1.0
    max_delay: Seconds = 30.0
    jitter: bool = False
    jitter_factor: float = Field(0.3, ge=0, le=1)
    increment: OptionalSeconds = None
    base: float = Field(2.0, gt=0)
    delays: tuple[Seconds, ...] = ()
    retry_on: Annotated[tuple[str, ...], BeforeValidator(_retry_matchers)] = ()
    retry_budget: OptionalSeconds = None
    on_exhausted: Literal["stop", "continue", "fallback"] = "stop"  # YAML: retry.on_failure
    fallback: str | None = None  # shell command run when on_exhausted == "fallback"

    @model_validator(mode="after")
    def _fallback_has_command(self) -> RetrySpec:
        if (self.on_exhausted == "fallback") != (self.fallback is not None):
            raise ValueError("on_failure: {fallback: {command: ...}} needs a command")
        return self


class Budget(BaseModel):
    """`budget:` of a workflow (the whole job), a step, or a map phase (each agent): the
    most it may spend (docs/workflows.md, "Budgets"). Enforced live by engine/budget.py.

    `cost_usd` is dollars as Claude Code reports them (estimated from token counts until a
    run's final line); `tokens` counts every token Claude's API calls processed: input,
    output, cache writes and cache reads; `time` is wall time. A field left out is no limit.
    """

    model_config = _FROZEN

    cost_usd: float | None = Field(None, gt=0)
    tokens: int | None = Field(None, ge=1)
    time: Timeout = None

    def merged(self, override: Budget | None) -> Budget:
        """This budget with the fields `override` sets replacing its own (the command
        line's `--budget-*` over the workflow file's)."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))

    @property
    def empty(self) -> bool:
        return self.cost_usd is None and self.tokens is None and self.time is None


# ---------------------------------------------------------------------------------------------
# steps


_DISPLAY_WIDTH = 80


class Step(BaseModel):
    """One step, at any depth: top level, handler, foreach body, validation or merge command.

    `command` is the shell script or Claude prompt exactly as written (interpolation happens
    at run time). `capture_output` defaults to False, but the engine always sets
    `${shell.output}` / `${claude.output}` / `${last.output}` anyway: the flag only adds the
    custom variable name (a string) and `${CAPTURED_OUTPUT}`, so no workflow that expects an
    output variable silently gets none (the original's 0.4.4 default-off bug).
    `allow_failure` (YAML also `continue_on_error`) means this step's failure neither fails the
    workflow nor stops a handler list. `line` is where the step starts in its file.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, defer_build=True
    )

    kind: StepKind
    command: str | None = None
    write_file: WriteFileSpec | None = None
    foreach: ForeachSpec | None = None
    sub_workflows: tuple[SubWorkflow, ...] = ()  # kind sub_workflow: run together
    goal_seek: GoalSeekSpec | None = None
    id: str | None = None
    name: str | None = None
    commit_required: bool = False
    auto_commit: bool = False
    commit_message: str | None = None  # commit_config.message_template
    timeout: Timeout = None
    when: Annotated[str | None, BeforeValidator(scalar_text)] = None
    capture: str | None = None
    capture_format: CaptureFormat = "string"
    capture_streams: CaptureStreams = Field(default_factory=CaptureStreams)
    capture_output: Annotated[bool | str, BeforeValidator(_capture_output)] = False
    output_file: str | None = None
    outputs: dict[str, str] = Field(default_factory=dict)  # legacy: name -> file glob
    env: dict[str, Text] = Field(default_factory=dict)
    temporary: Literal[True] = True  # a step's env: is its own, restored after it
    working_dir: str | None = None
    on_failure: OnFailure | None = None
    on_success: Step | None = None
    on_exit_code: dict[int, Step] = Field(default_factory=dict)
    retry: RetrySpec | None = None
    validation: ValidateSpec | None = Field(default=None, alias="validate")
    allow_failure: bool = False
    budget: Budget | None = None  # for this step's command, its retries, a foreach's do steps
    line: int | None = None

    @model_validator(mode="after")
    def _payload_matches_kind(self) -> Step:
        needed = {
            "shell": "command",
            "claude": "command",
            "write_file": "write_file",
            "foreach": "foreach",
            "sub_workflow": "sub_workflows",
            "goal_seek": "goal_seek",
        }.get(self.kind)
        if needed == "command" and not (self.command or "").strip():
            raise ValueError(f"a {self.kind} step needs a command")
        if needed and getattr(self, needed) in (None, ()):
            raise ValueError(f"a {self.kind} step needs a {needed} spec")
        return self

    def display(self, render: Callable[[str], str] | None = None) -> str:
        """The one-line label of progress lines, events and errors (reference §4.1): the
        step's `name:` when it has one (its display name, as docs/workflows.md says), else
        its kind and command.

        `render` (interpolation, say) is applied to the whole text before it is cut to one
        line, so a variable is never shown half-substituted.
        """
        if self.name:
            return _one_line(render(self.name) if render else self.name)
        subject = self._subject()
        if not subject:
            return self.kind
        return f"{self.kind}: {_one_line(render(subject) if render else subject)}"

    def _subject(self) -> str:
        if self.write_file is not None:
            return self.write_file.path
        if self.foreach is not None:
            items = self.foreach.items
            return items if isinstance(items, str) else f"{len(items)} items"
        if self.goal_seek is not None:
            return self.goal_seek.goal
        if self.sub_workflows:
            return ", ".join(sub.name for sub in self.sub_workflows)
        return self.command or ""


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if len(first) > _DISPLAY_WIDTH:
        return first[: _DISPLAY_WIDTH - 3] + "..."
    return f"{first} ..." if len(lines) > 1 else first


class ForeachSpec(BaseModel):
    """`foreach:` (reference §2.13): run `do` once per item of a list or of a command's lines."""

    model_config = _FROZEN

    items: Annotated[str | list[Any], BeforeValidator(_foreach_items)]
    parallel: Annotated[int, BeforeValidator(_parallel), Field(ge=1)] = 1
    do: tuple[Step, ...] = Field(min_length=1)
    continue_on_error: bool = False
    max_items: int | None = Field(None, ge=1)


class Parameter(BaseModel):
    """A declared parameter (`parameters:`): its value comes from `--param`, a
    `--param-file`, a template's `with:`, `defaults:` or its own `default`, checked against
    `type` and `validation` (prodigyd.workflow.compose.params) and seen as `${NAME}`."""

    model_config = _FROZEN

    type: ParameterType = "any"
    description: str | None = None
    required: bool = False
    default: Any = None  # None: no default
    validation: str | None = None  # a filter expression over `value`


class SubWorkflow(BaseModel):
    """One entry of `sub_workflows:`, its source file loaded: run in the session's worktree
    by the `sub_workflow` step kind, in a child scope, its `outputs` copied back as
    `${NAME.OUTPUT}`."""

    model_config = _FROZEN

    name: str
    source: str  # the file, for messages
    steps: tuple[Step, ...] = Field(min_length=1)
    parameters: dict[str, Parameter] = Field(default_factory=dict)  # the file's declarations
    values: dict[str, Any] = Field(default_factory=dict)  # `parameters:` given to it
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    parallel: bool = False
    continue_on_error: bool = False
    timeout: Timeout = None
    working_dir: str | None = None


class Scorer(BaseModel):
    """A built-in validator (docs/workflows.md, "Built-in validators"): scores the work
    0-100, for goal_seek's `validate` and a step's `validate:`.

    * `quality`: `command` prints a score (engine/score.py reads it).
    * `tests`: `command` runs tests; the score is the share passing (engine/testsummary.py).
    * `spec`: the share of the `spec` file's requirements referenced in the worktree, found
      by `pattern` (default: ids like REQ-1) under `paths` (default: everywhere)
      (engine/speccoverage.py).
    """

    model_config = _FROZEN

    kind: ScorerKind
    command: str | None = None
    spec: str | None = None
    pattern: str | None = None
    paths: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _has_its_input(self) -> Scorer:
        if self.kind == "spec":
            if not (self.spec or "").strip():
                raise ValueError("the spec validator needs the spec file: spec: specs/x.md")
            if self.pattern is not None:
                _requirement_pattern(self.pattern)
        elif not (self.command or "").strip():
            raise ValueError(f"the {self.kind} validator needs a command")
        return self


def _requirement_pattern(pattern: str) -> None:
    try:
        groups = re.compile(pattern).groups
    except re.error as exc:
        raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None
    if groups > 1:
        raise ValueError(f"the pattern {pattern!r} has {groups} groups; the id is its first")


class GoalSeekSpec(BaseModel):
    """`goal_seek:`: run `attempt`, score the result with `scorer` (YAML `validate`), and
    repeat until the score reaches `threshold`, `max_attempts` have run, `timeout_seconds`
    have passed, or the last three scores are within 2 points (engine/commands/goal_seek.py).
    `fail_on_incomplete`: whether a goal not reached fails the step."""

    model_config = _FROZEN

    goal: Annotated[str, Field(min_length=1)]
    attempt: Step
    scorer: Scorer
    threshold: float = Field(100.0, ge=0, le=100)
    max_attempts: int = Field(3, ge=1)
    timeout_seconds: Timeout = None
    fail_on_incomplete: bool = True


class OnFailure(BaseModel):
    """What happens when a step fails; every YAML form of reference §2.6 maps onto this.

    * `handlers` run in order (each may set `allow_failure`); then, if the step is still
      failing, the workflow fails only when `fail_workflow` is true. `fail_workflow` is
      False whenever a handler exists; `on_failure: false` is no OnFailure at all.
    * `ignore`: `on_failure: true` (or a control-only `{fail_workflow: false}`): no handler,
      the failure is simply not fatal.
    * `max_retries`: re-run the original step (without its on_failure) up to N times after
      the handlers; first success wins.
    * `debug_loop`: the original's shell debug loop: run the handler, re-run the shell step,
      repeat until it passes or it has run `max_attempts` times in total.
    * `timeout`: for the whole handler list (detailed form).
    """

    model_config = _FROZEN

    handlers: tuple[Step, ...] = ()
    fail_workflow: bool = False
    ignore: bool = False
    strategy: RecoveryStrategy | None = None
    handler_failure_fatal: bool = False
    max_retries: int = Field(0, ge=0)
    debug_loop: bool = False
    max_attempts: int = Field(1, ge=1)
    timeout: Timeout = None

    @model_validator(mode="after")
    def _loop_has_handler(self) -> OnFailure:
        if self.debug_loop and not self.handlers:
            raise ValueError("a debug loop needs a handler command")
        return self


class OnIncomplete(BaseModel):
    """`validate.on_incomplete`: the gap-filling loop run while validation is below threshold.

    `fail_workflow` defaults to True (unlike on_failure): an unfinished spec is a failure
    unless the workflow says otherwise, as in the original.
    """

    model_config = _FROZEN

    commands: tuple[Step, ...] = ()
    prompt: str | None = None
    max_attempts: int = Field(2, ge=1)
    fail_workflow: bool = True
    commit_required: bool = False

    @model_validator(mode="after")
    def _has_something_to_run(self) -> OnIncomplete:
        if not self.commands and self.prompt is None:
            raise ValueError("on_incomplete needs claude:, shell:, commands: or prompt:")
        return self


class ValidateSpec(BaseModel):
    """`validate:` (reference §2.8): commands whose result scores the step's completeness,
    or a built-in validator (`scorer`) that scores it itself.

    Without commands, `result_file` alone is read: the step itself wrote its verdict (the
    original's spec.yml does this).
    """

    model_config = _FROZEN

    commands: tuple[Step, ...] = ()
    result_file: str | None = None
    threshold: float = Field(100.0, ge=0, le=100)
    timeout: Timeout = None
    on_incomplete: OnIncomplete | None = None
    scorer: Scorer | None = None  # a built-in validator instead of commands (YAML tests: ...)

    @model_validator(mode="after")
    def _has_something_to_read(self) -> ValidateSpec:
        if self.scorer is not None and (self.commands or self.result_file):
            raise ValueError(
                f"give commands (and result_file) or the {self.scorer.kind} validator, not both"
            )
        if not self.commands and not self.result_file and self.scorer is None:
            raise ValueError(
                "validate needs claude:, shell:, commands:, result_file:, tests:, spec: or quality:"
            )
        return self


# ---------------------------------------------------------------------------------------------
# workflow


class EnvValue(BaseModel):
    """One environment value (reference §2.14), in exactly one of four forms:

    * `value`: static text, interpolated when the session starts;
    * `command`: the output (trimmed) of a shell command run in the worktree; with `cache`
      once per session, else again before every step;
    * `condition` (a `when` expression): `when_true` or `when_false`;
    * `by_profile`: `{default: X, prod: Y}`, the value of the `--profile` chosen, else
      `default`.

    `secret` ones are masked wherever they could be printed.
    """

    model_config = _FROZEN

    value: Text | None = None
    secret: bool = False
    command: str | None = None
    cache: bool = False
    condition: Annotated[str | None, BeforeValidator(scalar_text)] = None
    when_true: Text = ""
    when_false: Text = ""
    by_profile: dict[str, Text] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_form(self) -> EnvValue:
        forms = [
            name
            for name, given in (
                ("value", self.value is not None),
                ("command", self.command is not None),
                ("condition", self.condition is not None),
                ("profile values", bool(self.by_profile)),
            )
            if given
        ]
        if len(forms) != 1:
            raise ValueError(
                "an env value is one of: text, {value: ...}, {command: ...}, "
                "{condition: ..., when_true: ..., when_false: ...} or "
                f"{{default: ..., <profile>: ...}} (found: {', '.join(forms) or 'none'})"
            )
        if self.cache and self.command is None:
            raise ValueError("cache: only applies to a {command: ...} value")
        return self


class EnvFile(BaseModel):
    """A dotenv file of `env_files:`; a missing one is skipped unless `required`."""

    model_config = _FROZEN

    path: str = Field(min_length=1)
    required: bool = False


class SecretSpec(BaseModel):
    """Where a secret comes from: inline (`literal`), an env var, or a file's content.

    For `env`, `key` names the variable and defaults to the secret's own name; for `file`,
    `key` is the path (`~` and `${VAR}` expanded, relative to the repository).
    """

    model_config = _FROZEN

    value: Text | None = None
    provider: Literal["env", "file", "literal"] = "literal"
    key: str | None = None

    @model_validator(mode="after")
    def _has_source(self) -> SecretSpec:
        if self.provider == "literal" and self.value is None:
            raise ValueError("a literal secret needs a value")
        if self.provider == "file" and not self.key:
            raise ValueError("a file secret needs key: <path>")
        return self


#: The key of an inline per-profile env value used when no listed profile is chosen.
DEFAULT_PROFILE = "default"


class Profile(BaseModel):
    """A named set of env overrides selected at run time (`--profile NAME`)."""

    model_config = _FROZEN

    description: str | None = None
    env: dict[str, EnvValue] = Field(default_factory=dict)


class MergeSpec(BaseModel):
    """A custom merge workflow run in the session worktree at the end (reference §4.7)."""

    model_config = _FROZEN

    steps: tuple[Step, ...] = Field(min_length=1)
    timeout: Timeout = None  # for the whole merge workflow


# ---------------------------------------------------------------------------------------------
# MapReduce (reference §2.3, §4.8)


_ENV_REFERENCE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


def _parallelism(value: object) -> object:
    """A whole number, or `$VAR` / `${VAR}` resolved from the environment at run time."""
    if isinstance(value, str):
        text = value.strip()
        if _ENV_REFERENCE.fullmatch(text):
            return text
        if not text.isdigit():
            raise ValueError(f"expected a whole number or $VAR, got {value!r}")
        return int(text)
    return value


def _at_least_one(value: int | str) -> int | str:
    """max_parallel's bound (a `$VAR` is checked once resolved, at run time)."""
    if isinstance(value, int) and value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _timeout_or_variable(value: object) -> object:
    """Seconds (or a duration such as '10m'), or `$VAR` resolved at run time
    (engine/mapreduce/settings.py)."""
    if isinstance(value, str) and _ENV_REFERENCE.fullmatch(value.strip()):
        return value.strip()
    return _timeout(value)


def _regex(pattern: str | None) -> str | None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None
    return pattern


class CaptureOutput(BaseModel):
    """`setup.capture_outputs.NAME`: a variable taken from one setup command's output."""

    model_config = _FROZEN

    command_index: int = Field(ge=0)
    source: Literal["stdout", "stderr", "both", "combined"] = "stdout"
    #: a regex: its first group (or the whole match) is the value
    pattern: Annotated[str | None, AfterValidator(_regex)] = None
    json_path: str | None = None  # applied to the output parsed as JSON
    max_size: int = Field(1024 * 1024, ge=1)
    default: str | None = None  # used when the pattern or path finds nothing
    multiline: Literal["preserve", "join", "first_line", "last_line", "array"] = "preserve"


class SetupSpec(BaseModel):
    """The setup phase: steps run once in the parent worktree before the map phase."""

    model_config = _FROZEN

    steps: tuple[Step, ...] = Field(min_length=1)
    #: for the whole phase; `$VAR` too, as `agent_timeout_secs`
    timeout: Annotated[float | str | None, BeforeValidator(_timeout_or_variable)] = None
    capture_outputs: dict[str, CaptureOutput] = Field(default_factory=dict)


class MapSpec(BaseModel):
    """The map phase: `agent_template` run once per work item, each in its own worktree.

    `input` is a JSON file in the parent worktree or else a command whose output is the
    items; `max_parallel` and `agent_timeout_secs` may be `$VAR` (resolved at run time).
    `timeout_action` (from `timeout_config:`): a timed-out item goes to the DLQ (and may be
    retried) like any failure, is skipped (no DLQ entry, no retry), or fails the job.
    """

    model_config = _FROZEN

    input: str = Field(min_length=1)
    json_path: str | None = None
    filter: str | None = None
    sort_by: str | None = None
    distinct: str | None = None
    offset: int = Field(0, ge=0)
    max_items: int | None = Field(None, ge=0)
    max_parallel: Annotated[
        int | str, BeforeValidator(_parallelism), AfterValidator(_at_least_one)
    ] = 10
    agent_timeout_secs: Annotated[float | str | None, BeforeValidator(_timeout_or_variable)] = None
    timeout_action: Literal["dlq", "skip", "fail"] = "dlq"  # what a timed-out item does
    agent_template: tuple[Step, ...] = Field(min_length=1)
    budget: Budget | None = None  # each agent's own; the workflow's budget is shared by all


class CircuitBreaker(BaseModel):
    """Stop dispatching agents for `timeout` after `failure_threshold` failures in a row;
    then let `half_open_requests` through and close after `success_threshold` successes."""

    model_config = _FROZEN

    failure_threshold: int = Field(5, ge=1)
    success_threshold: int = Field(3, ge=1)
    timeout: Seconds = 30.0
    half_open_requests: int = Field(3, ge=1)


class ErrorPolicy(BaseModel):
    """What a failed work item does to the job (reference §2.3 [R], docs/workflows.md).

    * on_item_failure: `dlq` (record it in the dead-letter queue and go on), `retry` (run
      the item again, up to `retry_config.attempts` runs in all, waiting as its backoff
      says (at once by default), then dlq), `skip` (go on, no DLQ entry), `stop` (dlq,
      dispatch nothing more, fail the job).
    * `max_failures` / `failure_threshold` (a fraction of all items): once exceeded, nothing
      more is dispatched and the job fails. `continue_on_failure: false` without a limit
      means the first failure does that.
    """

    model_config = _FROZEN

    on_item_failure: Literal["dlq", "retry", "skip", "stop"] = "dlq"
    continue_on_failure: bool = True
    max_failures: int | None = Field(None, ge=0)
    failure_threshold: float | None = Field(None, ge=0, le=1)
    circuit_breaker: CircuitBreaker | None = None
    retry_config: RetrySpec = Field(default_factory=lambda: RetrySpec(initial_delay=0))


TriggerEvent = Literal["commit", "push", "ref", "files"]
#: How long an `on: files` trigger waits after the last write before it fires: about
#: Watchman's default settle (its trigger fires some 20 ms after a write).
FILES_SETTLE = 0.02


class Trigger(BaseModel):
    """One `on:` entry: a git event that submits the workflow by itself (docs/workflows.md,
    "Triggers").

    `branches`: globs of the branch the event is on (a commit's checked-out branch, a push's
    local branches, a ref event's branch); `paths`: globs of the files it changed; empty
    means any. `tags` (`ref` only): globs of the tags whose creation, move or deletion
    fires it; a `ref` trigger with neither `branches` nor `tags` fires for every branch and
    tag, one with only `branches` for branches only, one with only `tags` for tags only.
    `merge`: what
    happens to a successful run, as `prodigyctl run` asks it: `ask` (the default) leaves it
    awaiting `prodigyctl merge`, since nobody is there to answer; `auto` merges; `never`.
    `include_prodigy_commits`: fire on the commits (and pushes) prodigy's own sessions,
    agents and merges make too; off by default, since a triggered run that commits would
    otherwise fire itself again without end (watch/triggers.py says how they are told).
    """

    model_config = _FROZEN

    event: TriggerEvent
    branches: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    settle: OptionalSeconds = None
    merge: Literal["auto", "ask", "never"] = "ask"
    include_prodigy_commits: bool = False

    @model_validator(mode="before")
    @classmethod
    def _files_never_merge(cls, data: Any) -> Any:
        """A file trigger's run starts from a snapshot of uncommitted files: merging it
        would commit the user's unfinished edits into their branch, under their feet."""
        if isinstance(data, dict) and data.get("event") == "files":
            if data.get("merge", "never") != "never":
                raise ValueError(
                    "merge: an `on: files` run starts from your uncommitted files and is "
                    "never merged (leave `merge` out, or say `never`)"
                )
            data = {**data, "merge": "never"}
        return data

    @model_validator(mode="after")
    def _fields_fit_the_event(self) -> Trigger:
        if self.tags and self.event != "ref":
            raise ValueError(f"tags: only `ref` triggers have tags, not `{self.event}`")
        if self.paths and self.event == "ref":
            raise ValueError("paths: a `ref` trigger has no files to match (use `commit`)")
        for name in ("ignore", "settle"):
            if getattr(self, name) not in ((), None) and self.event != "files":
                raise ValueError(f"{name}: only `files` triggers have it, not `{self.event}`")
        return self

    @property
    def settle_seconds(self) -> float:
        return FILES_SETTLE if self.settle is None else self.settle


class Workflow(BaseModel):
    """A workflow; `mode` says which phases it has. Standard: `steps`. MapReduce: `setup`
    (optional), `map`, `reduce` (optional). `source` is the absolute path it came from."""

    model_config = _FROZEN

    name: str = "default"
    description: str | None = None
    mode: Literal["standard", "mapreduce"] = "standard"
    steps: tuple[Step, ...] = ()
    setup: SetupSpec | None = None
    map: MapSpec | None = None
    reduce: tuple[Step, ...] = ()
    error_policy: ErrorPolicy = Field(default_factory=ErrorPolicy)
    env: dict[str, EnvValue] = Field(default_factory=dict)
    secrets: dict[str, SecretSpec] = Field(default_factory=dict)
    env_files: tuple[EnvFile, ...] = ()
    profiles: dict[str, Profile] = Field(default_factory=dict)
    inherit: bool = True  # false: steps start from a clean environment (env.py says which)
    retry_defaults: RetrySpec | None = None  # the retry: of every step without one
    merge: MergeSpec | None = None
    strict_variables: bool = False
    worktree: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = None
    on: tuple[Trigger, ...] = ()
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)  # values of undeclared names
    budget: Budget | None = None  # the whole job: every step and every map agent together
    source: str | None = None

    @model_validator(mode="after")
    def _phases_match_mode(self) -> Workflow:
        if self.mode == "standard" and not self.steps:
            raise ValueError("a standard workflow needs at least one step")
        if self.mode == "mapreduce" and self.map is None:
            raise ValueError("a MapReduce workflow needs a map: phase")
        return self

    @property
    def profile_names(self) -> set[str]:
        """Every profile `--profile` may name: declared ones and those of inline values."""
        inline = (
            name
            for value in self.env.values()
            for name in value.by_profile
            if name != DEFAULT_PROFILE
        )
        return {*self.profiles, *inline}

    @property
    def phase_steps(self) -> tuple[Step, ...]:
        """Every step the workflow runs directly (not handlers): for checks that apply to all."""
        setup = self.setup.steps if self.setup else ()
        template = self.map.agent_template if self.map else ()
        return (*self.steps, *setup, *template, *self.reduce)


def every_step(steps: tuple[Step, ...]) -> list[Step]:
    """`steps` and every step nested in them: handlers, foreach bodies, sub-workflows,
    goal_seek attempts, validation commands."""
    found = []
    for step in steps:
        found.append(step)
        nested = [step.on_success, *step.on_exit_code.values()]
        if step.foreach:
            nested.extend(step.foreach.do)
        for sub in step.sub_workflows:
            nested.extend(sub.steps)
        if step.goal_seek:
            nested.append(step.goal_seek.attempt)
        if step.on_failure:
            nested.extend(step.on_failure.handlers)
        if step.validation:
            nested.extend(step.validation.commands)
            if step.validation.on_incomplete:
                nested.extend(step.validation.on_incomplete.commands)
        found.extend(every_step(tuple(s for s in nested if s is not None)))
    return found
