"""The final merge of a session branch into the user's branch (reference §4.7 [R]).

The original asked Claude to run `git merge` and hoped for the best, which could fail or
mix the session's work into the user's uncommitted edits. Here the default merge is plain,
verified git, and the user's uncommitted work is never touched:

* the target is checked out in a worktree (normally the user's checkout): `git merge
  --no-ff` there, but only after proving the merge changes no file the user has
  uncommitted changes to and nothing is staged; a conflict is aborted, leaving the
  checkout as it was;
* the target is checked out nowhere: merge without a working tree (`git merge-tree
  --write-tree`, git >= 2.38), commit the tree and move the branch with a compare-and-swap.

Either way the result is verified with `git merge-base --is-ancestor` before it is reported.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from prodigyd import errorcodes, proc
from prodigyd.errors import GitError, MergeRefused
from prodigyd.git import objects
from prodigyd.git.cli import describe_failure, git, raise_failure
from prodigyd.git.repo import HEADS, SHA, commit_id, dirty_paths, is_ancestor
from prodigyd.git.worktree import list_worktrees, worktree_git_dir

#: Caps on the merge.* variables, as in the original: enough context for a merge workflow
#: without handing Claude a prompt the size of the repository.
MAX_COMMITS = 100
MAX_FILES = 500

#: How many file names a refusal lists before it says "and N more".
LISTED_FILES = 20

#: Per-worktree files that mean the user is in the middle of a merge, cherry-pick or revert
#: in that checkout. Our own merge would refuse to start, and our `git merge --abort` must
#: never throw away *their* half-done merge.
UNFINISHED_MARKERS = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD")

RETRY_HINT = "then run `prodigyctl merge <session>`"

_MODIFICATION_TYPES = {"A": "added", "D": "deleted", "R": "renamed"}


#: The session commits this daemon merges (or merged) into a user's branch: the second
#: parent of every merge commit it makes there, recorded before the branch moves. The
#: repository watcher tells prodigy's merges from the user's commits by them
#: (watch/refwatch.py): it sees a ref move, not who moved it. Kept in memory: the watcher
#: reads the refs a last time when this daemon's jobs are over (`RepoWatcher.close`) and
#: keeps them, so the next daemon starts past every merge this one made.
_MERGED_SOURCES: collections.OrderedDict[str, None] = collections.OrderedDict()
MERGED_REMEMBERED = 10_000


def merges_source(parents: Sequence[str]) -> str | None:
    """The session commit this daemon merged, when a commit with these parents is one of
    its merges (two parents, the session's second); None for any other commit."""
    if len(parents) == 2 and parents[1] in _MERGED_SOURCES:
        return parents[1]
    return None


@dataclass
class MergeOutcome:
    """What `merge_branch` did: `commit` is the target's new tip when `merged`."""

    merged: bool
    commit: str | None
    message: str


@dataclass(frozen=True)
class _Merge:
    """One requested merge, with both ends resolved to commits once, up front."""

    source: str
    target: str
    source_sha: str
    target_sha: str
    message: str


async def commits_ahead(repo: Path, target: str, source: str) -> int:
    """How many commits `source` has that `target` does not.

    Given two ids, the common answer at the end of a session (none: the session committed
    nothing, or its commits are merged) needs no git process (~3 ms): the same id, or
    libgit2 when it is loaded already (`objects.is_ancestor`, in a worker thread). A
    count, or a repository libgit2 cannot read, is git's."""
    if SHA.fullmatch(target) and SHA.fullmatch(source):
        if source == target:
            return 0
        if objects.loaded():
            merged = await asyncio.to_thread(objects.is_ancestor, repo, source, target)
            if merged:
                return 0
    done = await git(repo, "rev-list", "--count", f"{target}..{source}", "--")
    return int(done.stdout.strip())


async def merge_branch(
    repo: Path, source: str, target: str, *, message: str | None = None, base: str | None = None
) -> MergeOutcome:
    """Merge the branch `source` into the branch `target` of `repo` with a merge commit,
    and verify it. Both are read as branches (`refs/heads/...`: from the ref files when
    they are plain), never as a tag or another ref of the same name.

    Raises MergeRefused when the merge conflicts or would touch the user's uncommitted
    changes; in both cases every branch and working tree is left as it was. `base`: the
    commit `source` started from, when known: a branch still there made nothing, so no
    merge of it can have landed (`_landed` spends no git on it).
    """
    plan = _Merge(
        source=source,
        target=target,
        source_sha=await resolve_commit(repo, f"{HEADS}{source}", f"Session branch '{source}'"),
        target_sha=await resolve_commit(repo, f"{HEADS}{target}", f"Target branch '{target}'"),
        message=message or f"Merge prodigy session branch '{source}' into {target}",
    )
    count = await commits_ahead(repo, plan.target_sha, plan.source_sha)
    if count == 0:
        landed = None if plan.source_sha == base else await _landed(repo, plan)
        if landed is not None:
            return MergeOutcome(
                merged=True, commit=landed, message=f"{source} was merged into {target} already"
            )
        return MergeOutcome(
            merged=False,
            commit=None,
            message=f"Nothing to merge: {source} holds no commit {target} lacks",
        )
    _MERGED_SOURCES[plan.source_sha] = None  # before any ref moves: see merges_source
    while len(_MERGED_SOURCES) > MERGED_REMEMBERED:
        _MERGED_SOURCES.popitem(last=False)
    try:
        checkout = await find_checkout(repo, target)
        if checkout is None:
            await merge_without_checkout(repo, plan)
        else:
            await merge_in_checkout(checkout, plan)
    except MergeRefused:
        _MERGED_SOURCES.pop(plan.source_sha, None)
        if await _leftover_merge_ended(plan.source_sha):  # it has landed now, or failed
            return await merge_branch(repo, source, target, message=message, base=base)
        raise
    except BaseException:
        _MERGED_SOURCES.pop(plan.source_sha, None)  # refused: a merge by hand is the user's
        raise
    commit = await verify_merged(repo, plan)
    noun = "commit" if count == 1 else "commits"
    return MergeOutcome(
        merged=True, commit=commit, message=f"Merged {count} {noun} from {source} into {target}"
    )


#: How a `git merge` of ours is marked in its environment, with the commit it merges.
MERGING_VARIABLE = "PRODIGY_MERGING"
#: How long a try waits for the `git merge` a dead daemon left running (its hooks, say).
LEFTOVER_MERGE_WAIT_SECONDS = 120.0


async def _leftover_merge_ended(source_sha: str) -> bool:
    """Wait for the `git merge` of `source_sha` a daemon killed meanwhile left running;
    whether there was one. Its staged files made this try refuse the checkout as the
    user's uncommitted work, and it landed after (or failed) on its own. Looked for only
    when a try is refused, so a merge that goes through reads no /proc."""
    marker = f"{MERGING_VARIABLE}={source_sha}"
    found = False
    deadline = asyncio.get_running_loop().time() + LEFTOVER_MERGE_WAIT_SECONDS
    while proc.with_environment(marker):
        found = True
        if asyncio.get_running_loop().time() > deadline:
            return False  # still there: the refusal stands
        await asyncio.sleep(0.05)
    return found


async def _landed(repo: Path, plan: _Merge) -> str | None:
    """This very merge's commit, on the target already: the `git merge` of a daemon that
    died before it recorded the outcome finished it (its message names the session, and
    it has the session branch's tip as its second parent). None for a branch with nothing
    to merge, or merged by someone else."""
    subject = plan.message.splitlines()[0]
    done = await git(
        repo,
        "log",
        "--merges",
        "--ancestry-path",
        "--format=%H %P%x1f%s",
        f"{plan.source_sha}..{plan.target_sha}",
        check=False,
    )
    for line in done.stdout.splitlines():
        ids, _, found = line.partition("\x1f")
        commit, *parents = ids.split()
        if found == subject and parents[1:2] == [plan.source_sha]:
            return commit
    return None


async def resolve_commit(repo: Path, rev: str, label: str) -> str:
    """The full sha `rev` names, or a GitError saying `label` does not exist."""
    try:
        return await commit_id(repo, rev)
    except GitError:
        raise GitError(f"{label} does not exist in {repo}") from None


async def find_checkout(repo: Path, branch: str) -> Path | None:
    """The worktree that has `branch` checked out, if any (git allows at most one)."""
    for worktree in await list_worktrees(repo):
        if worktree.branch == branch:
            return worktree.path
    return None


async def merge_in_checkout(checkout: Path, plan: _Merge) -> None:
    """`git merge --no-ff` in the worktree where the target is checked out.

    `--no-autostash` overrides a `merge.autoStash` setting: the user's changes stay where
    they are rather than being stashed and re-applied behind their back.
    """
    await forget_finished_prodigy_merge(checkout)
    await refuse_unfinished_operation(checkout, plan)
    await refuse_dirty_overlap(checkout, plan)
    await refuse_staged_changes(checkout)
    done = await git(
        checkout,
        "merge",
        "--quiet",  # a dead daemon's pipes SIGPIPE a git that still has output to write
        "--no-ff",
        "--no-edit",
        "--no-autostash",
        "-m",
        plan.message,
        plan.source_sha,
        check=False,
        env={**os.environ, MERGING_VARIABLE: plan.source_sha},  # `_leftover_merge_ended`
    )
    if done.ok:
        return
    if not await has_merge_in_progress(checkout):  # git refused before it began: say why
        raise_failure(done, checkout)
    conflicted = await git(checkout, "diff", "--name-only", "-z", "--diff-filter=U")
    await git(checkout, "merge", "--abort")
    refuse_conflicts(plan, split_nul(conflicted.stdout))


#: Every merge commit prodigy makes starts with this (engine/finish.py writes the message).
PRODIGY_MERGE_PREFIX = "Merge prodigy session "


async def forget_finished_prodigy_merge(checkout: Path) -> None:
    """Clear the MERGE_HEAD a `git merge` of ours left when it was killed after committing.

    If prodigyd dies mid-merge, git can be cut off after the merge commit but before its
    clean-up, leaving MERGE_HEAD behind. When that merge is ours (its message) and already
    contained in HEAD, nothing is in progress: `git merge --quit` forgets it, leaving the
    index and files alone. Anything else is the user's and is refused below.
    """
    git_dir = Path((await git(checkout, "rev-parse", "--absolute-git-dir")).stdout.strip())
    try:
        message = (git_dir / "MERGE_MSG").read_text()
    except OSError:
        return
    if not (git_dir / "MERGE_HEAD").exists() or not message.startswith(PRODIGY_MERGE_PREFIX):
        return
    if await is_ancestor(checkout, "MERGE_HEAD", "HEAD"):
        await git(checkout, "merge", "--quit")


async def refuse_unfinished_operation(checkout: Path, plan: _Merge) -> None:
    """Refuse to merge into a checkout where the user has a merge (or the like) half done."""
    done = await git(checkout, "rev-parse", "--absolute-git-dir")
    git_dir = Path(done.stdout.strip())
    unfinished = [name for name in UNFINISHED_MARKERS if (git_dir / name).exists()]
    if unfinished:
        raise MergeRefused(
            f"The checkout of {plan.target} at {checkout} has an unfinished operation "
            f"({', '.join(unfinished)})",
            hint=f"finish or abort it, {RETRY_HINT}",
            code=errorcodes.MERGE_DIRTY,
        )


async def refuse_dirty_overlap(checkout: Path, plan: _Merge) -> None:
    """Refuse if the merge would change a file the user has uncommitted changes to.

    git would refuse most of these itself, one file at a time and in terms of
    "overwriting"; checking up front gives one refusal that names every file.
    """
    base = await merge_base(checkout, "HEAD", plan.source_sha)
    touched = await git(
        checkout, "diff-tree", "-r", "-z", "--name-only", "--no-renames", base, plan.source_sha
    )
    overlap = set(split_nul(touched.stdout)) & await dirty_paths(checkout)
    if overlap:
        raise MergeRefused(
            "Your checkout has uncommitted changes to files this merge would change: "
            + list_files(overlap),
            hint=f"commit or stash them, {RETRY_HINT}",
            details=f"checkout: {checkout}",
            code=errorcodes.MERGE_DIRTY,
        )


async def refuse_staged_changes(checkout: Path) -> None:
    """Refuse if anything is staged in the checkout, even in files the merge leaves alone.

    git's merge strategies (ort in git 2.39) refuse to start while the index differs from
    HEAD at all, and say so as "local changes would be overwritten" about files the merge
    does not touch; this says what is really in the way.
    """
    done = await git(checkout, "diff-index", "--cached", "-z", "--name-only", "HEAD", "--")
    staged = split_nul(done.stdout)
    if staged:
        raise MergeRefused(
            f"Your checkout has staged changes, and git cannot merge while it does: "
            f"{list_files(staged)}",
            hint=f"commit them, or unstage them with `git restore --staged`, {RETRY_HINT}",
            details=f"checkout: {checkout}",
            code=errorcodes.MERGE_DIRTY,
        )


async def has_merge_in_progress(checkout: Path) -> bool:
    """Whether a merge was started (and so must be aborted) in `checkout`."""
    done = await git(checkout, "rev-parse", "--quiet", "--verify", "MERGE_HEAD", check=False)
    return done.ok


async def merge_without_checkout(repo: Path, plan: _Merge) -> None:
    """Merge into a branch no worktree has checked out, touching no working tree at all.

    The branch moves with `update-ref <new> <old>`, so if anything moved it meanwhile the
    update fails instead of silently discarding that commit.
    """
    done = await git(
        repo,
        "merge-tree",
        "--write-tree",
        "--name-only",
        "-z",
        "--no-messages",
        plan.target_sha,
        plan.source_sha,
        check=False,
    )
    if done.returncode not in (0, 1):  # 1 = conflicts; anything else is an error
        raise_failure(done, repo)
    tree, *conflicted = split_nul(done.stdout)
    if done.returncode == 1:
        refuse_conflicts(plan, conflicted)
    commit = await git(
        repo,
        "commit-tree",
        tree,
        "-p",
        plan.target_sha,
        "-p",
        plan.source_sha,
        "-m",
        plan.message,
    )
    new = commit.stdout.strip()
    moved = await git(
        repo,
        "update-ref",
        "-m",
        f"prodigy: {plan.message}",
        f"{HEADS}{plan.target}",
        new,
        plan.target_sha,
        check=False,
    )
    if not moved.ok:
        raise GitError(
            f"Branch '{plan.target}' moved while {plan.source} was being merged into it",
            hint=f"nothing was changed; {RETRY_HINT} again",
            details=describe_failure(moved),
        )


def refuse_conflicts(plan: _Merge, files: list[str]) -> NoReturn:
    """Raise the MergeRefused for a merge that conflicts in `files`."""
    raise MergeRefused(
        f"Merging {plan.source} into {plan.target} conflicts in: {list_files(files)}",
        hint=f"merge {plan.target} into the session branch and resolve the conflicts there, "
        + RETRY_HINT,
        code=errorcodes.MERGE_CONFLICT,
    )


async def verify_merged(repo: Path, plan: _Merge) -> str:
    """Prove the source is now part of the target, and return the target's new tip (read
    once: the tip checked is the tip reported)."""
    tip = await resolve_commit(repo, f"{HEADS}{plan.target}", f"Target branch '{plan.target}'")
    done = await git(repo, "merge-base", "--is-ancestor", plan.source_sha, tip, check=False)
    if not done.ok:
        raise GitError(
            f"merge verification failed: {plan.source} is not part of {plan.target} after merging",
            details=describe_failure(done),
        )
    return tip


async def merge_base(cwd: Path, one: str, other: str) -> str:
    """The best common ancestor of two commits."""
    done = await git(cwd, "merge-base", one, other)
    return done.stdout.strip()


def list_files(paths: Iterable[str]) -> str:
    """Sorted, comma-separated file names, cut short so a refusal stays readable."""
    ordered = sorted(set(paths))
    shown = ", ".join(ordered[:LISTED_FILES])
    hidden = len(ordered) - LISTED_FILES
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def split_nul(output: str) -> list[str]:
    """The fields of NUL-separated git output (`-z`), without the empty tail."""
    return [field for field in output.split("\0") if field]


async def merge_variables(
    repo: Path, source: str, target: str, *, worktree: Path, session_id: str
) -> dict[str, Any]:
    """The merge.* variables (reference §3.2) a custom `merge:` workflow interpolates.

    `merge.worktree` is the worktree's name, as in the original ("prodigy-session-…"
    there, the session id here); its steps already run inside it. Both branches are read
    once, so every variable describes the same two commits.
    """
    target_sha = await resolve_commit(repo, f"{HEADS}{target}", f"Target branch '{target}'")
    source_sha = await resolve_commit(repo, source, f"Session branch '{source}'")
    commits, changes = await asyncio.gather(
        list_commits(repo, target_sha, source_sha),
        list_changed_files(repo, target_sha, source_sha),
    )
    newest_touch: dict[str, str] = {}
    for commit in reversed(commits):  # oldest first, so the newest commit wins
        for path in commit["files_changed"]:
            newest_touch[path] = commit["id"]
    files = [
        {"path": path, "modification_type": kind, "commit_id": newest_touch.get(path)}
        for path, kind in changes
    ]
    return {
        "merge.worktree": worktree.name,
        "merge.source_branch": source,
        "merge.target_branch": target,
        "merge.session_id": session_id,
        "merge.commits": commits,
        "merge.commit_count": len(commits),
        "merge.commit_ids": ", ".join(commit["short_id"] for commit in commits),
        "merge.modified_files": files,
        "merge.file_count": len(files),
        "merge.file_list": ", ".join(file["path"] for file in files),
    }


#: One `git log` record: fields split by US (0x1f), records started by RS (0x1e). The
#: message comes last so that only an RS inside a message (never seen in practice) could
#: confuse the parser; the trailing US marks where `--name-only` output begins.
_LOG_FORMAT = "%x1e%H%x1f%h%x1f%an%x1f%ae%x1f%aI%x1f%B%x1f"


async def list_commits(repo: Path, target: str, source: str) -> list[dict[str, Any]]:
    """The commits of `target..source`, newest first, capped at MAX_COMMITS, in one git call."""
    done = await git(
        repo,
        "log",
        "-z",
        "-M",
        "--name-only",
        "--no-show-signature",
        f"-n{MAX_COMMITS}",
        f"--format={_LOG_FORMAT}",
        f"{target}..{source}",
        "--",
    )
    return [parse_log_record(record) for record in done.stdout.split("\x1e")[1:]]


def parse_log_record(record: str) -> dict[str, Any]:
    """One commit of `list_commits` output as a merge.commits entry.

    With `-z`, the file names follow the format as `\\0\\n` then NUL-terminated names.
    """
    sha, short, name, email, timestamp, rest = record.split("\x1f", 5)
    body, _, names = rest.rpartition("\x1f")
    return {
        "id": sha,
        "short_id": short,
        "author": {"name": name, "email": email},
        "message": body.rstrip("\n"),
        "timestamp": timestamp,
        "files_changed": split_nul(names.removeprefix("\0").removeprefix("\n")),
    }


async def list_changed_files(repo: Path, target: str, source: str) -> list[tuple[str, str]]:
    """`(path, modification_type)` for what `source` changed since it left `target`."""
    base = await merge_base(repo, target, source)
    done = await git(repo, "diff-tree", "-r", "-z", "-M", "--name-status", base, source)
    fields = iter(split_nul(done.stdout))
    changes: list[tuple[str, str]] = []
    for status in fields:
        if status.startswith("R"):  # a rename names the old path, then the new one
            next(fields)
        changes.append((next(fields), _MODIFICATION_TYPES.get(status[0], "modified")))
    return changes[:MAX_FILES]


# ---------------------------------------------------------------------------------------------
# merging a map agent's work into its parent session's worktree

#: Lines git writes around a conflict; a "resolved" file that still has one is not resolved.
CONFLICT_MARKER = re.compile(r"^(?:<{7}|={7}|>{7})(?: |$)", re.MULTILINE)


async def merge_into_worktree(worktree: Path, sha: str, message: str) -> list[str]:
    """`git merge --no-ff` of `sha` into the branch checked out in `worktree`.

    Returns [] when merged, else the conflicted files, with the merge left in progress for
    a resolver (`conclude_merge` or `abort_merge` must follow). Any other failure raises.
    """
    done = await git(
        worktree,
        "merge",
        "--quiet",
        "--no-ff",
        "--no-edit",
        "--no-autostash",
        "-m",
        message,
        sha,
        check=False,
    )
    if done.ok:
        return []
    if not await has_merge_in_progress(worktree):
        raise_failure(done, worktree)
    return await unmerged_files(worktree) or ["(unknown)"]


async def unmerged_files(worktree: Path) -> list[str]:
    done = await git(worktree, "diff", "--name-only", "-z", "--diff-filter=U")
    return split_nul(done.stdout)


async def conclude_merge(worktree: Path, sha: str, files: Iterable[str]) -> str | None:
    """After a resolver worked on a conflicted merge: finish it if it is resolved but not
    committed, and check it. Returns what is wrong, or None when `sha` is merged cleanly."""
    if await unmerged_files(worktree):
        return "conflicts are still unresolved"
    for name in files:
        try:
            text = (worktree / name).read_text(errors="replace")
        except OSError:
            continue  # deleted as the resolution
        if CONFLICT_MARKER.search(text):
            return f"{name} still has conflict markers"
    if await has_merge_in_progress(worktree):
        done = await git(worktree, "commit", "--quiet", "--no-edit", check=False)
        if not done.ok:
            return f"the merge could not be committed: {done.stderr.strip()[:200]}"
    if not await is_ancestor(worktree, sha, "HEAD"):
        return "the merge commit is missing"
    status = await git(worktree, "status", "--porcelain", "-z")
    if status.stdout:
        return "the worktree is not clean after the merge"
    return None


async def abort_merge(worktree: Path, restore_to: str) -> None:
    """Undo a failed merge attempt completely: the branch back at `restore_to`, clean."""
    if await has_merge_in_progress(worktree):
        await git(worktree, "merge", "--abort", check=False)
    await git(worktree, "reset", "--quiet", "--hard", restore_to)
    await git(worktree, "clean", "-ffdq")


def cut_off_merge(worktree: Path) -> bool:
    """Whether a merge is under way in one of prodigy's own worktrees (its MERGE_HEAD, read
    without a git process): at a job's start, one a crash cut off."""
    git_dir = worktree_git_dir(worktree)
    return git_dir is not None and (git_dir / "MERGE_HEAD").exists()


async def settle_interrupted_merge(worktree: Path) -> None:
    """A merge a crash left in progress in one of prodigy's own worktrees: forgotten if its
    commit was made (only git's clean-up was cut off), else undone completely."""
    if not await has_merge_in_progress(worktree):
        return
    if await is_ancestor(worktree, "MERGE_HEAD", "HEAD"):
        await git(worktree, "merge", "--quit")
    else:
        await abort_merge(worktree, "HEAD")


async def merged_item_ids(worktree: Path, since: str, pattern: re.Pattern[str]) -> set[str]:
    """Item ids named (group 1 of `pattern`) by the merge commits `since..HEAD`: how a
    resumed map phase recognises agents whose merge landed before a crash recorded it."""
    done = await git(worktree, "log", "--merges", "--format=%s", f"{since}..HEAD", "--")
    return {m.group(1) for line in done.stdout.splitlines() if (m := pattern.search(line))}
