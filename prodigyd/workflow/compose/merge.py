"""How two workflow documents become one, on the positioned data (load/nodes.py), so that
every key and step keeps the file and line it was written at and an error in an included
file names that file.

Two rules, as the original documents them (and as it implemented neither fully):

- `overlay(base, top)` (`extends:`, a `template:`, a template's `override:`): mappings merge
  key by key, deeply; anything else in `top` replaces the base's, lists included (a child's
  `commands:` replace its base's).
- `include(imported, into)` (`imports:`): lists are joined, the imported items first (an
  imported setup step runs before the importing file's steps); mappings merge key by key,
  the importing file winning; a scalar of the importing file wins.
"""

from __future__ import annotations

from collections.abc import Callable

from prodigyd.workflow.load.nodes import Map, Seq


def overlay(base: object, top: object) -> object:
    """`top` over `base`: mappings deeply merged, anything else replaced."""
    if not (isinstance(base, Map) and isinstance(top, Map)):
        return top
    return _merged(base, top, overlay)


def include(imported: object, into: object) -> object:
    """`imported` into `into`: lists joined (imported first), mappings merged (`into` wins)."""
    if isinstance(imported, Seq) and isinstance(into, Seq):
        joined = Seq(into.mark, into.source)
        for seq in (imported, into):
            for index, item in enumerate(seq):
                mark = seq.item_marks[index] if index < len(seq.item_marks) else None
                joined.add(item, mark, seq.source_of(index))
        return joined
    if not (isinstance(imported, Map) and isinstance(into, Map)):
        return into
    return _merged(imported, into, include)


def _merged(under: Map, over: Map, merge: Callable[[object, object], object]) -> Map:
    """`under`'s entries, then `over`'s: a key both have takes `merge(under's, over's)`,
    at `over`'s place in its file."""
    merged = Map(over.mark, over.source)
    for key in under:
        merged.copy_entry(under, key)
    for key in over:
        if key in under:
            value = merge(under[key], over[key])
            merged.put(key, value, over.key_marks.get(key), over.source_of(key))
        else:
            merged.copy_entry(over, key)
    return merged
