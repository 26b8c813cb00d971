"""Reads answered in process by libgit2 (prodigyd/git/objects.py) say what git says, and
the repositories libgit2 cannot read (SHA-256 object format here) are asked of git."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prodigyd.git import objects, plain
from prodigyd.git import repo as git_repo
from prodigyd.git.repo import branch_exists, checked_out, is_ancestor, parents
from prodigyd.git.worktree import checkout_matches
from prodigyd.watch import files, refs
from prodigyd.watch.triggers import changed_files
from tests.gitutil import commit_files, git, make_repo, use_own_config


@pytest.fixture(params=["sha1", "sha256"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """main with a merge of `side`, a rename, tags (annotated, light), packed and loose
    refs and a symbolic remote HEAD; SHA-256 is one libgit2 cannot open."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main", f"--object-format={request.param}")
    commit_files(repo, {"a.txt": "a\n", "old.txt": "moved\n"}, "root")
    git(repo, "checkout", "--quiet", "-b", "side")
    commit_files(repo, {"side.txt": "side\n"}, "side")
    git(repo, "checkout", "--quiet", "main")
    commit_files(repo, {"main.txt": "main\n"}, "main")
    git(repo, "merge", "--quiet", "--no-ff", "--no-edit", "side")
    git(repo, "tag", "-a", "-m", "annotated", "v1")
    git(repo, "pack-refs", "--all")
    git(repo, "mv", "old.txt", "new.txt")
    git(repo, "commit", "--quiet", "-m", "rename")
    git(repo, "tag", "light")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD~1")
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    return repo


def readable(repo: Path) -> bool:
    return objects.open_repo(repo) is not None


async def test_the_ref_snapshot_is_what_for_each_ref_prints(history: Path):
    printed = git(history, "for-each-ref", "--format=%(refname) %(objectname)", *refs.WATCHED)
    expected = dict(line.split(" ") for line in printed.splitlines())
    assert "refs/remotes/origin/HEAD" in expected and "refs/tags/v1" in expected
    assert await refs.snapshot(history) == expected
    assert (objects.refs(history, refs.WATCHED) == expected) == readable(history)


async def test_parents_and_ancestry(history: Path):
    merge, first, second = git(history, "rev-list", "--parents", "-n", "1", "HEAD~1").split()
    assert await parents(history, merge) == [first, second]
    assert await parents(history, "0" * len(merge)) == []
    assert await is_ancestor(history, first, merge)
    assert await is_ancestor(history, merge, merge)
    assert not await is_ancestor(history, merge, first)
    assert not await is_ancestor(history, "1" * len(merge), merge)  # unknown: not an ancestor
    assert (objects.is_ancestor(history, first, merge) is not None) == readable(history)


async def test_changed_files_of_a_merge_a_root_and_a_rename(history: Path):
    merge = git(history, "rev-parse", "HEAD~1").strip()
    root = git(history, "rev-list", "--max-parents=0", "HEAD").strip()
    assert await changed_files(history, merge) == ["side.txt"]  # what the merge brought in
    assert await changed_files(history, root) == ["a.txt", "old.txt"]
    assert await changed_files(history, "HEAD", merge) == ["new.txt", "old.txt"]
    assert await changed_files(history, "2" * len(merge)) is None


async def test_branches_and_the_checked_out_commit(history: Path):
    head = git(history, "rev-parse", "HEAD").strip()
    assert await branch_exists(history, "main")  # loose
    assert await branch_exists(history, "side")  # packed only
    assert not await branch_exists(history, "v1")  # a tag
    assert not await branch_exists(history, "nope")
    assert await checked_out(history) == (head, "main")
    git(history, "checkout", "--quiet", "--detach")
    assert await checked_out(history) is None
    git(history, "checkout", "--quiet", "--orphan", "unborn")
    assert await checked_out(history) is None


@pytest.fixture
def own_config(monkeypatch: pytest.MonkeyPatch) -> None:
    use_own_config(monkeypatch)


