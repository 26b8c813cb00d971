"""Workflows submitted as text (`jobs.submit` `workflow_text`), kept as files in the store.

A session names its workflow by path: resume re-reads it, checks its sha256 and shows its
line numbers in errors. So text sent inline is written once to
`$PRODIGY_HOME/workflows/inline-<sha256 prefix>.yml`, durably, before the job that uses
it is acknowledged, and from then on it is a workflow file like any other. The name is
content-addressed: the same text (the same `prodigyctl exec` command, say) is one file,
and a file is never rewritten under a session that uses it. Nothing deletes them: they
are small, and an old session may still be resumed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from prodigyd import paths
from prodigyd.store.atomic import write_bytes_atomic


def store(text: str) -> Path:
    """The file holding `text`, written now if it is new."""
    data = text.encode()
    path = paths.inline_workflow_file(hashlib.sha256(data).hexdigest()[:16])
    if not path.is_file() or path.read_bytes() != data:
        write_bytes_atomic(path, data)
    return path
