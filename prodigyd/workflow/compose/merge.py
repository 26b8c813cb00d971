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

from prodigyd.workflow.load.nodes import Map, Seq


def overlay(base: object, top: object) -> object:
    """`top` over `base`: mappings deeply merged, anything else replaced."""
    if not (isinstance(base, Map) and isinstance(top, Map)):
        return top
    merged = Map(top.mark, top.source)
    for key in base:
        merged.copy_entry(base, key)
    for key in top:
        if key in base:
            merged.put(
                key, overlay(base[key], top[key]), top.key_marks.get(key), top.source_of(key)
            )
        else:
            merged.copy_entry(top, key)
    return merged


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
    merged = Map(into.mark, into.source)
    for key in imported:
        merged.copy_entry(imported, key)
    for key in into:
        if key in imported:
            value = include(imported[key], into[key])
            merged.put(key, value, into.key_marks.get(key), into.source_of(key))
        else:
            merged.copy_entry(into, key)
    return merged
