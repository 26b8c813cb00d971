"""Budgets (`budget: {cost_usd, tokens, time}`), in-process with the fake claude: a spent
budget stops the running Claude process, fails the step with `budget exceeded: ...`, and a
resume with a larger budget goes on; map agents share the job's budget."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prodigyd.eventtypes import EventType
from prodigyd.store import dlq
from prodigyd.store import sessions as session_store
from prodigyd.workflow.model import Budget
from tests.engine.test_mapreduce import claude_env, prompts
from tests.enginekit import resume, run_workflow, write_workflow
from tests.gitutil import git

#: A Claude run that reports its usage on a first tool turn, then works for a long time
#: and only then leaves its mark: a run stopped on its usage never writes `late.txt`.
SLOW = [{"shell": "true"}, {"sleep": 60}, {"write": "late.txt", "content": "late\n"}]


async def test_a_step_over_its_token_budget_is_stopped_mid_run(tmp_path: Path, repo: Path):
    env, _ = claude_env(
        tmp_path, [{"match": "work", "actions": SLOW, "input_tokens": 9000, "output_tokens": 30}]
    )
    wf = write_workflow(tmp_path, "- claude: /work\n  budget: {tokens: 2000}\n")
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "failed"
    error = out.record.error or ""
    assert "budget exceeded: 3,001 tokens of 2,000 (step budget;" in error, error
    assert f"prodigyctl resume {out.record.id} runs the step again with this budget anew" in error
    assert not (Path(out.record.worktree) / "late.txt").exists()  # stopped in its sleep
    stops = out.sink.of(EventType.BUDGET_EXCEEDED)
    assert [e["step"] for e in stops] == ["1"]
    failed = out.sink.of(EventType.STEP_FAILED)[-1]
    assert "budget exceeded" in failed["error"]


async def test_the_live_cost_estimate_stops_a_run_before_its_result(tmp_path: Path, repo: Path):
    # the fake is claude-sonnet-5 ($2 per million input tokens): its first turn's 600,000
    # input tokens are an estimated $1.20, over the $0.50 before any result line says so
    env, log = claude_env(
        tmp_path,
        [
            {
                "match": "work",
                "actions": SLOW,
                "input_tokens": 1_800_000,
                "output_tokens": 0,
                "cost_usd": 9.0,
            }
        ],
    )
    wf = write_workflow(tmp_path, "budget: {cost_usd: 0.5}\ncommands:\n  - claude: /work\n")
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "failed"
    error = out.record.error or ""
    assert "budget exceeded: $1.20 (estimated) of $0.50 (workflow budget;" in error, error
    assert f"prodigyctl resume {out.record.id} --budget-usd N" in error
    argv = json.loads(log.read_text().splitlines()[0])["argv"]
    assert argv[argv.index("--max-budget-usd") + 1] == "0.500000"  # the CLI's own stop too
    assert out.record.budget_used.cost_usd == pytest.approx(
        1.2, abs=1e-3
    )  # one placeholder output token


async def test_a_spent_job_budget_fails_the_next_step_and_a_resume_with_more_goes_on(
    tmp_path: Path, repo: Path
):
    env, log = claude_env(tmp_path, [{"match": "step", "cost_usd": 0.3}])
    wf = write_workflow(
        tmp_path,
        "budget: {cost_usd: 0.5}\n"
        "commands:\n"
        "  - claude: /step one\n"
        "  - claude: /step two\n"
        "  - claude: /step three\n"
        "  - shell: echo done > done.txt && git add done.txt && git commit -qm done\n",
    )
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "failed"
    error = out.record.error or ""
    # the second run ended over the budget; the third never started
    assert "Step 'claude: /step three' failed: budget exceeded: $0.60 of $0.50" in error, error
    assert prompts(log) == ["/step one", "/step two"]
    assert out.record.budget_used.cost_usd == 0.6

    record = session_store.load(out.record.id)  # `prodigyctl resume ID --budget-usd 1`
    record.budget = Budget(cost_usd=1.0)
    session_store.save(record)
    again = await resume(out.record.id, env=env)
    assert again.status == "completed", again.record.error
    assert prompts(log) == ["/step one", "/step two", "/step three"]
    assert git(repo, "show", "main:done.txt") == "done\n"
    assert round(again.record.budget_used.cost_usd, 6) == 0.9  # the account spans runs


async def test_a_time_budget_stops_a_shell_step_too(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path, "budget: {time: 1s}\ncommands:\n  - shell: sleep 60; touch late.txt\n"
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    error = out.record.error or ""
    assert "budget exceeded: " in error and " of 1.0s (workflow budget;" in error, error
    assert "--budget-time N" in error
    assert not (Path(out.record.worktree) / "late.txt").exists()


async def test_a_budget_stop_is_not_retried(tmp_path: Path, repo: Path):
    env, log = claude_env(tmp_path, [{"match": "work", "actions": SLOW, "input_tokens": 9000}])
    wf = write_workflow(
        tmp_path,
        "- claude: /work\n  budget: {tokens: 100}\n  retry: {attempts: 3, initial_delay: 0}\n",
    )
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "failed"
    assert prompts(log) == ["/work"]
    assert not out.sink.of(EventType.STEP_RETRYING)


MAP = """
name: shared
mode: mapreduce
budget: {{tokens: 800}}
setup:
  - shell: echo '["a", "b", "c", "d"]' > items.json
