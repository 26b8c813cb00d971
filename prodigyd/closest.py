"""The known word closest to a mistyped one, for a "did you mean".

One home for every suggestion (a configuration key, a workflow key, a command, a variable),
and the only importer of difflib: imported on a typo only, it no longer sits in every
daemon's memory (~0.3 MB resident, for an error path).
"""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The closest of `known` to `word` (difflib's ratio of at least `cutoff`), or None."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None
