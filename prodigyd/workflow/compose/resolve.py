"""Resolving a composed workflow: the files it names, read and merged into one document.

For each file (the workflow, then each file it names, depth first):

1. `parameters:` are read onto one shape (params.normalize) and `workflows:` is taken as
   `sub_workflows:` (the original's struct spelled it `workflows`, its book `sub_workflows`);
2. `extends: BASE` (lists replaced, mappings merged: merge.overlay) and `template:` (the
   template instantiated: its `override:` laid over it, its `with:` values bound, then the
   file laid over it) are applied, then each of `imports:` (merge.include: the imported
   steps first, or only the `selective:` parts);
3. paths are relative to the file that names them; a name without a suffix is also looked
   for as NAME.yml, NAME.yaml, and in `bases/`, `templates/` and `workflows/` beside it,
   then (for `extends:` and `template:`) in the template registry.

A file that names a file on the way to it is a cycle, refused with the chain. Every file
read is recorded with its SHA-256 (`Resolver.files`), so a change to any of them changes the
workflow's fingerprint and resume refuses it like an edit of the workflow itself.
"""

from __future__ import annotations

from pathlib import Path

from prodigyd.errors import Location, WorkflowError
from prodigyd.workflow.compose import params
from prodigyd.workflow.compose.merge import include, overlay
from prodigyd.workflow.compose.registry import find as find_template
from prodigyd.workflow.load.diagnostics import Context, shown
from prodigyd.workflow.load.nodes import At, Map, Seq
from prodigyd.workflow.load.source import parse_text, read_source

#: The keys that name other files, resolved away here.
COMPOSITION_KEYS = ("imports", "extends", "template")
_IMPORT_KEYS = ("path", "alias", "selective")
_TEMPLATE_KEYS = ("name", "source", "with", "override")
_SEARCH = ("", "bases", "templates", "workflows")


