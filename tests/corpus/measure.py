"""How much of the original prodigy's workflow language loads here: its workflow files and
the complete workflows among the YAML examples of its book (issue 12, "Done means").

    .venv/bin/python -m tests.corpus.measure PATH-TO-A-CHECKOUT-OF-iepathos/prodigy

A book example counts as complete when it is valid YAML and a whole workflow: a mapping
with `commands:`, `steps:` or `map:` (or `mode:` with `setup:`), or a list of steps. The
failures are grouped by their message, numbers and quoted words blanked out. Then the
undefined-variable warnings (prodigyd/workflow/load/references.py) of what loaded, one per
line: each is a false positive unless the example really uses a name nothing defines (an
upper-case name counts as the environment's, as a run with it set would).
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

import yaml

from prodigyd.errors import ProdigyError
from prodigyd.workflow.load import LoadedWorkflow, load_workflow, parse_workflow

_FENCE = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.M | re.S)
_STEP_KEYS = {"claude", "shell", "write_file", "foreach", "goal_seek", "test", "analyze"}


def complete(doc: object) -> bool:
    if isinstance(doc, dict):
        return any(k in doc for k in ("commands", "steps", "map")) or {"mode", "setup"} <= set(doc)
    if isinstance(doc, list) and doc and all(isinstance(x, dict) for x in doc):
        return any(_STEP_KEYS & set(x) for x in doc)
    return False


def reason(exc: Exception) -> str:
    message = exc.message if isinstance(exc, ProdigyError) else str(exc)
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "_", message.splitlines()[0])[:110]


def report(title: str, loaded: int, failures: dict[str, list[str]]) -> None:
    total = loaded + sum(len(names) for names in failures.values())
    print(f"{title}: {loaded}/{total} load")
    for why, names in sorted(failures.items(), key=lambda entry: -len(entry[1])):
        print(f"  {len(names):3} {why}  {names[:3]}")


def undefined(loaded: LoadedWorkflow) -> list[str]:
    """Its warnings about `${name}`s nothing defines, upper-case names taken as set in the
    environment."""
    return [entry.warning() for entry in loaded.undefined if not entry.env_like]


def main(root: Path) -> None:
    warnings: list[str] = []
    loaded, failures = 0, collections.defaultdict(list)
    for folder in ("workflows", "examples"):
        for path in sorted((root / folder).rglob("*.y*ml")):
            if "data" in path.relative_to(root).parts:
                continue
            try:
                warnings += undefined(load_workflow(path))
                loaded += 1
            except Exception as exc:
                failures[reason(exc)].append(path.name)
    report("workflow files", loaded, failures)
    loaded, failures = 0, collections.defaultdict(list)
    for page in sorted((root / "book/src").rglob("*.md")):
        for number, match in enumerate(_FENCE.finditer(page.read_text())):
            try:
                doc = yaml.safe_load(match.group(1))
            except yaml.YAMLError:
                continue
            if not complete(doc):
                continue
            name = f"{page.relative_to(root / 'book/src')}#{number}"
            try:
                warnings += undefined(parse_workflow(match.group(1), source=name))
                loaded += 1
            except Exception as exc:
                failures[reason(exc)].append(name)
    report("book examples", loaded, failures)
    print(f"undefined-variable warnings: {len(warnings)}")
    for warning in warnings:
        print(f"  {warning}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
