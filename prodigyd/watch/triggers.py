"""Which workflows a git event starts: the `on:` triggers of `.prodigy/workflows/`.

A repository's triggered workflows are the `*.yml`, `*.yaml` and `*.json` files directly in
`<worktree>/.prodigy/workflows/`, read from the worktree the event happened in, when it
happens (so a trigger edited and not yet committed already counts, as a git hook would).
A file that does not load is reported, never guessed at: `triggers.list` shows its error.

Matching (docs/workflows.md, "Triggers"): a post-commit is the `commit` event on the
checked-out branch, with the files that commit changed; a pre-push is the `push` event,
once per local branch pushed, with the files its new commits change (the tip commit's, for
a branch the remote does not have yet). `branches` and `paths` are globs as in
`${step.files_added:*.md}`; empty means any. A path filter that cannot be evaluated (git
cannot tell what changed) counts as matching: a check that runs once too often is better
than one that silently never runs.

Prodigy's own commits fire nothing (unless a trigger says `include_prodigy_commits`): a
triggered run that commits in its worktree runs the same shared hooks, and fired itself
again without end. An event is prodigy's when any of these says so (`made_by_prodigy`):

- the hook ran in a process prodigy started: every job's steps, map agents and prodigy's
  own git calls (its merges) carry PRODIGY_AUTOMATION=true, and a session's its
  PRODIGY_SESSION_ID; the shim writes both into the event (spool.py);
- the worktree it happened in is one of prodigy's, under `$PRODIGY_HOME/worktrees/`: a
  step that ran `env -i git commit` still cannot fire a loop;
- the branch is a session's (`prodigy-<session id>`, `prodigy-agent-<session id>/...`) that
  the journal knows: a branch of the user's named `prodigy-x` is still the user's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prodigyd import paths
from prodigyd.errors import ProdigyError
from prodigyd.git import objects
from prodigyd.git.cli import AUTOMATION_VAR, git
from prodigyd.pool import branch_session
from prodigyd.store import journal
from prodigyd.watch import variables
from prodigyd.watch.spool import HOOK_EVENTS, HookEvent
from prodigyd.workflow.interpolate import glob_match

if TYPE_CHECKING:
    from prodigyd.workflow.load import LoadedWorkflow
    from prodigyd.workflow.model import Trigger

log = logging.getLogger("prodigyd.watch")

FOLDER = Path(".prodigy") / "workflows"
SUFFIXES = (".yml", ".yaml", ".json")
#: How much of a session id from a spool entry a message quotes.
SHOWN = 80


@dataclass(frozen=True)
class Found:
    """A file of `.prodigy/workflows/`: loaded, or the error that stopped it."""

    path: Path
    loaded: LoadedWorkflow | None
    error: str | None


@dataclass(frozen=True)
class Firing:
    """One run to submit: this workflow, on this branch (None: the checked-out one),
    because of `reason`.

    `identity` names the git event whoever saw it (`commit`, branch, commit id...): a hook
    and the watcher that see the same commit make the same idempotency key from it, so it
    runs once (watch/fire.py). `variables` are its `${trigger.*}` (watch/variables.py)."""

    workflow: Path
    trigger: Trigger
    branch: str | None
    reason: str
    by_prodigy: str | None = None  # why prodigy made the event (None: the user did)
    identity: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    start_commit: str | None = None  # `on: files`: the snapshot of the files to start from


@dataclass(frozen=True)
class Occasion:
    """One thing that happened on a branch: its changed files (None when unknown or not
    needed), how `triggered_by` describes it, its identity and variables (see Firing)."""

    branch: str
    changed: list[str] | None
    what: str
    identity: str
    variables: Mapping[str, str]


async def discover(repo: Path) -> list[Found]:
    """Every file of the folder, each loaded in a worker thread: a hook event or
    `triggers.list` must not stall the daemon on a large or hostile file."""
    # The workflow loader (and YAML) is imported by the first trigger lookup, not at start.
    from prodigyd.workflow.load import load_workflow_async

    folder = repo / FOLDER
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:  # EACCES, ELOOP, ENAMETOOLONG: say which folder, and why
        raise ProdigyError(f"{folder}: cannot be listed ({exc.strerror})") from None
    found = []
    for path in files:
        try:
            found.append(Found(path, await load_workflow_async(path), None))
        except ProdigyError as exc:
            found.append(Found(path, None, exc.render()))
    return found


async def firings(event: HookEvent) -> list[Firing]:
    """Every (workflow, trigger, branch) the event starts; broken workflows are logged."""
    candidates = triggered(await discover(event.repo), HOOK_EVENTS[event.hook])
    if not candidates:
        return []
    result = []
    need_files = any(trigger.paths for _, trigger in candidates)
    origin = made_by_prodigy(event)
    for occasion in await _occasions(event, need_files):
        by_prodigy = origin or session_branch(occasion.branch)
        reason = f"{occasion.what} on {occasion.branch} ({event.hook} hook)"
        result += matching(candidates, occasion, reason, by_prodigy)
    return result


def triggered(found: list[Found], kind: str) -> list[tuple[Path, Trigger]]:
    """The (workflow, trigger) pairs for events of `kind`; files that do not load are
    logged and skipped, never guessed at."""
    candidates = []
    for each in found:
        if each.loaded is None:
            log.warning("trigger workflow not loaded: %s", each.error)
            continue
        candidates += [(each.path, t) for t in each.loaded.workflow.on if t.event == kind]
    return candidates


def matching(
    candidates: list[tuple[Path, Trigger]], occasion: Occasion, reason: str, by_prodigy: str | None
) -> list[Firing]:
    """The firings of the `commit`/`push` candidates whose branches and paths match."""
    variables = occasion.variables
    return [
        Firing(path, trigger, occasion.branch, reason, by_prodigy, occasion.identity, variables)
        for path, trigger in candidates
        if branch_matches(trigger, occasion.branch) and _paths_match(trigger, occasion.changed)
    ]


def made_by_prodigy(event: HookEvent) -> str | None:
    """Why the event is prodigy's own doing (see the module docstring), or None when it is
    the user's. The branch is checked per branch (`session_branch`): a push has several."""
    if event.session:
        return f"made by prodigy session {event.session[:SHOWN]}"
    if event.automation:
        return f"made by prodigy ({AUTOMATION_VAR}=true)"
    worktrees, where = paths.worktrees_root().resolve(), event.repo.resolve()
    if where == worktrees or worktrees in where.parents:
        return f"made in prodigy's worktree {event.repo}"
    return None


