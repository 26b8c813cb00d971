"""What the daemon imports before it reports `ready`: its config, journal, socket and the
modules that serve requests, but not the engine, the workflow loader or built workflow
models, nor YAML: those come with the first job, or right after `ready` (main._warm_up)."""

from __future__ import annotations

import subprocess
import sys

from prodigyd import no_openssl

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


#: What a daemon would otherwise hold for good (resident memory, issue 15) for what it never
#: or seldom does: pydantic's plugin look-up and the version read through importlib.metadata
#: (with email, zipfile, csv), logging.handlers (with pickle) for the log's rotation,
#: difflib for a "did you mean"; OpenSSL's modules (prodigyd/no_openssl.py).
NEVER = (
    "importlib.metadata",
    "email",
    "zipfile",
    "csv",
    "pickle",
    "logging.handlers",
    "difflib",
    "ssl",
    "_ssl",
    *(("_hashlib",) if no_openssl._builtin_hashes() else ()),  # else hashlib needs it
)

WARM = f"""
import sys, tempfile
from pathlib import Path
for name in {SERVING!r}:
    __import__(name)
from prodigyd import main
for name in main._WARM_UP:
    __import__(name)
from prodigyd.api.schemas import SubmitParams
from prodigyd.workflow.model import Workflow
Workflow.model_rebuild()
SubmitParams.model_rebuild()
from prodigyd.version import version
version()
from prodigyd.logfile import RotatingLog
RotatingLog(Path(tempfile.mkdtemp()) / "prodigyd.log", 100).close()
print("\\n".join(sorted(sys.modules)))
"""


def test_a_warm_daemon_holds_no_module_it_does_not_use():
    modules = subprocess.run(
        [sys.executable, "-c", WARM], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "prodigyd.engine.session" in modules  # the probe did warm up
    assert [m for m in modules if any(m == h or m.startswith(h + ".") for h in NEVER)] == []


HANDOVER = """
import sys, threading
import prodigyd
from pydantic import BaseModel
from pydantic.plugin._loader import get_plugins
class Job(BaseModel):
    n: int
print(Job(n="3").n, list(get_plugins()), "importlib.metadata" in sys.modules)
stand_in = sys.modules["pydantic.plugin._loader"]
got = []
threads = [
    threading.Thread(target=lambda: got.append(stand_in.PYDANTIC_ENTRY_POINT_GROUP))
    for _ in range(8)
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sorted(set(got)), len(got), hasattr(stand_in, "no_such_name"))
print(sys.modules["pydantic.plugin._loader"] is not stand_in)
"""


def test_pydantic_finds_no_plugins_and_gets_any_other_name_from_its_own_loader():
    """Models build and validate with prodigy's stand-in, without importlib.metadata; a name
    a later pydantic might ask the loader for (here one it has) comes from pydantic's real
    module, put in the stand-in's place once, whichever of several threads asks first."""
    out = subprocess.run(
        [sys.executable, "-c", HANDOVER], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["3 [] False", "['pydantic'] 8 False", "True"]
