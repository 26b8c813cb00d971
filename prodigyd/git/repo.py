"""Questions about a repository and its working tree, answered by the git CLI.

Status reads use `git --no-optional-locks` so that asking whether the user's checkout is
dirty never takes `index.lock` and never makes the user's own concurrent git command fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prodigyd import errorcodes
from prodigyd.errors import GitError
from prodigyd.git import objects
from prodigyd.git.cli import describe_failure, git, raise_failure
from prodigyd.git.plain import common_dir, git_dir_of, read_git_text

#: The namespace of local branches; prodigy only ever merges into one of these.
HEADS = "refs/heads/"


async def repo_root(path: Path) -> Path:
    """The top of the working tree that contains `path`, or a GitError saying there is none."""
    not_a_repo = GitError(
        f"Not a git repository: {path}",
        hint="run prodigyctl from inside a git repository, or pass -p/--path REPO",
        code=errorcodes.NOT_A_REPO,
    )
    if not path.is_dir():
        raise not_a_repo
    layout = _read_layout(path)
    if layout is not None:
        return layout.root
    done = await git(path, "rev-parse", "--show-toplevel", check=False)
    if not done.ok or not done.stdout.strip():
        raise not_a_repo
    return Path(done.stdout.strip())


async def root_and_branch(path: Path) -> tuple[Path, str]:
    """`repo_root` and its `current_branch` together: what every submission asks, answered
    from one read of `.git` in the common case."""
    layout = _read_layout(path) if path.is_dir() else None
    if layout is not None and layout.head_ref is not None and layout.born:
        return layout.root, layout.head_ref.removeprefix(HEADS)
    root = await repo_root(path)
    return root, await current_branch(root)


async def current_branch(repo: Path) -> str:
    """The branch checked out in `repo`: the one a session's result is merged back into.

    Refuses a detached HEAD (there is no branch to merge into) and an unborn branch (there
    is no commit to branch a session worktree from).
    """
    layout = _read_layout(repo)
    if layout is not None and layout.head_ref is not None and layout.born:
        return layout.head_ref.removeprefix(HEADS)
    ref = await git(repo, "symbolic-ref", "--quiet", "HEAD", check=False)
    if not ref.ok:
        raise GitError(
            f"HEAD is detached in {repo}",
            hint="check out a branch first: prodigy merges the result back into the branch "
            "you ran from",
            code=errorcodes.DETACHED_HEAD,
        )
    name = ref.stdout.strip().removeprefix(HEADS)
    born = await git(repo, "rev-parse", "--quiet", "--verify", "HEAD^{commit}", check=False)
    if not born.ok:
        raise GitError(
            f"Branch '{name}' in {repo} has no commits yet",
            hint="make a first commit: every prodigy session branches from it",
            code=errorcodes.DETACHED_HEAD,
        )
    return name


async def branch_tip(path: Path, branch: str) -> str:
    """The sha of `refs/heads/<branch>`: a session start reads it on the way to its first
    step (`commit_id` reads it from the ref files when they are plain)."""
    return await commit_id(path, f"{HEADS}{branch}")


async def committed_files(path: Path, commit: str) -> list[str]:
    """Every file committed at `commit`, relative to the repository top, in git's (byte)
    order."""
    done = await git(path, "ls-tree", "-r", "-z", "--name-only", commit)
    return [name for name in done.stdout.split("\0") if name]


async def commit_id(path: Path, rev: str) -> str:
    """The full id of the commit `rev` names, resolved once, for the repository at `path`.

    Every git command that starts something from a branch another task can move (a
    session's target branch, which other sessions merge into) is given this id, never the
    name: git resolves a name more than once in one command (`checkout -B b main` reads
    `main` for the files, then again for the branch), so a merge landing in between left a
    session branch at the new tip over the old tip's files, and the session's next commit
    reverted the merge. An id is returned as it is; a local branch is read from the ref
    files when they are plain (a loose ref, or packed-refs: ~50 µs against ~3 ms for a git
    process); anything else is asked of `git rev-parse`.
    """
    if SHA.fullmatch(rev):
        return rev
    if rev == "HEAD":
        layout = _read_layout(path)
        if layout is not None and layout.head_commit is not None:
            return layout.head_commit
    elif rev.startswith(HEADS):
        common = _refs_around(path)
        sha = ref_sha(common, rev) if common is not None else None
        if sha is not None:
            return sha
    done = await git(
        path,
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        f"{rev}^{{commit}}",
        check=False,
    )
    if not done.ok:
        raise GitError(f"No commit named {rev!r} in {path}", details=describe_failure(done))
    return done.stdout.strip()


@dataclass(frozen=True)
class _Layout:
    root: Path
    head_ref: str | None  # "refs/heads/main", or None when HEAD is not a branch ref
    common: Path  # the repository's common git dir (refs live there)
    head_commit: str | None  # what HEAD points at; None: an unborn branch, or unknown

    @property
    def born(self) -> bool:
        """The branch has a commit (a detached HEAD always has)."""
        return self.head_commit is not None or self.head_ref is None


def _read_layout(path: Path) -> _Layout | None:
    """Read the repository around `path` straight from `.git`, the common case only.

    Submissions ask for the root and the branch; three git spawns cost ~4 ms, these file
    reads ~50 µs. Anything unusual (a reftable store, an unreadable gitdir, GIT_DIR-style
    setups) returns None and the callers ask the git CLI, which is always right.
    """
    found = _git_dirs_around(path)
    if found is None:
        return None
    folder, git_dir, common = found
    try:
        head = read_git_text(f"{git_dir}/HEAD").strip()
    except OSError:
        return None
    if not head.startswith("ref: "):
        return _Layout(folder, None, common, head if SHA.fullmatch(head) else None)
    ref = head.removeprefix("ref: ").strip()
    branch = ref if ref.startswith(HEADS) else None
    return _Layout(folder, branch, common, ref_sha(common, ref))


def linked_worktree_dirs(path: Path) -> tuple[Path, Path] | None:
    """(its own git dir, the common git dir) of the linked worktree whose top is `path`,
    when its refs are plain files; None for anything else (a pool slot's start and end
    then ask git)."""
    found = _git_dirs_around(path, top=True)
    if found is None or found[1] == found[2]:
        return None
    return found[1], found[2]


def _git_dirs_around(path: Path, *, top: bool = False) -> tuple[Path, Path, Path] | None:
    """(the top folder, its git dir, the common git dir) of the repository around `path`
    (`top`: only when `path` is that top) when its refs are plain files; None when they
    may not be (the callers ask git).

    Kept (`_FOUND`) for a path that is its repository's top, and trusted while the `.git`
    there, and in the folder the answer names, is the one it was found through and the
    common git dir holds no reftable store: a job's start and end ask about the same
    repository and worktree a dozen times, and each finding resolves paths (an lstat per
    component) and reads `.git` and `commondir` (~40 µs for a repository, ~90 for a
    linked worktree), where the checks are three stats."""
    key = str(path)
    hit = _FOUND.get(key)
    if hit is not None:
        stamp, found, names = hit
        if (
            _stamp(key) == stamp
            and (names[0] == key or _stamp(names[0]) == stamp)
            and not os.path.exists(names[1])
        ):
            return found
    before = _stamp(key) if path.is_absolute() else None  # before the reads it vouches for
    start = path.resolve()  # once: each resolve is an lstat per component
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.exists():
            break
    else:
        return None
    if top and folder != start:
        return None
    try:
        git_dir = git_dir_of(dot_git)
        common = common_dir(git_dir) or git_dir
        reftable = common / "reftable"
        if reftable.exists():
            return None
    except OSError:
        return None
    found = folder, git_dir, common
    if before is not None and folder == start and _stamp(key) == before:
        if len(_FOUND) >= FOUND_KEPT:
            _FOUND.pop(next(iter(_FOUND), ""), None)  # the oldest finding
        _FOUND[key] = before, found, (str(folder), str(reftable))
    return found


#: What `_git_dirs_around` found for a path that is its repository's top (the only ones
#: kept: a `.git` made in a subfolder of one could not be noticed), with what identified
#: the `.git` then and the paths its checks stat (the top the answer names, the reftable
#: store that would make it wrong). The repositories and the pool's worktrees of a
#: daemon's jobs.
_FOUND: dict[str, tuple[tuple[int, ...], tuple[Path, Path, Path], tuple[str, str]]] = {}
FOUND_KEPT = 256


def _stamp(top: str) -> tuple[int, ...] | None:
    """What identifies the `.git` in `top` (through any symlink in the path: one turned to
    another checkout names another `.git`): a folder by its inode, a linked worktree's file
    by its inode, size and mtime too (`git worktree repair` or a move rewrites it)."""
    try:
        st = os.stat(f"{top}/.git")
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return st.st_dev, st.st_ino
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _refs_around(path: Path) -> Path | None:
    """The common git dir whose ref files hold the branches of the repository around
    `path`, for a read that needs no HEAD; None when git must answer (`_git_dirs_around`,
    or a git dir without HEAD, broken or pruned: git says what it is)."""
    found = _git_dirs_around(path)
    if found is None or not os.path.isfile(f"{found[1]}/HEAD"):
        return None
    return found[2]


SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def ref_sha(common: Path, ref: str) -> str | None:
    """The sha a ref holds in the files backend of the repository whose common git dir is
    `common`: its loose file, else packed-refs; None when it has none there. (Its paths
    are strings: a Path join costs more than the read, on every submission and start.)"""
    try:
        loose = read_git_text(f"{common}/{ref}").strip()
    except OSError:
        loose = None
    if loose is not None:
        return loose if SHA.fullmatch(loose) else None
    try:
        packed = read_git_text(f"{common}/packed-refs")
    except OSError:
        return None
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and SHA.fullmatch(sha):
            return sha
    return None


async def head_sha(path: Path) -> str:
    """The full sha of the commit checked out at `path`."""
    done = await git(path, "rev-parse", "--verify", "HEAD^{commit}")
    return done.stdout.strip()


async def is_ancestor(path: Path, older: str, newer: str) -> bool:
    """Whether commit `older` is part of `newer`'s history (either may be a name git
    resolves, `MERGE_HEAD` and `HEAD` included); False too when either is unknown. Two ids
    are asked of libgit2 (git/objects.py), names of git."""
    if SHA.fullmatch(older) and SHA.fullmatch(newer):
        answer = await asyncio.to_thread(objects.is_ancestor, path, older, newer)
        if answer is not None:
            return answer
    done = await git(path, "merge-base", "--is-ancestor", older, newer, check=False)
    return done.ok


async def parents(path: Path, sha: str) -> list[str]:
    """The parent ids of commit `sha` (none when it is unknown)."""
    found = await asyncio.to_thread(objects.parents, path, sha)
    if found is not None:
        return found
    done = await git(path, "rev-list", "--parents", "-n", "1", sha, "--", check=False)
    return done.stdout.split()[1:] if done.ok else []


async def checked_out(path: Path) -> tuple[str, str] | None:
    """(commit, branch) checked out in the worktree at `path`; None when HEAD is detached
    or its branch has no commit yet. From `.git`'s files in the common case."""
    layout = _read_layout(path)
    if layout is not None and layout.head_commit is not None:
        if layout.head_ref is None:
            return None
        return layout.head_commit, layout.head_ref.removeprefix(HEADS)
    # HEAD's commit, then its ref: the option applies to the names after it only
    done = await git(path, "rev-parse", "HEAD", "--symbolic-full-name", "HEAD", check=False)
    head, _, ref = done.stdout.strip().partition("\n")
    if not (done.ok and ref.startswith(HEADS)):
        return None
    return head, ref.removeprefix(HEADS)


