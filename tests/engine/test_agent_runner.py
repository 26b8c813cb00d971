"""The AgentRunner seam: map agents executed in another process, from a git bundle, and
delivered by the daemon, give the job the same result as agents run in the pool."""

from __future__ import annotations

from pathlib import Path

from prodigyd.store import checkpoints, dlq
from prodigyd.store import worktrees as worktree_rows
from tests.bundle_runner import BundleAgentRunner
from tests.engine.test_mapreduce import claude_env, conflicting_agents, prompts
from tests.enginekit import Outcome, run_workflow, write_workflow
from tests.gitutil import git, make_repo

WORKFLOW = """
name: seam
mode: mapreduce
setup:
  - shell: |
      printf '[{"n":1,"how":"commit"},{"n":2,"how":"leave"},{"n":3,"how":"twice"},
               {"n":4,"how":"nothing"},{"n":5,"how":"forget"}]' > items.json
map:
  input: items.json
  max_parallel: 2
  agent_template:
    - shell: |
        echo "agent ${item.n} of ${item_total}: ${item.how}"
        mkdir -p out
        case ${item.how} in
          commit) echo one > out/${item.n}.txt && git add -A && git commit -qm "item ${item.n}" ;;
          leave) echo left > out/${item.n}.txt ;;
          twice) echo a > out/${item.n}a.txt && git add -A && git commit -qm "item ${item.n} a"
                 echo b > out/${item.n}b.txt && git add -A && git commit -qm "item ${item.n} b" ;;
        esac
    - shell: "echo forgot to commit"
      when: "${item.how} == 'forget'"
      commit_required: true
reduce:
  - shell: "echo '${map.successful} ok, ${map.failed} failed' > summary.txt"
"""


def shape(out: Outcome, repo: Path) -> dict:
    """What a run left, without commit ids, times or its session id: the branch's tree, its
    commits' subjects, each item's recorded result, its dead letters."""
    session_id = out.record.id
    recorded = checkpoints.records(session_id, "map")
    results = sorted(
        (r["result"] for r in recorded if r.get("kind") == "result"), key=lambda r: r["item_id"]
    )
    return {
        "status": out.status,
        "tree": git(repo, "rev-parse", "main^{tree}").strip(),
        "subjects": sorted(
            git(repo, "log", "--format=%s", "main").replace(session_id, "ID").splitlines()
        ),
        "results": [
            (
                r["item_id"],
                r["status"],
                r["failure_reason"],
                len(r["commits"]),
                sorted(r["files_modified"]),
                r["output"],
                r["error"],
            )
            for r in results
        ],
        "dead_letters": [(e["item_id"], e["error_type"]) for e in dlq.entries(session_id)],
    }


async def test_agents_run_from_a_bundle_in_another_process_merge_as_local_ones(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(tmp_path, WORKFLOW)
    local = await run_workflow(wf, repo)
    assert local.status == "completed", local.record.error

    other = make_repo(tmp_path / "other", {"README.md": "# demo\n"})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    remote = await run_workflow(wf, other, runner=BundleAgentRunner(scratch))
    assert remote.status == "completed", remote.record.error

    expected = shape(local, repo)
    assert expected["dead_letters"] == [("item_4", "CommitValidationFailed")]
    assert shape(remote, other) == expected
    # ... and the agents did run in clones, not in worktrees of the repository
    started = [e["worktree"] for e in remote.sink.of("agent_started")]
    assert len(started) == 5 and all(Path(w).is_relative_to(scratch) for w in started)
    assert all(Path(row.path).name != "clone" for row in worktree_rows.all_rows())
    # their events came back: the session saw each step, each agent's log has its output
    steps = [e for e in remote.sink.of("step_completed") if e.get("agent_id")]
    assert {e["item_id"] for e in steps} == {f"item_{i}" for i in range(5)}
    [failed] = remote.sink.of("agent_failed")
    assert failed["failure_reason"] == "CommitValidationFailed"
    assert "agent 5 of 5: forget" in Path(failed["log_path"]).read_text()


async def test_a_conflict_between_agents_from_bundles_is_resolved_in_the_daemon(
    tmp_path: Path, repo: Path
):
    """Both agents start at the same commit and rewrite one file: the second merge
    conflicts in the parent worktree, where Claude resolves it as for local agents."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
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
    out = await run_workflow(
        conflicting_agents(tmp_path), repo, env=env, runner=BundleAgentRunner(scratch)
    )
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:shared.txt") == "left side\nright side\n"
    [prompt] = prompts(log)
    assert "Conflicted files: shared.txt" in prompt
    assert out.sink.of("map_phase_completed")[0]["successful"] == 2
