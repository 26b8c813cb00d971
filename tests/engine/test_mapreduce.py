"""MapReduce workflows, in-process against real repositories (reference §9.2 C, D, E, F)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prodigyd.engine.session import Session
from prodigyd.git import objects
from prodigyd.store import dlq, journal
from prodigyd.store import worktrees as worktree_rows
from prodigyd.store.sessions import Status
from prodigyd.workflow.load import parse_workflow
from tests.enginekit import ListSink, resume, run_workflow, write_workflow
from tests.gitutil import git

MINIMAL = """
name: minimal-mapreduce
mode: mapreduce
setup:
  - shell: |
      cat > test-items.json <<'JSON'
      [{"id":1,"name":"item-one"},{"id":2,"name":"item-two"},{"id":3,"name":"item-three"}]
      JSON
map:
  input: test-items.json
  json_path: "$[*]"
  max_parallel: 3
  agent_template:
    - shell: |
        printf 'Processed by agent: %s\\nItem ID: %s\\n' "${item.name}" "${item.id}" > output-${item.name}.txt
        cat output-${item.name}.txt
    - shell: "git add output-${item.name}.txt"
    - shell: "git commit -qm 'Process ${item.name} (id=${item.id})'"
      commit_required: true
reduce:
  - shell: |
      count=$(ls output-*.txt | wc -l)
      test "$count" -eq 3 || { echo "expected 3 files, found $count"; exit 1; }
  - shell: "cat output-*.txt"
    capture: all_outputs
"""


def branch_files(repo: Path, branch: str = "main") -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", branch).split())


async def test_minimal_mapreduce_merges_every_agent_and_lands_on_the_branch(
    tmp_path: Path, repo: Path
):
    out = await run_workflow(write_workflow(tmp_path, MINIMAL), repo)
    assert out.status == "completed", out.record.error
    files = branch_files(repo)
    assert {
        "output-item-one.txt",
        "output-item-two.txt",
        "output-item-three.txt",
    } <= files
    assert "test-items.json" not in files  # the input the setup wrote is not a result
    assert (
        git(repo, "show", "main:output-item-two.txt")
        == "Processed by agent: item-two\nItem ID: 2\n"
    )
    merges = git(repo, "log", "--merges", "--format=%s", "main").splitlines()
    assert sum(m.startswith("Merge agent ") for m in merges) == 3
    assert out.record.mode == "mapreduce" and out.record.id.startswith("mapreduce-")
    assert (out.record.total_items, out.record.processed_items, out.record.failed_items) == (
        3,
        3,
        0,
    )
    assert not [
        b
        for b in git(repo, "branch", "--format=%(refname:short)").split()
        if b.startswith("prodigy-")
    ]
    assert all(row.state == "idle" for row in worktree_rows.all_rows())  # agents' worktrees pooled
    started = out.sink.of("agent_started")
    assert len(started) == 3 and len({e["worktree"] for e in started}) == 3
    done = out.sink.of("map_phase_completed")[0]
    assert (done["total"], done["successful"], done["failed"]) == (3, 3, 0)


async def test_reduce_sees_map_variables_and_results_never_reach_the_environment(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf 'a\\nb\\nc\\n'"
  agent_template:
    - shell: "echo got ${item} at ${item_index} of ${item_total} as $PRODIGY_ITEM_ID"
reduce:
  - shell: "echo '${map.successful}/${map.total} ${map.success_rate}' > summary.txt"
  - write_file:
      path: results.json
      content: "${map.results}"
  - shell: "env | grep -c '^map' > env-count.txt || true"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:summary.txt") == "3/3 100.0\n"
    results = json.loads(git(repo, "show", "main:results.json"))
    assert [r["item"] for r in results] == ["a", "b", "c"]
    assert [r["item_id"] for r in results] == ["item_0", "item_1", "item_2"]
    assert all(r["success"] and r["status"] == "success" for r in results)
    assert "got b at 1 of 3 as item_1" in results[1]["output"]
    assert git(repo, "show", "main:env-count.txt").strip() == "0"


async def test_agents_know_their_worker_and_reduce_has_the_books_results_json_alias(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "seq 1 6"
  max_parallel: 2
  agent_template:
    - shell: "echo ${worker.id}"
reduce:
  - write_file:
      path: results.json
      content: "${map.results_json}"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    results = json.loads(git(repo, "show", "main:results.json"))
    assert len(results) == 6
    workers = {r["output"].strip() for r in results}
    assert workers <= {"0", "1"} and workers  # one of the two workers ran each
    parsed = parse_workflow(wf.read_text(), source=str(wf))  # both known names: no warning
    assert parsed.variable_warnings(set()) == []


async def test_map_results_read_from_a_file_survive_quotes_and_newlines(tmp_path: Path, repo: Path):
    """The pattern docs/workflows.md shows for `${map.results}` in a shell step: write_file
    it, then read the file (quoting it in the command breaks on a `'` in any item)."""
    (tmp_path / "items.json").write_text(json.dumps(["it's one", "two\nlines"]))
    wf = write_workflow(
        tmp_path,
        f"""
