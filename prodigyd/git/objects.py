"""Small reads of a repository's refs and objects, in process through pygit2.

The watcher asks git a handful of small questions on the way from a change to a run (which
refs moved, a commit's parents, whether one commit descends from another, which files
changed, which paths are ignored, a snapshot of the working tree). A git process answers
each in 2.5-4 ms here, most of it the spawn; libgit2 answers in 1-200 µs (bench: the
watcher's share of `bench/trigger_latency.py`). Checkout-sized work stays with the git CLI
(git/cli.py): a subprocess costs the event loop nothing, whatever its size.

Every function here blocks: call it through `asyncio.to_thread` (libgit2 lets the GIL go
while it reads, so the event loop keeps running). Each returns None when libgit2 cannot
answer for this repository (a ref store it does not read, such as reftable; a corrupt
object; a repository gone): the caller then asks the git CLI, which is always right.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from prodigyd.git import plain

if TYPE_CHECKING:
    import pygit2

#: Snapshot commits are by prodigy unless the environment names someone (as git's
#: GIT_AUTHOR_*/GIT_COMMITTER_* do for `git commit-tree`).
IDENTITY = ("prodigy", "prodigy@localhost")
#: Repository settings under which libgit2 would not stage what `git add -A` stages: clean
#: filters it does not run (git-lfs), submodules, a sparse checkout.
_CLI_ONLY_CONFIG = ("filter.", "core.sparsecheckout")
#: Variables by which git reads other configuration files than libgit2 does (libgit2 knows
#: none of them): while one is set, answers that depend on configuration (ignore rules,
#: staging) are left to git.
CONFIG_VARS = (
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_PARAMETERS",
)


def load() -> ModuleType:
    """pygit2, imported on first use: it takes ~60 ms, which a daemon that watches no
    repository never pays (the watcher loads it in a worker thread as it attaches one)."""
    return importlib.import_module("pygit2")


def loaded() -> bool:
    """Whether pygit2 is imported already (an event loop about to call in directly loads
    it in a worker thread first)."""
    return "pygit2" in sys.modules


def open_repo(path: Path) -> pygit2.Repository | None:
    """The repository at `path` (a worktree's top or its git dir), or None."""
    pygit2 = load()
    try:
        return pygit2.Repository(str(path))
    except (pygit2.GitError, KeyError, ValueError, OSError):
        return None


def refs(path: Path, prefixes: Iterable[str]) -> dict[str, str] | None:
    """{ref: id} of every ref under `prefixes`, symbolic refs resolved (as `git
    for-each-ref` prints them); None when libgit2 cannot read them."""
    pygit2 = load()
    repo = open_repo(path)
    if repo is None:
        return None
    wanted = tuple(prefixes)
    found = {}
    try:
        for ref in repo.references.iterator():  # each ref read once, not listed then looked up
            if not ref.name.startswith(wanted):
                continue
            try:
                found[ref.name] = str(ref.resolve().target)
            except (KeyError, pygit2.GitError):  # dangling symbolic ref, deleted meanwhile
                continue
    except pygit2.GitError:
        return None
    return found


def parents(path: Path, sha: str) -> list[str] | None:
    """The parent ids of commit `sha`; None when libgit2 cannot read it."""
    pygit2 = load()
    repo = open_repo(path)
    if repo is None:
        return None
    try:
        commit = repo[sha]
    except (KeyError, ValueError, pygit2.GitError):
        return None
    if not isinstance(commit, pygit2.Commit):
        return None
    return [str(parent) for parent in commit.parent_ids]


def is_ancestor(path: Path, older: str, newer: str) -> bool | None:
    """`git merge-base --is-ancestor older newer` for two ids: a commit is its own
    ancestor; False when either is unknown; None when libgit2 cannot tell."""
    if older == newer:
        return True
    pygit2 = load()
    repo = open_repo(path)
    if repo is None:
        return None
    try:
        return bool(repo.descendant_of(newer, older))
    except (KeyError, ValueError):  # an id of no object here
        return False
    except pygit2.GitError:
        return None


def changed_names(path: Path, sha: str, base: str | None) -> list[str] | None:
    """The files that differ from `base` to `sha` (from `sha`'s first parent when no base
    is given: a merge's files are those it brought in; a root commit's, all of them),
    both names of a moved file; None when libgit2 cannot tell."""
    pygit2 = load()
    repo = open_repo(path)
    if repo is None:
        return None
    try:
        commit = repo[sha].peel(pygit2.Commit)
        if base is not None:
            old = repo[base].peel(pygit2.Tree)
        else:
            old = commit.parents[0].tree if commit.parents else None
        diff = commit.tree.diff_to_tree(old, swap=True) if old else commit.tree.diff_to_tree()
    except (KeyError, ValueError, pygit2.GitError):
        return None
    names = {d.old_file.path for d in diff.deltas} | {d.new_file.path for d in diff.deltas}
    return sorted(names)


def index_holds(path: Path, commit: str) -> bool | None:
    """Whether the index of the worktree at `path` holds exactly `commit`'s tree (`git
    diff-index --cached --quiet`); None when libgit2 cannot tell (a conflict in the index,
    say). Read from git's own files when they tell (git/plain.py): libgit2 is loaded only
    when they do not."""
    held = plain.index_holds(path, commit)
    if held is not None:
        return held
    pygit2 = load()
    repo = open_repo(path)
    if repo is None:
        return None
    try:
        return repo.index.write_tree() == repo[commit].peel(pygit2.Commit).tree_id
    except (KeyError, ValueError, pygit2.GitError):
        return None


def ignored(path: Path, names: Iterable[str]) -> set[str] | None:
    """Which of `names` (relative to the top of the worktree at `path`) git ignores:
    matched by an ignore rule and not tracked (git never ignores a tracked file)."""
    if _config_redirected():
        return None
    pygit2 = load()
    repo = open_repo(path)
    if repo is None:
        return None
    try:
        matched = {name for name in names if repo.path_is_ignored(name)}
        if matched:
            index = repo.index
            matched = {name for name in matched if name not in index}
    except pygit2.GitError:
        return None
    return matched


def worktree_state(path: Path, max_files: int, max_bytes: int) -> tuple[str, bool, bool] | None:
    """(HEAD, something to commit, ignored files present) of the worktree at `path`, as
    `git status --porcelain --ignored` tells them; None when libgit2 would not see what
    git sees (the cases `snapshot` leaves to git; an unborn branch) or the index holds
    more than `max_files` files or `max_bytes` of them (what libgit2 may hash when their
    times changed: the caller bounds the time this holds the event loop by both)."""
    pygit2 = load()
    repo = _seen_as_git_sees(path, _opened(path))
    if repo is None:
        return None
    extent = plain.index_extent(f"{repo.path.rstrip('/')}/index")
    if extent is None or extent[0] > max_files or extent[1] > max_bytes:
        return None
    try:
        if repo.head_is_unborn:
            return None
        head = str(repo.head.target)
        flags = repo.status(untracked_files="normal", ignored=True).values()
    except (KeyError, ValueError, OSError, pygit2.GitError):
        return None
    ignored = pygit2.GIT_STATUS_IGNORED
    return head, any(flag & ~ignored for flag in flags), any(flag & ignored for flag in flags)


def snapshot(path: Path, head: str, message: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(commit, tree): the working tree at `path` as a commit on top of `head`, staged as
    `git add -A` would from the user's index, in memory only: the index file is never
    written. None when libgit2 would stage differently (see _CLI_ONLY_CONFIG) or fails.

    Costs ~1 ms for a small repository, ~10 ms at 2,000 files (the git CLI: ~12 and
    ~23 ms), as both stat every tracked file."""
    pygit2 = load()
    repo = _seen_as_git_sees(path, open_repo(path))  # its index is changed in memory:
    if repo is None:  # a repository of its own, never one kept for reading
        return None
    try:
        index = repo.index
        index.add_all()
        tree = index.write_tree()
        author = _signature(env, "AUTHOR")
        committer = _signature(env, "COMMITTER")
        commit = repo.create_commit(None, author, committer, message, tree, [pygit2.Oid(hex=head)])
    except (KeyError, ValueError, OSError, pygit2.GitError):
        return None
    return str(commit), str(tree)


#: Repositories opened by `worktree_state`, most recently used last, by worktree path and
#: the identity of its `.git` file: a map agent's pool slot is asked once per item, and a
#: fresh open (configuration, ignore rules, index loaded again) costs ~4x the status
#: itself (~0.4 ms against ~0.1 ms). Only read from, never changed in memory; libgit2
#: reads each of those files again when it changed on disk (HEAD and refs every time), so
#: a kept repository answers as a fresh one does. A worktree made again at the same path
#: has a new `.git` file, so it is opened again.
_KEPT: OrderedDict[tuple[str, int, int], pygit2.Repository] = OrderedDict()
_KEPT_MAX = 32


def _opened(path: Path) -> pygit2.Repository | None:
    """The repository of the worktree at `path`, kept open for the next read of it."""
    try:
        stat = os.stat(Path(path) / ".git")
    except OSError:
        return open_repo(path)
    key = (str(path), stat.st_ino, stat.st_mtime_ns)
    repo = _KEPT.get(key)
    if repo is not None:
        _KEPT.move_to_end(key)
        return repo
    repo = open_repo(path)
    if repo is not None:
        _KEPT[key] = repo
        while len(_KEPT) > _KEPT_MAX:
            _KEPT.popitem(last=False)
    return repo


def _seen_as_git_sees(path: Path, repo: pygit2.Repository | None) -> pygit2.Repository | None:
    """`repo`, the repository of the worktree at `path`, when libgit2 sees its files as git
    does: None while git's configuration is redirected, for a bare repository, one with
    submodules, or configuration only git applies (`_CLI_ONLY_CONFIG`)."""
    pygit2 = load()
    if _config_redirected():
        return None
    if repo is None or repo.is_bare or os.path.exists(f"{path}/.gitmodules"):
        return None
    try:
        if _cli_only(repo):
            return None
    except (OSError, pygit2.GitError):
        return None
    return repo


_Stamp = tuple[int, int, int] | None  # a file's (inode, size, mtime); None: not there
#: `_cli_only`'s answers by git dir: (the configuration files libgit2 reads for it, their
#: stamps when it was read, the answer).
_CONFIG_READ: OrderedDict[str, tuple[list[str], tuple[_Stamp, ...], bool]] = OrderedDict()
#: A configuration file changed this recently is read again each time: a change within the
#: clock's tick can leave its stamp as it was (git's "racy" files).
_RACY_NS = 2_000_000_000


def _cli_only(repo: pygit2.Repository) -> bool:
    """Whether the repository's configuration holds a _CLI_ONLY_CONFIG setting. Read through
    pygit2 (~80 µs: an object made for every entry of every file), and kept while the
    files libgit2 reads it from stand as they were (a stat each): a map agent's slot is
    asked once per item. Never kept for a configuration that includes other files."""
    kept = _CONFIG_READ.get(repo.path)
    if kept is not None and _stamps(kept[0]) == kept[1]:
        _CONFIG_READ.move_to_end(repo.path)
        return kept[2]
    files = kept[0] if kept is not None else _config_files(repo)
    stamps = _stamps(files)
    found = includes = False
    for entry in repo.config:
        name = entry.name.lower()
        found = found or name.startswith(_CLI_ONLY_CONFIG)
        includes = includes or name == "include.path" or name.startswith("includeif.")
    settled = time.time_ns() - _RACY_NS
    if not includes and all(stamp is None or stamp[2] < settled for stamp in stamps):
        _CONFIG_READ[repo.path] = (files, stamps, found)
        while len(_CONFIG_READ) > _KEPT_MAX:
            _CONFIG_READ.popitem(last=False)
    return found


def _config_files(repo: pygit2.Repository) -> list[str]:
    """The files libgit2 reads the configuration of `repo` from (those there may be)."""
    pygit2 = load()
    search = pygit2.settings.search_path
    git_dir = repo.path.rstrip("/")
    common = plain.common_dir(Path(git_dir)) or git_dir
    files = [f"{common}/config", f"{git_dir}/config.worktree"]
    for level, name in (
        (pygit2.GIT_CONFIG_LEVEL_SYSTEM, "gitconfig"),
        (pygit2.GIT_CONFIG_LEVEL_XDG, "config"),
        (pygit2.GIT_CONFIG_LEVEL_GLOBAL, ".gitconfig"),
    ):
        files += [f"{folder}/{name}" for folder in search[level].split(os.pathsep) if folder]
    return files


def _stamps(files: list[str]) -> tuple[_Stamp, ...]:
    stamps: list[_Stamp] = []
    for file in files:
        try:
            found = os.stat(file)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((found.st_ino, found.st_size, found.st_mtime_ns))
    return tuple(stamps)


def _config_redirected() -> bool:
    return any(name in os.environ for name in CONFIG_VARS)


def _signature(env: Mapping[str, str], who: str) -> pygit2.Signature:
    name = env.get(f"GIT_{who}_NAME") or IDENTITY[0]
    email = env.get(f"GIT_{who}_EMAIL") or IDENTITY[1]
    return load().Signature(name, email)