async def branch_exists(repo: Path, branch: str) -> bool:
    """Whether `refs/heads/<branch>` exists (tags and remote branches do not count): read
    from the ref files when they are plain (`ref_sha`), else asked of git."""
    common = _refs_around(repo) if repo.is_dir() else None
    if common is not None:
        return ref_sha(common, f"{HEADS}{branch}") is not None
    done = await git(repo, "show-ref", "--verify", "--quiet", f"{HEADS}{branch}", check=False)
    if done.returncode not in (0, 1):  # 1 = no such ref; anything else is a broken repo
        raise_failure(done, repo)
    return done.returncode == 0


async def is_dirty(path: Path) -> bool:
    """Whether the working tree has tracked changes or untracked (not ignored) files."""
    done = await git(path, "--no-optional-locks", "status", "--porcelain", "-z")
    return bool(done.stdout)


async def dirty_paths(path: Path) -> set[str]:
    """Every path, relative to the top of the working tree, that has uncommitted changes.

    Untracked directories are expanded to their files (`-uall`) and both sides of a staged
    rename are reported, so the set can be intersected with the files a merge touches.
    """
    done = await git(path, "--no-optional-locks", "status", "--porcelain", "-z", "-uall")
    return parse_porcelain_paths(done.stdout)


def parse_porcelain_paths(output: str) -> set[str]:
    """The paths in `git status --porcelain -z` output (format v1).

    Each entry is `XY <path>`; a rename or copy is followed by one more NUL-terminated
    field, its original path.
    """
    fields = iter(output.split("\0"))
    paths: set[str] = set()
    for entry in fields:
        if len(entry) < 4:  # the empty tail after the last NUL
            continue
        status, path = entry[:2], entry[3:]
        paths.add(path)
        if "R" in status or "C" in status:
            paths.add(next(fields, ""))
    paths.discard("")
    return paths