mode: mapreduce
setup:
  - shell: "cp {tmp_path / "items.json"} items.json"
map:
  input: items.json
  agent_template:
    - shell: "echo ${{item_id}}"
reduce:
  - write_file:
      path: map-results.json
      content: "${{map.results}}"
  - shell: |
      python3 -c 'import json
      for r in json.load(open("map-results.json")): print(r["status"], json.dumps(r["item"]))' > summary.txt
      rm map-results.json
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:summary.txt") == ('success "it\'s one"\nsuccess "two\\nlines"\n')
    assert "map-results.json" not in branch_files(repo)


def claude_env(tmp_path: Path, rules: list[dict] | None = None) -> tuple[dict[str, str], Path]:
    """The environment for a run whose claude steps the fake follows; returns its call log."""
    import os

    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"rules": rules or []}))
    log = tmp_path / "claude-calls.jsonl"
    return {**os.environ, "FAKE_CLAUDE_SCENARIO": str(scenario), "FAKE_CLAUDE_LOG": str(log)}, log


def prompts(log: Path) -> list[str]:
    return [json.loads(line)["prompt"] for line in log.read_text().splitlines()]


async def test_filter_and_sort_choose_the_agents_and_nested_fields_reach_claude(
    tmp_path: Path, repo: Path
):
    items = [
        {
            "id": 1,
            "severity": "low",
            "priority": 1,
            "description": "a",
            "location": {"file": "a.rs", "line": 1},
        },
        {
            "id": 2,
            "severity": "high",
            "priority": 5,
            "description": "b",
            "location": {"file": "b.rs", "line": 20},
        },
        {
            "id": 3,
            "severity": "critical",
            "priority": 2,
            "description": "c",
            "location": {"file": "c.rs", "line": 30},
        },
        {
            "id": 4,
            "severity": "low",
            "priority": 0,
            "description": "d",
            "location": {"file": "d.rs", "line": 4},
        },
        {
            "id": 5,
            "severity": "high",
            "priority": 3,
            "description": "e",
            "location": {"file": "e.rs", "line": 50},
        },
    ]
    (tmp_path / "items.json").write_text(json.dumps({"debt_items": items}))
    wf = write_workflow(
        tmp_path,
        f"""
name: parallel-debt-elimination
mode: mapreduce
setup:
  - shell: "cp {tmp_path / "items.json"} debt_items.json"
map:
  input: debt_items.json
  json_path: "$.debt_items[*]"
  filter: "severity == 'high' || severity == 'critical'"
  sort_by: "priority"
  max_parallel: 10
  agent_template:
    - claude: "/fix-issue ${{item.description}} --file ${{item.location.file}} --line ${{item.location.line}}"
reduce:
  - claude: "/summarize-fixes ${{map.results}}"
    capture_output: true
  - claude: "/generate-report --fixed ${{map.successful}} --failed ${{map.failed}}"
""",
    )
    env, log = claude_env(tmp_path)
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "completed", out.record.error
    calls = prompts(log)
    fixes = sorted(p for p in calls if p.startswith("/fix-issue"))
    assert fixes == [
        "/fix-issue b --file b.rs --line 20",
        "/fix-issue c --file c.rs --line 30",
        "/fix-issue e --file e.rs --line 50",
    ]
    summary = next(p for p in calls if p.startswith("/summarize-fixes"))
    results = json.loads(summary.removeprefix("/summarize-fixes "))
    assert [r["item"]["id"] for r in results] == [3, 5, 2]  # ascending priority: dispatch order
    assert "/generate-report --fixed 3 --failed 0" in calls


