"""Composed workflows: one workflow made of several files (imports, extends, templates),
with parameters, defaults and sub-workflows.

The loader (load/__init__.py) reads the workflow file, and `compose` turns its document
into the one it stands for before the usual parsers build it: resolve.py reads and merges
the files it names (merge.py: how two documents merge, positions kept, so an error in an
included file names that file and line), params.py reads the parameter declarations and
checks values, subflows.py makes the sub-workflows steps, registry.py is the template
registry. What the engine runs is an ordinary Workflow; the only runtime part is the
`sub_workflow` step kind (engine/commands/sub_workflow.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prodigyd.workflow.compose import params
from prodigyd.workflow.compose.resolve import Resolver
from prodigyd.workflow.compose.subflows import sub_workflows
from prodigyd.workflow.load.nodes import At, Map
from prodigyd.workflow.model import Step, Workflow

__all__ = ["Composition", "Resolver", "compose"]


@dataclass
class Composition:
    """The resolved document (parameters and defaults built, in place of their YAML), and
    the sub-workflow steps that run before its own."""

    doc: Map
    lead: tuple[Step, ...]


def compose(doc: Map, resolver: Resolver, file: Path) -> Composition:
    """The workflow file's document `doc` resolved."""
    return _finish(resolver.document(doc, file, (file,)), resolver, file, (file,))


def _finish(resolved: Map, resolver: Resolver, file: Path, chain: tuple[Path, ...]) -> Composition:
    """A resolved document's sub-workflows as steps, its parameters and defaults built."""
    ctx = resolver.ctx
    root = At.root(resolved)
    lead: tuple[Step, ...] = ()
    if "sub_workflows" in resolved:
        at = root.key(resolved, "sub_workflows")
        lead = sub_workflows(resolved.pop("sub_workflows"), at, resolver, file, chain, _build_sub)
    if "parameters" in resolved or "defaults" in resolved:
        specs = resolved.get("parameters")
        parameters, defaults = params.build(
            specs if isinstance(specs, Map) else Map(None),
            resolved.get("defaults"),
            root.key(resolved, "parameters"),
            root.key(resolved, "defaults"),
            ctx,
        )
        for key, value in (("parameters", parameters), ("defaults", defaults)):
            resolved.put(key, value, resolved.key_marks.get(key), resolved.source_of(key))
    return Composition(resolved, lead)


def _build_sub(doc: Map, resolver: Resolver, file: Path, chain: tuple[Path, ...]) -> Workflow:
    """A sub-workflow's resolved file as a Workflow (its own sub-workflows first)."""
    from prodigyd.workflow.load.document import standard_workflow

    composition = _finish(doc, resolver, file, chain)
    return standard_workflow(composition.doc, resolver.ctx, lead=composition.lead)
