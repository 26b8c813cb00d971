"""One workflow file must not take the daemon down: the loader's limits (size, nesting,
aliases) and a line and column on every error, bad bytes and bad tags included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prodigyd.errors import WorkflowError
from prodigyd.workflow.limits import (
    MAX_ALIAS_NODES,
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    Deadline,
)
from prodigyd.workflow.load import load_workflow, parse_workflow
from tests.hostile import billion_laughs


def failure(text: str, source: str = "wf.yml") -> WorkflowError:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, source=source)
    return caught.value


def where(error: WorkflowError) -> tuple[str, int | None, int | None]:
    assert error.location is not None
    return error.location.file, error.location.line, error.location.column


def test_billion_laughs_is_refused_at_the_alias_that_crosses_the_limit(tmp_path: Path) -> None:
    file = tmp_path / "laughs.yml"
    file.write_text(billion_laughs())
    with pytest.raises(WorkflowError) as caught:
        load_workflow(file)
    error = caught.value
    # x1 expands to 91 nodes, x2 to 820, x3 to 7,381 (74,718 in all) and x4 to 66,430:
    # the first *a4, on line 6, takes every alias together past 100,000 nodes
    assert where(error) == (str(file), 6, 10)
    assert error.message == (
        f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes (*a4 alone to 66,430)"
    )
    assert "docs/workflows.md" in (error.hint or "")


def test_aliases_within_the_limit_still_work() -> None:
    loaded = parse_workflow(billion_laughs(levels=3), source="wf.yml")  # 729 items
    assert loaded.workflow.steps[0].foreach is not None


@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_deep_nesting_is_a_clear_error_not_a_recursion_error(opening: str) -> None:
    block = opening == "- "
    if block:  # block sequences: each level one line, indented one more
        text = "commands:\n  - shell: x\n    env:\n" + "".join(
            f"{' ' * (6 + n)}- \n" for n in range(1000)
        )
    else:
        closing = "]" if opening == "[" else "}"
        text = "commands:\n  - shell: x\n    env: " + opening * 1000 + "1" + closing * 1000 + "\n"
    error = failure(text)
    assert error.message == f"nested more than {MAX_DEPTH} levels deep"
    file, line, column = where(error)
    assert file == "wf.yml" and line is not None and column is not None


def test_an_alias_cannot_hide_deep_nesting() -> None:
    deep = "[" * 60 + "1" + "]" * 60
    text = f"x: &deep {deep}\ncommands:\n  - foreach:\n      foreach: ITEMS\n      do: [{{shell: x}}]\n"
    assert parse_workflow(text.replace("ITEMS", "[*deep]"), source="wf.yml")  # 65 levels
    error = failure(text.replace("ITEMS", "[" * 40 + "*deep" + "]" * 40))  # 105 levels
    assert error.message == (f"alias *deep nests the document more than {MAX_DEPTH} levels deep")
    assert where(error) == ("wf.yml", 4, 56)


def test_deeply_nested_json_is_a_clear_error() -> None:
    text = '{"commands": [{"shell": "x", "env": ' + "[" * 5000 + "]" * 5000 + "}]}"
    error = failure(text, source="wf.json")
    assert "nested more than" in error.message
    assert where(error)[1:] != (None, None)


def test_an_oversize_file_is_refused_naming_where_the_limit_is_reached(tmp_path: Path) -> None:
    file = tmp_path / "big.yml"
    line = "  - shell: " + "x" * 88 + "\n"  # 100 bytes
    file.write_text("commands:\n" + line * (MAX_FILE_BYTES // 100 + 10))
    with pytest.raises(WorkflowError) as caught:
        load_workflow(file)
    error = caught.value
    assert error.message.startswith(
        f"the workflow file is larger than {MAX_FILE_BYTES // 1024} KiB"
    )
    limit_line = (MAX_FILE_BYTES - 10) // 100 + 2  # after "commands:\n", 100 bytes a line
    assert where(error) == (str(file), limit_line, (MAX_FILE_BYTES - 10) % 100 + 1)
    text = "commands:\n" + line * (MAX_FILE_BYTES // 100 + 1)  # as text, not a file
    assert failure(text).message == error.message


def test_bad_bytes_name_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "latin1.yml"
    file.write_bytes(b"commands:\n  - shell: echo caf\xe9\n")
    with pytest.raises(WorkflowError) as caught:
        load_workflow(file)
    assert caught.value.render().startswith(
        f"{file}:2:20: the workflow file is not UTF-8 text (bad byte 0xe9)"
    )


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ('commands:\n  - shell: "a\x01b"\n', (2, 14), "character #x0001 is not allowed"),
        ("commands:\n  - shell: x\n\x1b[0m\n", (3, 1), "character #x001b is not allowed"),
        ("commands: [{shell: !!float x}]\n", (1, 20), "'x' is not a valid !!float"),
        ("commands: [{shell: !!float }]\n", (1, 20), "'' is not a valid !!float"),
        ("commands: [{shell: !!bool x}]\n", (1, 20), "'x' is not a valid !!bool"),
        ("commands: !!seq x\n", (1, 11), "!!seq must tag a list"),
        ("commands: [{shell: !!map [a]}]\n", (1, 20), "!!map must tag a mapping"),
        ('commands: [{shell: "\\U00110000"}]\n', (1, 23), "an escape names no character"),
        ("commands: [{shell: !!int 0x}]\n", (1, 20), "'0x' is not a valid !!int"),
        ("commands: [{shell: !!timestamp soon}]\n", (1, 20), "'soon' is not a valid !!timestamp"),
        ("commands: [{shell: x, !!set {a}: b}]\n", (1, 23), "a mapping key must be a plain value"),
        ("- &s {shell: x, on_success: *s}\n", (1, 29), "alias *s is inside the node it names"),
        ("'just a string'\n", (1, 1), "a workflow must be a list of steps or a mapping"),
        ("# nothing\n", (1, 1), "the workflow file is empty"),
    ],
)
def test_every_reading_error_names_line_and_column(
    text: str, position: tuple[int, int], message: str
) -> None:
    error = failure(text)
    assert where(error) == ("wf.yml", *position)
    assert message in error.message


def test_reading_stops_at_its_time_limit_naming_the_position_reached() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow("commands:\n  - shell: x\n", source="wf.yml", deadline=Deadline(-1))
    error = caught.value
    assert error.message.startswith("reading the workflow took longer than")
    assert where(error) == ("wf.yml", 1, 1)


def test_too_many_aliases_are_refused_at_the_first_one_too_many() -> None:
    items = ", ".join(["*a"] * (MAX_ALIASES + 1))
    error = failure(f"x: &a 1\ncommands:\n  - foreach: {{foreach: [{items}], do: [shell: x]}}\n")
    assert error.message == f"more than {MAX_ALIASES:,} aliases"
    assert where(error) == ("wf.yml", 3, 25 + 4 * MAX_ALIASES)  # the first *a is at 25


async def test_the_daemon_reads_a_workflow_off_its_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_workflow_async (what submit, start, resume and triggers call) parses in a worker
    thread: the event loop goes on serving while a slow file is read."""
    import asyncio
    import threading
    import time

    from prodigyd.workflow import load

    parsing = threading.Event()
    real_parse = load.parse_workflow

    def slow_parse(*args: object, **kwargs: object) -> object:
        parsing.set()
        time.sleep(0.3)  # a large legal file
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(load, "parse_workflow", slow_parse)
    path = tmp_path / "wf.yml"
    path.write_text("- shell: 'true'\n")
    task = asyncio.ensure_future(load.load_workflow_async(path))
    ticks_while_parsing = 0
    while not task.done():
        await asyncio.sleep(0.01)
        ticks_while_parsing += parsing.is_set() and not task.done()
    assert (await task).workflow.steps
    assert ticks_while_parsing > 0


