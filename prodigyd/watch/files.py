"""`on: files`: which working-tree changes of a watched repository start which workflows,
and the snapshot of the files a run starts from.

The watcher (watch/refwatch.py) hands over the paths that changed under a repository's
top, once they have settled (no write for the longest `settle` of its file triggers) and
git is not in the middle of something (`busy`): a `.git/index.lock`, a rebase, a merge or
a cherry-pick make it wait and fire once, for the final state.

A changed path counts when it is not under `.git/` nor under $PRODIGY_HOME, matches one of
a trigger's `paths` (none: any) and none of its `ignore` globs, and git does not ignore it
(`.gitignore` and the rest, asked with one `git check-ignore --stdin` for the candidates
only). Prodigy's own worktrees never fire: a repository under $PRODIGY_HOME has no file
triggers.

The run must see the edit that fired it, committed or not: `snapshot` makes a commit of
the working tree (tracked and untracked files, not ignored ones) on top of HEAD through a
temporary index (a copy of the user's, for its stat data), so the user's index and files
are never touched, and the run starts at that commit (RunRequest.start_commit). Its
identity is (branch, HEAD, tree): the same state of the files seen twice makes one run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from prodigyd import paths
from prodigyd.git import objects
from prodigyd.git.cli import git_env
from prodigyd.store import scratch
from prodigyd.watch import triggers, variables
from prodigyd.watch.triggers import Firing, Found
from prodigyd.workflow.interpolate import glob_match
from prodigyd.workflow.model import Trigger

SEEN_BY = "file watcher"
#: What git leaves in a git dir while it is in the middle of something.
BUSY = ("index.lock", "rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD")
#: How often a deferred change looks again whether git is done.
BUSY_POLL_SECONDS = 0.05
#: Who the snapshot commits are by, unless the environment says otherwise.
IDENTITY = ("-c", f"user.name={objects.IDENTITY[0]}", "-c", f"user.email={objects.IDENTITY[1]}")
MESSAGE = "prodigy: snapshot of the working tree (on: files)"


def candidates(found: list[Found]) -> list[tuple[Path, Trigger]]:
    return triggers.triggered(found, "files")


def settle_of(found: list[Found]) -> float | None:
    """How long the repository's changes settle: the longest of its file triggers'
    (one timer per repository); None when it has none."""
    settles = [t.settle_seconds for _, t in candidates(found)]
    return max(settles) if settles else None


def watched_file(repo: Path, path: Path) -> str | None:
    """`path` relative to the repository's top, when a file trigger may care about it: not
    in `.git/`, not under $PRODIGY_HOME, not in a repository under $PRODIGY_HOME."""
    try:
        name = path.relative_to(repo)
    except ValueError:
        return None
    if not name.parts or name.parts[0] == ".git":
        return None
    home = paths.home()
    if _under(repo, home) or _under(path, home):
        return None
    return name.as_posix()


def busy(git_dir: Path) -> str | None:
    """What git is in the middle of in this git dir (None: nothing)."""
    return next((name for name in BUSY if (git_dir / name).exists()), None)


def matches(trigger: Trigger, name: str) -> bool:
    if trigger.paths and not any(glob_match(name, g) for g in trigger.paths):
        return False
    return not any(glob_match(name, g) for g in trigger.ignore)


def not_ignored(repo: Path, names: Iterable[str]) -> list[str]:
    """The names git does not ignore (blocking: run it in a worker thread); asked of
    libgit2, else of one `git check-ignore --stdin` for them all."""
    names = sorted(set(names))
    if not names:
        return []
    ignored = objects.ignored(repo, names)
    if ignored is None:
        done = subprocess.run(
            ["git", "check-ignore", "--stdin", "-z"],  # tracked files are never ignored
            cwd=repo,
            env=git_env(),
            input="\0".join(names) + "\0",
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode not in (0, 1):  # 1: none is ignored
            raise OSError(f"git check-ignore failed in {repo}: {done.stderr.strip()}")
        ignored = {n for n in done.stdout.split("\0") if n}
    return [n for n in names if n not in ignored]


def snapshot(repo: Path, head: str, git_dir: Path | None = None) -> tuple[str, str]:
    """(commit, tree): the working tree as a commit on top of `head` (blocking: run it in
    a worker thread), made without writing the user's index: by libgit2 in memory from
    the user's index (git/objects.py), else by git through a temporary index.

    The temporary index starts as a copy of the user's (read, never written: git replaces
    it by a rename, and nothing is read while `index.lock` exists), whose file stat data
    spares `git add -A` hashing every unchanged file again; when there is none, or git
    cannot use the copy (a split index), it starts from `git read-tree HEAD`."""
    made = objects.snapshot(repo, head, MESSAGE, git_env())
    if made is not None:
        return made
    with scratch.folder("prodigy-snapshot-") as tmp:
        index = Path(tmp, "index")
        env = {**git_env(), "GIT_INDEX_FILE": str(index)}

        def run(*args: str) -> str:
            done = subprocess.run(
                ["git", *IDENTITY, *args],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise OSError(f"git {args[0]} failed in {repo}: {done.stderr.strip()}")
            return done.stdout.strip()

        try:
            if git_dir is None:
                raise OSError("no git dir to copy the index from")
            shutil.copyfile(git_dir / "index", index)
            run("add", "-A", "--", ".")
        except OSError:
            index.unlink(missing_ok=True)
            run("read-tree", head)
            run("add", "-A", "--", ".")
        tree = run("write-tree")
        return run("commit-tree", tree, "-p", head, "-m", MESSAGE), tree


def firings(
    found: list[Found], names: list[str], branch: str, head: str, snap: tuple[str, str]
) -> list[Firing]:
    """The runs the changed `names` (not ignored) start on `branch`, from the snapshot."""
    commit, tree = snap
    values = variables.environment(
        event="files", ref=f"refs/heads/{branch}", before=head, after=commit, branch=branch
    )
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    reason = f"files {commit[:12]} on {branch}: {shown} ({SEEN_BY})"
    return [
        Firing(
            path,
            trigger,
            branch,
            reason,
            None,
            f"files\0{branch}\0{head}\0{tree}",
            values,
            start_commit=commit,
        )
        for path, trigger in candidates(found)
        if triggers.branch_matches(trigger, branch) and any(matches(trigger, n) for n in names)
    ]


def _under(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents
