"""The job environment (reference §2.14): what every child process of a session sees.

Precedence, lowest first (docs/workflows.md has the one table users read):

    the submitting client's environment (or only CLEAN_ENV_KEEPS of it, `inherit: false`)
    < `env_files` < `env:` < the active profile < (per step) the step's `env:` < `secrets:`

Secrets come last, as in the original, so nothing can replace one by accident; the loader
refuses a step `env:`, `env:` or profile value named like a secret (it would never be
seen), which is why a step's `env:` can simply be laid over the session's environment.

Workflow-defined values are also variables (`${NAME}`/`$NAME`); the inherited environment
is not, so an unknown `$HOME` is left for the shell to expand. Values are interpolated with
the workflow's variables, then the submitting environment (`${GITHUB_TOKEN}`,
`${env:GITHUB_TOKEN}`), then the values defined before them. Secret values are registered
with the masker here, before any of them can reach a log; one shorter than
MIN_SECRET_LENGTH (but not empty: that hides nothing) is refused here, at submission, since
it could be neither masked nor shown.

Dynamic values (`{command: ...}`) run in the session's worktree, so at admission (no
worktree yet, and the user's checkout is never a place to run commands) they are left
empty; `cache: true` ones run once when the session starts, the others again before every
step (`refresh_dynamic`), as the original re-resolved them for each step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prodigyd import errorcodes, proc
from prodigyd.engine.mask import MIN_SECRET_LENGTH, Masker
from prodigyd.errors import Location, ProdigyError, WorkflowError
from prodigyd.files import failure_reason, read_small_text
from prodigyd.git.cli import AUTOMATION_VAR
from prodigyd.workflow.expr import evaluate
from prodigyd.workflow.interpolate import VariableStore, interpolate
from prodigyd.workflow.model import DEFAULT_PROFILE, EnvFile, EnvValue, SecretSpec, Workflow

#: What survives `inherit: false`: what any program needs to run at all (the original's
#: env-clearing runner kept these), and what a `claude` step needs to find its executable
#: and credentials. Prefixes end in `_`.
CLEAN_ENV_KEEPS = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "TERM",
    "TZ",
    "LANG",
    "LC_",
    "PRODIGY_",
    "ANTHROPIC_",
    "CLAUDE_",
)

#: How long a dynamic value's command may run.
DYNAMIC_TIMEOUT = 60.0


@dataclass
class JobEnvironment:
    env: dict[str, str]  # the full environment for children
    workflow_values: dict[str, str]  # the workflow-defined part (also exposed as variables)
    dynamic: dict[str, str] = field(default_factory=dict)  # uncached commands, by name
    notes: list[str] = field(default_factory=list)  # what the user should hear (skipped files)


async def compose(
    workflow: Workflow,
    *,
    inherited: Mapping[str, str],
    profile: str | None,
    files_root: Path,
    store: VariableStore,
    masker: Masker,
    worktree: Path | None = None,
) -> JobEnvironment:
    """Build the session environment; raises WorkflowError naming the bad field.

    `worktree`: where dynamic values' commands run; None (admission) leaves them empty."""
    if profile is not None and profile not in workflow.profile_names:
        known = ", ".join(sorted(workflow.profile_names)) or "none defined"
        raise WorkflowError(
            f"unknown profile {profile!r} (profiles: {known})",
            location=_where(workflow, "profiles"),
        )
    base = dict(inherited) if workflow.inherit else clean(inherited)
    if composes_nothing(workflow, profile):  # no scope to build: nothing is expanded in it
        return JobEnvironment(env={**base, AUTOMATION_VAR: "true"}, workflow_values={})
    scope = _with_environment(store, inherited)
    values: dict[str, str] = {}
    notes: list[str] = []
    for env_file in workflow.env_files:
        values.update(_read_env_file(env_file, files_root, scope, inherited, workflow, notes))
    composer = _Composer(workflow, scope, masker, inherited, {**base, **values}, worktree)
    for key, entry in workflow.env.items():
        values[key] = await composer.value(key, entry, profile, f"env.{key}")
    if profile is not None and profile in workflow.profiles:
        for key, entry in workflow.profiles[profile].env.items():
            values[key] = await composer.value(key, entry, profile, f"profiles.{profile}.{key}")
    for key, spec in workflow.secrets.items():
        secret = _secret_value(key, spec, inherited, files_root, scope, workflow)
        add_secret(masker, secret, workflow, f"secrets.{key}", key)
        values[key] = secret
    env = {**base, **values, AUTOMATION_VAR: "true"}
    dynamic = {
        key: entry.command
        for key, entry in workflow.env.items()
        if entry.command is not None and not entry.cache
    }
    return JobEnvironment(env=env, workflow_values=values, dynamic=dynamic, notes=notes)