def test_redirected_configuration_is_left_to_git(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")  # the suite sets GIT_CONFIG_GLOBAL=/dev/null
    head = git(repo, "rev-parse", "HEAD").strip()
    assert objects.ignored(repo, ["a"]) is None
    assert objects.snapshot(repo, head, "m", {}) is None


def test_a_clean_filter_libgit2_cannot_run_is_staged_by_git(tmp_path: Path, own_config: None):
    repo = make_repo(tmp_path / "repo", {".gitattributes": "*.txt filter=upper\n"})
    git(repo, "config", "filter.upper.clean", "tr a-z A-Z")
    (repo / "a.txt").write_text("shout\n")
    head = git(repo, "rev-parse", "HEAD").strip()
    assert objects.snapshot(repo, head, "m", {}) is None
    commit, _ = files.snapshot(repo, head, repo / ".git")
    assert git(repo, "cat-file", "blob", f"{commit}:a.txt") == "SHOUT\n"


def test_submodules_are_staged_by_git(tmp_path: Path, own_config: None):
    repo = make_repo(tmp_path / "repo", {".gitmodules": ""})
    head = git(repo, "rev-parse", "HEAD").strip()
    assert objects.snapshot(repo, head, "m", {}) is None


def test_the_snapshot_is_by_prodigy_unless_the_environment_names_someone(
    tmp_path: Path, own_config: None
):
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD").strip()
    made = objects.snapshot(repo, head, "m", {"GIT_AUTHOR_NAME": "Ada"})
    assert made is not None
    who = git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", made[0]).strip()
    assert who == "Ada <prodigy@localhost>|prodigy <prodigy@localhost>"


async def test_the_checkout_guard_sees_an_index_that_is_not_the_commits_tree(history: Path):
    head, older = git(history, "rev-parse", "HEAD", "HEAD~2").split()
    assert await checkout_matches(history, head)
    git(history, "read-tree", older)  # HEAD stays, the index holds another tree
    assert not await checkout_matches(history, head)
    assert objects.index_holds(history, head) is (False if readable(history) else None)


def index_matches(worktree: Path, commit: str) -> bool:
    """git's own answer: `git diff-index --cached --quiet` exits 0 when the index is it."""
    done = subprocess.run(["git", "diff-index", "--cached", "--quiet", commit, "--"], cwd=worktree)
    assert done.returncode in (0, 1)
    return done.returncode == 0


@pytest.mark.parametrize("storage", ["loose", "packed"])
def test_the_index_is_read_from_gits_files_as_git_reads_it(tmp_path: Path, storage: str):
    """A pooled worktree (linked, checked out with --force as the pool does) is answered
    from its index's cache tree and the commit object, loose or in a pack, without
    libgit2; an index whose cache tree was invalidated is left to libgit2 and git."""
    repo = make_repo(tmp_path / "repo", {"a/one.txt": "1\n", "b/two.txt": "2\n"})
    first = git(repo, "rev-parse", "HEAD").strip()
    second = commit_files(
        repo, {"a/one.txt": "changed\n", "c/" + "d" * 200 + "/" + "e" * 99: "x\n"}
    )
    if storage == "packed":
        git(repo, "gc", "--quiet")
        assert not list((repo / ".git" / "objects").glob("??/*"))  # no loose object left
    slot = tmp_path / "slot"
    git(repo, "worktree", "add", "--quiet", "--detach", str(slot), first)
    for commit in (second, first, second):
        git(slot, "checkout", "--quiet", "--force", "--detach", commit)
        other = first if commit == second else second
        assert plain.index_holds(slot, commit) is True is index_matches(slot, commit)
        assert plain.index_holds(slot, other) is False is index_matches(slot, other)
    (slot / "a" / "one.txt").write_text("staged\n")
    git(slot, "add", "a/one.txt")  # the cache tree's root is invalid until a tree is written
    assert plain.index_holds(slot, second) is None
    assert objects.index_holds(slot, second) is False is index_matches(slot, second)
    assert plain.index_holds(slot, "0" * 40) is None  # no such commit
    assert plain.index_holds(slot, "not a commit id") is None


@pytest.mark.parametrize("deltas", ["offset", "ref"])
def test_commits_deep_in_a_delta_chain_are_read_as_git_reads_them(tmp_path: Path, deltas: str):
    """Thirty commits of one long message, packed with deep delta chains: by offset (git's
    default) or by base id (`pack-objects` without --delta-base-offset)."""
    repo = make_repo(tmp_path / "repo", {"f.txt": "0\n"})
    body = "".join(
        f"line {n} of a message long enough to be stored as a delta\n" for n in range(60)
    )
    for n in range(30):
        (repo / "f.txt").write_text(f"{n + 1}\n")
        git(repo, "commit", "--quiet", "-am", f"change {n}\n\n{body}")
    if deltas == "offset":
        git(repo, "repack", "-adfq", "--depth=50", "--window=250")
    else:
        objects_dir = repo / ".git" / "objects"
        listed = git(repo, "rev-list", "--objects", "--all")
        base = objects_dir / "pack" / "refs"
        subprocess.run(
            ["git", "pack-objects", "--quiet", "--depth=50", "--window=250", str(base)],
            cwd=repo,
            input=listed,
            text=True,
            check=True,
            capture_output=True,
        )
        git(repo, "prune-packed")
    assert not list((repo / ".git" / "objects").glob("??/*"))
    verified = git(repo, "verify-pack", "-v", *map(str, (repo / ".git/objects/pack").glob("*.idx")))
    assert " delta" in verified or "chain length = " in verified  # deltas, really
    slot = tmp_path / "slot"
    git(repo, "worktree", "add", "--quiet", "--detach", str(slot), "HEAD")
    for back in (0, 7, 29):
        commit = git(repo, "rev-parse", f"HEAD~{back}").strip()
        git(slot, "checkout", "--quiet", "--force", "--detach", commit)
        assert plain.index_holds(slot, commit) is True is index_matches(slot, commit)
        other = git(repo, "rev-parse", f"HEAD~{back + 1}").strip()
        assert plain.index_holds(slot, other) is False is index_matches(slot, other)


def test_an_index_whose_checksum_does_not_match_is_left_to_git(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", {"a.txt": "1\n"})
    commit = git(repo, "rev-parse", "HEAD").strip()
    assert plain.index_holds(repo, commit) is True
    index = repo / ".git" / "index"
    data = bytearray(index.read_bytes())
    data[40] ^= 0xFF  # inside the first entry: git refuses the file now
    index.write_bytes(bytes(data))
    assert plain.index_holds(repo, commit) is None


def test_a_pooled_worktrees_checkout_guard_does_not_load_libgit2(tmp_path: Path):
    """pygit2 costs the daemon ~12 MB for good: the guard at each pooled reuse reads git's
    files instead (its answer is checked against git's above)."""
    repo = make_repo(tmp_path / "repo")
    slot = tmp_path / "slot"
    git(repo, "worktree", "add", "--quiet", "--detach", str(slot), "HEAD")
    commit = git(repo, "rev-parse", "HEAD").strip()
    probe = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from prodigyd.git.worktree import checkout_matches\n"
        f"assert asyncio.run(checkout_matches(Path({str(slot)!r}), {commit!r}))\n"
        "print('pygit2' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def _status_by_git(path: Path) -> tuple[str, bool, bool]:
    lines = git(path, "status", "--porcelain", "--ignored").splitlines()
    head = git(path, "rev-parse", "HEAD").strip()
    return (
        head,
        any(not line.startswith("!!") for line in lines),
        any(line.startswith("!!") for line in lines),
    )


def test_the_worktree_state_in_process_is_what_git_status_says(tmp_path: Path, own_config: None):
    repo = make_repo(tmp_path / "repo", {".gitignore": "*.log\nbuild/\n", "a.txt": "a\n"})
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "--quiet", "--detach", str(worktree))  # as a pool slot
    changes = [
        lambda: None,  # clean
        lambda: (worktree / "a.txt").write_text("changed\n"),
        lambda: git(worktree, "checkout", "--quiet", "--", "a.txt"),
        lambda: (worktree / "x.log").write_text("ignored\n"),
        lambda: (worktree / "build").mkdir() or (worktree / "build" / "o").write_text("o\n"),
        lambda: (
            (worktree / "new" / "deep").mkdir(parents=True)
            or (worktree / "new" / "deep" / "n.txt").write_text("n\n")
        ),
        lambda: git(worktree, "add", "-A"),
        lambda: git(worktree, "commit", "--quiet", "-m", "agent"),
        lambda: (worktree / "a.txt").unlink(),
    ]
    seen = set()
    for change in changes:
        change()
        expected = _status_by_git(worktree)
        assert objects.worktree_state(worktree, 100, 1 << 20) == expected
        seen.add(expected[1:])
    assert seen == {(False, False), (True, False), (False, True), (True, True)}  # all met
    assert objects.worktree_state(worktree, 1, 1 << 20) is None  # more files: git is asked
    assert objects.worktree_state(worktree, 100, 1) is None  # more bytes: git is asked


async def test_new_files_count_whatever_status_show_untracked_files_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A user's `status.showUntrackedFiles=no` hides new files from `git status`: an agent
    whose only work is new files would otherwise have nothing to commit, and the pool's
    clean would delete its work. Asked of git (the in-process read always sees them)."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    git(repo, "config", "status.showUntrackedFiles", "no")
    monkeypatch.setattr(git_repo, "IN_PROCESS_STATUS_FILES", 0)
    (repo / "new.txt").write_text("the agent's work\n")
    assert (await git_repo.worktree_state(repo)).changed


def test_the_worktree_state_of_a_redirected_configuration_is_left_to_git(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")  # the suite sets GIT_CONFIG_GLOBAL=/dev/null
    assert objects.worktree_state(repo, 100, 1 << 20) is None


def _age(file: Path, seconds: float) -> None:
    """Date `file` back: a change older than objects._RACY_NS may be kept by its stamp."""
    then = time.time() - seconds
    os.utime(file, (then, then))


def test_a_configuration_read_once_is_kept_until_a_file_of_it_changes(
    tmp_path: Path, own_config: None, monkeypatch: pytest.MonkeyPatch
):
    """`_cli_only` reads the configuration once while its files stand as they were; a file
    changed since (even to the same size), or one that appeared, is read again, and a
    configuration that includes another file is read every time."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "--quiet", "--detach", str(worktree))
    config = repo / ".git" / "config"
    _age(config, 3600)
    reads = []
    real = objects._config_files

    def counting(repository: object) -> list[str]:
        reads.append(1)
        return real(repository)  # type: ignore[arg-type]

    monkeypatch.setattr(objects, "_config_files", counting)
    clean = (git(repo, "rev-parse", "HEAD").strip(), False, False)
    assert objects.worktree_state(worktree, 100, 1 << 20) == clean
    assert objects.worktree_state(worktree, 100, 1 << 20) == clean
    assert len(reads) == 1  # kept: the files were not read again
    text = config.read_text()
    config.write_text(text.replace("bare = false", "bare = FALSE"))  # the same size
    _age(config, 1800)
    assert objects.worktree_state(worktree, 100, 1 << 20) == clean
    git(repo, "config", "filter.lfs.clean", "cat")
    _age(config, 900)
    assert objects.worktree_state(worktree, 100, 1 << 20) is None  # staging is git's to do
    git(repo, "config", "--unset", "filter.lfs.clean")
    included = tmp_path / "more.gitconfig"
    included.write_text("[core]\n\tquotepath = false\n")
    git(repo, "config", "include.path", str(included))
    _age(config, 600)
    _age(included, 600)
    assert objects.worktree_state(worktree, 100, 1 << 20) == clean
    included.write_text('[filter "lfs"]\n\tclean = cat\n')
    _age(included, 600)
    assert objects.worktree_state(worktree, 100, 1 << 20) is None  # read again: included
    git(repo, "config", "--unset", "include.path")
    _age(config, 300)
    assert objects.worktree_state(worktree, 100, 1 << 20) == clean
    # the user's own file, appearing (libgit2 is pointed at a folder of this test's: it
    # fixes its home folder once loaded, maybe by another test)
    search = objects.load().settings.search_path
    level = objects.load().GIT_CONFIG_LEVEL_GLOBAL
    before, home = search[level], tmp_path / "libgit2-home"
    home.mkdir()
    search[level] = str(home)
    try:
        objects._KEPT.clear()  # opened, and its files found, under the old folder
        objects._CONFIG_READ.clear()
        assert objects.worktree_state(worktree, 100, 1 << 20) == clean
        (home / ".gitconfig").write_text('[filter "x"]\n\tclean = cat\n')
        _age(home / ".gitconfig", 300)
        assert objects.worktree_state(worktree, 100, 1 << 20) is None
    finally:
        search[level] = before
        objects._KEPT.clear()
        objects._CONFIG_READ.clear()


def test_a_worktree_read_again_is_seen_as_it_is_now(tmp_path: Path, own_config: None):
    """The repository kept open between two reads of a pool slot answers as a fresh one:
    a setting only git applies added meanwhile, a worktree made again at the same path."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    first = git(repo, "rev-parse", "HEAD").strip()
    commit_files(repo, {"b.txt": "b\n"}, "second")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "--quiet", "--detach", str(worktree))
    assert objects.worktree_state(worktree, 100, 1 << 20) == _status_by_git(worktree)
    git(repo, "config", "filter.lfs.clean", "cat")
    assert objects.worktree_state(worktree, 100, 1 << 20) is None  # staging is git's to do
    git(repo, "config", "--unset", "filter.lfs.clean")
    git(repo, "worktree", "remove", "--force", str(worktree))
    git(repo, "worktree", "add", "--quiet", "--detach", str(worktree), first)
    assert objects.worktree_state(worktree, 100, 1 << 20) == (first, False, False)
