"""Which keys a mapping in a workflow file may have, and what happens to the others.

The keys come from the models (`model_keys`): a field added to `Step` or `MapSpec` is a key
the loader accepts, passes on and suggests in "did you mean", with nothing else to edit.
Only where the YAML spells a field differently (`validate:` for `validation`, `commands:`
for a phase's `steps`), or the loader fills a field in itself (a step's `kind` and `line`),
does a parser say so, next to the code that does it.

Every key nobody uses is reported: a silently ignored typo (the original's behaviour) is a
feature that silently does nothing. It is a warning, or with `strict` an error; both
suggest the closest known key, or, for a key of another place, say where it belongs
(places.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel

from prodigyd import errorcodes
from prodigyd.closest import closest
from prodigyd.workflow.load.diagnostics import Context
from prodigyd.workflow.load.nodes import At, Map


def model_keys(
    model: type[BaseModel],
    *,
    spelled: Mapping[str, str] | None = None,
    unwritten: Collection[str] = (),
    extra: Collection[str] = (),
) -> tuple[str, ...]:
    """The YAML keys of `model`, in field order: each field by its alias or name, or as
    `spelled` (field -> YAML key) says; not the `unwritten` fields, which the loader fills
    in or reads from elsewhere; then the `extra` keys that only the YAML has."""
    spelled = spelled or {}
    keys = [
        spelled.get(name, info.alias or name)
        for name, info in model.model_fields.items()
        if name not in unwritten
    ]
    return tuple(dict.fromkeys((*keys, *extra)))  # fields spelled alike are one key


def known_entries(
    raw: Map,
    keys: Collection[str],
    at: At,
    ctx: Context,
    *,
    ignored: Mapping[str, str] | None = None,
    strict: str | None = None,
) -> dict[str, Any]:
    """The entries of `raw` whose keys are in `keys`; `ignored` keys (features that were
    removed) are warned about with their reason, every other key is unknown_key (an error
    even without --strict when `strict` gives the hint saying why)."""
    kept: dict[str, Any] = {}
    for key, value in raw.items():
        if key in keys:
            kept[key] = value
        elif ignored and key in ignored:
            ctx.warn(f"'{key}' in {at.name} is ignored: {ignored[key]}", at.key(raw, key))
        else:
            unknown_key(key, keys, at.key(raw, key), at.name, ctx, strict=strict)
    return kept


def unknown_key(
    key: object,
    keys: Collection[str],
    at: At,
    where: str,
    ctx: Context,
    *,
    strict: str | None = None,
) -> None:
    """`key` in `where`, none of its `keys`: where it belongs, if another place has it, or
    the closest of `keys`; an error with --strict or `strict` (the hint saying why)."""
    # here, not at the top: places.py reads the keys of every parser, which import this
    from prodigyd.workflow.load.places import home_of

    home = home_of(key)
    said = f"'{key}' belongs {home}, not in {where}" if home else f"unknown key '{key}' in {where}"
    suggestion = "" if home else did_you_mean(key, keys)
    if strict is not None or ctx.strict:
        hint = strict or "remove it or fix its spelling (without --strict it is only a warning)"
        ctx.problem(said + suggestion, at, hint=hint, code=errorcodes.UNKNOWN_FIELD)
    else:
        ctx.warn(f"{said} (ignored){suggestion}", at)


def did_you_mean(key: object, keys: Collection[str]) -> str:
    """`; did you mean 'name'?` when `key` looks like a misspelling of one of `keys`, else ''."""
    close = closest(str(key), keys)
    return f"; did you mean '{close}'?" if close else ""
