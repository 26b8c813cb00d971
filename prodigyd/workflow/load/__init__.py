"""Reading workflow files: YAML or JSON text in, a validated `Workflow` (or one clear error) out.

Why not `Workflow.model_validate(yaml.safe_load(text))`:

* Errors must name file, line and field (`commands[2].timeout`, line 14). pydantic only knows
  paths into Python objects, so the YAML is composed into containers that remember where each
  node and key was written, and every model is validated where its position is still known.
* The original accepts many spellings that are not one schema (reference §2.2, §2.6) and
  silently ignored keys it did not know. Each spelling is mapped here onto the one canonical
  model, and every key we do not use is reported: a warning, or an error with `strict`.
* Scalars are resolved as YAML 1.2, like the original's serde_yaml: `on`/`yes` stay strings,
  `0644` is not octal and `1:30` is not ninety.

This module is the way in (a file or text, the cache of parsed files); the parts:
reader.py (text to positioned data: nodes.py), document.py (the top level, a standard
workflow), mapreduce.py (setup, map, reduce), steps.py (every step, with retry.py and
legacy.py), keys.py (which keys each mapping may have, from the models) and diagnostics.py
(problems at file:line:col).
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import Container
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from prodigyd import errorcodes
from prodigyd.errors import Location, WorkflowError
from prodigyd.workflow.limits import MAX_FILE_BYTES, Deadline
from prodigyd.workflow.load.diagnostics import Context, raise_together
from prodigyd.workflow.load.document import empty_error, refuse_unsupported, standard_workflow
from prodigyd.workflow.load.mapreduce import is_mapreduce, mapreduce_workflow
from prodigyd.workflow.load.nodes import At, Map
from prodigyd.workflow.load.reader import read_json, read_yaml
from prodigyd.workflow.load.references import (
    Undefined,
    find_undefined,
    refuse_unresolved,
    warnings_for,
)
from prodigyd.workflow.load.source import check_size, read_source
from prodigyd.workflow.model import Step, Workflow

if TYPE_CHECKING:
    from prodigyd.workflow.compose import Resolver

__all__ = ["LoadedWorkflow", "load_workflow", "load_workflow_async", "parse_workflow"]


@dataclass
class LoadedWorkflow:
    """A parsed workflow plus what the user should hear about it.

    `sha256` fingerprints what the workflow is made of, so resume can refuse a workflow
    edited since the run: the raw bytes of the file, or, for a composed workflow, those
    and every file it includes (`includes`: path -> SHA-256 of its bytes).
    """

    workflow: Workflow
    warnings: list[str]
    sha256: str
    path: Path
    includes: dict[str, str] = field(default_factory=dict)
    #: `${name}` references nothing defines (references.py): warnings once the caller
    #: knows the job environment (`variable_warnings`)
    undefined: list[Undefined] = field(default_factory=list)

    def variable_warnings(self, environment: Container[str], *, strict: bool = False) -> list[str]:
        """Its warnings about undefined variables, for a job with `environment` (the names
        its environment and its parameters give). When variables are strict (`strict`, the
        caller's --strict, or the workflow's strict_variables) they are a WorkflowError
        instead: the run would stop at the first step using one, its session and worktree
        made for nothing."""
        if strict or self.workflow.strict_variables:
            refuse_unresolved(self.undefined, environment)
        return warnings_for(self.undefined, environment)


async def load_workflow_async(
    path: Path | str, *, strict: bool = False, inside: Path | None = None
) -> LoadedWorkflow:
    """load_workflow for the daemon, in a worker thread: the file is a client's and may sit
    on a stalled mount, so its read (and hash) does not run on the event loop; parsing,
    bounded only by prodigyd.workflow.limits' time, is skipped when the same content was
    parsed before (the cache), so a submission, its start and every resume cost one read.

    `inside`: a folder the caller has just read on the loop (a submission's repository,
    whose `.git` admission reads there). A workflow file in it, as most are, is read and
    hashed on the loop too, which risks no mount the loop had not met already, and saves
    the thread's round trip (~0.3 ms on an idle machine, a fifth of a submission); only a
    parse the cache does not have goes to the thread. A path with a link below the
    folder (one may lead out of it), or none there, is read in the thread."""
    if inside is not None:
        file = _plainly_inside(str(path), str(inside))
        if file is not None:
            text, digest = read_source(file)
            cached = _cached(file, strict, digest)
            if cached is not None:
                return cached
            return await asyncio.to_thread(_parse_and_keep, file, text, digest, strict)
    return await asyncio.to_thread(load_workflow, path, strict=strict)


def _plainly_inside(path: str, top: str) -> str | None:
    """`path` made absolute and normal, when it is below the folder `top` (a resolved
    path) with no link in any of its parts below `top`: then that is its resolved path
    too, found with an lstat per part below `top` (one, for a workflow at the top of its
    repository) where a whole resolve takes one per part from the root, and Path's
    methods cost more than those calls (~0.1 ms of a submission). None otherwise."""
    near = os.path.normpath(os.path.abspath(os.path.expanduser(path)))
    base = top.rstrip("/")
    if not near.startswith(f"{base}/"):
        return None
    here = base
    for part in near[len(base) + 1 :].split("/"):
        here = f"{here}/{part}"
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                return None
        except OSError:
            return None  # missing, unreadable: the thread's load says which
    return here


def load_workflow(path: Path | str, *, strict: bool = False) -> LoadedWorkflow:
    """Read and parse a workflow file; `.json` is JSON, anything else YAML.

    Blocking (up to the limits' time); inside the daemon use load_workflow_async. The path
    is a client's: a FIFO or a device is refused unread (files.read_regular), not waited on.
    """
    file, text, digest = _read(path)
    cached = _cached(file, strict, digest)
    return cached if cached is not None else _parse_and_keep(file, text, digest, strict)


def strict_problems(path: Path | str, environment: Container[str]) -> WorkflowError | None:
    """Every problem a strict load of `path` has, as one error (None when it has none).

    A strict load stops at unknown keys, before the workflow it would have read exists to
    look for undefined variables in; when unknown keys are its only problems, the lenient
    load reads it, and its undefined variables are listed with them: one `validate
    --strict` names everything to fix, not half of it."""
    try:
        loaded = load_workflow(path, strict=True)
        loaded.variable_warnings(environment, strict=True)
    except WorkflowError as exc:
        problems = [exc, *exc.others]
        if any(problem.code != errorcodes.UNKNOWN_FIELD for problem in problems):
            return exc
        try:
            load_workflow(path).variable_warnings(environment, strict=True)
        except WorkflowError as variables:
            problems += [variables, *variables.others]
        try:
            raise_together([_alone(problem) for problem in problems])
        except WorkflowError as together:
            return together
    return None


def _alone(problem: WorkflowError) -> WorkflowError:
    """A problem of a combined error without the list of the others its details carry."""
    return WorkflowError(
        problem.message,
        hint=problem.hint,
        location=problem.location,
        code=problem.code,
        details=None if problem.others else problem.details,  # theirs, and the list
    )


def _read(path: Path | str) -> tuple[Path, str, str]:
    """The absolute, resolved path of a workflow file, its text and its SHA-256."""
    file = _resolve(Path(path))
    text, digest = read_source(file)
    return file, text, digest


def _resolve(file: Path) -> Path:
    """The absolute, resolved path of a workflow file (a WorkflowError when it has none)."""
    try:
        return file.expanduser().absolute().resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop, ~nobody
        raise WorkflowError(
            f"cannot read workflow file: {exc}", location=Location(str(file))
        ) from None


def _cached(file: Path | str, strict: bool, digest: str) -> LoadedWorkflow | None:
    with _PARSED_LOCK:
        return _PARSED.get((str(file), strict, digest))


def _parse_and_keep(file: Path | str, text: str, digest: str, strict: bool) -> LoadedWorkflow:
    loaded = parse_workflow(text, source=str(file), strict=strict)
    if loaded.includes:  # which files it includes may change without this one changing
        return loaded
    with _PARSED_LOCK:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[(str(file), strict, digest)] = loaded
    return loaded


#: Parsed workflows by (file, strict, content hash). A submission, its start and every
#: resume read the same file; parsing YAML costs ~1 ms, reading and hashing it ~20 µs, and
#: keying on the content itself means an edited file is never served stale. A composed
#: workflow is not kept: an included file, or a template or base newly found on the search
#: path, changes it while its own text stays the same. Loads run in worker threads
#: (load_workflow_async), hence the lock.
_PARSED: dict[tuple[str, bool, str], LoadedWorkflow] = {}
_PARSED_MAX = 128
_PARSED_LOCK = threading.Lock()


def parse_workflow(
    text: str,
    *,
    source: str = "<string>",
    fmt: Literal["yaml", "json"] | None = None,
    strict: bool = False,
    deadline: Deadline | None = None,
) -> LoadedWorkflow:
    """Parse workflow text; `source` names it in errors and warnings.

    Raises WorkflowError for anything wrong, always with a line and column (a JSON file
    YAML cannot mark aside): the first problem is the message, every problem found is listed
    in `details`. With `strict`, unknown keys are problems, not warnings. Reading stops at
    the limits of prodigyd.workflow.limits, `deadline` (default: LOAD_SECONDS from now)
    included.
    """
    fmt = fmt or ("json" if source.lower().endswith(".json") else "yaml")
    deadline = deadline or Deadline()
    if len(text) > MAX_TEXT_CHARS:  # cheap: a character is at most four UTF-8 bytes
        check_size(text.encode("utf-8", errors="surrogatepass"), source)
    if not text.strip():
        raise empty_error(source)
    read = read_json if fmt == "json" else read_yaml
    doc, root_mark = read(text, source, deadline)
    ctx = Context(source, strict, deadline, root_mark or (1, 1))
    # here, not at the top: compose is built on this package's modules (and imports them)
    from prodigyd.workflow.compose import Resolver

    resolver = Resolver(ctx, Path(source))
    workflow, doc = _workflow(doc, ctx, resolver)
    digest = sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
    return LoadedWorkflow(
        workflow=workflow,
        warnings=ctx.warnings,
        sha256=_fingerprint(digest, resolver.files),
        path=Path(source),
        includes=resolver.files,
        undefined=find_undefined(doc, workflow, source, text, deadline),
    )


MAX_TEXT_CHARS = MAX_FILE_BYTES // 4
#: Top-level keys that make a workflow a composed one (resolved by prodigyd.workflow.compose).
_COMPOSED = (
    "imports",
    "extends",
    "template",
    "parameters",
    "defaults",
    "sub_workflows",
    "workflows",
)


def _workflow(doc: object, ctx: Context, resolver: Resolver) -> tuple[Workflow, object]:
    """The document's mode decides its parser; what neither mode supports is refused first.
    A composed workflow is resolved into one document first (returned with the workflow:
    references.py reads its strings)."""
    lead: tuple[Step, ...] = ()
    if isinstance(doc, Map):
        refuse_unsupported(doc, ctx)
        if any(key in doc for key in _COMPOSED):
            from prodigyd.workflow.compose import compose

            composition = compose(doc, resolver, Path(ctx.source))
            doc, lead = composition.doc, composition.lead
            refuse_unsupported(doc, ctx)  # a base may have brought the mode
        if is_mapreduce(doc):
            if lead:
                raise WorkflowError(
                    "sub_workflows: are only run by a standard workflow, not by mode: mapreduce",
                    location=At("", doc.mark).key(doc, "mode").location(ctx.source),
                )
            return mapreduce_workflow(doc, ctx), doc
    return standard_workflow(doc, ctx, lead=lead), doc


def _fingerprint(digest: str, includes: dict[str, str]) -> str:
    """The file's own digest, or (composed) a digest of it and of every file it includes."""
    if not includes:
        return digest
    parts = [digest, *(f"{name}\0{sha}" for name, sha in sorted(includes.items()))]
    return sha256("\n".join(parts).encode()).hexdigest()