class Resolver:
    """Reads and merges the files of one workflow; `files` are those read, with digests."""

    def __init__(self, ctx: Context, main: Path) -> None:
        self.ctx = ctx
        self.main = main
        self.files: dict[str, str] = {}

    def document(self, doc: object, file: Path, chain: tuple[Path, ...]) -> Map:
        """`doc` (read from `file`) with everything it names merged in."""
        doc = _as_mapping(doc, file)
        root = At.root(doc)
        _normalize(doc, root, self.ctx)
        own = Map(doc.mark, doc.source)
        for key in doc:
            if key not in COMPOSITION_KEYS:
                own.copy_entry(doc, key)
        result: object = own
        if doc.get("extends") is not None:
            at = root.key(doc, "extends")
            base = self._extends(doc["extends"], at, file, chain)
            result = overlay(base, result)
        if doc.get("template") is not None:
            result = self._template(doc["template"], root.key(doc, "template"), result, file, chain)
        if doc.get("imports") is not None:
            result = self._imports(doc["imports"], root.key(doc, "imports"), result, file, chain)
        assert isinstance(result, Map)
        return result

    def file(
        self, reference: object, at: At, file: Path, chain: tuple[Path, ...], what: str
    ) -> Map:
        """The document `reference` names (a path relative to `file`), resolved."""
        if not isinstance(reference, str) or not reference.strip():
            raise WorkflowError(
                f"expected a file path for {what}, got {shown(reference)}", location=self._where(at)
            )
        path = self.locate(reference, at, file, what)
        return self.load(path, at, chain)

    def load(self, path: Path, at: At, chain: tuple[Path, ...]) -> Map:
        """The document at `path`, resolved; `at` is where it was named."""
        if path in chain:
            raise WorkflowError(
                "cycle: " + " -> ".join(self._name(p) for p in (*chain, path)),
                location=self._where(at),
                hint="a workflow cannot include itself, directly or through other files",
            )
        try:
            text, digest = read_source(path)
            self.files[str(path)] = digest
            doc, _ = parse_text(text, str(path), self.ctx.deadline)
        except WorkflowError as exc:
            named = self._where(at)
            exc.hint = "\n".join(
                filter(None, [exc.hint, f"included from {named.file}:{named.line}"])
            )
            raise
        if not isinstance(doc, Map | Seq):
            raise WorkflowError(
                f"{path} is not a workflow (a mapping or a list of steps), got {shown(doc)}",
                location=self._where(at),
            )
        return self.document(doc, path, (*chain, path))

    def locate(
        self, reference: str, at: At, file: Path, what: str, *, registry: bool = False
    ) -> Path:
        """The file `reference` names from `file`'s folder (and the registry, if asked)."""
        folder = file.parent
        given = Path(reference).expanduser()
        tried = []
        for sub in _SEARCH if not given.suffix else ("",):
            for suffix in ("",) if given.suffix else ("", ".yml", ".yaml"):
                candidate = folder / sub / f"{given}{suffix}"
                tried.append(candidate)
                if candidate.is_file():
                    return candidate.resolve()
        if registry:
            template = find_template(reference, folder)
            if template is not None:
                return template.path.resolve()
        raise WorkflowError(
            f"{what} {reference!r}: no such file",
            location=self._where(at),
            hint="looked for "
            + ", ".join(str(path) for path in tried[:6])
            + (" and in the template registry" if registry else ""),
        )

    def _extends(self, reference: object, at: At, file: Path, chain: tuple[Path, ...]) -> Map:
        if not isinstance(reference, str) or not reference.strip():
            raise WorkflowError(
                f"expected a file path or template name, got {shown(reference)}",
                location=self._where(at),
            )
        return self.load(self.locate(reference, at, file, "extends:", registry=True), at, chain)

    def _template(
        self, raw: object, at: At, own: object, file: Path, chain: tuple[Path, ...]
    ) -> object:
        """The template instantiated (its override over it, its `with:` bound), `own` over it."""
        raw = self._entry(raw, at, "source", _TEMPLATE_KEYS)  # `template: NAME`, short
        source = raw.get("source")
        here = at.key(raw, "source")
        if isinstance(source, Map) and set(source) == {"registry"}:  # the spelled-out name
            here, source = here.key(source, "registry"), source["registry"]
        if isinstance(source, Map) and set(source) == {"url"}:
            here, source = here.key(source, "url"), str(source["url"])
        if isinstance(source, Map) and isinstance(source.get("file"), str):
            base = self.file(source["file"], here.key(source, "file"), file, chain, "template file")
        elif isinstance(source, str) and source.startswith(("http://", "https://", "url:")):
            raise WorkflowError(
                "templates from URLs are not supported",
                location=self._where(here),
                hint="download it and use source: {file: PATH}, "
                "or register it: prodigyctl template register",
            )
        elif isinstance(source, str) and source.strip():
            template = find_template(source, file.parent)
            if template is None:
                raise WorkflowError(
                    f"no template named {source!r} in the registry",
                    location=self._where(here),
                    hint="`prodigyctl template list` shows the registered ones; "
                    "a file is source: {file: PATH}",
                )
            base = self.load(template.path.resolve(), here, chain)
        else:
            raise WorkflowError(
                f"expected a template name or {{file: PATH}}, got {shown(source)}",
                location=self._where(here if source is not None else at),
            )
        if raw.get("override") is not None:
            if not isinstance(raw["override"], Map):
                raise WorkflowError(
                    f"expected a mapping of workflow keys, got {shown(raw['override'])}",
                    location=self._where(at.key(raw, "override")),
                )
            overridden = overlay(base, raw["override"])
            assert isinstance(overridden, Map)  # two mappings merge into one
            base = overridden
        merged = overlay(base, own)
        assert isinstance(merged, Map)
        if raw.get("with") is not None:
            self._bind(raw["with"], at.key(raw, "with"), base, merged)
        return merged

    def _bind(self, given: object, at: At, template: object, merged: Map) -> None:
        """A template's `with:` values as the defaults of its parameters (they beat the
        using file's own `defaults:`: they name this use of this template)."""
        if not isinstance(given, Map):
            raise WorkflowError(
                f"expected a mapping of NAME: value, got {shown(given)}", location=self._where(at)
            )
        declared = template.get("parameters") if isinstance(template, Map) else None
        defaults = merged.get("defaults")
        if not isinstance(defaults, Map):
            defaults = Map(at.mark, at.source)
            merged.put("defaults", defaults, at.mark, at.source)
        for name in given:
            if isinstance(declared, Map) and declared and name not in declared:
                raise WorkflowError(
                    f"the template declares no parameter {name!r} "
                    f"(it has: {', '.join(map(str, declared))})",
                    location=self._where(at.key(given, name)),
                )
            if given[name] is not None:  # `name: null` (as `template init` writes): not given
                defaults.copy_entry(given, name)

    def _imports(
        self, raw: object, at: At, into: object, file: Path, chain: tuple[Path, ...]
    ) -> object:
        if isinstance(raw, str | Map):
            single = Seq(at.mark, at.source)
            single.add(raw, at.mark, at.source)
            raw = single
        if not isinstance(raw, Seq):
            raise WorkflowError(
                f"expected a list of {{path, alias, selective}}, got {shown(raw)}",
                location=self._where(at),
            )
        imported_all: list[Map] = []
        for index, entry in enumerate(raw):
            here = at.index(raw, index)
            entry = self._entry(entry, here, "path", _IMPORT_KEYS)  # or just a path
            doc = self.file(entry.get("path"), here.key(entry, "path"), file, chain, "import")
            if entry.get("selective") is not None:
                doc = _selected(doc, entry["selective"], here.key(entry, "selective"), self)
            if entry.get("alias") is not None:
                doc = _aliased(doc, entry["alias"], here.key(entry, "alias"), self)
            imported_all.append(doc)
        result = into
        for imported in reversed(imported_all):  # the first import's steps come first
            result = include(imported, result)
        return result

    def _entry(self, raw: object, at: At, short: str, keys: tuple[str, ...]) -> Map:
        """An entry given as a mapping of `keys`, or as text alone: the value of `short`."""
        if isinstance(raw, str):
            entry = Map(at.mark, at.source)
            entry.put(short, raw, at.mark, at.source)
            raw = entry
        if not isinstance(raw, Map):
            raise WorkflowError(
                f"expected {{{', '.join(keys)}}} or a {short}, got {shown(raw)}",
                location=self._where(at),
            )
        self._only(raw, keys, at)
        return raw

    def _only(self, raw: Map, keys: tuple[str, ...], at: At) -> None:
        for key in raw:
            if key not in keys:
                raise WorkflowError(
                    f"unknown key '{key}' (expected {', '.join(keys)})",
                    location=self._where(at.key(raw, key)),
                )

    def _where(self, at: At) -> Location:
        return at.location(self.ctx.source)

    def _name(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.main.parent))
        except ValueError:
            return str(path)


