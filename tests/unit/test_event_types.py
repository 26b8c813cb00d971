"""docs/protocol.md, "Events", and the EventType enum that emitters, `run`'s renderer and
`events ls` share name the same event types: each member documented, nothing documented
that no one emits."""

from __future__ import annotations

import re
from pathlib import Path

from prodigyd.eventtypes import EventType

PROTOCOL = Path(__file__).parents[2] / "docs" / "protocol.md"


def documented() -> list[str]:
    """The event types in the first column of the tables under "## Events"."""
    section = PROTOCOL.read_text().split("\n## Events\n", 1)[1].split("\n## ", 1)[0]
    names = []
    for row in section.splitlines():
        if row.startswith("| `"):
            names += re.findall(r"`([a-z_]+)`", row.split("|")[1])
    return names


def test_protocol_md_lists_every_event_type_once_and_no_other():
    names = documented()
    types = {member.value for member in EventType}
    assert len(names) == len(set(names)), "an event type is listed twice"
    assert sorted(set(names) - types) == [], "documented, but no such event type"
    assert sorted(types - set(names)) == [], "event types docs/protocol.md misses"