#: The book's MapReduce reference (book/src/mapreduce/index.md) names fields `item.<field>`.
BOOK_PIPELINE = """
mode: mapreduce
setup:
  - write_file:
      path: items.json
      content: '[{"id": "a", "score": 7, "priority": 3}, {"id": "b", "score": 2, "priority": 9},
        {"id": "a", "score": 8, "priority": 9}, {"id": "c", "score": 5, "priority": 1}]'
map:
  input: items.json
  filter: "item.score >= 5"
  sort_by: "item.priority DESC"
  distinct: "item.id"
  max_parallel: 1
  agent_template:
    - shell: "echo ${item.score} > done-${item.id}.txt"
reduce:
  - write_file:
      path: order.txt
      content: "${map.results}"
"""


async def test_the_books_item_prefix_works_in_filter_sort_by_and_distinct(
    tmp_path: Path, repo: Path
):
    out = await run_workflow(write_workflow(tmp_path, BOOK_PIPELINE), repo)
    assert out.status == "completed", out.record.error
    # b scores 2; of the two a's, the higher priority comes first and is the one kept
    assert {f for f in branch_files(repo) if f.startswith("done-")} == {"done-a.txt", "done-c.txt"}
    assert git(repo, "show", "main:done-a.txt") == "8\n"
    results = json.loads(git(repo, "show", "main:order.txt"))
    assert [r["item"]["score"] for r in results] == [8, 5]  # priority 9, then 1


async def test_a_filter_on_a_field_no_item_has_says_so(tmp_path: Path, repo: Path):
    wf = write_workflow(tmp_path, BOOK_PIPELINE.replace("item.score >= 5", "item.scor >= 5"))
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert out.sink.of("map_phase_completed")[0]["message"] == (
        "No work items to process: the filter 'item.scor >= 5' kept none of the 4 items; "
        "no item has a field named 'item.scor'"
    )
    assert not {f for f in branch_files(repo) if f.startswith("done-")}


