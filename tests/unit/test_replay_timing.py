"""`sessions replay`'s timing: offsets from the first event, and the pauses of a playback."""

from __future__ import annotations

from prodigyctl.commands.sessions import elapsed, offset, pauses


def test_offsets_count_from_the_first_event_and_never_go_back():
    events = [
        {"timestamp": "2026-01-01T10:00:00.000Z"},
        {"timestamp": "2026-01-01T10:00:00.512Z"},
        {"timestamp": "2026-01-01T09:59:00.000Z"},  # a clock set back between daemon runs
        {},  # no time: none passed
        {"timestamp": "2026-01-01T11:02:03.100Z"},
    ]
    assert elapsed(events) == [0.0, 0.512, 0.512, 0.512, 3723.1]
    assert [offset(t) for t in (0.0, 0.512, 123.1, 3723.1)] == [
        "+0.000s",
        "+0.512s",
        "+2m03.100s",
        "+1h02m03.100s",
    ]


def test_playback_pauses_scale_by_speed_and_are_cut_to_max_pause():
    times = [0.0, 1.0, 3.0, 1003.0]
    assert pauses(times, 0, None) == [0.0, 0.0, 0.0, 0.0]
    assert pauses(times, 2, None) == [0.0, 0.5, 1.0, 500.0]
    assert pauses(times, 2, 0.75) == [0.0, 0.5, 0.75, 0.75]
