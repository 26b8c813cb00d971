"""prodigyd's settings: `$PRODIGY_HOME/config.toml`, overridden by `PRODIGY_*` variables.

Every setting resolves the same way, in `load()`: a `PRODIGY_*` environment variable beats
the config file, which beats the built-in default. (A command-line flag, where a command
has one, beats all three; the caller applies it on top of `load()`.) Keeping one resolver
means `prodigyctl config show` can say, for every key, where its value came from.

The daemon reads the configuration once, at start, from its own environment. `prodigyctl
config set/unset` write the file (atomically; the user owns it, the daemon never writes it),
and a running daemon picks the change up when it restarts.

Environment names: `PRODIGY_<KEY>` for a top-level key (`PRODIGY_MAX_CONCURRENT_JOBS`) and
`PRODIGY_<SECTION>__<KEY>` for a key in a section (`PRODIGY_CLAUDE__MODEL`). Only names that
map to a known key count: PRODIGY_HOME and the per-job variables are not settings here.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from prodigyd import errorcodes, paths
from prodigyd.closest import closest
from prodigyd.errors import ProdigyError
from prodigyd.files import failure_reason, read_regular
from prodigyd.store.atomic import write_bytes_atomic

ENV_PREFIX = "PRODIGY_"

#: Accepted spellings of a boolean in an environment variable or `config set` (any case).
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

#: Shown with every unknown-key error, since a typo'd key would otherwise silently do nothing.
_KEYS_HINT = "`prodigyctl config show` lists every key; docs/config.md describes them"

#: Tells "absent" from a stored value in `dict.pop`, since any TOML value may be stored.
_MISSING = object()

#: A table header (`[claude]`) and a key (`model =`, `claude.model =`), bare names only: enough
#: to name the line of a problem (one spelt with quotes is named without its line).
_HEADER = r"\s*\[\[?\s*([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*\]"
_ASSIGNMENT = r"\s*([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*="


class ConfigError(ProdigyError):
    """The config file or a PRODIGY_* setting is unreadable or invalid.

    The message names where the bad value came from (the file, or the environment
    variable) and the dotted key, so it can be fixed without a traceback.
    """

    kind = "config"
    code = errorcodes.CONFIG


class ClaudeConfig(BaseModel):
    """`[claude]`: how `claude:` steps invoke Claude Code."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    binary: str | None = Field(None, min_length=1)  # None: `claude` on PATH
    skip_permissions: bool = True  # pass --dangerously-skip-permissions (worktrees only)
    model: str | None = Field(None, min_length=1)  # None: Claude Code's own default
    extra_args: list[str] = Field(default_factory=list)  # appended to every claude argv
    #: seconds a claude step may run when it sets no `timeout:` (0: no limit); a stalled
    #: stream otherwise holds the step until the CLI gives up, 10 minutes or more
    timeout: float = Field(1800.0, ge=0, allow_inf_nan=False)


class WorktreeConfig(BaseModel):
    """`[worktree_config]`: the worktree pool (prodigyd/pool.py, docs/config.md).

    Durations are seconds; 0 turns a limit off (TOML has no null).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    parallel_worktrees: int = Field(8, ge=0)  # idle worktrees kept per repository
    spare: int = Field(1, ge=0)  # idle worktrees made ahead per repository used (0: none)
    allocation_strategy: Literal["on_demand", "pooled", "reuse", "dedicated"] = "pooled"
    idle_timeout_secs: float = Field(1800.0, ge=0, allow_inf_nan=False)
    max_age_secs: float = Field(0.0, ge=0, allow_inf_nan=False)
    cleanup_on_complete: bool = True
    keep_failed: bool = False
    max_disk_mb: int = Field(0, ge=0)
    gc_interval_secs: float = Field(600.0, ge=0, allow_inf_nan=False)


class TriggersConfig(BaseModel):
    """`[triggers]`: how many runs `on:` triggers may start (watch/gate.py, docs/config.md).

    0 turns a limit off (TOML has no null)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_runs: int = Field(10, ge=0)  # runs one workflow's triggers start per `per_seconds`
    per_seconds: float = Field(60.0, gt=0, allow_inf_nan=False)
    max_queued: int = Field(20, ge=0)  # triggered runs waiting to start, all repositories