def composes_nothing(workflow: Workflow, profile: str | None) -> bool:
    """Whether the job environment is the inherited one (or its `inherit: false` part) and
    nothing else: no env file, value, secret or profile, so composing it can fail in no way
    and note nothing (admission then spares a submission that work, ~0.1 ms)."""
    return not (workflow.env_files or workflow.env or workflow.secrets or profile is not None)


def clean(inherited: Mapping[str, str]) -> dict[str, str]:
    """The part of `inherited` that `inherit: false` keeps (CLEAN_ENV_KEEPS)."""
    return {
        name: value
        for name, value in inherited.items()
        if any(
            name.startswith(keep) if keep.endswith("_") else name == keep
            for keep in CLEAN_ENV_KEEPS
        )
    }


class _Composer:
    """Resolves `env:` and profile values in order; each one joins the scope of the next."""

    def __init__(
        self,
        workflow: Workflow,
        scope: VariableStore,
        masker: Masker,
        inherited: Mapping[str, str],
        env: dict[str, str],
        worktree: Path | None,
    ) -> None:
        self.workflow, self.scope, self.masker = workflow, scope, masker
        self.inherited, self.env, self.worktree = inherited, env, worktree

    async def value(self, key: str, entry: EnvValue, profile: str | None, field: str) -> str:
        value = expand_home(await self._resolve(entry, profile, field))
        if entry.secret:
            add_secret(self.masker, value, self.workflow, field, key)
        self.scope.set(key, value)
        self.env[key] = value
        return value

    async def _resolve(self, entry: EnvValue, profile: str | None, field: str) -> str:
        if entry.command is not None:
            if self.worktree is None:
                return ""
            try:
                return await run_dynamic(entry.command, self.worktree, self.env)
            except ProdigyError as exc:
                raise WorkflowError(exc.message, location=_where(self.workflow, field)) from None
        if entry.condition is not None:
            chosen = entry.when_true if evaluate(entry.condition, self.scope) else entry.when_false
            return self._interpolate(chosen, field)
        if entry.by_profile:
            return self._interpolate(self._for_profile(entry, profile, field), field)
        return self._interpolate(entry.value or "", field)

    def _interpolate(self, text: str, field: str) -> str:
        """The value with its variables; a `${env:NAME}` (no default) the submitting
        environment lacks is refused here, as a `secrets:` entry's is: left as written, it
        reached the job's shell, which failed with "Bad substitution"."""
        environment = {**self.inherited, **self.env}  # env files' and earlier values too
        for name in _ENV_REFERENCE.findall(text):
            if name not in environment:
                raise WorkflowError(
                    f"{field} reads ${{env:{name}}} from the environment, but {name} is not set",
                    location=_where(self.workflow, field),
                    hint=f"export {name} before running prodigyctl, or give a default "
                    f"(${{env:{name}:-value}}); for a job a git hook starts, name it in "
                    "PRODIGY_HOOK_ENV too",
                )
        return interpolate(text, self.scope, environment=environment)

    def _for_profile(self, entry: EnvValue, profile: str | None, field: str) -> str:
        if profile is not None and profile in entry.by_profile:
            return entry.by_profile[profile]
        if DEFAULT_PROFILE in entry.by_profile:
            return entry.by_profile[DEFAULT_PROFILE]
        chosen = f"profile {profile!r}" if profile else "no profile"
        raise WorkflowError(
            f"{field} has no value for {chosen} and no default",
            location=_where(self.workflow, field),
            hint=f"add `{DEFAULT_PROFILE}: ...` to it, or run with --profile "
            + " or ".join(sorted(entry.by_profile)),
        )


