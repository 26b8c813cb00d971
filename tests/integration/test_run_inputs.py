"""`prodigyctl run -n N`, `--map PATTERN`, `--each-arg`, `--fail-fast` end to end: the real
client and daemon; what lands on the branch, exit codes, messages and `--json` events."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import ctl, json_lines
from tests.gitutil import git

#: Appends one line per run to log.txt and commits it: the branch shows every run in order.
LOGGING = """
- shell: "echo \\"$ITERATION ${ARG:-none} ${FILE:-nofile} ${INDEX:-0}/${TOTAL:-0} $PRODIGY_ARG\\" >> log.txt"
- shell: "git add log.txt && git commit -qm \\"run ${ITERATION}\\""
"""


def commit_files(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "inputs")


def test_max_iterations_repeats_the_steps_and_shows_each_iteration(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(
        "- shell: 'echo \"iteration ${ITERATION}\" >> log.txt'\n"
        "- shell: 'git add log.txt && git commit -qm it${ITERATION}'\n"
    )
    done = ctl("run", str(wf), "-y", "-n", "3", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:log.txt") == "iteration 1\niteration 2\niteration 3\n"
    for number in (1, 2, 3):
        assert f"── iteration {number}/3" in done.stdout
    row = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
    assert row["steps"] == "6/6"


def test_map_runs_once_per_committed_file_with_its_variables(
    daemon: Path, repo: Path, tmp_path: Path
):
    commit_files(repo, {"specs/a.md": "a", "specs/b.md": "b", "specs/c.txt": "c"})
    (repo / "specs" / "untracked.md").write_text("not committed: not an input")
    wf = tmp_path / "wf.yml"
    wf.write_text(LOGGING)
    done = ctl("run", str(wf), "-y", "--map", "specs/*.md", "--json", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:log.txt").splitlines() == [
        "1 specs/a.md specs/a.md 1/2 specs/a.md",
        "1 specs/b.md specs/b.md 2/2 specs/b.md",
    ]
    runs = [e for e in json_lines(done.stdout) if e["event_type"] == "run_started"]
    assert [(e["input"], e["index"], e["total"]) for e in runs] == [
        ("specs/a.md", 1, 2),
        ("specs/b.md", 2, 2),
    ]


def test_args_and_map_inputs_together_and_iterations_per_input(
    daemon: Path, repo: Path, tmp_path: Path
):
    commit_files(repo, {"docs/x.spec": "x"})
    wf = tmp_path / "wf.yml"
    wf.write_text(LOGGING)
    done = ctl(
        "run", str(wf), "-y", "--each-arg", "--args", "first", "--map", "*.spec", "-n", "2",
        cwd=repo,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:log.txt").splitlines() == [
        "1 first nofile 1/2 first",
        "2 first nofile 1/2 first",
        "1 docs/x.spec docs/x.spec 2/2 docs/x.spec",
        "2 docs/x.spec docs/x.spec 2/2 docs/x.spec",
    ]
    assert "── input 2/2 (docs/x.spec), iteration 2/2" in done.stdout


FAILS_ON_B = """
- shell: "test \\"$ARG\\" != b || { echo 'b is broken' >&2; exit 3; }"
- shell: "echo $ARG >> log.txt && git add log.txt && git commit -qm $ARG"
"""


def test_without_fail_fast_every_input_runs_and_the_exit_code_says_one_failed(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(FAILS_ON_B)
    args = ["--args", "a", "--args", "b", "--args", "c"]
    done = ctl("run", str(wf), "-y", "--each-arg", *args, cwd=repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "input 2/3 (b) failed" in done.stdout + done.stderr
    assert "── input 3/3 (c)" in done.stdout  # went on after b
    row = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
    assert row["status"] == "failed"
    log = git(repo, "show", f"prodigy-{row['id']}:log.txt").splitlines()
    assert log == ["a", "c"]


def test_fail_fast_stops_at_the_first_failing_input_and_resume_goes_on(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(FAILS_ON_B)
    args = ["--args", "a", "--args", "b", "--args", "c"]
    done = ctl("run", str(wf), "-y", "--each-arg", *args, "--fail-fast", cwd=repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "── input 3/3" not in done.stdout
    row = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
    assert git(repo, "show", f"prodigy-{row['id']}:log.txt").splitlines() == ["a"]
    [checkpointed] = json.loads(ctl("checkpoints", "ls", "--json", check=True).stdout)
    assert checkpointed["phases"] == ["main", "run2"]  # a run per input; c never started
    wf.write_text(FAILS_ON_B.replace("!= b", "!= nothing"))  # b is fixed
    again = ctl("resume", row["id"], "-y", "--force", cwd=repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert git(repo, "show", "main:log.txt").splitlines() == ["a", "b", "c"]  # a ran once


def test_no_inputs_and_wrong_combinations_are_clear_errors(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(LOGGING)
    none = ctl("run", str(wf), "-y", "--map", "nothing/*.rs", cwd=repo)
    assert none.returncode == 3
    assert "No inputs found from --map patterns or --args" in none.stderr
    alone = ctl("run", str(wf), "-y", "--fail-fast", cwd=repo)
    assert alone.returncode == 2 and "--fail-fast applies to a run over inputs" in alone.stderr
    mapreduce = tmp_path / "map.yml"
    mapreduce.write_text(
        "mode: mapreduce\nmap:\n  input: items.json\n  agent_template:\n    - shell: 'true'\n"
    )
    refused = ctl("run", str(mapreduce), "-y", "-n", "2", cwd=repo)
    assert refused.returncode == 2
    assert "apply to a standard workflow" in refused.stderr and "map.yml" in refused.stderr
    assert ctl("sessions", "ls", "--json", check=True).stdout.strip() == "[]"


def test_resume_from_a_step_is_refused_for_a_session_that_runs_its_steps_more_than_once(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'exit 3'\n")
    failed = ctl("run", str(wf), "-y", "-n", "2", "--json", cwd=repo)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    session = json_lines(failed.stdout)[-1]["session_id"]
    refused = ctl("resume", session, "--from", "1", "-y", cwd=repo)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "runs its steps 2 times" in refused.stderr
    row = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
    assert row["status"] == "failed"  # left as it was
