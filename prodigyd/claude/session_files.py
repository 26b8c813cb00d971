"""The Claude CLI's files for one conversation: where it keeps them, and deleting them.

The CLI saves every conversation it runs (measured on 2.1.332, deps-probe §5) so that
`claude --resume <id>` can continue it: the transcript
`<config>/projects/<cwd, each non-alphanumeric character made ->/<id>.jsonl` (~150 KB for
a short run with tools), beside it a folder `<id>/` when subagents ran, and an empty
`<config>/session-env/<id>/`; `<config>` is `$CLAUDE_CONFIG_DIR`, else `$HOME/.claude`.
Nothing ever deletes them, so prodigy removes those of the conversations it started once
they cannot be resumed (engine/claude_sessions.py decides when).

Only files named by a session id prodigy made are touched, and a folder only when it is
left empty: nothing the user or another tool made there is deleted.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

#: A session id as prodigy makes them (uuid4): checked before it becomes part of a path,
#: since the ids come back from a journal on disk.
SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def config_dir(env: Mapping[str, str]) -> Path:
    """The folder the CLI keeps its state in, for a claude run with environment `env`."""
    configured = env.get("CLAUDE_CONFIG_DIR")
    if configured:
        return Path(configured)
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".claude"


def prune(config: Path, session_id: str) -> int:
    """Delete the CLI's files of conversation `session_id` under `config`; returns how
    many transcripts were removed. The transcript's project folder (and the empty
    `memory/` the CLI makes in it) goes too when nothing else is left in it."""
    if not SESSION_ID.fullmatch(session_id):
        return 0
    removed = 0
    projects = config / "projects"
    for transcript in projects.glob(f"*/{session_id}.jsonl"):
        project = transcript.parent
        transcript.unlink(missing_ok=True)
        removed += 1
        shutil.rmtree(project / session_id, ignore_errors=True)
        for folder in (project / "memory", project):
            _remove_if_empty(folder)
    shutil.rmtree(config / "session-env" / session_id, ignore_errors=True)
    return removed


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (kept), or already gone
        pass