map:
  input: items.json
  max_parallel: 2
  agent_template:
    - claude: "/do ${{item}}"
reduce:
  - shell: ls done-*.txt > all.txt && git add all.txt && git commit -qm all
{extra}
"""


def _map_rules(slow_runs: int) -> list[dict]:
    """Agents: the first `slow_runs` runs use 500 tokens on their first turn, then work
    long; the others write their file, commit and end at once."""
    quick = {
        "match": r"/do (\w)",
        "actions": [{"write": "done-{1}.txt", "content": "{1}\n"}, {"commit": "do {1}"}],
        "input_tokens": 100,
        "output_tokens": 0,
    }
    slow = {**quick, "actions": SLOW, "input_tokens": 1500, "times": slow_runs}
    return [slow, quick]


async def test_map_agents_share_the_job_budget_and_the_unfinished_items_run_on_resume(
    tmp_path: Path, repo: Path
):
    env, log = claude_env(tmp_path, _map_rules(slow_runs=2))
    wf = write_workflow(tmp_path, MAP.format(extra=""))
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "failed"
    error = out.record.error or ""
    # two agents ran at once; the second's first turn spent the last of the 800 tokens,
    # which stopped both, and no agent started after them
    assert "map phase stopped: budget exceeded: 1,002 tokens of 800 (workflow budget;" in error
    assert "4 of 4 items unfinished (a resume runs them)" in error, error
    assert sorted(prompts(log)) == ["/do a", "/do b"]
    stopped = out.sink.of(EventType.BUDGET_EXCEEDED)
    assert stopped[-1]["unfinished"] == ["item_0", "item_1", "item_2", "item_3"]
    assert sorted(e["item_id"] for e in out.sink.of(EventType.AGENT_FAILED)) == [
        "item_0",
        "item_1",
    ]
    assert dlq.entries(out.record.id) == []  # the budget failed, not the items

    record = session_store.load(out.record.id)
    record.budget = Budget(tokens=100_000)
    session_store.save(record)
    again = await resume(out.record.id, env=env)
    assert again.status == "completed", again.record.error
    assert git(repo, "show", "main:all.txt").split() == [f"done-{x}.txt" for x in "abcd"]


async def test_an_agent_over_its_own_budget_fails_its_item_alone(tmp_path: Path, repo: Path):
    env, _ = claude_env(tmp_path, _map_rules(slow_runs=1))
    text = MAP.format(extra="").replace("budget: {tokens: 800}\n", "")
    text = text.replace("  max_parallel: 2\n", "  max_parallel: 1\n  budget: {tokens: 300}\n")
    wf = write_workflow(tmp_path, text)
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "completed", out.record.error
    entries = dlq.entries(out.record.id)
    assert [(e["item_id"], e["error_type"]) for e in entries] == [("item_0", "BudgetExceeded")]
    assert re.search(r"budget exceeded: 50\d tokens of 300 \(agent budget;", json.dumps(entries))
    assert git(repo, "show", "main:all.txt").split() == [f"done-{x}.txt" for x in "bcd"]


async def test_an_agent_over_its_own_budget_is_a_failed_item_when_the_job_budget_runs_out_too(
    tmp_path: Path, repo: Path
):
    """The run that spends the agent's budget also spends the job's: the item failed (its
    own budget stopped it: DLQ), the ones not started are the unfinished ones."""
    env, _ = claude_env(tmp_path, _map_rules(slow_runs=1))
    text = MAP.format(extra="").replace("budget: {tokens: 800}\n", "budget: {tokens: 400}\n")
    text = text.replace("  max_parallel: 2\n", "  max_parallel: 1\n  budget: {tokens: 300}\n")
    out = await run_workflow(write_workflow(tmp_path, text), repo, env=env)
    assert out.status == "failed"
    entries = dlq.entries(out.record.id)
    assert [(e["item_id"], e["error_type"]) for e in entries] == [("item_0", "BudgetExceeded")]
    assert out.sink.of(EventType.BUDGET_EXCEEDED)[-1]["unfinished"] == [
        "item_1",
        "item_2",
        "item_3",
    ]