class RetentionConfig(BaseModel):
    """`[retention]`: how long the store keeps sessions and logs (prodigyd/retention.py,
    docs/config.md). Ages are days and sizes MB, fractions allowed; 0 turns a limit off."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_age_days: float = Field(30.0, ge=0, allow_inf_nan=False)  # completed, cancelled
    resumable_max_age_days: float = Field(90.0, ge=0, allow_inf_nan=False)  # failed, ...
    max_total_mb: float = Field(2048.0, ge=0, allow_inf_nan=False)  # all sessions' files
    daemon_log_mb: float = Field(10.0, ge=0, allow_inf_nan=False)  # prodigyd.log, .out
    interval_secs: float = Field(3600.0, ge=0, allow_inf_nan=False)  # 0: only `clean`


class ExecutorConfig(BaseModel):
    """`[executor]`: where map agents run (docs/dask.md). `local`: in the daemon, in
    worktrees of its pool; `dask`: as tasks on the Dask cluster whose scheduler is at
    `address`. A run's `--executor`/`--executor-address` beat these two. `shipping` says
    how the repository reaches dask workers: git bundles sent with the tasks, or a bare
    repository at `repository` (an absolute path the daemon and every worker can read and
    write, e.g. on NFS); these two are always the daemon's."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    kind: Literal["local", "dask"] = "local"
    address: str | None = Field(None, min_length=1)  # tcp://host:8786, for kind dask
    shipping: Literal["bundle", "shared"] = "bundle"
    repository: str | None = Field(None, min_length=1)  # /path/to/bare.git, for shared