async def test_an_agent_that_does_not_commit_goes_to_the_dlq_and_the_job_completes(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(
        tmp_path,
        """
name: commit-validation
mode: mapreduce
setup:
  - shell: |
      cat > work-items.json <<'JSON'
      {"items":[{"id":1,"should_commit":true,"file":"file1.txt"},
                {"id":2,"should_commit":false,"file":"file2.txt"},
                {"id":3,"should_commit":true,"file":"file3.txt"}]}
      JSON
map:
  input: "work-items.json"
  json_path: "$.items[*]"
  max_parallel: 3
  agent_template:
    - shell: |
        if [ "${item.should_commit}" = "true" ]; then
          echo "item ${item.id}" > ${item.file} && git add ${item.file} && git commit -qm "item ${item.id}"
        fi
      commit_required: true
reduce:
  - shell: "echo '${map.successful} ok, ${map.failed} failed' > summary.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert len(dlq.entries(out.record.id)) == 1, dlq.entries(out.record.id)
    assert git(repo, "show", "main:summary.txt") == "2 ok, 1 failed\n"
    assert {"file1.txt", "file3.txt"} <= branch_files(repo) and "file2.txt" not in branch_files(
        repo
    )
    entries = dlq.entries(out.record.id)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["item_id"] == "item_1" and entry["item_data"] == {
        "id": 2,
        "should_commit": False,
        "file": "file2.txt",
    }
    assert entry["error_type"] == "CommitValidationFailed"
    assert entry["reprocess_eligible"] is False and entry["manual_review_required"] is True
    attempt = entry["failure_history"][0]
    assert (
        attempt["attempt_number"] == 1 and "No changes were committed" in attempt["error_message"]
    )
    assert Path(attempt["log_path"]).is_file()
    assert attempt["step_failed"].startswith('shell: if [ "false" = "true" ]')  # which step
    assert out.record.failed_items == 1


def conflicting_agents(tmp_path: Path, reduce: str = "") -> Path:
    """Two agents that both start from the same commit (a gate makes each wait for the
    other) and both rewrite shared.txt: the second merge conflicts."""
    gate = tmp_path / "gate"
    gate.mkdir()
    return write_workflow(
        tmp_path,
        f"""
mode: mapreduce
map:
  input: "printf 'left\\nright\\n'"
  max_parallel: 2
  agent_template:
    - shell: |
        touch {gate}/${{item}}
        while [ "$(ls {gate} | wc -l)" -lt 2 ]; do sleep 0.02; done
        echo "${{item}} side" > shared.txt && git add shared.txt && git commit -qm "${{item}}"
{reduce}""",
    )


async def test_conflicting_agents_are_resolved_by_claude_and_verified(tmp_path: Path, repo: Path):
    wf = conflicting_agents(tmp_path)
    env, log = claude_env(
        tmp_path,
        [
            {
                "match": "Resolve the git merge conflicts",
                "actions": [
                    {"write": "shared.txt", "content": "left side\nright side\n"},
                    {"commit": "merge resolved by claude"},
                ],
            },
        ],
    )
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:shared.txt") == "left side\nright side\n"
    [prompt] = prompts(log)
    assert "Conflicted files: shared.txt" in prompt and "prodigy-agent-" in prompt
    assert f"into prodigy-{out.record.id}" in prompt
    assert out.sink.of("map_phase_completed")[0]["successful"] == 2


async def test_a_conflict_claude_cannot_resolve_fails_the_agent_and_restores_the_parent(
    tmp_path: Path, repo: Path
):
    wf = conflicting_agents(
        tmp_path,
        f"""reduce:
  - shell: "git status --porcelain > {tmp_path}/status.txt; cat shared.txt > final.txt"
""",
    )
    env, _ = claude_env(
        tmp_path,
        [
            {
                "match": "Resolve the git merge conflicts",
                "actions": [{"write": "notes.txt", "content": "gave up\n"}],
            },
        ],
    )
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "completed", out.record.error  # the failed item is in the DLQ
    [entry] = dlq.entries(out.record.id)
    assert entry["error_type"] == "MergeConflict"
    assert "conflict" in entry["failure_history"][0]["error_message"]
    assert (tmp_path / "status.txt").read_text() == ""  # the parent was left clean
    assert git(repo, "show", "main:final.txt") in ("left side\n", "right side\n")
    assert "<<<<<<<" not in git(repo, "show", "main:final.txt")


async def test_env_profiles_and_secrets_work_in_every_phase(
    tmp_path: Path, repo: Path, isolated: Path
):
    import os

    wf = write_workflow(
        tmp_path,
        """
name: env-example
mode: mapreduce
env:
  PROJECT_NAME: demo
  OUTPUT_DIR: out
  DEBUG_MODE: "false"
  TIMEOUT_SECONDS: "300"
  API_TOKEN: {secret: true, value: "${GITHUB_TOKEN}"}
profiles:
  development:
    description: dev settings
    DEBUG_MODE: "true"
    OUTPUT_DIR: dev-output
setup:
  - shell: |
      mkdir -p $OUTPUT_DIR && echo "setup $PROJECT_NAME ${DEBUG_MODE} $API_TOKEN" > ${OUTPUT_DIR}/setup.txt
      echo '{"items":[{"name":"item1","path":"file1.txt"},{"name":"item2","path":"file2.txt"}]}' > items.json
map:
  input: items.json
  json_path: "$.items[*]"
  max_parallel: 5
  agent_template:
    - shell: "echo \\"${item.name} $PROJECT_NAME $DEBUG_MODE ${TIMEOUT_SECONDS}\\" > $OUTPUT_DIR/${item.path}"
      on_failure:
        - claude: "/fix ${item.name}"
    - shell: "echo token=$API_TOKEN"
reduce:
  - shell: "echo \\"${map.successful}/${map.total} $PROJECT_NAME $DEBUG_MODE\\" > $OUTPUT_DIR/reduce.txt"
merge:
  commands:
    - shell: "echo \\"merge $PROJECT_NAME $DEBUG_MODE ${merge.source_branch}\\" > $OUTPUT_DIR/merge.txt && git add -A && git commit -qm merge-notes"
""",
    )
    env = {**os.environ, "GITHUB_TOKEN": "s3cr3t-value"}
    out = await run_workflow(wf, repo, env=env, profile="development")
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:dev-output/setup.txt") == "setup demo true s3cr3t-value\n"
    assert git(repo, "show", "main:dev-output/file2.txt") == "item2 demo true 300\n"
    assert git(repo, "show", "main:dev-output/reduce.txt") == "2/2 demo true\n"
    assert (
        git(repo, "show", "main:dev-output/merge.txt")
        == f"merge demo true prodigy-{out.record.id}\n"
    )
    stored = json.dumps(out.sink.events)
    for path in isolated.rglob("*"):
        if (
            path.is_file()
            and "worktrees" not in path.parts
            and not path.name.startswith("journal.db")
        ):
            stored += path.read_text(errors="replace")
    assert "s3cr3t-value" not in stored and "token=***" in stored


async def test_error_policies_stop_retry_and_skip(tmp_path: Path, repo: Path):
    flaky = tmp_path / "flaky"
    flaky.mkdir()
    retry = write_workflow(
        tmp_path,
        f"""
mode: mapreduce
map:
  input: "printf 'a\\nb\\n'"
  max_parallel: 1
  agent_template:
    - shell: "test -f {flaky}/${{item}} || {{ touch {flaky}/${{item}}; exit 3; }}"
error_policy:
  on_item_failure: retry
  retry_config: {{max_attempts: 2}}
""",
        name="retry.yml",
    )
    out = await run_workflow(retry, repo)
    assert out.status == "completed", out.record.error
    assert [e["attempt"] for e in out.sink.of("agent_failed")] == [1, 1]
    assert len(out.sink.of("agent_completed")) == 2 and dlq.entries(out.record.id) == []

    stop = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf 'a\\nb\\nc\\nd\\n'"
  max_parallel: 1
  agent_template:
    - shell: "test ${item} != b"
on_item_failure: stop
reduce:
  - shell: "touch reduced.txt"
""",
        name="stop.yml",
    )
    out = await run_workflow(stop, repo)
    assert out.status == "failed" and "on_item_failure is stop" in out.record.error
    assert out.record.processed_items == 2  # c and d were never dispatched
    assert [e["item_id"] for e in dlq.entries(out.record.id)] == ["item_1"]
    assert not out.sink.of("phase_started") or all(
        e["phase"] != "reduce" for e in out.sink.of("phase_started")
    )

    skip = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf 'a\\nb\\nc\\n'"
  agent_template:
    - shell: "test ${item} != b"
error_policy:
  on_item_failure: skip
  max_failures: 0
""",
        name="skip.yml",
    )
    out = await run_workflow(skip, repo)
    assert out.status == "failed" and "more than max_failures (0)" in out.record.error
    assert dlq.entries(out.record.id) == []


async def test_an_agent_past_its_timeout_is_killed_and_dead_lettered(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf 'slow\\nquick\\n'"
  agent_timeout_secs: 1
  agent_template:
    - shell: "if [ ${item} = slow ]; then sleep 30; fi; echo done"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    [entry] = dlq.entries(out.record.id)
    assert entry["item_data"] == "slow" and entry["error_type"] == "Timeout"
    assert entry["reprocess_eligible"] is True
    failed = out.sink.of("agent_failed")[0]
    assert failed["failure_reason"] == "Timeout" and "timed out after 1 seconds" in failed["error"]


async def test_the_error_type_is_where_it_failed_not_the_words_of_its_message(
    tmp_path: Path, repo: Path
):
    """A handler that fails saying "merge timed out" is a failed command: the DLQ is told
    so by the step that failed, not by the words its output happens to use."""
    wf = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf 'one\\n'"
  agent_template:
    - shell: "true"
      on_success:
        shell: "echo 'the merge into the worktree timed out' >&2; exit 2"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"  # its only item failed
    [entry] = dlq.entries(out.record.id)
    assert "timed out" in entry["failure_history"][0]["error_message"]
    assert entry["error_type"] == "CommandFailed"
    assert out.sink.of("agent_failed")[0]["failure_reason"] == "CommandFailed"


def test_the_circuit_breaker_opens_waits_and_closes():
    from prodigyd.engine.mapreduce.policy import Breaker
    from prodigyd.workflow.model import CircuitBreaker

    now = [0.0]
    breaker = Breaker(
        CircuitBreaker(failure_threshold=2, success_threshold=2, timeout=10, half_open_requests=1),
        clock=lambda: now[0],
    )
    assert breaker.wait_time() == 0
    breaker.record(False)
    breaker.record(False)
    assert breaker.state == "open" and breaker.wait_time() == 10
    now[0] = 10.0
    assert breaker.wait_time() == 0 and breaker.state == "half_open"
    assert breaker.wait_time() > 0  # one trial at a time
    breaker.record(True)
    assert breaker.wait_time() == 0
    breaker.record(True)
    assert breaker.state == "closed"
    breaker.record(False)
    breaker.record(False)
    now[0] = 25.0
    breaker.wait_time()
    breaker.record(False)  # a failed trial opens it again
    assert breaker.state == "open" and breaker.wait_time() == 10


async def test_max_parallel_from_the_environment_and_a_clear_error_when_unset(
    tmp_path: Path, repo: Path
):
    import os

    wf = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "seq 3"
  max_parallel: "$WORKERS"
  agent_template:
    - shell: "true"
""",
    )
    out = await run_workflow(wf, repo, env={**os.environ, "WORKERS": "2"})
    assert out.status == "completed", out.record.error
    assert out.sink.of("map_phase_started")[0]["max_parallel"] == 2
    env = {k: v for k, v in os.environ.items() if k != "WORKERS"}
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "failed" and "max_parallel: $WORKERS is not set" in out.record.error


