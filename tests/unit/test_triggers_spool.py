"""`on:` triggers as the loader reads them, and hook spool entries as the daemon reads
them: every accepted shape, and errors that name the file, line or field."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prodigyd.errors import WorkflowError
from prodigyd.git.cli import git_env
from prodigyd.store import sessions as session_store
from prodigyd.store.sessions import SessionRecord
from prodigyd.watch import spool
from prodigyd.watch import triggers as matching
from prodigyd.workflow.load import parse_workflow
from prodigyd.workflow.model import Trigger

STEPS = "commands:\n  - shell: 'true'\n"


def triggers(on: str) -> tuple[Trigger, ...]:
    return parse_workflow(on + STEPS, source="wf.yml").workflow.on


def test_every_shape_of_on():
    assert triggers("on: commit\n") == (Trigger(event="commit"),)
    assert triggers("on: [commit, push]\n") == (Trigger(event="commit"), Trigger(event="push"))
    full = "on:\n  push:\n  commit: {branches: main, paths: ['src/**', '*.md'], merge: auto}\n"
    assert triggers(full) == (
        Trigger(event="push"),
        Trigger(event="commit", branches=("main",), paths=("src/**", "*.md"), merge="auto"),
    )
    mapreduce = parse_workflow(
        "mode: mapreduce\non: push\nmap:\n  input: x.json\n  agent_template: [{shell: 'true'}]\n",
        source="m.yml",
    )
    assert mapreduce.workflow.on == (Trigger(event="push"),)
    assert triggers("") == ()


def test_a_files_trigger_never_merges_and_settles_like_watchman_by_default():
    [plain] = triggers("on: files\n")
    assert (plain.merge, plain.settle_seconds) == ("never", 0.02)
    [full] = triggers("on: {files: {paths: 'src/**', ignore: '*.tmp', settle: 250ms}}\n")
    assert (full.paths, full.ignore, full.settle_seconds) == (("src/**",), ("*.tmp",), 0.25)


@pytest.mark.parametrize(
    ("on", "message"),
    [
        (
            "on: [commit, pull]\n",
            "wf.yml:1:14 (on[1]): unknown event 'pull' (events: commit, push, ref, files)",
        ),
        (
            "on: {commit: main}\n",
            "(on.commit): expected commit: {branches, paths, tags, ignore, settle, merge, "
            "include_prodigy_commits}, got 'main'",
        ),
        (
            "on: {files: {merge: auto}}\n",
            "(on.files): merge: an `on: files` run starts from your uncommitted files and is "
            "never merged",
        ),
        ("on: {commit: {settle: 1s}}\n", "settle: only `files` triggers have it, not `commit`"),
        ("on: {push: {ignore: ['*.md']}}\n", "ignore: only `files` triggers have it, not `push`"),
        ("on: {files: {settle: soon}}\n", "(on.files.settle): expected a duration"),
        ("on: {push: {merge: later}}\n", "(on.push.merge): expected 'auto', 'ask' or 'never'"),
        ("on: 3\n", "(on): expected an event, a list of events or a mapping, got 3"),
        ("on: []\n", "(on): expected at least one event (events: commit, push, ref, files)"),
        ("on: [commit, push, commit]\n", "(on[2]): commit is given twice"),
        # an error, not a warning: ignored, a misspelt filter would fire on every commit
        (
            "on: {commit: {pathz: ['src/**']}}\n",
            "wf.yml:1:15 (on.commit.pathz): unknown key 'pathz' in on.commit; did you mean "
            "'paths'?",
        ),
        ("on: {push: {branchs: main}}\n", "unknown key 'branchs' in on.push; did you mean"),
    ],
)
def test_bad_triggers_name_the_field(on: str, message: str):
    with pytest.raises(WorkflowError) as caught:
        triggers(on)
    assert message in caught.value.render()


SHA = "a" * 40


def entry(
    folder: Path,
    event: str,
    stdin: str | None = None,
    env: bytes | None = None,
    name: str = "17.5-1",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if stdin is not None:
        (folder / f"{name}.stdin").write_text(stdin)
    if env is not None:
        (folder / f"{name}.env").write_bytes(env)
    (folder / f"{name}.event").write_text(event)
    return folder / f"{name}.event"


def test_a_pre_push_entry(tmp_path: Path):
    zero = "0" * 40
    pushed = (
        f"refs/heads/main {SHA} refs/heads/main {'b' * 40}\n"
        f"refs/heads/new {SHA} refs/heads/new {zero}\n"
        f"(delete) {zero} refs/heads/gone {'c' * 40}\n"
        f"refs/tags/v1 {SHA} refs/tags/v1 {zero}\n"
    )
    event = spool.read(
        entry(
            tmp_path,
            f"version=1\nhook=pre-push\nrepo={tmp_path}\nhead={SHA}\nbranch=refs/heads/main\n"
            "remote=origin\nend=1\n",
            stdin=pushed,
            env=b"PATH=/bin\0MULTI=a\nb\0EMPTY=\0",
        )
    )
    assert event is not None
    assert (event.id, event.hook, event.repo, event.branch, event.remote) == (
        "17.5-1",
        "pre-push",
        tmp_path,
        "main",
        "origin",
    )
    assert [(r.branch, r.remote_known) for r in event.pushed] == [
        ("main", True),
        ("new", False),
        (None, True),
        (None, False),
    ]
    assert event.env == {"PATH": "/bin", "MULTI": "a\nb", "EMPTY": ""}


def test_who_made_the_event_from_its_lines_or_an_older_shims_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PRODIGY_HOME", str(tmp_path / "home"))
    base = f"version=1\nhook=post-commit\nrepo={tmp_path}\nhead={SHA}\nbranch=refs/heads/main\n"
    marked = {"PRODIGY_AUTOMATION": "true", "PRODIGY_SESSION_ID": "workflow-1-abc"}
    env = b"".join(f"{k}={v}\0".encode() for k, v in marked.items())
    cases = [  # (event lines, spooled environment) -> (automation, session, made_by_prodigy)
        ("automation=\nsession=\n", env, (False, None, None)),  # the lines win over the env
        ("automation=true\nsession=\n", None, (True, None, "made by prodigy (PRODIGY_AUTOM")),
        ("automation=true\nsession=w-1\n", None, (True, "w-1", "made by prodigy session w-1")),
        ("", env, (True, "workflow-1-abc", "made by prodigy session workflow-1-abc")),  # old shim
        ("", None, (False, None, None)),
    ]
    for number, (lines, spooled, expected) in enumerate(cases):
        event = spool.read(
            entry(tmp_path, base + lines + "end=1\n", env=spooled, name=f"{number}-1")
        )
        assert event is not None
        why = matching.made_by_prodigy(event)
        assert (event.automation, event.session, why and why[: len(expected[2] or "")]) == expected


def test_an_event_in_prodigys_worktrees_or_on_a_session_branch_is_prodigys(
    isolated: Path, tmp_path: Path
):
    worktree = isolated / "worktrees" / "repo-1" / "wt-1"
    worktree.mkdir(parents=True)
    text = f"version=1\nhook=post-commit\nrepo={worktree}\nhead={SHA}\nbranch=refs/heads/x\nend=1\n"
    event = spool.read(entry(tmp_path / "spool", text))
    assert event is not None and not event.automation  # a step that ran `env -i git commit`
    assert matching.made_by_prodigy(event) == f"made in prodigy's worktree {worktree}"
    record = SessionRecord(
        id="workflow-1-abc",
        workflow="w.yml",
        workflow_name="w",
        repo="/r",
        repo_id="r-1",
        original_branch="main",
        worktree="",
        branch="b",
        workflow_sha256="0",
        cwd="/r",
    )
    session_store.create(record, {})
    assert matching.session_branch("prodigy-workflow-1-abc") == (
        "made on the branch of prodigy session workflow-1-abc"
    )
    assert matching.session_branch("prodigy-agent-workflow-1-abc/item-3") is not None
    assert matching.session_branch("prodigy-workflow-2-def") is None  # no such session
    assert matching.session_branch("prodigy-mine") is None  # the user's own branch


def test_prodigys_git_calls_carry_the_automation_marker():
    assert git_env({"PATH": "/bin", "GIT_DIR": "/x"}) == {
        "PATH": "/bin",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "PRODIGY_AUTOMATION": "true",
    }


def test_the_digest_follows_the_content_not_the_name(tmp_path: Path):
    text = f"version=1\nhook=post-commit\nrepo={tmp_path}\nhead={SHA}\nbranch=HEAD\nend=1\n"
    one = spool.read(entry(tmp_path, text, name="1-1"))
    same = spool.read(entry(tmp_path, text, name="2-2"))
    other = spool.read(entry(tmp_path, text.replace(SHA, "b" * 40), name="3-3"))
    assert one and same and other
    assert one.digest == same.digest != other.digest
    assert one.branch is None  # detached


def test_an_entry_still_being_written_is_left_alone_until_it_is_stale(tmp_path: Path):
    event_file = entry(tmp_path, "version=1\nhook=post-commit\n")
    assert spool.read(event_file) is None
    old = event_file.stat().st_mtime - spool.INCOMPLETE_SECONDS - 1
    os.utime(event_file, (old, old))
    with pytest.raises(spool.SpoolError, match="incomplete"):
        spool.read(event_file)


@pytest.mark.parametrize(
    ("event", "stdin", "message"),
    [
        ("version=2\nend=1\n", None, "event: version '2', expected 1"),
        ("version=1\nhook=post-merge\nrepo=/r\nend=1\n", None, "hook 'post-merge' is not one"),
        ("version=1\nhook=post-commit\nrepo=rel\nend=1\n", None, "repo 'rel' is not an abs"),
        (
            "version=1\nhook=post-commit\nrepo=/r\nhead=HEAD\nend=1\n",
            None,
            "head 'HEAD' is not a commit",
        ),
        (
            "version=1\nno equals sign\nend=1\n",
            None,
            "event:2: expected key=value, got 'no equals sign'",
        ),
        (
            "version=1\nhook=pre-push\nrepo={repo}\nend=1\n",
            "refs/heads/x abc\n",
            "stdin:1: expected '<local ref> <sha> <remote ref> <sha>'",
        ),
    ],
)
def test_a_bad_entry_is_refused_naming_the_file_and_line(
    tmp_path: Path, event: str, stdin: str | None, message: str
):
    with pytest.raises(spool.SpoolError, match=message):
        spool.read(entry(tmp_path, event.format(repo=tmp_path), stdin=stdin))


def test_pending_is_oldest_first_and_reject_deletes_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PRODIGY_HOME", str(tmp_path))
    folder = tmp_path / "spool"
    second = entry(folder, "x", env=b"TOKEN=tok-0123456789\0", stdin="", name="9-2")
    first = entry(folder, "y", stdin="", name="10-1")
    os.utime(first, (1, 1))
    assert spool.pending() == [first, second]
    moved = spool.reject(second, "broken")
    rejected = folder / "rejected"
    assert moved == rejected / "9-2.event"
    # the environment (the user's tokens) is deleted: nothing will run in it
    assert sorted(p.name for p in folder.rglob("9-2.*")) == ["9-2.event", "9-2.reason", "9-2.stdin"]
    assert not any(b"tok-0123456789" in p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert (rejected / "9-2.reason").read_text() == "broken\n"
    assert spool.pending() == [first]
    spool.done(first)
    assert list(folder.glob("10-1.*")) == []


def event_text(repo: Path | str) -> str:
    return f"version=1\nhook=post-commit\nrepo={repo}\nhead={SHA}\nbranch=refs/heads/main\nend=1\n"


NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another uid")


def special(kind: str, path: Path, good: Path) -> None:
    """Make `path` a file of `kind` that is no regular file of ours."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link":
        path.symlink_to(good)
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "folder":
        path.mkdir()
    elif kind == "huge":
        with path.open("wb") as fh:
            fh.truncate(spool.MAX_FILE_BYTES + 1)
    elif kind == "other uid":
        path.write_text(event_text(good.parent))
        os.chown(path, NOBODY, NOBODY)


