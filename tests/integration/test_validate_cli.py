"""`prodigyctl validate`: the daemon's loader run by the client, no daemon needed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli import ctl
from tests.hostile import billion_laughs


def test_valid_and_broken_files_with_the_original_lines_and_exit_status(tmp_path: Path):
    good = tmp_path / "good.yml"
    good.write_text("name: good\ncommands:\n  - shell: make\n    timout: 5\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("commands:\n  - shell: make\n    timeout: forever\n")
    done = ctl("validate", str(good), str(bad), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == f"✓ Workflow is valid: {good}"
    assert "did you mean 'timeout'?" in lines[1]
    assert f"✗ Workflow has issues: {bad}" in lines
    assert f"{bad}:3:" in done.stdout and "timeout" in done.stdout
    assert not (tmp_path / "prodigy-home" / "prodigyd.sock").exists()  # no daemon started


def test_strict_turns_unknown_keys_into_issues(tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("commands:\n  - shell: make\n    timout: 5\n")
    assert ctl("validate", str(wf)).returncode == 0
    strict = ctl("validate", "--strict", str(wf))
    assert strict.returncode == 1 and "✗ Workflow has issues" in strict.stdout


def test_json_reports_each_file(tmp_path: Path):
    wf = tmp_path / "mr.yml"
    wf.write_text(
        "mode: mapreduce\non: push\nmap:\n  input: items.json\n"
        "  agent_template: [{shell: 'true'}, {claude: '/fix ${item}'}]\n"
    )
    missing = tmp_path / "missing.yml"
    done = ctl("validate", "--json", str(wf), str(missing))
    assert done.returncode == 1
    ok, gone = json.loads(done.stdout)
    assert ok == {
        "path": str(wf),
        "valid": True,
        "warnings": [],
        "name": "default",
        "mode": "mapreduce",
        "steps": 2,
        "on": ["push"],
        "parameters": {},
        "includes": [],
        "problems": [],
    }
    assert gone["valid"] is False and gone["error"]["kind"] == "workflow"
    assert str(missing) in gone["message"]


def test_a_billion_laughs_file_is_an_issue_with_its_line_not_a_hang(tmp_path: Path):
    wf = tmp_path / "laughs.yml"
    wf.write_text(billion_laughs())
    done = ctl("validate", str(wf), timeout=60)
    assert done.returncode == 1
    assert f"✗ Workflow has issues: {wf}" in done.stdout
    assert f"{wf}:6:10: aliases expand to more than 100,000 nodes" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_deep_nesting_is_an_issue_not_a_crash(tmp_path: Path):
    wf = tmp_path / "deep.yml"
    wf.write_text("commands:\n  - shell: x\n    env: " + "[" * 1000 + "]" * 1000 + "\n")
    done = ctl("validate", "--json", str(wf))
    assert done.returncode == 1
    [result] = json.loads(done.stdout)
    assert result["error"]["message"] == "nested more than 100 levels deep"
    assert result["error"]["location"]["line"] == 3


def test_a_bad_json_path_has_its_caret_under_the_offending_character(tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text(
        'mode: mapreduce\nmap:\n  input: items.json\n  json_path: "$.items[?(@.x == ]"\n'
        "  agent_template:\n    - shell: 'echo ${item}'\n"
    )
    done = ctl("validate", str(wf))
    assert done.returncode == 1  # validate: the workflow has issues
    lines = (done.stdout + done.stderr).splitlines()
    caret = next(i for i, line in enumerate(lines) if line.strip() == "^")
    path_line, caret_line = lines[caret - 1], lines[caret]
    assert path_line[caret_line.index("^")] == "?"  # offset 8: the unclosed filter


def test_the_three_reported_mistakes_are_named_where_they_are(tmp_path: Path):
    """A misspelt `comands:` (the cause of "no steps"), a map field's bad value (at its
    own line, not map:'s) and a name no trigger sets (a warning: a run by hand has none)."""
    misspelt = tmp_path / "misspelt.yml"
    misspelt.write_text('name: x\ncomands:\n  - shell: "echo hi"\n')
    parallel = tmp_path / "parallel.yml"
    parallel.write_text(
        "mode: mapreduce\nmap:\n  input: items.json\n  max_parallel: -1\n"
        "  agent_template:\n    - shell: 'echo ${item}'\n"
    )
    trigger = tmp_path / "trigger.yml"
    trigger.write_text("on: commit\ncommands:\n  - shell: 'echo ${trigger.commit} > out'\n")
    done = ctl("validate", "--json", str(misspelt), str(parallel), str(trigger))
    assert done.returncode == 1
    no_steps, bad_value, warned = json.loads(done.stdout)
    assert no_steps["message"].startswith(
        f"{misspelt}:2:1 (comands): the workflow has no steps: unknown key 'comands'; "
        "did you mean 'commands'?"
    )
    assert bad_value["message"] == f"{parallel}:4:3 (map.max_parallel): must be at least 1, got -1"
    assert warned["valid"] is True
    [warning] = warned["warnings"]
    assert warning.startswith(f"{trigger}:3:18: ${{trigger.commit}} is not a trigger variable")
    assert warning.endswith("did you mean ${trigger.after}?")


