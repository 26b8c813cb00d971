"""`${trigger.*}`: what a triggered run knows of the git event that started it.

A trigger hands its run the event the way it hands it everything else of its occasion:
through the run's environment (watch/fire.py adds these variables to it). The environment
is kept with the job in the journal, so a resumed run still knows its event, and a queued
run that takes a newer event (watch/gate.py) takes its variables too. The engine reads
them back as `${trigger.event}`, `${trigger.ref}`, ... (engine/admission.py); a step's shell
sees them as PRODIGY_TRIGGER_EVENT, PRODIGY_TRIGGER_REF, ...

- `event`: `commit`, `push`, or for `on: ref` `created`, `updated`, `deleted`;
- `ref`: the full ref, `refs/heads/main` or `refs/tags/v1.2`;
- `before`, `after`: the ref's commit before and after (empty when it did not exist);
- `branch`, `tag`: the short name, the other one empty.
"""

from __future__ import annotations

from collections.abc import Mapping

#: variable name (after `trigger.`) → environment variable
NAMES = {
    name: f"PRODIGY_TRIGGER_{name.upper()}"
    for name in ("event", "ref", "before", "after", "branch", "tag")
}


def environment(**values: str | None) -> dict[str, str]:
    """The environment variables of one event; every name is set (empty when unknown), so a
    run never sees a stale value from the environment it inherited."""
    unknown = set(values) - set(NAMES)
    if unknown:
        raise ValueError(f"not trigger variables: {', '.join(sorted(unknown))}")
    return {env: values.get(name) or "" for name, env in NAMES.items()}


def variables(env: Mapping[str, str]) -> dict[str, str]:
    """`trigger.*` variables from a run's environment; none for a run no trigger started."""
    if NAMES["event"] not in env:
        return {}
    return {f"trigger.{name}": env.get(var, "") for name, var in NAMES.items()}
