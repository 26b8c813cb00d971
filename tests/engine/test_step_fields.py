"""Every step field is honoured (the original dropped most of them): one test per field."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from prodigyd.errors import WorkflowError
from tests.enginekit import run_workflow, write_workflow
from tests.gitutil import git


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


async def test_validate_loops_on_incomplete_until_the_threshold_is_met(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "echo 40 > score"
  validate:
    shell: 'echo "{\\"completion_percentage\\": $(cat score), \\"missing\\": [\\"tests\\"]}"'
    threshold: 80
    on_incomplete:
      shell: "echo '${validation.completion} ${validation.missing} ${validation.attempt_number}' >> attempts.log; echo 90 > score"
      max_attempts: 3
- shell: "cp attempts.log done.log"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (repo / "done.log").read_text() == "40.0 tests 1\n"
    verdicts = [e["passed"] for e in out.sink.of("validation")]
    assert verdicts == [False, True]


async def test_validate_still_incomplete_fails_the_workflow(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "true"
  validate:
    shell: 'echo "{\\"completion_percentage\\": 50}"'
    threshold: 75
    on_incomplete:
      shell: "true"
      max_attempts: 2
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "Validation incomplete: 50.0% complete (threshold: 75.0%)" in out.record.error
    assert len(out.sink.of("validation")) == 3


async def test_allow_failure_goes_on_past_an_incomplete_validation(tmp_path: Path, repo: Path):
    """`allow_failure` (`continue_on_error`) covers a step whose validation stays
    incomplete, as it covers its command failing: the next step runs."""
    for key in ("allow_failure", "continue_on_error"):
        wf = write_workflow(
            tmp_path,
            f"""
- shell: "echo hi"
  validate:
    shell: 'echo "{{\\"completion_percentage\\": 40}}"'
    threshold: 90
  {key}: true
- shell: "echo reached > reached.txt"
""",
        )
        out = await run_workflow(wf, repo)
        assert out.status == "completed", (key, out.record.error)
        assert (repo / "reached.txt").read_text() == "reached\n"
        git(repo, "reset", "-q", "--hard", "HEAD~1")


async def test_allow_failure_says_whether_the_step_failed_or_timed_out(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "exit 3"
  allow_failure: true
- shell: "sleep 30"
  timeout: 0.3
  allow_failure: true
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    notes = [e.get("note") for e in out.sink.of("step_completed")]
    assert notes == ["failed; allow_failure: true", "timed out; allow_failure: true"]


async def test_validate_reads_result_file(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "true"
  validate:
    shell: "mkdir -p .prodigy && echo '{\\"completion_percentage\\": 100, \\"status\\": \\"complete\\"}' > .prodigy/v.json"
    result_file: ".prodigy/v.json"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error


async def test_retry_reruns_until_success(tmp_path: Path, repo: Path):
    counter = tmp_path / "count"
    wf = write_workflow(
        tmp_path,
        f"""
- shell: "echo x >> {counter}; test $(wc -l < {counter}) -ge 3"
  retry:
    attempts: 3
    backoff: fixed
    initial_delay: 10ms
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert counter.read_text().count("x") == 3
    assert [e["attempt"] for e in out.sink.of("step_retrying")] == [2, 3]