async def test_a_file_parsed_before_is_not_parsed_again_unless_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon reads the file on every load but parses it once per content: a
    submission's start and its resumes reuse the parse, and an edit is never served stale.
    Every load, the cached ones too, reads the file in a worker thread: a file on a stalled
    mount never freezes the event loop (but see the next test)."""
    import asyncio
    import threading

    from prodigyd.workflow import load

    parses: list[str] = []
    threads: list[object] = []
    readers: list[threading.Thread] = []
    real_parse, real_to_thread, real_read = load.parse_workflow, asyncio.to_thread, load.read_source

    def counting_parse(text: str, **kwargs: Any) -> load.LoadedWorkflow:
        parses.append(text)
        return real_parse(text, **kwargs)

    async def counting_to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        threads.append(func)
        return await real_to_thread(func, *args, **kwargs)

    def recording_read(file: Path) -> tuple[str, str]:
        readers.append(threading.current_thread())
        return real_read(file)

    monkeypatch.setattr(load, "parse_workflow", counting_parse)
    monkeypatch.setattr(load, "read_source", recording_read)
    monkeypatch.setattr(asyncio, "to_thread", counting_to_thread)
    path = tmp_path / "wf.yml"
    path.write_text("- shell: 'echo one'\n")
    first = await load.load_workflow_async(path)
    again = await load.load_workflow_async(path)
    path.write_text("- shell: 'echo two'\n")
    edited = await load.load_workflow_async(path)
    assert again is first and len(parses) == 2
    assert len(readers) == len(threads) == 3
    assert threading.main_thread() not in readers
    assert edited.workflow.steps[0].command == "echo two"


async def test_a_workflow_in_the_repository_just_read_is_read_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`inside`: a folder admission has just read on the loop (the repository). A workflow
    file in it is read there too (no thread's round trip; no mount the loop had not met),
    parsed in a thread when new; one outside it, or a link in it leading out of it, is read
    in a worker thread as before."""
    import threading

    from prodigyd.workflow import load

    readers: list[threading.Thread] = []
    real_read = load.read_source

    def recording_read(file: Path) -> tuple[str, str]:
        readers.append(threading.current_thread())
        return real_read(file)

    monkeypatch.setattr(load, "read_source", recording_read)
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    repo.mkdir()
    elsewhere.mkdir()
    inside, outside = repo / "wf.yml", elsewhere / "wf.yml"
    inside.write_text("- shell: 'echo in'\n")
    outside.write_text("- shell: 'echo out'\n")
    (repo / "link.yml").symlink_to(outside)
    (repo / "sub").mkdir()

    loaded = await load.load_workflow_async(repo / "sub" / ".." / "wf.yml", inside=repo)
    assert loaded.workflow.steps[0].command == "echo in"
    assert readers.pop() is threading.main_thread()
    for path in (outside, repo / "link.yml", repo / ".." / "elsewhere" / "wf.yml"):
        loaded = await load.load_workflow_async(path, inside=repo)
        assert loaded.workflow.steps[0].command == "echo out"
        assert readers.pop() is not threading.main_thread(), path
    (repo / "folder-link").symlink_to(elsewhere)  # a link among the folders below
    loaded = await load.load_workflow_async(repo / "folder-link" / "wf.yml", inside=repo)
    assert loaded.workflow.steps[0].command == "echo out" and loaded.path == outside
    assert readers.pop() is not threading.main_thread()
    (repo / "alias.yml").symlink_to(inside)  # a link within: resolved in the thread too
    loaded = await load.load_workflow_async(repo / "alias.yml", inside=repo)
    assert loaded.path == inside and readers.pop() is not threading.main_thread()
    loaded = await load.load_workflow_async(repo / "sub" / ".." / "wf.yml", inside=repo)
    assert loaded.path == inside  # the resolved path names it, as the thread's load does
    assert readers.pop() is threading.main_thread()
    inside.write_text("- shell: 'echo edited'\n")
    edited = await load.load_workflow_async(inside, inside=repo)
    assert edited.workflow.steps[0].command == "echo edited"