async def test_a_setup_timeout_from_a_variable_as_the_book_writes_it(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
mode: mapreduce
env:
  SETUP_TIMEOUT: "1"
setup:
  timeout: "${SETUP_TIMEOUT}"
  commands:
    - shell: "sleep 30"
map:
  input: "seq 2"
  agent_template:
    - shell: "true"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "setup timed out after 1 seconds" in (out.record.error or "")
    wf.write_text(wf.read_text().replace("${SETUP_TIMEOUT}", "${NO_SUCH_TIMEOUT}"))
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "setup.timeout: ${NO_SUCH_TIMEOUT} is not set" in (out.record.error or "")


async def test_failure_threshold_and_continue_on_failure_stop_dispatching(
    tmp_path: Path, repo: Path
):
    threshold = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf '1\\nbad\\n3\\nbad\\n5\\n6\\n'"
  max_parallel: 1
  agent_template:
    - shell: "test ${item} != bad"
failure_threshold: 0.2
""",
        name="threshold.yml",
    )
    out = await run_workflow(threshold, repo)
    assert (
        out.status == "failed"
        and "2 of 6 items failed, more than failure_threshold (0.2)" in out.record.error
    )
    assert out.record.processed_items == 4  # 1/6 was within the threshold, 2/6 was not
    strict = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf 'bad\\n2\\n'"
  max_parallel: 1
  agent_template:
    - shell: "test ${item} != bad"
continue_on_failure: false
""",
        name="strict.yml",
    )
    out = await run_workflow(strict, repo)
    assert out.status == "failed" and "continue_on_failure is false" in out.record.error
    assert out.record.processed_items == 1


