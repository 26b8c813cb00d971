"""The workflow environment end to end (issue 12, "Environment"; "Retry and validation
gaps"): each value form, precedence, `inherit: false`, temporary step environments and
masked secrets, seen by real steps run by the real daemon; and `retry_defaults` and a
`validate:` with only a `result_file`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli import ctl, json_lines
from tests.gitutil import git

SECRET = "s3cr3t-Zq7vL2mX8pR4tY6wKp3n"

ENVIRONMENT = r"""
inherit: false
env_files: [.env, .env.missing]
env:
  MODE: global
  FROM_FILE_LATER: global
  WORKERS: {command: "echo $((2 + 2))", cache: true}
  STAMP: {command: "cat stamp.txt 2>/dev/null || echo none"}
  DEPLOY: {condition: "${ARG} == 'main'", when_true: production, when_false: staging}
  URL: {default: "http://localhost", prod: "https://example.com"}
  CACHE: ~/cache
  PUBLIC: ${env:PUBLIC_SOURCE}
secrets:
  API_KEY: SECRET_SOURCE
commands:
  - shell: "echo stamped > stamp.txt"
  - shell: >-
      echo "values:$FROM_FILE|$FROM_FILE_LATER|$WORKERS|$STAMP|$DEPLOY|$URL|$CACHE|$PUBLIC"
  - shell: 'echo "unrelated:${UNRELATED_SOURCE:-unset} path:${PATH:+set}"'
  - shell: 'echo "key:$API_KEY"'
  - shell: 'echo "step:$MODE"'
    env: {MODE: step-only}
    temporary: true
  - shell: 'echo "after:$MODE"'