KINDS = ["fifo", "link", "loop", "folder", "huge", pytest.param("other uid", marks=as_root)]


@pytest.mark.timeout(30)  # a FIFO opened for reading blocks until a writer comes: a hang
@pytest.mark.parametrize("suffix", [".event", ".stdin", ".env"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_part_that_is_not_a_regular_file_of_ours_is_refused_unread(
    tmp_path: Path, kind: str, suffix: str
):
    good = entry(tmp_path / "good", event_text(tmp_path))
    folder = tmp_path / "spool"
    folder.mkdir()
    event_file = folder / "17.5-1.event"
    if suffix != ".event":
        event_file.write_text(event_text(tmp_path))
    special(kind, folder / f"17.5-1{suffix}", good)
    with pytest.raises(spool.SpoolError, match=f"17.5-1\\{suffix}: "):
        spool.read(event_file)


@pytest.mark.parametrize(
    ("repo", "message"),
    [
        ("/" + "x" * 5000, r"repo '/xxxx.*\.\.\.': File name too long"),
        ("/no/such/folder", "repo '/no/such/folder': No such file or directory"),
        ("/a\0b", "embedded null byte"),
        ("{file}", "is not a folder"),
    ],
)
def test_a_repo_that_is_no_folder_is_refused(tmp_path: Path, repo: str, message: str):
    (tmp_path / "file").write_text("")
    event_file = entry(tmp_path / "spool", event_text(repo.format(file=tmp_path / "file")))
    with pytest.raises(spool.SpoolError, match=message):
        spool.read(event_file)


@as_root
def test_a_repo_of_another_user_is_refused(tmp_path: Path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(spool.SpoolError, match=f"owned by uid {NOBODY}, not by uid 0"):
        spool.read(entry(tmp_path / "spool", event_text(theirs)))


def test_pending_lists_links_and_fifos_for_read_to_refuse(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PRODIGY_HOME", str(tmp_path))
    folder = tmp_path / "spool"
    folder.mkdir()
    os.mkfifo(folder / "1-1.event")
    (folder / "2-2.event").symlink_to("2-2.event")  # a loop: stat() would fail on it
    (folder / "3-3.event").symlink_to("/no/such/file")
    assert [p.name for p in spool.pending()] == ["1-1.event", "2-2.event", "3-3.event"]


def test_reject_never_overwrites_an_earlier_rejected_entry(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PRODIGY_HOME", str(tmp_path))
    folder = tmp_path / "spool"
    first = spool.reject(entry(folder, "one"), "first")
    second = spool.reject(entry(folder, "two"), "second")  # the same id, after a reboot
    (folder / "17.5-1.event").mkdir()  # and a folder named like an entry
    third = spool.reject(folder / "17.5-1.event", "third")
    assert (first.name, second.name, third.name) == (
        "17.5-1.event",
        "17.5-1.2.event",
        "17.5-1.3.event",
    )
    assert (first.read_text(), second.read_text(), third.is_dir()) == ("one", "two", True)
    assert (folder / "rejected" / "17.5-1.2.reason").read_text() == "second\n"
    assert spool.pending() == []


KEYS = ["version", "hook", "repo", "head", "branch", "remote", "end", "x"]
values = st.sampled_from(
    [
        "1",
        "post-commit",
        "pre-push",
        SHA,
        "refs/heads/main",
        "HEAD",
        "",
        "/",
        "/" + "r" * 5000,
        "/a\0b",
        "{repo}",
    ]
) | st.text(max_size=30)
lines = st.tuples(st.sampled_from(KEYS), values).map("=".join) | st.text(max_size=30)
events = st.lists(lines, max_size=8).map(lambda ls: "".join(f"{line}\n" for line in ls))


@settings(max_examples=300, deadline=None, database=None)
@given(
    event=events | events.map(lambda text: text + "end=1\n") | st.binary(max_size=200),
    stdin=st.none() | st.binary(max_size=200) | st.just(f"a {SHA} b {SHA}\n".encode()),
    env=st.none() | st.binary(max_size=200),
)
def test_any_entry_is_read_or_refused_with_a_reason(
    event: str | bytes, stdin: bytes | None, env: bytes | None
):
    """Whatever a spool entry holds, `read` returns it, None (still being written) or a
    SpoolError naming the file; nothing else escapes."""
    with tempfile.TemporaryDirectory() as folder:
        raw = event.replace("{repo}", folder).encode() if isinstance(event, str) else event
        (Path(folder) / "1-1.event").write_bytes(raw)
        for suffix, data in ((".stdin", stdin), (".env", env)):
            if data is not None:
                (Path(folder) / f"1-1{suffix}").write_bytes(data)
        try:
            spool.read(Path(folder) / "1-1.event")
        except spool.SpoolError as exc:
            assert str(exc).startswith(f"{folder}/1-1."), exc


def test_an_entry_whose_reason_does_not_fit_stays_whole_in_the_spool(tmp_path: Path, monkeypatch):
    """On a full disk the reason file cannot be written: nothing is moved or deleted, so the
    entry is tried again later, never set aside without its reason."""
    import errno

    from prodigyd.errors import NoSpace
    from prodigyd.store import atomic

    monkeypatch.setenv("PRODIGY_HOME", str(tmp_path))
    folder = tmp_path / "spool"
    bad = entry(folder, "x", env=b"TOKEN=tok-0123456789\0", stdin="", name="9-2")

    def full(path: Path, data: bytes, **_: object) -> None:
        with atomic.space.guard(path):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "write_bytes_atomic", full)
    with pytest.raises(NoSpace):
        spool.reject(bad, "broken")
    assert sorted(p.name for p in folder.glob("9-2.*")) == ["9-2.env", "9-2.event", "9-2.stdin"]
    assert list((folder / "rejected").glob("9-2.*")) == []