async def test_keep_failed_keeps_a_failed_agents_work_on_a_branch(tmp_path: Path, repo: Path):
    from prodigyd.pool import PoolSettings

    wf = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf 'ok\\nbroken\\n'"
  agent_template:
    - shell: "echo half-done > ${item}.txt; test ${item} = ok"
""",
    )
    out = await run_workflow(wf, repo, pool=PoolSettings(keep_failed=True))
    assert out.status == "completed", out.record.error
    [entry] = dlq.entries(out.record.id)
    artifacts = entry["worktree_artifacts"]
    assert artifacts["branch_name"] == f"prodigy-agent-{out.record.id}/item_1"
    assert git(repo, "show", f"{artifacts['branch_name']}:broken.txt") == "half-done\n"
    assert worktree_rows.get(artifacts["worktree_path"]).state == "kept"


async def test_a_capture_cut_at_max_size_keeps_no_part_of_a_secret(tmp_path: Path, repo: Path):
    """`max_size` cuts the captured value inside the secret: the cut moves back to where the
    secret starts, since a part of it would no longer be recognised (and so be stored)."""
    import os

    secret = "Zq7vL2mX8pR4tY6wKp3nB5cD9f"
    wf = write_workflow(
        tmp_path,
        """
secrets:
  TOKEN: {provider: env, key: CUT_SECRET}