@dataclass(frozen=True)
class WorktreeState:
    head: str  # the commit checked out
    changed: bool  # tracked changes or untracked files: something to commit
    ignored: bool  # ignored files are present (a pool slot must be cleaned of them)


#: The largest index whose worktree state is read in process (`objects.worktree_state`)
#: rather than by a `git status`. libgit2 holds the event loop for it (~0.5 ms, plus ~3 µs
#: a file); the spawn of git holds the loop about as long until git execs (0.5-5 ms here),
#: and git then costs a core another 3-5 ms. Past this size git's own status (threads,
#: untracked cache, fsmonitor) is left to do it, off the loop.
IN_PROCESS_STATUS_FILES = 256
#: ... and the most bytes those files may hold (as last staged): libgit2 hashes a file whose
#: times changed since it was staged (a formatter touched it), on the loop: ~4 ms at most.
IN_PROCESS_STATUS_BYTES = 4 << 20


async def worktree_state(path: Path, *, load: bool = True) -> WorktreeState:
    """HEAD and whether anything is uncommitted or ignored, in one read (a map agent asks
    this once per item, a session at its end, so one read instead of three, and none by a
    process when the worktree is small, matters).

    Read by libgit2 when it can (`objects.worktree_state`), else by one `git status`.
    `load=False` leaves pygit2 unimported when it is not yet: its import costs ~60 ms and
    11 MB, which a daemon that watches no repository and runs no map phase never pays
    (a session's end then asks git)."""
    if load and not objects.loaded():  # not on the event loop
        await asyncio.to_thread(objects.load)
    if objects.loaded():
        known = objects.worktree_state(path, IN_PROCESS_STATUS_FILES, IN_PROCESS_STATUS_BYTES)
        if known is not None:
            return WorktreeState(*known)
    done = await git(  # untracked files listed whatever status.showUntrackedFiles says
        path,
        "--no-optional-locks",
        "status",
        "--porcelain=v2",
        "--branch",
        "--ignored",
        "--untracked-files=normal",
        "-z",
    )
    head, changed, ignored = "", False, False
    for entry in done.stdout.split("\0"):
        if entry.startswith("# branch.oid "):
            head = entry.removeprefix("# branch.oid ")
        elif entry.startswith("!"):
            ignored = True
        elif entry and not entry.startswith("#"):
            changed = True
    return WorktreeState(head=head, changed=changed, ignored=ignored)


