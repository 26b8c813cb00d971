"""`on:` triggers as the loader reads them, and hook spool entries as the daemon reads
them: every accepted shape, and errors that name the file, line or field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prodigyd.errors import WorkflowError
from prodigyd.watch import spool
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
    mapreduce = parse_workflow("mode: mapreduce\non: push\nmap:\n  input: x.json\n"
                               "  agent_template: [{shell: 'true'}]\n", source="m.yml")  # fmt: skip
    assert mapreduce.workflow.on == (Trigger(event="push"),)
    assert triggers("") == ()


@pytest.mark.parametrize(
    ("on", "message"),
    [
        ("on: [commit, pull]\n", "wf.yml:1:14 (on[1]): unknown event 'pull' (events: commit, push)"),
        ("on: {commit: main}\n", "(on.commit): expected commit: {branches, paths, merge}, got 'main'"),
        ("on: {push: {merge: later}}\n", "(on.push.merge): expected 'auto', 'ask' or 'never'"),
        ("on: 3\n", "(on): expected an event, a list of events or a mapping, got 3"),
    ],
)
def test_bad_triggers_name_the_field(on: str, message: str):
    with pytest.raises(WorkflowError) as caught:
        triggers(on)
    assert message in caught.value.render()


def test_an_unknown_trigger_option_warns_or_with_strict_fails():
    loaded = parse_workflow("on: {commit: {branch: main}}\n" + STEPS, source="wf.yml")
    assert any("did you mean 'branches'?" in w for w in loaded.warnings)
    with pytest.raises(WorkflowError):
        parse_workflow("on: {commit: {branch: main}}\n" + STEPS, source="wf.yml", strict=True)


SHA = "a" * 40


def entry(folder: Path, event: str, stdin: str | None = None, env: bytes | None = None,
          name: str = "17.5-1") -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    if stdin is not None:
        (folder / f"{name}.stdin").write_text(stdin)
    if env is not None:
        (folder / f"{name}.env").write_bytes(env)
    (folder / f"{name}.event").write_text(event)
    return folder / f"{name}.event"


def test_a_pre_push_entry(tmp_path: Path):
    zero = "0" * 40
    pushed = (f"refs/heads/main {SHA} refs/heads/main {'b' * 40}\n"
              f"refs/heads/new {SHA} refs/heads/new {zero}\n"
              f"(delete) {zero} refs/heads/gone {'c' * 40}\n"
              f"refs/tags/v1 {SHA} refs/tags/v1 {zero}\n")  # fmt: skip
    event = spool.read(entry(
        tmp_path,
        f"version=1\nhook=pre-push\nrepo={tmp_path}\nhead={SHA}\nbranch=refs/heads/main\n"
        "remote=origin\nend=1\n",
        stdin=pushed,
        env=b"PATH=/bin\0MULTI=a\nb\0EMPTY=\0",
    ))  # fmt: skip
    assert event is not None
    assert (event.id, event.hook, event.repo, event.branch, event.remote) == (
        "17.5-1", "pre-push", tmp_path, "main", "origin")  # fmt: skip
    assert [(r.branch, r.remote_known) for r in event.pushed] == [
        ("main", True), ("new", False), (None, True), (None, False)]  # fmt: skip
    assert event.env == {"PATH": "/bin", "MULTI": "a\nb", "EMPTY": ""}


def test_the_digest_follows_the_content_not_the_name(tmp_path: Path):
    text = f"version=1\nhook=post-commit\nrepo=/r\nhead={SHA}\nbranch=HEAD\nend=1\n"
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
        ("version=1\nhook=post-commit\nrepo=/r\nhead=HEAD\nend=1\n", None,
         "head 'HEAD' is not a commit"),
        ("version=1\nno equals sign\nend=1\n", None,
         "event:2: expected key=value, got 'no equals sign'"),
        ("version=1\nhook=pre-push\nrepo=/r\nend=1\n", "refs/heads/x abc\n",
         "stdin:1: expected '<local ref> <sha> <remote ref> <sha>'"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_file_and_line(
    tmp_path: Path, event: str, stdin: str | None, message: str
):
    with pytest.raises(spool.SpoolError, match=message):
        spool.read(entry(tmp_path, event, stdin=stdin))


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
