"""The Claude Code CLI, reduced to data: which binary, which argv, which env, what it said.

Running the process belongs to `prodigyd.proc`; this module only decides how to call the
real `claude` and how to read what it prints, so every rule here is testable without a
subprocess. The rules come from measuring the real CLI (deps-probe §5):

* the prompt goes after `--` as one argv element, because `--allowedTools` and friends are
  variadic and would otherwise swallow it, and a prompt starting with `-` would read as a flag;
* `--output-format stream-json` is refused without `--verbose`;
* `--dangerously-skip-permissions` is refused as root unless `IS_SANDBOX=1` is set;
* the final `result` line can say `subtype: "success"` *and* `is_error: true`, and its keys
  come in no fixed order, so lines are parsed as JSON and dispatched on their `type`;
* an assistant message is printed once per content block, each line repeating the message's
  id and usage, and that usage carries the API's placeholder `output_tokens: 1`: the real
  output counts arrive only in the `result` line (tests/claude_api/captured/success.jsonl).

The fields prodigy reads, and the fake's agreement with them, are tabled in
tests/claude_api/README.md.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prodigyd import errorcodes, jsonl
from prodigyd.claude.apierror import ApiError
from prodigyd.errors import ProdigyError
from prodigyd.eventtypes import EventType
from prodigyd.failure import ErrorKind

#: Environment variable that names the claude executable; it beats config and PATH so a
#: test (or a user with two installs) can pin the exact binary.
BINARY_ENV = "PRODIGY_CLAUDE_BIN"
#: Set to false/0/no in the job environment to run Claude with its own permission prompts
#: (`--dangerously-skip-permissions` is dropped; unattended steps may then stall or fail).
SKIP_PERMISSIONS_ENV = "PRODIGY_CLAUDE_SKIP_PERMISSIONS"
#: The PRODIGY_* variables of the Claude CLI's driver: no setting's (prodigyd/config.py).
VARIABLES = (BINARY_ENV, SKIP_PERMISSIONS_ENV)

INSTALL_HINT = (
    "install Claude Code (npm install -g @anthropic-ai/claude-code), "
    f"or point {BINARY_ENV} at the claude executable"
)

#: Set for every claude run unless the environment already sets it (see build_env).
NONESSENTIAL_TRAFFIC_ENV = "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"
#: The result subtype of a run the CLI stopped at its `--max-budget-usd`.
MAX_BUDGET_SUBTYPE = "error_max_budget_usd"

#: Shown by `ClaudeResult.error_text` when the CLI died before its final line, so the user
#: sees why there is no message from Claude itself.
NO_RESULT_TEXT = "claude produced no result line"


class ClaudeNotFound(ProdigyError):
    """No usable claude executable: nothing can run a `claude:` step."""

    kind = "claude_not_found"
    code = errorcodes.CLAUDE_NOT_FOUND


def resolve_binary(configured: str | None, env: Mapping[str, str]) -> str:
    """Find the claude executable: `PRODIGY_CLAUDE_BIN`, then the configured one, then PATH.

    An explicit choice (the env var, a configured path) that is broken is an error rather
    than a silent fall-through, because running a *different* claude than the one asked for
    is worse than stopping. The path returned is absolute: claude runs with the worktree as
    its cwd, where a relative path would mean something else.
    """
    from_env = env.get(BINARY_ENV)
    if from_env:
        return _require_executable(from_env, BINARY_ENV)
    search_path = env.get("PATH", os.defpath)
    if configured:
        if os.sep in configured:
            return _require_executable(configured, "the configured claude binary")
        found = shutil.which(configured, path=search_path)
        if found:
            return os.path.abspath(found)
    found = shutil.which("claude", path=search_path)
    if found:
        return os.path.abspath(found)
    tried = [f"{BINARY_ENV} (not set)", _configured_note(configured), "'claude' on PATH"]
    raise ClaudeNotFound(
        "cannot find the claude executable",
        hint=INSTALL_HINT,
        details="tried: " + "; ".join(tried) + f"\nPATH={search_path}",
    )


def _configured_note(configured: str | None) -> str:
    """How the 'tried' list describes the configured binary."""
    if configured:
        return f"configured binary {configured!r} (not on PATH)"
    return (  # `config set` of it meanwhile: the running daemon reads its config at start
        "configured binary (none in the config prodigyd started with: claude.binary; a "
        "change takes effect when it restarts)"
    )


def _require_executable(path: str, source: str) -> str:
    """`path` as an absolute path, or ClaudeNotFound saying which setting named it."""
    if not os.path.exists(path):
        problem = "does not exist"
    elif os.path.isdir(path) or not os.access(path, os.X_OK):
        problem = "is not an executable file"
    else:
        return os.path.abspath(path)
    raise ClaudeNotFound(f"{source} points at {path}, which {problem}", hint=INSTALL_HINT)


@dataclass(frozen=True)
class Conversation:
    """Which conversation a claude run is: a new one prodigy names (`session_id`, so the
    id is known, and recorded, before the process starts), one to continue (`resume`),
    or one the CLI must not save (`persist` false: nothing could ever resume it)."""

    session_id: str | None = None
    resume: str | None = None
    persist: bool = True

    def argv(self) -> list[str]:
        if self.resume:
            return ["--resume", self.resume]
        args = ["--session-id", self.session_id] if self.session_id else []
        return args if self.persist else [*args, "--no-session-persistence"]


def build_argv(
    binary: str,
    *,
    skip_permissions: bool = True,
    model: str | None = None,
    extra_args: Sequence[str] = (),
    conversation: Conversation = Conversation(),
    max_budget_usd: float | None = None,
) -> list[str]:
    """The full argv for one non-interactive, streaming claude run.

    `-p` is explicit (the CLI would otherwise try to be interactive), `--verbose` is
    mandatory for stream-json. The prompt is not in it: the CLI reads it from its stdin, a
    pipe (`proc.run`'s `stdin_data`), where no other user's `ps` sees it (a prompt may
    hold a secret, or code), and where no length limit applies (an argument longer than
    128 KiB fails the exec with E2BIG).
    `max_budget_usd` (what is left of a cost budget) lets the CLI stop itself at its exact
    prices, with the result subtype MAX_BUDGET_SUBTYPE.
    """
    argv = [binary, "-p", "--output-format", "stream-json", "--verbose"]
    if skip_permissions:
        argv.append("--dangerously-skip-permissions")
    if model:
        argv += ["--model", model]
    if max_budget_usd is not None:
        argv += ["--max-budget-usd", f"{max_budget_usd:.6f}"]
    argv += [*conversation.argv(), *extra_args]
    return argv


#: What the CLI says (in the result's `errors`, and on stderr) when `--resume` names a
#: conversation it does not have: its transcript was deleted, or HOME changed.
NO_CONVERSATION = "No conversation found with session ID"


def conversation_missing(result: ClaudeResult) -> bool:
    """Whether a `--resume` run failed because the CLI has no such conversation."""
    return result.is_error and any(NO_CONVERSATION in error for error in result.errors)


def build_env(base: Mapping[str, str], *, skip_permissions: bool, is_root: bool) -> dict[str, str]:
    """The environment for a claude run: `base` plus the markers claude needs from us.

    `PRODIGY_AUTOMATION=true` tells commands and hooks that nobody is at the keyboard.
    `IS_SANDBOX=1` is added only as root with skip-permissions, the one case where the CLI
    otherwise refuses to start; prodigy's worktrees are the sandbox it asks about.
    `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` (unless the environment sets it) keeps an
    unattended run to the API it works with: no telemetry, error reports or update checks.
    """
    env = dict(base)
    env["PRODIGY_AUTOMATION"] = "true"
    env.setdefault(NONESSENTIAL_TRAFFIC_ENV, "1")
    if is_root and skip_permissions:
        env["IS_SANDBOX"] = "1"
    return env


@dataclass
class ToolUse:
    """One tool call Claude made, as announced in an assistant `tool_use` block."""

    id: str
    name: str
    input: dict[str, Any]


@dataclass
class PermissionDenial:
    """A tool call the CLI refused to run (`permission_denials` in the result line, a
    `system`/`permission_denied` line as it happens)."""

    tool_name: str
    tool_use_id: str
    tool_input: dict[str, Any]

    def describe(self) -> str:
        """`Bash `git commit -m x``: the tool and the argument that says what it was for."""
        arg = self.tool_input.get("command") or self.tool_input.get("file_path")
        if not isinstance(arg, str) or not arg:
            return self.tool_name
        arg = " ".join(arg.split())
        return f"{self.tool_name} `{arg[:117] + '...' if len(arg) > 120 else arg}`"


def denials_text(denials: Sequence[PermissionDenial]) -> str:
    """One sentence naming every denied call, for a step's error."""
    return "Claude was denied permission: " + "; ".join(d.describe() for d in denials)


@dataclass
class ClaudeResult:
    """Everything prodigy keeps from one claude run.

    `is_error` and the figures come from the final `result` line; when that line never came
    (`saw_result` false) the run must not count as a success whatever the exit code.
    """

    session_id: str | None = None
    model: str | None = None
    result_text: str = ""  # the final `result` text, "" if none
    is_error: bool = False
    errors: list[str] = field(default_factory=list)
    subtype: str | None = None
    total_cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    num_turns: int = 0
    duration_ms: int = 0
    tool_uses: list[ToolUse] = field(default_factory=list)
    saw_result: bool = False
    terminal_reason: str | None = None  # "completed", "max_turns", "api_error" ...
    api_error: ApiError | None = None  # the API call the CLI gave up on, if any
    permission_denials: list[PermissionDenial] = field(default_factory=list)

    @property
    def error_kind(self) -> ErrorKind | None:
        """What the failure was, when the stream says it in data (an API status)."""
        return self.api_error.kind if self.api_error is not None and self.is_error else None

    def tool_counts(self) -> dict[str, int]:
        """How many times Claude called each tool, by name (`{"Bash": 2, "Write": 1}`)."""
        return dict(Counter(tool.name for tool in self.tool_uses))

    def error_text(self) -> str:
        """What went wrong, for the step's failure message: an API error named as one (its
        text is the CLI's, not Claude's), a turn limit in plain words, else the CLI's own."""
        if self.api_error is not None:
            return self.api_error.describe()
        if self.subtype == "error_max_turns":
            limit = next((m.group(1) for e in self.errors if (m := _LIMIT_RE.search(e))), None)
            return "Claude stopped after reaching max turns" + (f" ({limit})" if limit else "")
        if self.errors:
            return "; ".join(self.errors)
        if self.result_text:
            return self.result_text
        if self.saw_result:
            return f"claude reported an error without a message (subtype {self.subtype})"
        return NO_RESULT_TEXT


#: The limit in the CLI's max-turns error, "Reached maximum number of turns (1)".
_LIMIT_RE = re.compile(r"\((\d+)\)")


@dataclass
class _Usage:
    """Token counts in the CLI's `usage` shape, tolerant of missing or null fields."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_creation: int = 0

    @classmethod
    def from_json(cls, usage: Mapping[str, Any]) -> _Usage:
        return cls(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cache_read=_int(usage.get("cache_read_input_tokens")),
            cache_creation=_int(usage.get("cache_creation_input_tokens")),
        )

    def __add__(self, other: _Usage) -> _Usage:
        return _Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read + other.cache_read,
            self.cache_creation + other.cache_creation,
        )


class StreamParser:
    """Turns claude's stream-json stdout, one line at a time, into prodigy events.

    Fed line by line while the process runs so events reach the event log live; `finish`
    then summarises the run. Bad input never raises: a crash in the parser must not turn a
    successful Claude run into a failed step.
    """

    def __init__(self) -> None:
        self._session_id: str | None = None
        self._model: str | None = None
        self._tool_uses: list[ToolUse] = []
        # the CLI prints one line per content block, each repeating its message's id and
        # usage, so usage is kept per message id (last wins) instead of being summed per line
        self._usage_by_message: dict[str, _Usage] = {}
        self._api_error: ApiError | None = None  # from a synthetic "API error" message
        self._denials: list[PermissionDenial] = []  # from `permission_denied` lines
        self._result: dict[str, Any] | None = None

    def feed(self, line: str) -> list[dict[str, Any]]:
        """Parse one stdout line and return the events it yields (often none)."""
        if not line.strip():
            return []
        obj = jsonl.parse(line)
        if obj is None:
            return [{"event_type": EventType.CLAUDE_OUTPUT, "text": line.rstrip("\r\n")}]
        if self._session_id is None and isinstance(obj.get("session_id"), str):
            self._session_id = obj["session_id"]
        kind = obj.get("type")
        if kind == "system":
            return self._on_system(obj)
        if kind == "assistant":
            if obj.get("is_api_error_message") is True or isinstance(obj.get("error"), str):
                return [self._on_api_error(obj)]
            return self._on_assistant(obj)
        if kind == "result":
            return [self._on_result(obj)]
        return []  # user echoes, stream_event, rate_limit_event

    def _on_system(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        subtype = obj.get("subtype")
        if subtype == "init":
            return [self._on_init(obj)]
        if subtype == "api_retry":
            return [
                {
                    "event_type": EventType.CLAUDE_API_RETRY,
                    "attempt": _int(obj.get("attempt")),
                    "max_retries": _int(obj.get("max_retries")),
                    "retry_delay_ms": _int(obj.get("retry_delay_ms")),
                    "error_status": _int_or_none(obj.get("error_status")),
                    "error": _str_or(obj.get("error"), None),
                }
            ]
        if subtype == "permission_denied":
            return [self._on_denied(obj)]
        return []  # compact_boundary, status and later subtypes carry nothing we report

    def _on_init(self, obj: dict[str, Any]) -> dict[str, Any]:
        model = obj.get("model")
        self._model = model if isinstance(model, str) else None
        tools = obj.get("tools")
        return {
            "event_type": EventType.CLAUDE_SESSION_STARTED,
            "session_id": self._session_id,
            "model": self._model,
            "tools": [t for t in tools if isinstance(t, str)] if isinstance(tools, list) else [],
        }

    def _on_denied(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A refused tool call, as it happens; its input comes from the tool_use announcing
        it (the line itself names only the tool and its id)."""
        tool_id = str(obj.get("tool_use_id") or "")
        tool_input = next((t.input for t in self._tool_uses if t.id == tool_id), {})
        denial = PermissionDenial(str(obj.get("tool_name") or ""), tool_id, tool_input)
        self._denials.append(denial)
        return {
            "event_type": EventType.CLAUDE_PERMISSION_DENIED,
            "tool_name": denial.tool_name,
            "tool_id": tool_id,
            "tool_input": tool_input,
            "message": _str_or(obj.get("message"), ""),
        }

    def _on_api_error(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The CLI's own message that an API call failed for good: reported as an API
        error, never as something Claude said, and its zero usage is not a turn."""
        message = _dict(obj.get("message"))
        content = message.get("content")
        texts = [
            b["text"]
            for b in (content if isinstance(content, list) else [])
            if isinstance(b, dict) and isinstance(b.get("text"), str)
        ]
        self._api_error = ApiError(
            status=_int_or_none(obj.get("api_error_status")),
            error_type=_str_or(obj.get("api_error_type"), None),
            error=_str_or(obj.get("error"), None),
            text="\n".join(texts),
        )
        return {
            "event_type": EventType.CLAUDE_API_ERROR,
            "status": self._api_error.status,
            "error_type": self._api_error.error_type,
            "error": self._api_error.error,
            "kind": self._api_error.kind,
            "message": self._api_error.text,
        }

    def _on_assistant(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        message = _dict(obj.get("message"))
        events: list[dict[str, Any]] = []
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            event = self._on_block(_dict(block))
            if event is not None:
                events.append(event)
        usage_event = self._on_usage(message)
        if usage_event is not None:
            events.append(usage_event)
        return events

    def _on_block(self, block: dict[str, Any]) -> dict[str, Any] | None:
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            text = block["text"]
            return {"event_type": EventType.CLAUDE_MESSAGE, "content": text, "message_type": "text"}
        if kind == "tool_use":
            tool = ToolUse(
                id=str(block.get("id", "")),
                name=str(block.get("name", "")),
                input=_dict(block.get("input")),
            )
            self._tool_uses.append(tool)
            return {
                "event_type": EventType.CLAUDE_TOOL_INVOKED,
                "tool_name": tool.name,
                "tool_id": tool.id,
                "parameters": tool.input,
            }
        return None  # thinking blocks and future block types carry nothing we report

    def _on_usage(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Record a message's usage; an event only when the message is new or its usage
        changed, so a message streamed as three lines is counted once."""
        if not isinstance(message.get("usage"), dict):
            return None
        usage = _Usage.from_json(message["usage"])
        key = message.get("id")
        key = key if isinstance(key, str) else f"#anon{len(self._usage_by_message)}"
        if self._usage_by_message.get(key) == usage:
            return None
        self._usage_by_message[key] = usage
        return {
            "event_type": EventType.CLAUDE_TOKEN_USAGE,
            "message_id": key,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read,
            "cache_creation_tokens": usage.cache_creation,
        }

    def _on_result(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._result = obj
        summary = self.finish()
        return {
            "event_type": EventType.CLAUDE_RESULT,
            "session_id": summary.session_id,
            "is_error": summary.is_error,
            "subtype": summary.subtype,
            "terminal_reason": summary.terminal_reason,
            "api_error_status": summary.api_error.status if summary.api_error else None,
            "total_cost_usd": summary.total_cost_usd,
            "num_turns": summary.num_turns,
            "duration_ms": summary.duration_ms,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "cache_read_tokens": summary.cache_read_tokens,
            "cache_creation_tokens": summary.cache_creation_tokens,
            "permission_denials": len(summary.permission_denials),
        }

    def finish(self) -> ClaudeResult:
        """Summarise everything fed so far; callable at any time, e.g. after a timeout."""
        res = self._result or {}
        usage = self._total_usage(res)
        subtype = res.get("subtype")
        result_text = res.get("result")
        errors = res.get("errors")
        return ClaudeResult(
            session_id=_str_or(res.get("session_id"), self._session_id),
            model=self._model,
            result_text=result_text if isinstance(result_text, str) else "",
            is_error=_is_error(res) if self._result is not None else False,
            errors=[str(e) for e in errors] if isinstance(errors, list) else [],
            subtype=subtype if isinstance(subtype, str) else None,
            total_cost_usd=_float(res.get("total_cost_usd")),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read,
            cache_creation_tokens=usage.cache_creation,
            num_turns=_int(res.get("num_turns")),
            duration_ms=_int(res.get("duration_ms")),
            tool_uses=list(self._tool_uses),
            saw_result=self._result is not None,
            terminal_reason=_str_or(res.get("terminal_reason"), None),
            api_error=self._result_api_error(res),
            permission_denials=self._result_denials(res),
        )

    def _total_usage(self, result: dict[str, Any]) -> _Usage:
        """The result line's usage is the cumulative figure. Without it (the CLI died or was
        stopped) the messages seen are added up, once per message id: right for input and
        cache tokens, but output tokens are then only the stream's placeholders (one per
        message), since the real counts arrive with the result line alone."""
        if isinstance(result.get("usage"), dict):
            return _Usage.from_json(result["usage"])
        return sum(self._usage_by_message.values(), _Usage())

    def _result_api_error(self, result: dict[str, Any]) -> ApiError | None:
        """The API error, from the result's status (authoritative) and the synthetic
        message's words; a synthetic message alone (no result line) still counts."""
        seen = self._api_error
        status = _int_or_none(result.get("api_error_status"))
        if status is None:
            return seen
        text = seen.text if seen else _str_or(result.get("result"), "") or ""
        return ApiError(
            status=status,
            error_type=_str_or(result.get("api_error_type"), seen.error_type if seen else None),
            error=seen.error if seen else None,
            text=text,
        )

    def _result_denials(self, result: dict[str, Any]) -> list[PermissionDenial]:
        """The result's `permission_denials` (complete, with each call's input), else the
        `permission_denied` lines seen so far."""
        listed = result.get("permission_denials")
        if not isinstance(listed, list):
            return list(self._denials)
        return [
            PermissionDenial(
                str(d.get("tool_name") or ""),
                str(d.get("tool_use_id") or ""),
                _dict(d.get("tool_input")),
            )
            for d in listed
            if isinstance(d, dict)
        ]


def _is_error(result: Mapping[str, Any]) -> bool:
    """`is_error` decides when present (the CLI pairs it with subtype "success");
    otherwise any subtype but "success" is an error."""
    flag = result.get("is_error")
    if isinstance(flag, bool):
        return flag
    return result.get("subtype") != "success"


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    """A count from JSON; null, strings, NaN and other garbage count as 0."""
    return int(_float(value))


def _float(value: object) -> float:
    """A number from JSON; anything that is not a finite number counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:  # an integer too big for a float
        return 0.0
    return number if math.isfinite(number) else 0.0


def _int_or_none(value: object) -> int | None:
    """An HTTP status or similar: None when absent or not a number (JSON null)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _int(value)


def _str_or(value: object, default: str | None) -> str | None:
    return value if isinstance(value, str) else default