def _as_mapping(doc: object, file: Path) -> Map:
    """A list of steps as `{commands: [...]}`, and `steps:` as `commands:`, so files of
    either shape merge."""
    if isinstance(doc, Seq):
        wrapped = Map(doc.mark, doc.source or str(file))
        wrapped.put("commands", doc, doc.mark, doc.source)
        return wrapped
    assert isinstance(doc, Map)
    if "steps" in doc and "commands" not in doc:
        renamed = Map(doc.mark, doc.source)
        for key in doc:
            if key == "steps":
                renamed.put("commands", doc[key], doc.key_marks.get(key), doc.source_of(key))
            else:
                renamed.copy_entry(doc, key)
        return renamed
    return doc


def _normalize(doc: Map, root: At, ctx: Context) -> None:
    """`parameters:` onto one shape; `workflows:` as `sub_workflows:`."""
    if "parameters" in doc:
        here = root.key(doc, "parameters")
        doc.put(
            "parameters", params.normalize(doc["parameters"], here, ctx), here.mark, here.source
        )
    if "workflows" in doc:
        here = root.key(doc, "workflows")
        if "sub_workflows" in doc:
            raise WorkflowError(
                "both workflows: and sub_workflows: are given "
                "(workflows: is another name for sub_workflows:)",
                location=here.location(ctx.source),
            )
        doc.put("sub_workflows", doc.pop("workflows"), here.mark, here.source)


def _selected(doc: Map, raw: object, at: At, resolver: Resolver) -> Map:
    """Only the named parts of an imported file: sub-workflows and parameters by name,
    steps by `id`, `name` or index (as the original took them)."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise WorkflowError(
            f"expected a list of names, got {shown(raw)}", location=resolver._where(at)
        )
    kept = Map(doc.mark, doc.source)
    listed = doc.get("commands")
    steps = listed if isinstance(listed, Seq) else Seq(None)
    chosen = Seq(steps.mark, steps.source)
    for index, name in enumerate(raw):
        here = at.index(raw, index)
        found = False
        for part in ("sub_workflows", "parameters"):
            section = doc.get(part)
            if isinstance(section, Map) and name in section:
                target = kept.get(part)
                if not isinstance(target, Map):
                    target = Map(section.mark, section.source)
                    kept.put(part, target, doc.key_marks.get(part), doc.source_of(part))
                target.copy_entry(section, name)
                found = True
        for position, step in enumerate(steps):
            named = isinstance(step, Map) and name in (step.get("id"), step.get("name"))
            if named or str(name) == str(position):
                chosen.add(
                    step,
                    steps.item_marks[position] if position < len(steps.item_marks) else None,
                    steps.source_of(position),
                )
                found = True
        if not found:
            raise WorkflowError(
                f"{name!r} is not a step id or name, sub-workflow or parameter of {doc.source}",
                location=resolver._where(here),
                hint=_available(doc, steps),
            )
    if chosen:
        kept.put("commands", chosen, doc.key_marks.get("commands"), doc.source_of("commands"))
    return kept


def _available(doc: Map, steps: Seq) -> str:
    names = [
        str(step.get("id") or step.get("name"))
        for step in steps
        if isinstance(step, Map) and (step.get("id") or step.get("name"))
    ]
    for part in ("sub_workflows", "parameters"):
        section = doc.get(part)
        if isinstance(section, Map):
            names.extend(str(key) for key in section)
    return "it has: " + (
        ", ".join(names) if names else "no named steps, sub-workflows or parameters"
    )


def _aliased(doc: Map, alias: object, at: At, resolver: Resolver) -> Map:
    """An alias namespaces what an import brings that has a name: its sub-workflows become
    ALIAS.NAME (their outputs ${ALIAS.NAME.OUTPUT}), so two imports may use one name."""
    if not isinstance(alias, str) or not alias.strip() or "." in alias:
        raise WorkflowError(
            f"expected an alias without dots, got {shown(alias)}", location=resolver._where(at)
        )
    subs = doc.get("sub_workflows")
    if not isinstance(subs, Map):
        return doc
    renamed = Map(subs.mark, subs.source)
    for name in subs:
        renamed.put(f"{alias}.{name}", subs[name], subs.key_marks.get(name), subs.source_of(name))
    result = Map(doc.mark, doc.source)
    for key in doc:
        result.copy_entry(doc, key)
    result.put(
        "sub_workflows", renamed, doc.key_marks.get("sub_workflows"), doc.source_of("sub_workflows")
    )
    return result