async def test_retry_budget_stops_retrying_before_overrunning(tmp_path: Path, repo: Path):
    counter = tmp_path / "count"
    wf = write_workflow(
        tmp_path,
        f"""
- shell: "echo x >> {counter}; exit 1"
  retry:
    attempts: 10
    backoff: fixed
    initial_delay: 300ms
    retry_budget: 700ms
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert counter.read_text().count("x") == 3  # 0 s, 0.3 s, 0.6 s; a 4th would end at 0.9 s


async def test_retry_on_filters_which_failures_retry(tmp_path: Path, repo: Path):
    counter = tmp_path / "count"
    wf = write_workflow(
        tmp_path,
        f"""
- shell: "echo x >> {counter}; echo 'disk full' >&2; exit 1"
  retry:
    attempts: 5
    initial_delay: 0
    retry_on: [network]
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert counter.read_text().count("x") == 1


async def test_retry_exhausted_fallback(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "exit 1"
  retry:
    attempts: 2
    initial_delay: 0
    on_failure:
      fallback:
        command: "echo fell-back > fallback.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (repo / "fallback.txt").read_text() == "fell-back\n"


async def test_on_success_and_on_exit_code(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "echo ok"
  on_success:
    shell: "echo '${shell.output}' > success.txt"
- shell: "exit 3"
  allow_failure: true
  on_exit_code:
    3:
      shell: "echo three > three.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (repo / "success.txt").read_text() == "ok\n"
    assert (repo / "three.txt").read_text() == "three\n"


async def test_capture_streams_output_file_and_capture_output(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "echo out; echo err >&2; exit 0"
  capture: both
  capture_streams: both
  output_file: logs/out.txt
- shell: "echo '${both.stderr}|${both.exit_code}|${both.success}' > streams.txt"
- shell: "echo custom"
  capture_output: mine
- shell: "echo '${mine}/${CAPTURED_OUTPUT}' > custom.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (repo / "logs" / "out.txt").read_text() == "out\n"
    assert (repo / "streams.txt").read_text() == "err|0|true\n"
    assert (repo / "custom.txt").read_text() == "custom/custom\n"


async def test_capture_output_named_is_capture_with_its_format_and_fields(
    tmp_path: Path, repo: Path
):
    """`capture_output: NAME`, the original's book's spelling (custom-variable-capture.md),
    is `capture: NAME`: parsed by `capture_format`, with `.success`, `.exit_code`, ..."""
    wf = write_workflow(
        tmp_path,
        """
- shell: "echo hi"
  capture_output: build
- shell: 'echo ''{"packages": [{"name": "pkg"}]}'''
  capture_output: metadata
  capture_format: json
- shell: "echo ${build.success} ${build.exit_code} ${metadata.packages[0].name} > fields.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (repo / "fields.txt").read_text() == "true 0 pkg\n"


async def test_capture_json_that_is_not_json_fails_the_step(tmp_path: Path, repo: Path):
    wf = write_workflow(tmp_path, "- shell: 'echo nope'\n  capture: data\n  capture_format: json\n")
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "capture data" in out.record.error and "JSON" in out.record.error
    assert out.record.error.endswith("(first 200 chars shown): nope"), out.record.error


async def test_git_context_variables_with_modifiers(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "mkdir -p docs && echo a > docs/a.md && echo b > b.txt && git add -A && git commit -qm add"
- shell: "echo '${step.files_added}|${step.files_added:*.md}|${step.files_added:json}|${step.commit_count}' > vars.txt"
- shell: "git rm -q b.txt && git commit -qm rm"
- shell: "echo '${step.files_deleted}|${workflow.files_added:csv}|${workflow.commit_count}' > vars2.txt"
- shell: "echo yes > md.txt"
  when: "${workflow.files_added:*.md}"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (repo / "vars.txt").read_text() == 'b.txt docs/a.md|docs/a.md|["b.txt","docs/a.md"]|1\n'
    assert (repo / "vars2.txt").read_text() == "b.txt|docs/a.md|2\n"
    assert (repo / "md.txt").exists()


async def test_env_files_secret_providers_and_precedence(tmp_path: Path, repo: Path):
    (repo / ".env").write_text("# comment\nexport FROM_FILE=file\nOVERRIDDEN='file'\n")
    wf = write_workflow(
        tmp_path,
        """
env_files: [.env]
env:
  OVERRIDDEN: global
secrets:
  TOKEN: {provider: env, key: MY_SECRET_SOURCE}
commands:
  - shell: "echo $FROM_FILE $OVERRIDDEN $INHERITED > env.txt; echo $TOKEN"
""",
    )
    env = env_with(MY_SECRET_SOURCE="s3cr3t-value-42", INHERITED="inh")
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "completed", out.record.error
    assert (repo / "env.txt").read_text() == "file global inh\n"
    assert "s3cr3t-value-42" not in json.dumps(out.sink.events)


async def test_a_shell_script_holding_a_secret_keeps_it_out_of_its_command_line(
    tmp_path: Path, repo: Path
):
    """A process's command line is readable by any user of the machine (`ps`,
    /proc/PID/cmdline): a script holding a secret after interpolation is handed to the
    shell in its environment instead, and runs the same, single quotes and all."""
    wf = write_workflow(
        tmp_path,
        """
secrets:
  TOKEN: {provider: env, key: MY_SECRET_SOURCE}
commands:
  - shell: "tr '\\\\0' ' ' < /proc/$$/cmdline > cmdline.txt; echo '$TOKEN' ${TOKEN} | base64 > value.txt"
  - shell: "tr '\\\\0' ' ' < /proc/$$/cmdline > plain.txt"
  - foreach:
      foreach: "tr '\\\\0' ' ' < /proc/$$/cmdline | base64 -w0; echo; true ${TOKEN}"
      do:
        - shell: "echo ${item} | base64 -d > foreach-input.txt"
""",
    )
    out = await run_workflow(wf, repo, env=env_with(MY_SECRET_SOURCE="s3cr3t-value-42"))
    assert out.status == "completed", out.record.error
    assert "s3cr3t-value-42" not in (repo / "cmdline.txt").read_text()
    assert "s3cr3t-value-42" not in (repo / "foreach-input.txt").read_text()
    assert "eval" in (repo / "foreach-input.txt").read_text()  # a foreach's input command too
    value = base64.b64decode((repo / "value.txt").read_text())
    assert value == b"s3cr3t-value-42 s3cr3t-value-42\n"
    assert "plain.txt" in (repo / "plain.txt").read_text()  # no secret: `sh -c SCRIPT`


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "declared", ["env_files: [.env]\n", "secrets:\n  TOKEN: {provider: file, key: .env}\n"]
)
async def test_an_env_or_secret_file_that_is_a_fifo_is_refused_not_waited_on(
    tmp_path: Path, repo: Path, declared: str
):
    """The daemon reads these on its event loop: a FIFO would wait for a writer forever."""
    os.mkfifo(repo / ".env")
    wf = write_workflow(tmp_path, declared + "commands:\n  - shell: 'true'\n")
    with pytest.raises(WorkflowError) as err:
        await run_workflow(wf, repo)
    assert "not a regular file" in err.value.message and ".env" in err.value.message


async def test_missing_env_secret_is_refused_before_the_job_starts(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        "secrets:\n  TOKEN: {provider: env, key: NOT_SET_ANYWHERE}\ncommands:\n  - shell: 'true'\n",
    )
    with pytest.raises(WorkflowError) as err:
        await run_workflow(
            wf, repo, env={k: v for k, v in os.environ.items() if k != "NOT_SET_ANYWHERE"}
        )
    assert "NOT_SET_ANYWHERE" in err.value.message
    assert not (Path(os.environ["PRODIGY_HOME"]) / "worktrees").exists()  # nothing was created


@pytest.mark.parametrize(
    ("declared", "profile", "field"),
    [
        ("secrets:\n  TOKEN: {value: 'k9'}\n", None, "(secrets.TOKEN)"),
        ("env:\n  TOKEN: {secret: true, value: '${ARG_1}'}\n", None, "(env.TOKEN)"),
        (
            "profiles:\n  dev:\n    TOKEN: {secret: true, value: '${ARG_1}'}\n",
            "dev",
            "(profiles.dev.TOKEN)",
        ),
    ],
)
async def test_a_secret_too_short_to_mask_is_refused_naming_its_field(
    tmp_path: Path, repo: Path, declared: str, profile: str | None, field: str
):
    wf = write_workflow(tmp_path, declared + "commands:\n  - shell: 'echo ${TOKEN}'\n")
    with pytest.raises(WorkflowError) as err:
        await run_workflow(wf, repo, args=("k9",), profile=profile)
    shown = err.value.render()
    assert shown.startswith(f"{wf} {field}: secret TOKEN is only 2 character(s) long")
    assert "k9" not in shown
    assert not (Path(os.environ["PRODIGY_HOME"]) / "worktrees").exists()  # nothing was created


async def test_strict_variables_reject_unresolved_references(tmp_path: Path, repo: Path):
    """Names nothing can define are refused with the submission, before any session; one
    the loader cannot judge (a capture's field) fails the step that reads it unresolved."""
    wf = write_workflow(
        tmp_path, "strict_variables: true\ncommands:\n  - shell: 'echo ${nope} ${also_nope}'\n"
    )
    with pytest.raises(WorkflowError) as err:
        await run_workflow(wf, repo)
    assert "${nope}" in err.value.render() and "${also_nope}" in err.value.render()
    wf = write_workflow(
        tmp_path,
        "strict_variables: true\ncommands:\n  - shell: 'echo {}'\n    capture: data\n"
        "    capture_format: json\n  - shell: 'echo ${data.missing}'\n",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "${data.missing}" in out.record.error


async def test_unknown_keys_and_deprecated_test_are_warnings(tmp_path: Path, repo: Path):
    wf = write_workflow(tmp_path, "- shell: 'true'\n  timout: 5\n- test: {command: 'true'}\n")
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    text = "\n".join(out.record.warnings)
    assert "timout" in text and "did you mean 'timeout'" in text
    assert "deprecated" in text


async def test_legacy_id_and_outputs(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "echo plan > 12-coverage.md && git add -A && git commit -qm spec"
  id: coverage
  outputs:
    spec:
      file_pattern: "*-coverage.md"
- shell: "echo '${coverage.spec} ${coverage.exit_code}' > ref.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (repo / "ref.txt").read_text() == "12-coverage.md 0\n"


async def test_session_totals_claude_cost_and_tokens(tmp_path: Path, repo: Path):
    scenario = tmp_path / "s.json"
    scenario.write_text(
        json.dumps({"rules": [{"cost_usd": 0.5, "input_tokens": 10, "output_tokens": 4}]})
    )
    wf = write_workflow(tmp_path, "- claude: /one\n- claude: /two\n")
    out = await run_workflow(wf, repo, env=env_with(FAKE_CLAUDE_SCENARIO=str(scenario)))
    assert out.status == "completed", out.record.error
    assert out.record.cost_usd == 1.0
    assert (out.record.input_tokens, out.record.output_tokens) == (20, 8)


async def test_a_prompt_holding_a_secret_or_past_the_argument_limit_reaches_claude_whole(
    tmp_path: Path, repo: Path
):
    log = tmp_path / "calls.jsonl"
    big = "x" * 300_000  # past Linux's 128 KiB for one argument (E2BIG)
    wf = write_workflow(
        tmp_path,
        "env:\n  TOKEN: {secret: true, value: tok-5e1f0a9b}\n"
        f"commands:\n  - claude: '/deploy ${{TOKEN}}'\n  - claude: '/read {big}'\n",
    )
    out = await run_workflow(wf, repo, env=env_with(FAKE_CLAUDE_LOG=str(log)))
    assert out.status == "completed", out.record.error
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [call["prompt"] for call in calls] == ["/deploy tok-5e1f0a9b", f"/read {big}"]
    assert not any("tok-5e1f0a9b" in arg for call in calls for arg in call["argv"])


async def test_claude_gets_headless_flags_and_its_prompt_on_a_pipe(tmp_path: Path, repo: Path):
    log = tmp_path / "calls.jsonl"
    wf = write_workflow(tmp_path, "- claude: '/lint --focus perf'\n  timeout: 30\n")
    out = await run_workflow(wf, repo, env=env_with(FAKE_CLAUDE_LOG=str(log)))
    assert out.status == "completed", out.record.error
    call = [json.loads(line) for line in log.read_text().splitlines()][-1]
    assert call["prompt"] == "/lint --focus perf"
    assert call["argv"][:4] == ["-p", "--output-format", "stream-json", "--verbose"]
    assert "--dangerously-skip-permissions" in call["argv"]
    assert call["env"]["PRODIGY_AUTOMATION"] == "true"
    assert call["env"]["PRODIGY_COMMAND_TIMEOUT"] == "30"
    assert call["stdin_isatty"] is False and call["stdin_data"] == "/lint --focus perf"
    assert "/lint --focus perf" not in call["argv"]  # where `ps` would show it
    assert Path(call["cwd"]).resolve() == Path(out.record.worktree).resolve()
    raw_logs = list((Path(os.environ["PRODIGY_HOME"]) / "logs" / "claude").glob("*.jsonl"))
    assert raw_logs and '"type":"result"' in raw_logs[0].read_text().replace(" ", "")
    git(repo, "log", "-1")  # the repo is intact


async def test_each_claude_attempt_keeps_its_own_raw_log(tmp_path: Path, repo: Path):
    """Three attempts inside a second: three logs (a one-second name kept only the last)."""
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"rules": [{"match": "/flaky", "exit_code": 1}]}))
    wf = write_workflow(
        tmp_path, "- claude: /flaky\n  retry: {attempts: 3, backoff: fixed, initial_delay: 0}\n"
    )
    out = await run_workflow(wf, repo, env=env_with(FAKE_CLAUDE_SCENARIO=str(scenario)))
    assert out.status == "failed"
    raw_logs = list((Path(os.environ["PRODIGY_HOME"]) / "logs" / "claude").glob("*.jsonl"))
    assert len(raw_logs) == 3
    assert {p.stat().st_mode & 0o777 for p in raw_logs} == {0o600}


async def test_live_output_is_capped_but_the_output_is_whole(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        "- shell: 'seq 1 5000'\n  output_file: seq.txt\n  capture: numbers\n  capture_format: lines\n- shell: \"echo '${numbers:json}' | tr ',' '\\n' | wc -l > count.txt\"\n",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    live = [e for e in out.sink.of("step_output") if e["step"] == "1"]
    assert len(live) == 2000
    assert out.sink.of("step_output_truncated")[0]["after"] == 2000
    assert (repo / "seq.txt").read_text().splitlines()[-1] == "5000"
    assert (repo / "count.txt").read_text().strip() == "5000"


async def test_foreach_runs_each_item_in_the_worktree_and_counts(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "printf 'a.txt\\nb.txt\\n\\nc.txt\\n' > list"
- foreach:
    foreach: "cat list"
    parallel: 2
    do:
      - shell: "echo ${item} ${index}/${total} > done-${item}"
      - claude: "/touch ${item}"
- foreach:
    foreach: ["x", "y", "z"]
    max_items: 2
    do:
      - shell: "echo ${item} >> listed.txt"
  capture: summary
- shell: "echo '${summary}' > summary.txt"
""",
    )
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "match": "/touch (.*)",
                        "actions": [{"append": "claude-{1}", "content": "seen\n"}],
                    }
                ]
            }
        )
    )
    log = tmp_path / "calls.jsonl"
    out = await run_workflow(
        wf, repo, env=env_with(FAKE_CLAUDE_SCENARIO=str(scenario), FAKE_CLAUDE_LOG=str(log))
    )
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:done-b.txt") == "b.txt 1/3\n"
    assert {"done-a.txt", "done-c.txt", "claude-a.txt", "claude-c.txt"} <= set(
        git(repo, "ls-tree", "--name-only", "main").split()
    )
    assert git(repo, "show", "main:listed.txt") == "x\ny\n"
    assert (
        git(repo, "show", "main:summary.txt")
        == "Foreach completed: 2 total, 2 successful, 0 failed\n"
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(
        "--output-format" in c["argv"] and Path(c["cwd"]).name.startswith("wt-") for c in calls
    )


FOREACH_OVER_VARIABLES = """
env:
  LIST_COMMAND: "seq 2"
commands:
- shell: "printf 'DOCS.md\\nREADME.md\\n'"
  capture: files
  capture_format: lines
- foreach:
    foreach: "${files}"
    do:
      - shell: "echo ${index}/${total} > seen-${item}"
- shell: |
    echo '[{"name": "a b"}, {"name": "c"}]'
  capture: found
  capture_format: json
- foreach:
    foreach: "${found}"
    do:
      - shell: "echo ${item.name} > 'object-${item.name}'"
- shell: "printf 'x\\ny\\n'"
  capture: text
- foreach:
    foreach: " ${text} "
    do:
      - shell: "touch text-${item}"
- foreach:
    foreach: "${LIST_COMMAND}"
    do:
      - shell: "touch command-${item}"
"""


async def test_foreach_over_a_captured_list_runs_once_per_element(tmp_path: Path, repo: Path):
    """A lines or json capture is iterated, a string capture by its lines; an environment
    variable is the shell's, so the input stays a command (as the original's)."""
    wf = write_workflow(tmp_path, FOREACH_OVER_VARIABLES)
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    files = set(git(repo, "ls-tree", "--name-only", "main").splitlines())
    assert {"seen-DOCS.md", "seen-README.md", "object-a b", "object-c"} <= files
    assert {"text-x", "text-y", "command-1", "command-2"} <= files
    assert git(repo, "show", "main:seen-README.md") == "1/2\n"
    assert git(repo, "show", "main:object-a b") == "a b\n"


async def test_foreach_stops_at_the_first_failure_unless_told_to_continue(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(
        tmp_path,
        """
- foreach:
    foreach: ["1", "2", "3"]
    do:
      - shell: "echo ${item} >> ran.txt; test ${item} != 2"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "Foreach completed: 3 total, 1 successful, 1 failed, 1 not run" in out.record.error
    wf = write_workflow(
        tmp_path,
        """
- foreach:
    foreach: ["1", "2", "3"]
    continue_on_error: true
    do:
      - shell: "echo ${item} >> ran.txt; test ${item} != 2"
  allow_failure: true
- shell: "cat ran.txt"
""",
        name="continue.yml",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:ran.txt") == "1\n2\n3\n"
