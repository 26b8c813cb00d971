"""`template register|list|show|delete|search|validate|init`: the workflow template registry.

Templates are files, kept in `$PRODIGY_HOME/templates/` (the user's) or a repository's
`.prodigy/templates/` (`--repo`), with their metadata in `NAME.meta.json` beside them
(prodigyd.workflow.compose.registry). No daemon is needed: these commands read and write
those folders directly, and a workflow names a template with `template: {source: NAME}`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from prodigyctl.client import dumps, is_tty
from prodigyctl.commands import command, group
from prodigyctl.errors import fail
from prodigyctl.exitcodes import EXIT_CONFLICT, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from prodigyctl.options import json_option
from prodigyd import errorcodes

template = group("template", "Workflow templates: register, find and use reusable workflows.")

repo_option = click.option(
    "--repo",
    "in_repo",
    is_flag=True,
    help="The repository's registry (.prodigy/templates/), not the user's.",
)


@command("register", template)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-n", "--name", help="Its name (default: the file's name without suffix).")
@click.option("-d", "--description", help="What it does.")
@click.option("--version", "version_", metavar="VERSION", help="Its version (e.g. 1.0.0).")
@click.option("--tags", help="Comma-separated tags, for list --tag and search.")
@click.option("--author", help="Who wrote it.")
@repo_option
@click.option("--force", is_flag=True, help="Replace a template of that name.")
@json_option
def register(
    *,
    file: str,
    name: str | None,
    description: str | None,
    version_: str | None,
    tags: str | None,
    author: str | None,
    in_repo: bool,
    force: bool,
    as_json: bool,
) -> int:
    """Copy FILE into the registry as a template, after checking that it loads there."""
    from prodigyd.clock import now_iso
    from prodigyd.errors import ProdigyError
    from prodigyd.store.atomic import write_bytes_atomic, write_json_atomic
    from prodigyd.workflow.compose import registry
    from prodigyd.workflow.load import load_workflow

    source = Path(file)
    name = name or source.stem
    if not registry.NAME.match(name):
        fail(
            errorcodes.USAGE,
            f"{name!r} is not a template name (letters, digits, '.', '_', '-')",
            EXIT_USAGE,
        )
    try:
        data = source.read_bytes()
    except OSError as exc:
        fail(errorcodes.USAGE, f"cannot read {file}: {exc.strerror or exc}", EXIT_USAGE)
    folder = _registry_dir(in_repo)
    if folder is None:
        fail(errorcodes.USAGE, "--repo: not inside a git repository", EXIT_USAGE)
    suffix = ".json" if source.suffix == ".json" else ".yml"
    target = folder / f"{name}{suffix}"
    existing = registry.find(name, Path.cwd())
    if existing is not None and existing.path.parent == folder and not force:
        fail(
            errorcodes.CONFLICT,
            f"template {name!r} exists ({existing.path}); --force replaces it",
            EXIT_CONFLICT,
        )
    previous = registry.read_meta(target)
    # checked where it will be kept (its includes resolve from there), under a name no
    # lookup finds: a template it would replace stays until it has loaded
    staged = folder / f".{name}.registering-{os.getpid()}{suffix}"
    write_bytes_atomic(staged, data, mode=0o644)
    try:
        loaded = load_workflow(staged)
    except ProdigyError as exc:
        staged.unlink(missing_ok=True)
        said = exc.render().replace(str(staged.resolve()), file)  # the file the user has
        fail(
            exc.code, f"{file} is not a valid template where it would be kept:\n{said}", EXIT_FAILED
        )
    for other in registry.SUFFIXES:
        if other != suffix:
            (folder / f"{name}{other}").unlink(missing_ok=True)
    os.replace(staged, target)
    now = now_iso()
    meta = {
        "name": name,
        "description": description or loaded.workflow.description,
        "version": version_,
        "tags": [tag.strip() for tag in (tags or "").split(",") if tag.strip()],
        "author": author,
        "created_at": previous.get("created_at") or now,
        "updated_at": now,
        "registered_from": str(source.absolute()),
    }
    write_json_atomic(registry.meta_file(target), meta)
    if as_json:
        click.echo(dumps({**meta, "path": str(target)}))
    else:
        click.echo(f"Registered template {name} ({target})")
    return EXIT_OK


@command("list", template)
@click.option("-t", "--tag", help="Only templates with this tag.")
@click.option("-l", "--long", "long_", is_flag=True, help="Version, tags, place and description.")
@json_option
def list_templates(*, tag: str | None, long_: bool, as_json: bool) -> int:
    """The templates this repository and you have registered (the repository's first)."""
    from prodigyd.workflow.compose import registry

    found = [t.summary() for t in registry.listing(Path.cwd())]
    if tag:
        found = [t for t in found if tag in t["tags"]]
    _show_list(found, long_=long_, as_json=as_json, empty="No templates.")
    return EXIT_OK


@command("search", template)
@click.argument("query")
@click.option("-t", "--by-tag", is_flag=True, help="Match QUERY against tags only.")
@json_option
def search(*, query: str, by_tag: bool, as_json: bool) -> int:
    """Templates whose name, description or tags contain QUERY (any case)."""
    from prodigyd.workflow.compose import registry

    words = query.lower().split()

    def matches(summary: dict[str, Any]) -> bool:
        tags = [t.lower() for t in summary["tags"]]
        if by_tag:
            return all(word in tags for word in words)
        text = " ".join([summary["name"], summary["description"] or "", *tags]).lower()
        return all(word in text for word in words)

    found = [t.summary() for t in registry.listing(Path.cwd())]
    _show_list(
        [t for t in found if matches(t)],
        long_=False,
        as_json=as_json,
        empty=f"No templates match {query!r}.",
    )
    return EXIT_OK


@command("show", template)
@click.argument("name")
@json_option
def show(*, name: str, as_json: bool) -> int:
    """A template's metadata, its parameters and its text."""
    from prodigyd.errors import ProdigyError
    from prodigyd.workflow.compose import registry
    from prodigyd.workflow.load import load_workflow

    found = registry.find(name, Path.cwd())
    if found is None:
        fail(errorcodes.NOT_FOUND, f"no template named {name!r}", EXIT_NOT_FOUND)
    text = found.path.read_text(errors="replace")
    try:
        parameters = {
            key: spec.model_dump()
            for key, spec in load_workflow(found.path).workflow.parameters.items()
        }
        problem = None
    except ProdigyError as exc:
        parameters, problem = {}, exc.render()
    if as_json:
        click.echo(
            dumps({**found.summary(), "parameters": parameters, "text": text, "error": problem})
        )
        return EXIT_OK
    summary = found.summary()
    click.echo(f"{summary['name']} ({summary['scope']}: {summary['path']})")
    for key in ("description", "version", "author", "updated_at"):
        if summary[key]:
            click.echo(f"  {key}: {summary[key]}")
    if summary["tags"]:
        click.echo(f"  tags: {', '.join(summary['tags'])}")
    if problem:
        click.echo(f"  does not load: {problem}")
    for key, spec in parameters.items():
        flag = (
            "required"
            if spec["required"] and spec["default"] is None
            else f"default {spec['default']!r}"
        )
        about = f" - {spec['description']}" if spec["description"] else ""
        click.echo(f"  parameter {key} ({spec['type']}, {flag}){about}")
    click.echo("")
    click.echo(text.rstrip("\n"))
    return EXIT_OK


@command("delete", template)
@click.argument("name")
@repo_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask.")
def delete(*, name: str, in_repo: bool, yes: bool) -> int:
    """Remove template NAME (and its metadata) from the user's registry, or the repository's."""
    from prodigyd.workflow.compose import registry

    folder = _registry_dir(in_repo)
    paths = (
        [p for p in (folder / f"{name}{s}" for s in registry.SUFFIXES) if p.is_file()]
        if folder
        else []
    )
    if not paths or not registry.NAME.match(name):
        where = "the repository's registry" if in_repo else "your registry"
        fail(errorcodes.NOT_FOUND, f"no template named {name!r} in {where}", EXIT_NOT_FOUND)
    if not yes:
        if not is_tty():
            fail(
                errorcodes.USAGE,
                "delete asks first: give --yes to delete without asking",
                EXIT_USAGE,
            )
        click.confirm(f"Delete template {name} ({paths[0]})?", abort=True)
    for path in paths:
        registry.meta_file(path).unlink(missing_ok=True)
        path.unlink()
    click.echo(f"Deleted template {name}")
    return EXIT_OK


@command("validate", template)
@click.argument("target")
@json_option
def validate(*, target: str, as_json: bool) -> int:
    """Check a template (a file, or a registered NAME) and list its parameters."""
    from prodigyd.errors import ProdigyError
    from prodigyd.workflow.compose import registry
    from prodigyd.workflow.load import load_workflow

    path = Path(target)
    if not path.is_file():
        found = registry.find(target, Path.cwd())
        if found is None:
            fail(
                errorcodes.NOT_FOUND,
                f"{target}: no such file or registered template",
                EXIT_NOT_FOUND,
            )
        path = found.path
    try:
        loaded = load_workflow(path.absolute())
    except ProdigyError as exc:
        if as_json:
            click.echo(
                dumps({"path": str(path.absolute()), "valid": False, "error": exc.to_dict()})
            )
        else:
            click.echo(f"✗ Template has issues: {path.absolute()}")
            click.echo("  " + exc.render().replace("\n", "\n  "))
        return EXIT_FAILED
    parameters = {key: spec.model_dump() for key, spec in loaded.workflow.parameters.items()}
    if as_json:
        click.echo(
            dumps(
                {
                    "path": str(path.absolute()),
                    "valid": True,
                    "warnings": loaded.warnings,
                    "parameters": parameters,
                    "includes": sorted(loaded.includes),
                }
            )
        )
        return EXIT_OK
    click.echo(f"✓ Template is valid: {path.absolute()}")
    for warning in loaded.warnings:
        click.echo(f"  warning: {warning}")
    for key, spec in parameters.items():
        needed = "required" if spec["required"] and spec["default"] is None else "optional"
        click.echo(f"  parameter {key}: {spec['type']}, {needed}")
    return EXIT_OK


@command("init", template)
@click.argument("name")
@click.option(
    "-o", "--output", metavar="FILE", help="Write here (default: NAME.yml); never over a file."
)
def init(*, name: str, output: str | None) -> int:
    """Write a workflow that uses template NAME, with a `with:` entry per parameter."""
    from prodigyd.errors import ProdigyError
    from prodigyd.workflow.compose import registry
    from prodigyd.workflow.load import load_workflow

    found = registry.find(name, Path.cwd())
    if found is None:
        fail(errorcodes.NOT_FOUND, f"no template named {name!r}", EXIT_NOT_FOUND)
    try:
        parameters = load_workflow(found.path).workflow.parameters
    except ProdigyError as exc:
        fail(exc.code, f"template {name} does not load:\n{exc.render()}", EXIT_FAILED)
    target = Path(output or f"{name}.yml")
    lines = [f"name: {name}", "template:", f"  name: {name}", f"  source: {name}"]
    if parameters:
        lines.append("  with:")
    for key, spec in parameters.items():
        about = f"  # {spec.description}" if spec.description else ""
        if spec.default is None:
            lines.append(
                f"    {key}: null  # required ({spec.type}): fill in{about.replace('  #', ';')}"
            )
        else:
            lines.append(f"    {key}: {dumps(spec.default)}{about}")
    try:
        with target.open("x", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
    except FileExistsError:
        fail(errorcodes.USAGE, f"{target} exists; choose another --output", EXIT_USAGE)
    except OSError as exc:
        fail(errorcodes.USAGE, f"cannot write {target}: {exc.strerror or exc}", EXIT_USAGE)
    click.echo(f"Wrote {target}: run it with `prodigyctl run {target}`")
    return EXIT_OK


def _registry_dir(in_repo: bool) -> Path | None:
    from prodigyd import paths
    from prodigyd.workflow.compose import registry

    if not in_repo:
        return paths.templates_dir()
    top = registry.repo_top(Path.cwd())
    return top / registry.REPO_TEMPLATES if top is not None else None


def _show_list(found: list[dict[str, Any]], *, long_: bool, as_json: bool, empty: str) -> None:
    if as_json:
        click.echo(dumps(found))
        return
    if not found:
        click.echo(empty)
        return
    for entry in found:
        about = entry["description"] or ""
        if long_:
            tags = ",".join(entry["tags"]) or "-"
            version = entry["version"] or "-"
            click.echo(f"{entry['name']:<24} {version:<10} {entry['scope']:<5} {tags:<20} {about}")
        else:
            click.echo(f"{entry['name']:<24} {about}".rstrip())
