"""docs/protocol.md names every field of the records the daemon returns, as the
models in prodigyd/store have them: a field added to a model without its docs fails here."""

from __future__ import annotations

import re
from pathlib import Path

from prodigyd.store.sessions import SessionRecord

PROTOCOL = Path(__file__).parents[2] / "docs" / "protocol.md"


def test_sessions_show_lists_every_field_of_a_session_record():
    shown = PROTOCOL.read_text().split("### `sessions.show`", 1)[1]
    listed = shown[shown.index("The record has `") : shown.index("`; `completed` lists")]
    missing = set(SessionRecord.model_fields) - set(re.findall(r"[a-z_0-9]+", listed))
    assert missing == set(), "fields docs/protocol.md's sessions.show misses"