class Config(BaseModel):
    """The whole configuration. Strict: TOML is typed, so `"4"` for a number is a mistake."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_concurrent_jobs: int = Field(4, ge=1)
    auto_resume: bool = True
    shutdown_grace_seconds: float = Field(30.0, ge=0, allow_inf_nan=False)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    event_loop: Literal["asyncio", "uvloop"] = "uvloop"
    claude: ClaudeConfig = Field(default_factory=ClaudeConfig)
    worktree_config: WorktreeConfig = Field(default_factory=WorktreeConfig)
    triggers: TriggersConfig = Field(default_factory=TriggersConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        """`debug` works too, as it always has for PRODIGY_LOG_LEVEL."""
        return value.upper() if isinstance(value, str) else value


def load(*, env: Mapping[str, str] | None = None) -> Config:
    """The effective configuration: env var > config file > default, per key.

    A command-line flag, where a command has one, is applied by its caller on top. `env`
    holds the PRODIGY_* overrides (default: this process's environment). A missing file
    means all defaults. Raises ConfigError naming the file or variable and the key.
    """
    path = paths.config_file()
    text, data = _read_file(path)
    overrides = _env_overrides(os.environ if env is None else env)
    for key, (_name, value) in overrides.items():
        _set_in(data, key, value)
    in_file = _where_in(path, text)
    return _validate(data, lambda key: _origin(key, overrides) or in_file(key))


def describe(config: Config) -> dict[str, Any]:
    """Every key, dotted (`claude.model`), with its JSON value: the shape scripts read."""
    return _flatten(config.model_dump(mode="json"))


def get_value(config: Config, key: str) -> Any:
    """The JSON value of one dotted key; ConfigError with a suggestion for an unknown one."""
    _require_known(key)
    return describe(config)[key]


def set_value(key: str, value: str) -> Any:
    """Set one key in the config file, parsing `value` as that key's type; return the value
    stored (JSON), as validated: `debug` is stored as `DEBUG`.

    Only the new value has to be valid, so a bad value never lands on disk, while the file's
    other problems do not block the edit that fixes one of them (`check_file` says what is
    left). Other keys the user set are kept; comments and layout are not (tomli-w writes
    plain TOML).
    """
    _require_known(key)
    try:
        parsed = _parse_text(key, value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    alone: dict[str, Any] = {}
    _set_in(alone, key, parsed)
    # Config has no rule across keys, so a value valid alone is valid in any file
    stored = get_value(_validate(alone, lambda _key: None), key)
    path = paths.config_file()
    _text, data = _read_file(path)
    _set_in(data, key, stored)
    _write_file(path, data)
    return stored


def unset_value(key: str) -> None:
    """Remove one key from the config file, so its default (or env override) applies.

    Whatever else is wrong in the file, removing never makes it worse, so it is always done
    (`check_file` says what is left). An unknown key that *is* in the file can be removed
    too: that is how a typo the daemon refuses to start with gets fixed. Removing an absent
    key changes nothing.
    """
    path = paths.config_file()
    _text, data = _read_file(path)
    if not _pop_in(data, key):
        _require_known(key)
        return
    _write_file(path, data)


def check_file() -> list[str]:
    """The config file's problems, each naming the file, line and key; empty when it is
    valid. Environment overrides are left out: this is what `config set/unset` report as
    still wrong in the file they edited."""
    path = paths.config_file()
    text, data = _read_file(path)
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        where = _where_in(path, text)
        return [_problem(error, where) for error in exc.errors()]
    return []


def sources(config_env: Mapping[str, str]) -> dict[str, str]:
    """Where each key's effective value comes from: `default`, `file` or `env:PRODIGY_X`.

    Mirrors `load()`'s precedence; `config_env` is the environment the daemon would see.
    """
    _text, data = _read_file(paths.config_file())
    texts = _env_texts(config_env)
    return {
        key: f"env:{texts[key][0]}" if key in texts else "file" if _has(data, key) else "default"
        for key in _keys()
    }


# -- keys and types ---------------------------------------------------------------------------


def _keys() -> list[str]:
    """Every settable dotted key, in declaration order (sections hold no value themselves)."""
    return list(_annotations())


def _sections() -> list[str]:
    return [name for name, field in Config.model_fields.items() if _is_section(field.annotation)]


def _is_section(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _annotations() -> dict[str, Any]:
    """Dotted key → its type annotation, read off the models so they stay the one truth."""
    found: dict[str, Any] = {}
    for name, field in Config.model_fields.items():
        if _is_section(field.annotation):
            for sub, subfield in field.annotation.model_fields.items():
                found[f"{name}.{sub}"] = subfield.annotation
        else:
            found[name] = field.annotation
    return found


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.upper().replace(".", "__")


def _require_known(key: str) -> None:
    if key in _annotations():
        return
    if key in _sections():  # `config set claude 1`: a table, whose keys are what is set
        keys = ", ".join(name for name in _annotations() if name.startswith(f"{key}."))
        raise ConfigError(
            f"{key} is a table, not a key; its keys are {keys}",
            hint=_KEYS_HINT,
            code=errorcodes.CONFIG_UNKNOWN_KEY,
        )
    raise ConfigError(
        f"unknown key {key}{_did_you_mean(key)}",
        hint=_KEYS_HINT,
        code=errorcodes.CONFIG_UNKNOWN_KEY,
    )


def _did_you_mean(key: str) -> str:
    close = closest(key, [*_keys(), *_sections()])
    return f"; did you mean {close}?" if close else ""


def _kind(annotation: Any) -> Any:
    """The Python type a text value must become: `str | None` → str, Literal → str."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return _kind(next(arg for arg in get_args(annotation) if arg is not type(None)))
    if origin is Literal:
        return str
    return origin or annotation


def _parse_text(key: str, text: str) -> Any:
    """Turn an env var's or `config set`'s text into the key's type (ValueError if it can't).

    The model is strict, so text must become a real bool/int/float/list first; then the
    model's own rules (ranges, allowed values) apply exactly as for the file.
    """
    kind = _kind(_annotations()[key])
    stripped = text.strip()
    if kind is bool:
        if stripped.lower() in _TRUE | _FALSE:
            return stripped.lower() in _TRUE
        raise ValueError(f"expected true/false, yes/no, on/off or 1/0, got {text!r}")
    if kind in (int, float):
        try:
            return kind(stripped)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ValueError(f"expected {noun}, got {text!r}") from None
    if kind is list:
        return _parse_list(stripped)
    return text


def _parse_list(text: str) -> list[Any]:
    """A TOML array (`["-a", "b,c"]`) when it starts with `[`, else comma-separated items."""
    if not text.startswith("["):
        return [item.strip() for item in text.split(",") if item.strip()]
    try:
        return list(tomllib.loads(f"value = {text}")["value"])
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not a TOML array ({exc}): {text!r}") from None


# -- sources ----------------------------------------------------------------------------------


def _env_texts(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """key → (variable name, text) for each known key set in `env`; empty means unset."""
    texts = {key: (_env_name(key), env.get(_env_name(key), "")) for key in _keys()}
    return {key: found for key, found in texts.items() if found[1]}


def misspelt_variables(env: Mapping[str, str]) -> list[str]:
    """Warnings for PRODIGY_* variables that are no setting's but nearly one's
    (`PRODIGY_CLAUDE_MODEL` for `PRODIGY_CLAUDE__MODEL`): ignored as every unknown one is
    (prodigy has other variables, and a user's own may start so), but said, since it was
    surely meant to set something."""
    from prodigyd.claude.cli import VARIABLES  # read by the Claude driver: meant as they are

    meant = {_env_name(key).replace("__", "_"): _env_name(key) for key in _keys()}
    said = []
    for name in sorted(env):
        close = meant.get(name.replace("__", "_"))
        if name.startswith(ENV_PREFIX) and close not in (None, name) and name not in VARIABLES:
            said.append(f"{name} is not a setting's variable (ignored); did you mean {close}?")
    return said


def _env_overrides(env: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    overrides: dict[str, tuple[str, Any]] = {}
    for key, (name, text) in _env_texts(env).items():
        try:
            overrides[key] = (name, _parse_text(key, text))
        except ValueError as exc:
            raise ConfigError(f"environment variable {name}: {key}: {exc}") from None
    return overrides


def _origin(key: str, overrides: Mapping[str, tuple[str, Any]]) -> str | None:
    """Where `load()` got an overridden key's value: its variable (None: from the file)."""
    return f"environment variable {overrides[key][0]}" if key in overrides else None


def _where_in(path: Path, text: str) -> Callable[[str], str]:
    """The `origin` of a key in the config file: `PATH:LINE`, or `PATH` when no line is found.
    The lines are looked for only when there is a problem to name."""

    def where(key: str) -> str:
        line = _line_of(text, key)
        return f"{path}:{line}" if line else str(path)

    return where


def _line_of(text: str, key: str) -> int | None:
    """The 1-based line that defines dotted `key`: its `name =`, or a table's header (its
    first key when dotted keys make it). A scan of the lines, not a parse: a line inside a
    multi-line string may look like a key, which at worst names the wrong line of the right
    file."""
    table: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        if header := re.match(_HEADER, line):
            table = _names(header[1])
            defined = ".".join(table)
        elif assignment := re.match(_ASSIGNMENT, line):
            defined = ".".join([*table, *_names(assignment[1])])
        else:
            continue
        if f"{defined}.".startswith(f"{key}."):  # the key itself, or a key inside it
            return number
    return None


def _names(dotted: str) -> list[str]:
    return [name.strip() for name in dotted.split(".")]


#: A config file past this is no config file (its keys fit in a few KiB).
CONFIG_BYTES = 1024 * 1024


def _read_file(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's text (for naming lines) and its tables; a missing file is empty."""
    try:  # a regular file only: a FIFO put there would hold the daemon's start for good
        raw, _ = read_regular(path, limit=CONFIG_BYTES)
    except FileNotFoundError:
        return "", {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {failure_reason(exc)}") from None
    try:
        text = raw.decode()
        return text, tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:  # its text ends "(at line L, column C)"
        raise ConfigError(f"invalid TOML in {path}: {exc}") from None


def _write_file(path: Path, data: dict[str, Any]) -> None:
    """Write the config file whole (`config set/unset`: the daemon never writes it)."""
    import tomli_w  # here: the daemon, which only reads the file, never pays for the writer

    write_bytes_atomic(path, tomli_w.dumps(data).encode())


def _validate(data: dict[str, Any], origin: Callable[[str], str | None]) -> Config:
    """Validate; each problem names its key and `origin(key)` (a file, a variable, or none)."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error, origin) for error in exc.errors()]
        unknown = any(error["type"] == "extra_forbidden" for error in exc.errors())
        raise ConfigError(
            problems[0],
            details="\n".join(problems[1:]) or None,
            hint=_KEYS_HINT if unknown else None,
        ) from None


def _problem(error: ErrorDetails, origin: Callable[[str], str | None]) -> str:
    names = [str(part) for part in error["loc"] if isinstance(part, str)]
    key = ".".join(names)
    where = origin(key)
    prefix = f"{where}: " if where else ""
    if error["type"] == "extra_forbidden":
        return f"{prefix}unknown key {key}{_did_you_mean(key)}"
    shown = "".join(f"[{part}]" for part in error["loc"] if isinstance(part, int))
    return f"{prefix}{key}{shown}: {error['msg']} (got {error['input']!r})"


# -- nested dicts -----------------------------------------------------------------------------


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _set_in(data: dict[str, Any], key: str, value: Any) -> None:
    *sections, name = key.split(".")
    for section in sections:
        if not isinstance(data.get(section), dict):
            data[section] = {}
        data = data[section]
    data[name] = value


def _pop_in(data: dict[str, Any], key: str) -> bool:
    """Remove `key`; drop a section it leaves empty. True when something was removed."""
    head, _, rest = key.partition(".")
    if not rest:
        return data.pop(head, _MISSING) is not _MISSING
    section = data.get(head)
    if not isinstance(section, dict) or not _pop_in(section, rest):
        return False
    if not section:
        del data[head]
    return True


def _has(data: Mapping[str, Any], key: str) -> bool:
    head, _, rest = key.partition(".")
    if head not in data:
        return False
    return not rest or (isinstance(data[head], dict) and _has(data[head], rest))
