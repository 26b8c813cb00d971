"""Where each key of a workflow belongs, for an unknown key that is another place's own.

Such a key is told where it goes (`'max_failures' belongs at the top level of a MapReduce
workflow or under error_policy:, not in map`) rather than given a did-you-mean, which for
a key written in the wrong place is at best weak and at worst misleading (`max_items`).

The original's book writes some keys where its parser never read them: `error_policy:`
and `on_item_failure:` under `map:`, `max_attempts:` and `fail_workflow:` beside a step's
`on_failure:` instead of under it. Its serde structs (MapPhaseYaml, WorkflowStep) have
neither an alias nor a flatten for them, nor deny_unknown_fields: it loaded such files
and ignored those keys without a word, and one of its own workflows
(documentation-maintain.yml) has a step-level `fail_workflow:`. So they are read as
unknown keys are, a warning (an error with --strict), which says where the key belongs.

The places' keys are the parsers' own, read here when a key is unknown (keys.py imports
this then: every parser is loaded by that time, and they all import keys.py).
"""

from __future__ import annotations

from prodigyd.workflow.load.document import TOP_KEYS
from prodigyd.workflow.load.mapreduce import MAP_KEYS, MAPREDUCE_KEYS, POLICY_KEYS
from prodigyd.workflow.load.retry import RETRY_KEYS
from prodigyd.workflow.load.steps import ALL_STEP_KEYS, CONTROL_KEYS

#: How a message names each place, and its keys.
_PLACES = (
    ("at the top level of the workflow", tuple(k for k in TOP_KEYS if k in MAPREDUCE_KEYS)),
    (
        "at the top level of a MapReduce workflow",
        tuple(k for k in MAPREDUCE_KEYS if k not in TOP_KEYS),
    ),
    ("in a step", ALL_STEP_KEYS),
    ("under on_failure:", CONTROL_KEYS),
    ("under retry:", RETRY_KEYS),
    ("under error_policy:", POLICY_KEYS),
    ("under map:", MAP_KEYS),
)


def home_of(key: object) -> str | None:
    """Where `key` belongs (`under on_failure: or under retry:`), or None: no place has it."""
    found = [where for where, keys in _PLACES if key in keys]
    if len(found) < 2:
        return found[0] if found else None
    return f"{', '.join(found[:-1])} or {found[-1]}"
