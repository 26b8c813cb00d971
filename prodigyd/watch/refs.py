"""What the refs of a watched repository did, and which workflows that starts.

The watcher (watch/refwatch.py) re-reads every branch and tag after any change it sees in
the repository's refs, `packed-refs` or `HEAD` (a `git pack-refs` removes ref files without
moving any ref, a fetch or a rebase moves several), and compares the snapshot {ref: id}
with the one before: each difference is one `RefChange`, created, updated or deleted.

- `on: commit` fires for each new tip of a branch: the branch moved forward (not reset
  back to one of its ancestors), or was created at a commit no ref pointed to before
  (`git branch x` at an existing commit makes no commit). Several commits in one change
  (a quick series, a fast-forward pull) make one firing, for the tip; `paths` match the
  files changed between the old tip and the new.
- `on: ref` fires for each branch or tag created, updated or deleted that its `branches`
  and `tags` globs match (see Trigger). A deleted branch and a tag have no branch to run
  on: their runs start from the repository's checked-out branch.

Prodigy's own refs fire nothing (unless `include_prodigy_commits`): a session's branch
that the journal knows (`prodigy-<id>`, created, committed to, deleted by prodigy's
sessions and its collector), and a merge commit this daemon made into the user's branch,
told by its second parent, the session commit it merged (git/merge.py records it before
the branch moves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prodigyd.git import objects
from prodigyd.git.cli import git
from prodigyd.git.merge import merges_source
from prodigyd.git.repo import HEADS, is_ancestor, parents
from prodigyd.watch import triggers, variables
from prodigyd.watch.triggers import Firing, Found
from prodigyd.workflow.interpolate import glob_match
from prodigyd.workflow.model import Trigger

TAGS = "refs/tags/"
#: Remote-tracking refs are read too, only as commits known before: a branch made from a
#: fetched one (`git checkout -b x origin/x`) commits nothing.
REMOTES = "refs/remotes/"
WATCHED = (HEADS, TAGS, REMOTES)
SEEN_BY = "ref watcher"


@dataclass(frozen=True)
class RefChange:
    ref: str
    before: str | None  # None: created
    after: str | None  # None: deleted

    @property
    def event(self) -> str:
        return "created" if self.before is None else "deleted" if self.after is None else "updated"

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix(HEADS) if self.ref.startswith(HEADS) else None

    @property
    def tag(self) -> str | None:
        return self.ref.removeprefix(TAGS) if self.ref.startswith(TAGS) else None


async def snapshot(repo: Path) -> dict[str, str]:
    """Every branch, tag and remote-tracking ref of the repository and its object id
    (loose and packed refs alike), read by libgit2 or else by git; raises GitError when
    `repo` is no repository any more."""
    found = await asyncio.to_thread(objects.refs, repo, WATCHED)
    if found is not None:
        return found
    done = await git(repo, "for-each-ref", "--format=%(objectname) %(refname)", *WATCHED)
    pairs = (line.partition(" ") for line in done.stdout.splitlines())
    return {ref: sha for sha, _, ref in pairs if ref}


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[RefChange]:
    """Each ref created, updated or deleted from one snapshot to the next, by name."""
    names = sorted(set(before) | set(after))
    return [
        RefChange(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    ]


async def firings(
    repo: Path, found: list[Found], moved: list[RefChange], before: Mapping[str, str]
) -> list[Firing]:
    """Every run the ref changes start, from the workflows `found` in `repo`."""
    commits = triggers.triggered(found, "commit")
    refs = triggers.triggered(found, "ref")
    result = []
    for change in moved:
        if not (commits or refs):
            break
        by_prodigy = await _by_prodigy(repo, change)
        if commits and await _new_tip(repo, change, before):
            result += await _commit_firings(repo, commits, change, by_prodigy)
        result += [
            _ref_firing(path, trigger, change, by_prodigy)
            for path, trigger in refs
            if ref_matches(trigger, change)
        ]
    return result


def ref_matches(trigger: Trigger, change: RefChange) -> bool:
    """`branches` and `tags` globs: neither means every ref; one of them, only its kind."""
    if change.branch is not None:
        if not trigger.branches:
            return not trigger.tags
        return any(glob_match(change.branch, g) for g in trigger.branches)
    if change.tag is not None:
        if not trigger.tags:
            return not trigger.branches
        return any(glob_match(change.tag, g) for g in trigger.tags)
    return False


async def _new_tip(repo: Path, change: RefChange, before: Mapping[str, str]) -> bool:
    """Whether the change put a new commit at a branch's tip (see the module docstring)."""
    if change.branch is None or change.after is None:
        return False
    if change.before is None:
        return change.after not in before.values()
    return not await is_ancestor(repo, change.after, change.before)


async def _commit_firings(
    repo: Path, candidates: list[tuple[Path, Trigger]], change: RefChange, by_prodigy: str | None
) -> list[Firing]:
    assert change.branch is not None and change.after is not None
    changed = None
    if any(trigger.paths for _, trigger in candidates):
        base = change.before
        if base is not None and not await is_ancestor(repo, base, change.after):
            base = None  # rewritten (a rebase, an amend): the tip commit's own files
        changed = await triggers.changed_files(repo, change.after, base)
    occasion = triggers.commit_occasion(change.branch, change.after, change.before, changed)
    reason = f"{occasion.what} on {change.branch} ({SEEN_BY})"
    return triggers.matching(candidates, occasion, reason, by_prodigy)


def _ref_firing(path: Path, trigger: Trigger, change: RefChange, by_prodigy: str | None) -> Firing:
    kind, name = ("branch", change.branch) if change.branch is not None else ("tag", change.tag)
    sha = change.after or change.before or ""
    values = variables.environment(
        event=change.event,
        ref=change.ref,
        before=change.before,
        after=change.after,
        branch=change.branch,
        tag=change.tag,
    )
    return Firing(
        workflow=path,
        trigger=trigger,
        branch=change.branch if change.after is not None else None,
        reason=f"{kind} {name} {change.event} at {sha[:12]} ({SEEN_BY})",
        by_prodigy=by_prodigy,
        identity=f"ref\0{change.ref}\0{change.event}\0{sha}",
        variables=values,
    )


async def _by_prodigy(repo: Path, change: RefChange) -> str | None:
    """Why prodigy made the change (its session's branch, its merge), or None."""
    if change.branch is not None:
        why = triggers.session_branch(change.branch)
        if why is not None:
            return why
    if change.after is None or change.branch is None:
        return None
    source = merges_source(await parents(repo, change.after))
    return None if source is None else f"prodigy's merge of session commit {source[:12]}"
