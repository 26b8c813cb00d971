"""Workflows submitted as text (`jobs.submit` `workflow_text`), kept as files in the store.

A session names its workflow by path: resume re-reads it, checks its sha256 and shows its
line numbers in errors. So text sent inline is written once to
`$PRODIGY_HOME/workflows/inline-<sha256 prefix>.yml`, durably, before the job that uses
it is acknowledged, and from then on it is a workflow file like any other. The name is
content-addressed: the same text (the same `prodigyctl exec` command, say) is one file,
and a file is never rewritten under a session that uses it. The retention policy
(prodigyd/retention.py) deletes one no session refers to any more, once it has not been
submitted for an hour: submitting the same text again touches the file, since its job is
recorded a moment after it is stored.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from prodigyd import paths
from prodigyd.store.atomic import write_bytes_atomic


def store(text: str) -> Path:
    """The file holding `text`, written now if it is new."""
    data = text.encode()
    path = paths.inline_workflow_file(hashlib.sha256(data).hexdigest()[:16])
    if not path.is_file() or path.read_bytes() != data:
        write_bytes_atomic(path, data)
    else:
        os.utime(path)
    return path