#: What prodigy's own commits leave out even when the repository does not ignore it:
#: interpreter and tool caches a step's commands leave behind (a user trying prodigy found
#: `__pycache__/*.pyc` merged into their branch). Files git ignores are never staged anyway.
NEVER_AUTO_COMMITTED = (
    "**/__pycache__/**",
    "**/*.py[co]",
    "**/.pytest_cache/**",
    "**/.mypy_cache/**",
    "**/.ruff_cache/**",
    "**/.DS_Store",
)


async def commit_all(path: Path, message: str, *, leave_out: Sequence[str] = ()) -> str | None:
    """Stage everything in the working tree and commit it; None if there was nothing to commit.

    This is `auto_commit`: a step that changed files without committing still leaves a
    commit behind for the merge and for the step's git variables. It never stages what git
    ignores, the caches of NEVER_AUTO_COMMITTED, nor the paths of `leave_out` (relative to
    the worktree: a MapReduce job's input file its setup wrote).
    """
    excluded = [f":(exclude,glob){pattern}" for pattern in NEVER_AUTO_COMMITTED]
    excluded += [f":(exclude,literal){name}" for name in leave_out]
    await git(path, "add", "--all", "--", ".", *excluded)
    staged = await git(path, "diff", "--cached", "--quiet", check=False)
    if staged.returncode == 0:
        return None
    if staged.returncode != 1:  # 1 = there are staged changes; anything else is an error
        raise_failure(staged, path)
    await git(path, "commit", "--quiet", "-m", message)
    return await head_sha(path)
