"""The engine records a run only through the RunJournal its host gives it."""

from __future__ import annotations

from pathlib import Path

from prodigyd import paths
from prodigyd.store import dlq, journal
from tests.enginekit import MemoryJournal, resume, run_workflow, write_workflow
from tests.gitutil import git

MAPREDUCE = """
name: recorded-in-memory
mode: mapreduce
setup:
  - shell: "printf '[\\"a\\", \\"b\\", \\"skip\\"]' > items.json"
map:
  input: items.json
  agent_template:
    - shell: "if [ ${{item}} != skip ]; then echo ${{item}} > ${{item}}.txt; git add -A; git commit -qm ${{item}}; fi"
      commit_required: true
reduce:
  - shell: "test -f {gate}"
  - shell: "echo '${{map.successful}} of ${{map.total}}' > summary.txt"
"""


async def test_a_run_in_a_memory_journal_writes_no_store_and_resumes_from_it(
    tmp_path: Path, repo: Path
):
    gate = tmp_path / "reduce-may-pass"
    wf = write_workflow(tmp_path, MAPREDUCE.format(gate=gate))
    memory = MemoryJournal()
    read: list[str] = []  # the phases whose sequential journal was read
    kept = memory.checkpoint_records

    def reading(session_id: str, phase: str) -> list[dict[str, object]]:
        read.append(phase)
        return kept(session_id, phase)

    memory.checkpoint_records = reading  # type: ignore[method-assign]
    out = await run_workflow(wf, repo, journal=memory)
    assert out.status == "failed" and "test -f" in out.record.error
    assert "setup" not in read and "reduce" not in read  # a first run's: none there yet
    session_id = out.record.id
    assert memory.records[session_id].status.value == "failed"
    assert {phase for sid, phase in memory.phases if sid == session_id} == {
        "setup",
        "map",
        "reduce",
    }
    [entry] = memory.dead_letters.values()
    assert entry["item_data"] == "skip" and entry["error_type"] == "CommitValidationFailed"
    # nothing of the run went to the store: no record, no checkpoint journal, no dead letter
    assert journal.get(session_id) is None and dlq.entries() == []
    assert not paths.checkpoints_dir(session_id).exists()

    gate.touch()
    read.clear()
    again = await resume(session_id, journal=memory)
    assert again.status == "completed", again.record.error
    assert {"setup", "reduce"} <= set(read)  # a resume reads what the first run did
    assert [e["step"] for e in again.sink.of("step_skipped")] == [
        "setup.1"
    ]  # reduce.1 failed: it runs again
    assert again.sink.of("agent_started") == []  # every item's result was in the journal
    assert git(repo, "show", "main:summary.txt") == "2 of 3\n"
    assert not paths.checkpoints_dir(session_id).exists()
