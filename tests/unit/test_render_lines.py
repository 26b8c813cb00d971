"""Lines `prodigyctl run` prints: what failed is said once, counts agree with their
nouns, numbers read as the engine's own messages write them."""

from __future__ import annotations

from prodigyctl.render import Renderer


def test_a_failed_agent_does_not_repeat_its_steps_error():
    render = Renderer(as_json=False, live=False)
    error = "Step 'exit 3' failed with exit code 3"
    step = {"event_type": "step_failed", "session_id": "s", "item_id": "item_2", "step": "item_2/1"}
    agent = {"event_type": "agent_failed", "session_id": "s", "item_id": "item_2"}
    assert render.human({**step, "error": error}) == f"[item_2] ✗ step item_2/1: {error}"
    failed = {**agent, "error": error, "failure_reason": "CommandFailed"}
    assert render.human(failed) == "[item_2] ✗ CommandFailed"
    other = {**agent, "error": "merge into the parent worktree failed: conflict"}
    assert render.human({**other, "failure_reason": "MergeConflict"}) == (
        "[item_2] ✗ MergeConflict: merge into the parent worktree failed: conflict"
    )


def test_one_item_and_one_agent_are_singular():
    render = Renderer(as_json=False, live=False)
    started = {"event_type": "map_phase_started", "total_items": 1, "max_parallel": 1}
    assert render.human({**started, "pending": 1}) == "Processing 1 item with 1 parallel agent"
    started = {**started, "total_items": 5, "max_parallel": 2}
    assert render.human({**started, "pending": 3}) == (
        "Processing 3 items with 2 parallel agents (2 of 5 already done)"
    )


def test_a_failure_that_names_its_next_command_gets_no_resume_hint():
    """A MapReduce job whose every item failed has nothing left to resume: its error names
    `dlq retry`, and the line must not add a `resume` hint that would loop the user."""
    render = Renderer(as_json=False, live=False)
    finished = {"event_type": "session_finished", "session_id": "m-1", "status": "failed"}
    dead = "all 2 items failed; `prodigyctl dlq retry m-1` runs the failed items again"
    line = render.human({**finished, "error": dead, "worktree": "/w"})
    assert "prodigyctl dlq retry m-1" in line
    assert "prodigyctl resume" not in line
    assert "(worktree kept: /w)" in line
    plain = render.human({**finished, "error": "Step 'x' failed", "worktree": "/w"})
    assert "Resume with: prodigyctl resume m-1" in plain


def test_a_mapreduce_session_does_not_read_as_a_few_steps():
    render = Renderer(as_json=False, live=False)
    started = {"event_type": "session_started", "session_id": "m-1", "worktree": "/w"}
    assert render.human({**started, "mode": "mapreduce", "total_steps": 1}) == (
        "session m-1: a MapReduce job (1 step in setup and reduce) in /w"
    )
    assert render.human({**started, "mode": "mapreduce", "total_steps": 0}) == (
        "session m-1: a MapReduce job in /w"  # a DLQ retry: its map phase alone
    )
    assert render.human({**started, "mode": "standard", "total_steps": 3}) == (
        "session m-1: 3 steps in /w"
    )


def test_a_job_is_tagged_by_its_ids_end_and_the_triggers_log_by_its_name():
    from prodigyctl.render import job_tag

    assert job_tag("workflow-1796381541963-e5d7e4") == "e5d7e4"
    assert job_tag("triggers") == "triggers"  # not "iggers"


def test_a_goal_seek_attempt_shows_its_score_as_the_summary_does():
    render = Renderer(as_json=False, live=False)
    attempt = {"event_type": "goal_attempt", "session_id": "s", "attempt": 2, "max_attempts": 5}
    assert render.human({**attempt, "score": 66.66666666666667, "threshold": 90}) == (
        "  🎯 attempt 2/5: score 66.6667 (threshold 90)"
    )


def test_a_run_the_next_daemon_resumes_is_not_sent_to_resume_it_by_hand():
    render = Renderer(as_json=False, live=False)
    stopped = {"event_type": "session_finished", "session_id": "s", "status": "interrupted"}
    assert render.human({**stopped, "resumes": True}) == (
        "session s interrupted: prodigyd stopped; it resumes when prodigyd starts again "
        "(follow it: prodigyctl logs -f s)"
    )
    assert render.human(stopped) == "session s interrupted. Resume with: prodigyctl resume s"


def test_a_map_phase_a_limit_stopped_says_how_many_items_never_ran():
    render = Renderer(as_json=False, live=False)
    done = {"event_type": "map_phase_completed", "session_id": "s", "dlq": True}
    line = render.human({**done, "total": 20, "successful": 7, "failed": 3})
    assert "Map phase completed: 7 successful, 3 failed, 10 not run (total: 20)" in line
    assert line.endswith("failed items are in the DLQ: prodigyctl dlq ls s")
    retry = render.human({**done, "total": 1, "successful": 0, "failed": 1, "dlq_job": "orig"})
    assert "(total: 1); failed items are in the DLQ: prodigyctl dlq ls orig" in retry


def test_a_session_that_failed_before_it_had_a_worktree_names_none():
    render = Renderer(as_json=False, live=False)
    finished = {"event_type": "session_finished", "session_id": "s", "status": "failed"}
    line = render.human({**finished, "error": "wf.yml: workflow file not found"})
    assert (
        line
        == "session s failed: wf.yml: workflow file not found\nResume with: prodigyctl resume s"
    )
    kept = render.human({**finished, "error": "boom", "worktree": "/w"})
    assert kept.endswith("Resume with: prodigyctl resume s   (worktree kept: /w)")


def test_a_cancelled_session_says_so_once():
    render = Renderer(as_json=False, live=False)
    finished = {"event_type": "session_finished", "session_id": "s", "status": "cancelled"}
    assert render.human({**finished, "error": "cancelled"}) == "session s cancelled"
    assert render.human({**finished, "error": None}) == "session s cancelled"  # not running
    why = "not run: its workflow wf.yml was gone when it was to start"  # prodigy's own reason
    assert render.human({**finished, "error": why}) == f"session s cancelled: {why}"


def test_counts_agree_with_their_nouns():
    from prodigyctl.render import counted

    assert [counted(n, "entry", "entries") for n in (0, 1, 2)] == [
        "0 entries",
        "1 entry",
        "2 entries",
    ]
    started = {"event_type": "map_phase_started", "session_id": "s", "total_items": 1}
    line = Renderer(as_json=False, live=False).human({**started, "pending": 1, "max_parallel": 1})
    assert line == "Processing 1 item with 1 parallel agent"


def test_output_cut_from_the_live_view_says_where_and_what_keeps_it():
    render = Renderer(as_json=False, live=False)
    cut = {"event_type": "step_output_truncated", "session_id": "s", "step": "1"}
    assert render.human({**cut, "stream": "stdout", "after": 2000}) == (
        "  │ … stdout past 2000 lines is not shown live (the step's output_file: keeps all of it)"
    )
