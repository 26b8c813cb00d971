"""Composed workflows end to end: the real client, daemon and git. Parameters from the
command line, a template from the registry, `extends:`, a sub-workflow whose output the
workflow uses, and a resume that notices an edited included file."""

from __future__ import annotations

import json
from pathlib import Path

from prodigyctl.exitcodes import EXIT_NOT_FOUND
from prodigyd import errorcodes
from tests.cli import ctl
from tests.gitutil import git


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_run_with_params_typed_and_checked_before_the_job_is_queued(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = write(
        tmp_path / "wf.yml",
        """
parameters:
  target: {type: string, required: true, description: "file to write"}
  count: {type: number, default: 1, validation: "value >= 1"}
  loud: {type: boolean, default: false}
commands:
  - shell: "printf '%s %s %s' '${target}' '${count}' '${loud}' > ${target} && git add -A && git commit -qm p"
""",
    )
    params = write(tmp_path / "params.yml", "target: from-file.txt\ncount: 2\n")
    missing = ctl("run", str(wf), "-y", cwd=repo)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "missing required parameter 'target' (file to write)" in missing.stderr
    assert json.loads(ctl("sessions", "ls", "--json").stdout) == []  # nothing was queued
    bad = ctl("run", str(wf), "-y", "--param", "target=x", "--param", "count=0", cwd=repo)
    assert bad.returncode == 2 and "parameter 'count': 0 fails its validation" in bad.stderr
    typed = ctl("run", str(wf), "-y", "--param", "count=three", "--param", "target=t", cwd=repo)
    assert typed.returncode == 2 and "expected a number, got 'three'" in typed.stderr
    done = ctl("run", str(wf), "-y", "--param-file", str(params), "--param", "loud=yes", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:from-file.txt") == "from-file.txt 2 true"
    over = ctl(
        "run", str(wf), "-y", "--param-file", str(params), "--param", "target=cli.txt", cwd=repo
    )
    assert over.returncode == 0, over.stdout + over.stderr
    assert git(repo, "show", "main:cli.txt") == "cli.txt 2 false"  # the command line wins
    shown = json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]
    record = json.loads(ctl("sessions", "show", shown, "--json").stdout)
    assert record["params"] == {"target": "cli.txt", "count": 2, "loud": False}


def test_a_registered_template_with_extends_runs(daemon: Path, repo: Path, tmp_path: Path):
    template = write(
        tmp_path / "tpl.yml",
        """
description: write a greeting
parameters:
  who: {type: string, required: true}
  file: {type: string, default: greeting.txt}
env: {GREETING: hello}
commands:
  - shell: "echo \\"$GREETING ${who}\\" > ${file} && git add -A && git commit -qm greet"
""",
    )
    registered = ctl(
        "template", "register", str(template), "--name", "greet", "--tags", "demo,text", cwd=repo
    )
    assert registered.returncode == 0, registered.stderr
    listed = json.loads(ctl("template", "list", "--json", cwd=repo).stdout)
    assert [(t["name"], t["scope"], t["tags"]) for t in listed] == [
        ("greet", "home", ["demo", "text"])
    ]
    assert "greet" in ctl("template", "search", "demo", cwd=repo).stdout
    write(
        tmp_path / "base.yml",
        "template: {name: greet, source: greet, with: {who: base}}\nenv: {GREETING: hi}\n",
    )
    wf = write(tmp_path / "wf.yml", "name: child\nextends: base.yml\n")
    done = ctl("run", str(wf), "-y", "--param", "who=world", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:greeting.txt") == "hi world\n"
    init = ctl("template", "init", "greet", "-o", str(tmp_path / "new.yml"), cwd=repo)
    assert init.returncode == 0, init.stderr
    fresh = ctl("run", str(tmp_path / "new.yml"), "-y", cwd=repo)
    assert fresh.returncode == 2 and "missing required parameter 'who'" in fresh.stderr
    gone = ctl("template", "delete", "greet", "--yes", cwd=repo)
    assert gone.returncode == 0
    refused = ctl("run", str(wf), "-y", "--param", "who=x", cwd=repo)
    assert refused.returncode == 2 and "no template named 'greet'" in refused.stderr
    missing = ctl("template", "show", "greet", "--json", cwd=repo)
    assert missing.returncode == EXIT_NOT_FOUND
    assert json.loads(missing.stderr)["error"]["code"] == errorcodes.NOT_FOUND


def test_a_sub_workflow_output_is_used_by_the_workflow(daemon: Path, repo: Path, tmp_path: Path):
    write(
        tmp_path / "subs/build.yml",
        """
parameters:
  flavour: {type: string, required: true}
commands:
  - shell: "echo built-${flavour}-${tag}"
    capture: artifact
  - shell: "echo checksum=abc123 >> $PRODIGY_OUTPUT && echo leak > leaked.txt"
""",
    )
    write(tmp_path / "subs/fails.yml", "- shell: 'exit 3'\n")
    wf = write(
        tmp_path / "wf.yml",
        """
sub_workflows:
  build:
    source: subs/build.yml
    parameters: {flavour: vanilla}
    inputs: {tag: "v${ARG}"}
    outputs: [artifact, checksum]
  optional:
    source: subs/fails.yml
    continue_on_error: true
commands:
  - shell: "echo '${build.artifact} ${build.checksum} ${optional.success}' > out.txt && git add out.txt && git commit -qm out"
""",
    )
    done = ctl("run", str(wf), "-y", "--args", "7", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:out.txt") == "built-vanilla-v7 abc123 false\n"
    assert "[2/3] sub_workflow: optional" in done.stdout
    assert "✗ step 2.optional.1: Step 'shell: exit 3' failed with exit code 3" in done.stdout
    # the same worktree: what a sub-workflow leaves is the session's, like any step's
    assert "leaked.txt" in git(repo, "ls-tree", "--name-only", "main")


def test_resume_notices_an_edited_included_file(daemon: Path, repo: Path, tmp_path: Path):
    flag = tmp_path / "ok"
    base = write(tmp_path / "base.yml", f"commands:\n  - shell: 'test -e {flag}'\n")
    wf = write(tmp_path / "wf.yml", "extends: base.yml\n")
    assert ctl("run", str(wf), "-y", cwd=repo).returncode == 1
    session_id = json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]
    write(base, f"commands:\n  - shell: 'touch {flag}'\n")
    refused = ctl("resume", session_id, "-y")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "changed since session" in refused.stderr
    assert "or a file it includes (" in refused.stderr and "base.yml" in refused.stderr
    forced = ctl("resume", session_id, "-y", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert flag.exists()


def test_validate_reports_an_error_in_an_included_file(tmp_path: Path):
    write(tmp_path / "parts.yml", "commands:\n  - shell: x\n    retry: {attempts: 0}\n")
    wf = write(tmp_path / "wf.yml", "imports: [parts.yml]\ncommands: [{shell: y}]\n")
    done = ctl("validate", str(wf))
    assert done.returncode == 1
    assert f"{tmp_path / 'parts.yml'}:3:" in done.stdout
    assert "retry.attempts" in done.stdout
    write(tmp_path / "parts.yml", "commands: [{shell: x}]\nparameters: {n: {type: number}}\n")
    good = json.loads(ctl("validate", "--json", str(wf)).stdout)[0]
    assert good["includes"] == [str(tmp_path / "parts.yml")]
    assert good["parameters"]["n"]["type"] == "number"


def test_a_bad_file_registered_over_a_template_leaves_it_and_names_itself(
    isolated: Path, tmp_path: Path
):
    good = write(tmp_path / "good.yml", "commands: [{shell: 'echo good'}]\n")
    ctl("template", "register", str(good), "--name", "t", check=True)
    bad = write(tmp_path / "bad.yml", "commands:\n  - shell: x\n    retry: {attempts: 0}\n")
    refused = ctl("template", "register", str(bad), "--name", "t", "--force")
    assert refused.returncode == 1
    assert f"{bad}:3:" in refused.stderr  # the user's file, not a copy in the registry
    [kept] = json.loads(ctl("template", "list", "--json", check=True).stdout)
    assert kept["name"] == "t" and Path(kept["path"]).read_text() == good.read_text()
