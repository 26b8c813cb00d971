"""The template registry: named workflow templates in two places.

- a repository's own, `.prodigy/templates/NAME.yml` in it (checked in with the code, so
  everyone who clones it runs the same template), found from the folder of the workflow
  that names the template (or, for `prodigyctl template`, the current folder) upwards, up
  to the repository's top;
- the user's, `$PRODIGY_HOME/templates/NAME.yml`.

The repository's wins when both have a name, as a repository's git config beats the
user's: a project that pins its template must get it, whatever its users registered.
Metadata (description, version, tags, author, times) is kept beside each template in
`NAME.meta.json`; a template copied in by hand, without one, is a template all the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prodigyd import paths

REPO_TEMPLATES = Path(".prodigy", "templates")
SUFFIXES = (".yml", ".yaml", ".json")
#: A template's name; `NAME.meta` would be a metadata file's.
NAME = re.compile(r"^(?!.*\.meta$)[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class Template:
    """One registered template: where it is, which registry holds it, its metadata."""

    name: str
    path: Path
    scope: str  # "repo" or "home"
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "path": str(self.path),
            "description": self.meta.get("description"),
            "version": self.meta.get("version"),
            "tags": list(self.meta.get("tags") or []),
            "author": self.meta.get("author"),
            "created_at": self.meta.get("created_at"),
            "updated_at": self.meta.get("updated_at"),
        }


def repo_dir(start: Path) -> Path | None:
    """The `.prodigy/templates` of the repository holding `start`: the nearest one on the
    way up, not past the repository's top (the folder with `.git`)."""
    for folder in (start, *start.parents):
        if (folder / REPO_TEMPLATES).is_dir():
            return folder / REPO_TEMPLATES
        if (folder / ".git").exists():
            return None
    return None


def repo_top(start: Path) -> Path | None:
    """The top of the repository holding `start` (where `template register --repo` writes)."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def registries(start: Path) -> list[tuple[str, Path]]:
    """The registries to look in, first match wins: the repository's, then the user's."""
    found = [("home", paths.templates_dir())]
    repo = repo_dir(start)
    return [("repo", repo), *found] if repo is not None else found


def find(name: str, start: Path) -> Template | None:
    """The template `name` as seen from folder `start`."""
    if not NAME.match(name):
        return None
    for scope, folder in registries(start):
        for suffix in SUFFIXES:
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return Template(name, path, scope, read_meta(path))
    return None


def listing(start: Path) -> list[Template]:
    """Every template seen from `start`, by name; a repository's hides the user's."""
    seen: dict[str, Template] = {}
    for scope, folder in registries(start):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            name, suffix = path.stem, path.suffix
            if suffix in SUFFIXES and NAME.match(name) and name not in seen and path.is_file():
                seen[name] = Template(name, path, scope, read_meta(path))
    return sorted(seen.values(), key=lambda template: template.name)


def meta_file(path: Path) -> Path:
    return path.with_name(f"{path.stem}.meta.json")


def read_meta(path: Path) -> dict[str, Any]:
    """A template's metadata; none (or an unreadable file) is no metadata."""
    try:
        data = json.loads(meta_file(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