setup:
  commands:
    - shell: "printf 'id=%s' '${TOKEN}'"
    - write_file: {path: items.json, content: '["one"]'}
  capture_outputs:
    ID: {command_index: 0, max_size: 12}
map:
  input: items.json
  agent_template:
    - shell: "printf '%s' '${ID}' > id-${item}.txt && git add -A && git commit -qm id"
""",
    )
    out = await run_workflow(wf, repo, env={**os.environ, "CUT_SECRET": secret})
    assert out.status == "completed", out.record.error
    assert (repo / "id-one.txt").read_text() == "id="
    journal.scrub()  # of the dropped environment, as the daemon does once quiet
    stored = b"".join(
        p.read_bytes()
        for p in Path(os.environ["PRODIGY_HOME"]).rglob("*")
        if p.is_file() and not p.is_socket()
    )
    assert secret[:9].encode() not in stored


async def test_legacy_item_aliases_and_timeout_action(tmp_path: Path, repo: Path):
    """`${ARG}`/`${FILE}` name the item in an agent (its value/path fields, or the item
    itself); `timeout_action: skip` leaves a timed-out item out of the DLQ, `fail` stops
    the job."""
    aliases = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf '%s\\n' '{\\"value\\": \\"v1\\", \\"path\\": \\"p1\\"}' plain"
  max_parallel: 1
  agent_template:
    - shell: "echo ${ARG}:${FILE} > out-${item_index}.txt && git add -A && git commit -qm o"
""",
        name="aliases.yml",
    )
    out = await run_workflow(aliases, repo, args=("session-arg",))
    assert out.status == "completed", out.record.error
    assert (repo / "out-0.txt").read_text() == "v1:p1\n"
    assert (repo / "out-1.txt").read_text() == "plain:plain\n"

    for action, status, entries in (("skip", "completed", 0), ("fail", "failed", 1)):
        timed = write_workflow(
            tmp_path,
            f"""
mode: mapreduce
map:
  input: "printf 'a\\\\nb\\\\nc\\\\n'"
  max_parallel: 1
  timeout_config: {{command_timeouts: {{shell_0: 0.2}}, timeout_action: {action}}}
  agent_template:
    - shell: "test ${{item}} = c || sleep 30"
""",
            name=f"timeout-{action}.yml",
        )
        out = await run_workflow(timed, repo)
        assert out.status == status, out.record.error
        assert len(dlq.entries(out.record.id)) == entries
        dispatched = len(out.sink.of("agent_failed"))
        assert dispatched == (2 if action == "skip" else 1)


async def test_a_map_input_file_of_lines_suggests_the_command_that_reads_it(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(
        tmp_path,
        """
mode: mapreduce
setup:
  - shell: "printf 'a\\nb\\n' > items.txt"
map:
  input: items.txt
  agent_template:
    - shell: "true"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert 'input: "cat items.txt"' in (out.record.error or "")


LEFTOVERS = """
name: leftovers
mode: mapreduce
setup:
  - shell: "printf 'build/\\\\n*.log\\\\n' > .gitignore && git add .gitignore && git commit -qm ignore"
map:
  input: "seq 4"
  max_parallel: 2
  agent_template:
    - shell: |
        case ${item} in
          1) echo one > left-1.txt ;;
          2) echo log > run-2.log ;;
          3) mkdir -p build && echo o > build/o ;;
        esac
