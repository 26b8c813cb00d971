"""The job environment (reference §2.14): what every child process of a session sees.

Precedence, lowest first: the submitting client's environment < `env_files` < global `env` <
`secrets` < the active profile < (per step) the step's `env`. Workflow-defined values are
also variables (`${NAME}`/`$NAME`); the inherited environment is not, so an unknown `$HOME`
is left for the shell to expand. Secret values are registered with the masker here, before
any of them can reach a log; one shorter than MIN_SECRET_LENGTH (but not empty: that hides
nothing) is refused here, at submission, since it could be neither masked nor shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prodigyd.engine.mask import MIN_SECRET_LENGTH, Masker
from prodigyd.errors import Location, WorkflowError
from prodigyd.files import failure_reason, read_small_text
from prodigyd.git.cli import AUTOMATION_VAR
from prodigyd.workflow.interpolate import VariableStore, interpolate
from prodigyd.workflow.model import EnvValue, SecretSpec, Workflow


@dataclass
class JobEnvironment:
    env: dict[str, str]  # the full environment for children
    workflow_values: dict[str, str]  # the workflow-defined part (also exposed as variables)


def compose(
    workflow: Workflow,
    *,
    inherited: Mapping[str, str],
    profile: str | None,
    files_root: Path,
    store: VariableStore,
    masker: Masker,
) -> JobEnvironment:
    """Build the session environment; raises WorkflowError naming the bad field."""
    values: dict[str, str] = {}
    scope = _with_environment(store, inherited)
    for name in workflow.env_files:
        values.update(_read_env_file(files_root / interpolate(name, scope), workflow))
    values.update(_expand(workflow.env, scope, masker, workflow, "env"))
    for key, spec in workflow.secrets.items():
        secret = _secret_value(key, spec, inherited, files_root, workflow)
        _add_secret(masker, secret, workflow, f"secrets.{key}", key)
        values[key] = secret
    if profile is not None:
        entries = _profile(workflow, profile)
        values.update(_expand(entries, scope, masker, workflow, f"profiles.{profile}"))
    env = {**inherited, **values, AUTOMATION_VAR: "true"}
    return JobEnvironment(env=env, workflow_values=values)


def _with_environment(store: VariableStore, inherited: Mapping[str, str]) -> VariableStore:
    """The scope env values are expanded in: the workflow's variables, falling back to the
    submitting environment, so `API_TOKEN: {secret: true, value: "${GITHUB_TOKEN}"}` is the
    token itself (and masked as such), not the text `${GITHUB_TOKEN}` for a shell to expand
    later, unmasked, wherever the variable is used."""
    scope = VariableStore()
    scope.update(inherited)
    scope.update(store.snapshot())
    return scope


def _expand(
    entries: Mapping[str, EnvValue],
    store: VariableStore,
    masker: Masker,
    workflow: Workflow,
    field: str,
) -> dict[str, str]:
    out = {}
    for key, entry in entries.items():
        value = interpolate(entry.value, store)
        if entry.secret:
            _add_secret(masker, value, workflow, f"{field}.{key}", key)
        out[key] = value
    return out


def _add_secret(masker: Masker, value: str, workflow: Workflow, field: str, key: str) -> None:
    """Mask `value` from now on; refuse it when it is too short to be masked (mask.py)."""
    if 0 < len(value) < MIN_SECRET_LENGTH:
        raise WorkflowError(
            f"secret {key} is only {len(value)} character(s) long; a secret needs at least "
            f"{MIN_SECRET_LENGTH}, since a shorter one cannot be masked",
            location=Location(workflow.source or "<workflow>", field=field),
            hint="use the real credential, or drop `secret: true` if it is not one",
        )
    masker.add(value, name=key)


def _profile(workflow: Workflow, name: str) -> Mapping[str, EnvValue]:
    profile = workflow.profiles.get(name)
    if profile is None:
        known = ", ".join(sorted(workflow.profiles)) or "none defined"
        raise WorkflowError(
            f"unknown profile {name!r} (profiles: {known})",
            location=Location(workflow.source or "<workflow>", field="profiles"),
        )
    return profile.env


def _secret_value(
    key: str, spec: SecretSpec, inherited: Mapping[str, str], root: Path, workflow: Workflow
) -> str:
    where = Location(workflow.source or "<workflow>", field=f"secrets.{key}")
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
        path = root / (spec.key or "")
        try:
            return read_small_text(path).strip()
        except OSError as exc:
            raise WorkflowError(
                f"secret {key}: cannot read {path}: {failure_reason(exc)}", location=where
            ) from exc
    return spec.value or ""


def _read_env_file(path: Path, workflow: Workflow) -> dict[str, str]:
    """A dotenv file: `KEY=value`, `export KEY=value`, comments and quotes."""
    try:
        text = read_small_text(path)
    except OSError as exc:
        raise WorkflowError(
            f"env file {path} cannot be read: {failure_reason(exc)}",
            location=Location(workflow.source or "<workflow>", field="env_files"),
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