"""


def _run(repo: Path, wf: Path, *extra: str, env: dict[str, str]) -> list[str]:
    done = ctl("run", str(wf), "-y", *extra, cwd=repo, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line.split("│ ", 1)[1] for line in done.stdout.splitlines() if "│ " in line]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def test_every_env_form_reaches_the_steps_with_secrets_masked(
    daemon: Path, repo: Path, tmp_path: Path
):
    (repo / ".env").write_text("FROM_FILE=file\nFROM_FILE_LATER=file\n")
    git(repo, "add", ".env")
    git(repo, "commit", "-qm", "env file")
    wf = tmp_path / "wf.yml"
    wf.write_text(ENVIRONMENT)
    env = _env(PUBLIC_SOURCE="public", SECRET_SOURCE=SECRET, UNRELATED_SOURCE="leaks")
    home = os.environ["HOME"]

    shown = _run(repo, wf, "--args", "main", "--profile", "prod", env=env)

    assert f"values:file|global|4|stamped|production|https://example.com|{home}/cache|public" in (
        shown
    )
    assert "unrelated:unset path:set" in shown  # inherit: false kept PATH, not the rest
    assert "key:***" in shown
    assert shown[-2:] == ["step:step-only", "after:global"]  # the step's env was restored
    session = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
    shown_record = ctl("sessions", "show", session["id"], "--json", check=True).stdout
    assert ".env.missing does not exist; skipped" in shown_record
    events = ctl("events", "export", check=True).stdout
    assert SECRET not in events and "key:***" in events

    again = _run(repo, wf, "--args", "dev", env=env)  # no profile: the defaults
    assert any("|staging|http://localhost|" in line for line in again)


def test_secrets_win_and_bad_env_is_refused_before_the_run(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(
        "secrets:\n  API_KEY: SECRET_SOURCE\n"
        "commands:\n  - shell: 'echo $API_KEY'\n    env: {API_KEY: plain}\n"
    )
    done = ctl("validate", str(wf))
    assert done.returncode == 1
    assert f"{wf}:4:1 (env.API_KEY): API_KEY is also a secret, which replaces" in done.stdout
    wf.write_text("env:\n  URL: {prod: 'https://example.com'}\ncommands:\n  - shell: 'true'\n")
    refused = ctl("run", str(wf), "-y", cwd=repo)
    assert refused.returncode == 2
    assert "env.URL has no value for no profile and no default" in refused.stderr
    # an environment variable the submitting shell lacks (a hook's filtered environment):
    # refused naming it, where the job's shell failed with "Bad substitution"
    wf.write_text(
        "env:\n  TOKEN: '${env:PRODIGY_TEST_UNSET}'\n  LEVEL: '${env:PRODIGY_TEST_UNSET:-2}'\n"
        "commands:\n  - shell: 'echo $TOKEN'\n"
    )
    refused = ctl("run", str(wf), "-y", cwd=repo)
    assert refused.returncode == 2
    assert (
        "env.TOKEN reads ${env:PRODIGY_TEST_UNSET} from the environment, but "
        "PRODIGY_TEST_UNSET is not set"
    ) in refused.stderr
    assert "(env.LEVEL)" not in refused.stderr  # a default is the author's answer
    # ... but a name an env file (or an earlier value) sets is the job's: it is read there
    (repo / ".env").write_text("PRODIGY_TEST_UNSET=from-file\n")
    wf.write_text(
        "env_files: [.env]\nenv:\n  TOKEN: '${env:PRODIGY_TEST_UNSET}/x'\n"
        "commands:\n  - shell: 'echo $TOKEN > token.txt'\n"
    )
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "HEAD:token.txt") == "from-file/x\n"
    # a workflow with nothing to compose, run with a profile it does not have
    wf.write_text("commands:\n  - shell: 'true'\n")
    refused = ctl("run", str(wf), "-y", "--profile", "prod", cwd=repo)
    assert refused.returncode == 2
    assert "unknown profile 'prod' (profiles: none defined)" in refused.stderr


def test_retry_defaults_retry_a_step_without_its_own_retry(
    daemon: Path, repo: Path, tmp_path: Path
):
    marker = tmp_path / "failed-once"
    wf = tmp_path / "wf.yml"
    wf.write_text(
        "retry_defaults: {attempts: 2, backoff: fixed, initial_delay: 0}\n"
        "commands:\n"
        f'  - shell: "test -f {marker} || {{ touch {marker}; echo flaky >&2; exit 1; }}"\n'
    )
    done = ctl("run", str(wf), "-y", "--json", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = [event["event_type"] for event in json_lines(done.stdout)]
    assert kinds.count("step_retrying") == 1
    assert json_lines(done.stdout)[-1]["status"] == "completed"


def test_validate_reads_a_result_file_the_step_wrote(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text(
        '- shell: "mkdir -p .prodigy && echo \'{\\"completion_percentage\\": ${ARG}}\' '
        '> .prodigy/result.json"\n'
        "  validate:\n"
        "    result_file: .prodigy/result.json\n"
        "    threshold: 80\n"
    )
    passed = ctl("run", str(wf), "-y", "--args", "90", cwd=repo)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Validation passed: 90.0% complete (threshold: 80.0%)" in passed.stdout
    failed = ctl("run", str(wf), "-y", "--args", "40", cwd=repo)
    assert failed.returncode == 1
    assert "Validation incomplete: 40.0% complete (threshold: 80.0%)" in failed.stdout


def test_a_printed_score_is_the_completion(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'true'\n  validate:\n    shell: 'echo score: 40'\n")
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 1
    assert "Validation incomplete: 40.0% complete (threshold: 100.0%)" in done.stdout


def test_a_step_header_shows_the_dynamic_value_it_runs_with(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(
        'env:\n  N: {command: "cat n.txt 2>/dev/null || echo 0"}\n'
        "commands:\n  - shell: 'echo one-${N} && echo 1 > n.txt'\n  - shell: 'echo two-${N}'\n"
    )
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[2/2] shell: echo two-1" in done.stdout  # refreshed before the header, not after
    assert "│ two-1" in done.stdout
