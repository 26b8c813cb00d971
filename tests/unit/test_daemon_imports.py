"""What the daemon imports before it reports `ready`: its config, journal, socket and the
modules that serve requests, but not the engine, the workflow loader or built workflow
models, nor YAML: those come with the first job, or right after `ready` (main._warm_up)."""

from __future__ import annotations

import subprocess
import sys

#: Every module `prodigyd.main._serve` imports before it reports ready.
SERVING = (
    "prodigyd.main",
    "prodigyd.server",
    "prodigyd.scheduler",
    "prodigyd.api.handlers",
    "prodigyd.engine.context",
    "prodigyd.pool",
    "prodigyd.retention",
    "prodigyd.watch.gate",
    "prodigyd.watch.inbox",
    "prodigyd.watch.refwatch",
)

PROBE = f"""
import sys
for name in {SERVING!r}:
    __import__(name)
from prodigyd.workflow.model import Workflow
print("built" if Workflow.__pydantic_complete__ else "deferred")
print("\\n".join(sorted(sys.modules)))
"""

LATER = (
    "yaml",
    "prodigyd.workflow.load",
    "prodigyd.engine.admission",
    "prodigyd.engine.session",
    "prodigyd.engine.mapreduce.agent",  # the choice of runner (executors.py) is light; the
    "prodigyd.engine.mapreduce.runner",  # runners and what they run come later
    "prodigyd.engine.mapreduce.map_phase",
    "distributed",
)


def test_serving_imports_neither_the_engine_nor_the_workflow_loader():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "deferred"  # the workflow models are built by their first use
    early = [m for m in out[1:] if any(m == h or m.startswith(h + ".") for h in LATER)]
    assert early == []