async def run_dynamic(command: str, cwd: Path, env: Mapping[str, str]) -> str:
    """A dynamic value: the command's output, trimmed; ProdigyError when it fails."""
    done = await proc.run(["sh", "-c", command], cwd=cwd, env=env, timeout=DYNAMIC_TIMEOUT)
    if done.timed_out:
        raise ProdigyError(
            f"the command of a dynamic env value timed out: {command}", code=errorcodes.DYNAMIC_ENV
        )
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise ProdigyError(
            f"the command of a dynamic env value failed ({why[0]}): {command}",
            code=errorcodes.DYNAMIC_ENV,
        )
    return done.stdout.strip()


_HOME = re.compile(r"^~(?=/|$)")


def expand_home(text: str) -> str:
    """A leading `~` (alone or before `/`) is the daemon user's home, as in a shell."""
    return _HOME.sub(lambda _: os.path.expanduser("~"), text, count=1)


def _with_environment(store: VariableStore, inherited: Mapping[str, str]) -> VariableStore:
    """The scope env values are expanded in: the workflow's variables, falling back to the
    submitting environment (as `${NAME}` and `${env:NAME}`), so `API_TOKEN: {secret: true,
    value: "${GITHUB_TOKEN}"}` is the token itself (and masked as such), not the text
    `${GITHUB_TOKEN}` for a shell to expand later, unmasked, wherever the variable is used."""
    scope = VariableStore()
    scope.update(inherited)
    scope.update(store.snapshot())
    return scope


def add_secret(masker: Masker, value: str, workflow: Workflow, field: str, key: str) -> None:
    """Mask `value` from now on; refuse it when it is too short to be masked (mask.py)."""
    if 0 < len(value) < MIN_SECRET_LENGTH:
        raise WorkflowError(
            f"secret {key} is only {len(value)} character(s) long; a secret needs at least "
            f"{MIN_SECRET_LENGTH}, since a shorter one cannot be masked",
            location=_where(workflow, field),
            hint="use the real credential, or drop `secret: true` if it is not one",
        )
    masker.add(value, name=key)


#: `${env:NAME}` or `${env.NAME}` without a default (interpolate's `_from_environment`).
_ENV_REFERENCE = re.compile(r"(?<!\$)\$\{env[:.]([A-Za-z_][A-Za-z0-9_]*)\}")  # not $${...}


def _where(workflow: Workflow, field: str) -> Location:
    return Location(workflow.source or "<workflow>", field=field)


def _secret_value(
    key: str,
    spec: SecretSpec,
    inherited: Mapping[str, str],
    root: Path,
    scope: VariableStore,
    workflow: Workflow,
) -> str:
    where = _where(workflow, f"secrets.{key}")
    if spec.provider == "env":
        name = spec.key or key
        if name not in inherited:
            raise WorkflowError(
                f"secret {key} reads ${name} from the environment, but it is not set",
                location=where,
                hint=f"export {name} before running prodigyctl (for a job a git hook "
                "starts: name it in PRODIGY_HOOK_ENV too)",
            )
        return inherited[name]
    if spec.provider == "file":
        path = root / expand_path(spec.key or "", scope, inherited)
        try:
            return read_small_text(path).strip()
        except OSError as exc:
            raise WorkflowError(
                f"secret {key}: cannot read {path}: {failure_reason(exc)}", location=where
            ) from exc
    return spec.value or ""


def expand_path(text: str, scope: VariableStore, inherited: Mapping[str, str]) -> Path:
    """A path prodigy reads (env files, file secrets): `~` and `${VAR}` expanded."""
    return Path(expand_home(interpolate(text, scope, environment=inherited)))


def _read_env_file(
    entry: EnvFile,
    root: Path,
    scope: VariableStore,
    inherited: Mapping[str, str],
    workflow: Workflow,
    notes: list[str],
) -> dict[str, str]:
    """A dotenv file: `KEY=value`, `export KEY=value`, comments and quotes. A missing one
    is skipped (and said so) unless it is `required`."""
    path = root / expand_path(entry.path, scope, inherited)
    try:
        text = read_small_text(path)
    except FileNotFoundError:
        if not entry.required:
            notes.append(f"env file {path} does not exist; skipped")
            return {}
        raise WorkflowError(
            f"env file {path} does not exist (it is required)",
            location=_where(workflow, "env_files"),
        ) from None
    except OSError as exc:
        raise WorkflowError(
            f"env file {path} cannot be read: {failure_reason(exc)}",
            location=_where(workflow, "env_files"),
        ) from exc
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def is_root() -> bool:
    return os.geteuid() == 0