def test_json_lists_every_problem_with_its_place(tmp_path: Path):
    """Not the first one structured and the rest as text: a script reads each of them."""
    wf = tmp_path / "wf.yml"
    wf.write_text("commands:\n  - shell: make\n    timout: 5\n  - shell: test\n    retries: 2\n")
    done = ctl("validate", "--strict", "--json", str(wf))
    assert done.returncode == 1
    [result] = json.loads(done.stdout)
    assert result["problems"] == [
        {
            "file": str(wf),
            "line": 3,
            "column": 5,
            "field": "commands[0].timout",
            "message": "unknown key 'timout' in step 1; did you mean 'timeout'?",
            "code": "E1002",
            "hint": "remove it or fix its spelling (without --strict it is only a warning)",
        },
        {
            "file": str(wf),
            "line": 5,
            "column": 5,
            "field": "commands[1].retries",
            "message": "unknown key 'retries' in step 2; did you mean 'retry'?",
            "code": "E1002",
            "hint": "remove it or fix its spelling (without --strict it is only a warning)",
        },
    ]
    assert result["error"]["message"] == result["problems"][0]["message"]  # kept as it was


def test_strict_variables_make_a_name_nothing_defines_an_issue(tmp_path: Path):
    """The run would stop at that step after making its session and worktree: validate
    says so first, with the line; `--strict` does the same for any workflow."""
    wf = tmp_path / "wf.yml"
    wf.write_text("strict_variables: true\ncommands:\n  - shell: 'echo ${undefined_var}'\n")
    done = ctl("validate", str(wf))
    assert done.returncode == 1
    assert done.stdout.splitlines()[:2] == [
        f"✗ Workflow has issues: {wf}",
        f"  error[E1005]: {wf}:3:18: ${{undefined_var}} is not defined by the workflow (env, "
        "parameters, captures) nor built in",
    ]
    loose = tmp_path / "loose.yml"
    loose.write_text(wf.read_text().replace("strict_variables: true", "name: loose"))
    assert ctl("validate", str(loose)).returncode == 0
    assert ctl("validate", "--strict", str(loose)).returncode == 1
    assert ctl("validate", str(wf), env={**os.environ, "undefined_var": "x"}).returncode == 0


def test_strict_names_unknown_keys_and_undefined_variables_together(tmp_path: Path):
    """A strict load stops at an unknown key, before variables are looked at: the names
    nothing defines are listed with it, so one pass shows everything to fix."""
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo ${nope}'\n  timout: 5\n- shell: 'echo ${other}'\n")
    done = ctl("validate", "--strict", "--json", str(wf))
    assert done.returncode == 1
    [result] = json.loads(done.stdout)
    found = [(p["line"], p["code"]) for p in result["problems"]]
    assert found == [(1, "E1005"), (2, "E1002"), (3, "E1005")]
    assert "did you mean 'timeout'?" in result["problems"][1]["message"]
    keys_only = tmp_path / "keys.yml"  # with nothing undefined, the unknown key alone
    keys_only.write_text("- shell: make\n  timout: 5\n")
    [alone] = json.loads(ctl("validate", "--strict", "--json", str(keys_only)).stdout)
    assert [p["code"] for p in alone["problems"]] == ["E1002"]
    broken = tmp_path / "broken.yml"  # another problem: as the strict load said it
    broken.write_text("- shell: 'echo ${nope}'\n  timeout: forever\n")
    [other] = json.loads(ctl("validate", "--strict", "--json", str(broken)).stdout)
    assert [p["code"] for p in other["problems"]] == ["E1003"]