def session_branch(branch: str) -> str | None:
    session = branch_session(branch)
    if session is None or journal.get(session) is None:
        return None
    return f"made on the branch of prodigy session {session}"


async def _occasions(event: HookEvent, need_files: bool) -> list[Occasion]:
    """What happened, per branch. The files are None when unknown, or not needed (no
    trigger filters on paths: a git process saved)."""
    if event.hook == "post-commit":
        if event.branch is None or event.head is None:  # a detached commit: no branch to run on
            return []
        changed = await changed_files(event.repo, event.head) if need_files else None
        return [commit_occasion(event.branch, event.head, None, changed)]
    occasions = []
    for ref in event.pushed:
        if ref.branch is None:
            continue
        base = ref.remote_sha if ref.remote_known else None
        changed = await changed_files(event.repo, ref.local_sha, base) if need_files else None
        remote = f" to {event.remote}" if event.remote else ""
        values = variables.environment(
            event="push", ref=ref.local_ref, before=base, after=ref.local_sha, branch=ref.branch
        )
        identity = f"push\0{ref.branch}\0{ref.local_sha}\0{event.remote or ''}"
        what = f"push of {ref.local_sha[:12]}{remote}"
        occasions.append(Occasion(ref.branch, changed, what, identity, values))
    return occasions


def commit_occasion(
    branch: str, sha: str, before: str | None, changed: list[str] | None
) -> Occasion:
    """A new commit at the tip of `branch`, however it was seen (a hook, the watcher): one
    identity for both."""
    values = variables.environment(
        event="commit", ref=f"refs/heads/{branch}", before=before, after=sha, branch=branch
    )
    return Occasion(branch, changed, f"commit {sha[:12]}", f"commit\0{branch}\0{sha}", values)


async def changed_files(repo: Path, sha: str, base: str | None = None) -> list[str] | None:
    """Files changed from `base` to `sha` (from its first parent without a base: a merge's
    files are those it brought in), both names of a moved file; None when git cannot tell
    (an object missing, say). Read by libgit2, else by git."""
    names = await asyncio.to_thread(objects.changed_names, repo, sha, base)
    if names is not None:
        return names
    args = ["--root", "--diff-merges=first-parent", sha] if base is None else [base, sha]
    argv = ["diff-tree", "--no-commit-id", "--name-only", "-r", "-z", *args]
    done = await git(repo, *argv, check=False)
    if not done.ok:
        log.warning("cannot list the files %s changed in %s: %s", sha, repo, done.stderr.strip())
        return None
    return sorted({name for name in done.stdout.split("\0") if name})


def branch_matches(trigger: Trigger, branch: str) -> bool:
    return not trigger.branches or any(glob_match(branch, g) for g in trigger.branches)


def _paths_match(trigger: Trigger, changed: list[str] | None) -> bool:
    if not trigger.paths or changed is None:
        return True
    return any(glob_match(name, g) for name in changed for g in trigger.paths)
