"""`init`: install the Claude commands a repository's workflows use, from shipped templates.

A `claude: /prodigy-lint src` step runs Claude Code's slash command `prodigy-lint`, which
Claude reads from `.claude/commands/prodigy-lint.md` in the repository. `init` writes the
ones prodigy ships (prodigyctl/claude_commands/) for the commands the workflows name, and
never replaces a file the user has (their edits win) unless `--force`. Works without the
daemon: it only reads workflow files and writes into the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from prodigyctl.client import dumps
from prodigyctl.commands import command
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import json_option, note, path_option

TEMPLATES = Path(__file__).resolve().parent.parent / "claude_commands"

#: Where `init` looks for workflows when none are named (relative to the repository).
WORKFLOW_PLACES = (".prodigy/workflows", "workflows", ".")


def shipped() -> dict[str, Path]:
    """Every shipped command template by command name."""
    return {path.stem: path for path in sorted(TEMPLATES.glob("*.md"))}


def commands_in(data: Any) -> set[str]:
    """The slash commands a parsed workflow's `claude:` steps run, wherever they nest
    (steps, handlers, foreach, setup, map agents, reduce)."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "claude" and isinstance(value, str) and value.strip().startswith("/"):
                found.add(value.strip()[1:].split(maxsplit=1)[0] if value.strip()[1:] else "")
            else:
                found |= commands_in(value)
    elif isinstance(data, list):
        for item in data:
            found |= commands_in(item)
    return found - {""}


def _repo_root(path: str | None, as_json: bool) -> Path:
    from prodigyctl.gittop import repository_top

    top = repository_top(path)
    if top is None:
        start = Path(path or ".").resolve()
        note(f"note: {start} is not in a git repository; installing into it", as_json)
        return start
    return top


def _workflow_files(root: Path, named: tuple[str, ...]) -> list[Path]:
    if named:
        return [Path(name) for name in named]
    files: list[Path] = []
    for place in WORKFLOW_PLACES:
        folder = root / place
        files += sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yml", ".yaml"))
    return files


def _used_commands(files: list[Path]) -> tuple[set[str], list[str]]:
    """The commands the files use, and a warning for each file that could not be read."""
    import yaml

    used: set[str] = set()
    warnings = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.append(f"{path}: not read ({first})")
            continue
        used |= commands_in(data)
    return used, warnings


@command("init")
@click.argument("workflows", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--all", "install_all", is_flag=True, help="Install every shipped command.")
@click.option(
    "--commands",
    metavar="NAMES",
    help="Install these commands (comma-separated), whatever the workflows use.",
)
@click.option("-f", "--force", is_flag=True, help="Replace command files that exist.")
@path_option
@json_option
def init(
    *,
    workflows: tuple[str, ...],
    install_all: bool,
    commands: str | None,
    force: bool,
    path: str | None,
    as_json: bool,
) -> int:
    """Install the Claude commands your workflows use into .claude/commands/.

    Reads the WORKFLOWS named (default: the *.yml files in .prodigy/workflows/, workflows/
    and the repository's top folder) for `claude: /NAME` steps and writes NAME.md from
    prodigy's templates for each NAME it ships. A file that exists is kept unless --force.
    """
    from prodigyd.store.atomic import write_bytes_atomic

    root = _repo_root(path, as_json)
    templates = shipped()
    warnings: list[str] = []
    if install_all:
        wanted = set(templates)
    elif commands:
        wanted = {name.strip().lstrip("/") for name in commands.split(",") if name.strip()}
        unknown = sorted(wanted - set(templates))
        if unknown:
            raise click.UsageError(
                f"no template for {', '.join(unknown)}; prodigy ships: {', '.join(templates)}"
            )
    else:
        wanted, warnings = _used_commands(_workflow_files(root, workflows))
    folder = root / ".claude" / "commands"
    rows = []
    for name in sorted(wanted):
        target = folder / f"{name}.md"
        if name not in templates:
            rows.append({"command": name, "status": "no_template", "path": str(target)})
            continue
        exists = target.exists()
        if exists and not force:
            rows.append({"command": name, "status": "kept", "path": str(target)})
            continue
        folder.mkdir(parents=True, exist_ok=True)  # the user's umask, as for their own files
        write_bytes_atomic(target, templates[name].read_bytes(), mode=0o666)
        rows.append(
            {"command": name, "status": "replaced" if exists else "installed", "path": str(target)}
        )
    _report(rows, warnings, templates, as_json=as_json)
    return EXIT_OK


_SAY = {
    "installed": "installed",
    "replaced": "replaced (--force)",
    "kept": "exists, kept (--force replaces it)",
    "no_template": "no template shipped: write it yourself",
}


def _report(
    rows: list[dict[str, str]], warnings: list[str], templates: dict[str, Path], *, as_json: bool
) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(dumps(rows))
        return
    if not rows:
        click.echo(
            "No workflow here uses a `claude: /command`; install commands with --all or "
            f"--commands NAME (prodigy ships: {', '.join(templates)})."
        )
        return
    for row in rows:
        click.echo(f"/{row['command']}: {_SAY[row['status']]} ({row['path']})")