"""


async def test_what_agents_leave_is_committed_and_ignored_files_never_stay_in_the_pool(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    """With git's configuration not redirected, a small worktree's state is read in
    process (libgit2): an agent's uncommitted file still lands, and a slot an agent left
    ignored files in is scrubbed before it is pooled again."""
    for name in objects.CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    out = await run_workflow(write_workflow(tmp_path, LEFTOVERS), repo)
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:left-1.txt") == "one\n"
    assert not {"run-2.log", "build/o"} & branch_files(repo)
    merges = git(repo, "log", "--merges", "--format=%s", "main").splitlines()
    assert [m for m in merges if m.startswith("Merge agent ")] == [
        m for m in merges if "(item_0)" in m
    ]  # only the agent that changed a tracked or untracked file made a commit
    slots = [Path(row.path) for row in worktree_rows.all_rows()]
    assert slots and all(git(slot, "status", "--porcelain", "--ignored") == "" for slot in slots)


CUT_OFF = """
name: cut
mode: mapreduce
setup:
  - shell: "printf '[1, 2]' > items.json"
map:
  input: items.json
  max_parallel: 1
  agent_template:
    - shell: "echo ${item} > out-${item}.txt && git add -A && git commit -qm item-${item}"
    - shell: "if [ ${item} = 2 ]; then sleep 1; fi"  # still running when item 1 is told done
"""


async def test_a_merge_into_the_parent_a_crash_cut_off_is_settled_before_setup_commits(
    tmp_path: Path, repo: Path
):
    """Setup's closing commit (on a resume too) took a cut-off agent merge's staged files
    for its own: they landed as `prodigy: setup of ...`. The merge is undone first."""

    class StopAfterFirstAgent(ListSink):
        session: Session | None = None

        def emit(self, event_type: str, /, **fields: Any) -> None:
            super().emit(event_type, **fields)
            if event_type == "agent_completed" and self.session is not None:
                self.session.stop_after_step(Status.INTERRUPTED)

    sink = StopAfterFirstAgent()
    wf = write_workflow(tmp_path, CUT_OFF)
    out = await run_workflow(wf, repo, sink=sink, created=lambda s: setattr(sink, "session", s))
    assert out.status == "interrupted", out.record.error
    parent = Path(out.record.worktree)  # a crash in the middle of the next agent's merge:
    git(parent, "checkout", "-q", "--detach")
    (parent / "cut.txt").write_text("half merged\n")
    git(parent, "add", "cut.txt")
    git(parent, "commit", "-qm", "Merge agent cut-off")
    cut = git(parent, "rev-parse", "HEAD").strip()
    git(parent, "checkout", "-q", out.record.branch)
    git(parent, "merge", "--quiet", "--no-commit", "--no-ff", cut)
    resumed = await resume(out.record.id)
    assert resumed.status == "completed", resumed.record.error
    assert {"out-1.txt", "out-2.txt"} <= branch_files(repo)
    assert "cut.txt" not in branch_files(repo)


HANDED_OVER = """
mode: mapreduce
map:
  input: "seq 6"
  max_parallel: 1
  agent_template:
    - shell: |
        case ${item} in
          3) echo scratch > build.tmp ;;
          *) echo "item ${item}" ;;
        esac
"""


async def test_an_agent_takes_the_worktree_an_earlier_one_left_pristine(tmp_path: Path, repo):
    """The next agent gets it as it is (WorktreePool.hand_over), not through the pool; one
    that left an ignored file behind gives its worktree back to be scrubbed first; after
    the phase each is back in the pool, idle."""
    (repo / ".gitignore").write_text("*.tmp\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore")
    out = await run_workflow(write_workflow(tmp_path, HANDED_OVER), repo)
    assert out.status == "completed", out.record.error
    used = [e["worktree"] for e in out.sink.of("agent_started")]
    assert len(used) == 6 and len(set(used)) == 1  # one agent at a time: one worktree
    [slot] = [row for row in worktree_rows.all_rows() if row.path == used[0]]
    assert (slot.state, slot.owner, slot.uses) == ("idle", None, 6)
    assert not (Path(used[0]) / "build.tmp").exists()  # item 3's leftover: scrubbed
    assert all(row.state == "idle" for row in worktree_rows.all_rows())
