"""`prodigyctl run --executor dask` against the real daemon and a real cluster: agents run
on the workers and say so, a failed item goes to the DLQ, and `dlq retry` runs it on the
cluster again (the job's executor is kept with it)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import ctl, json_lines
from tests.dask.cluster import Cluster
from tests.gitutil import git
from tests.integration.test_dlq import WORKFLOW


def started_on(job: str) -> list[str]:
    """The worker of each agent_started event of `job`."""
    listed = ctl("events", "ls", "--session", job, "--type", "agent_started", "--json")
    return [event["worker"] for event in json_lines(listed.stdout)]


def test_run_on_the_cluster_then_retry_its_dead_letter_there(
    daemon: Path, repo: Path, tmp_path: Path, two_workers: Cluster
):
    wf = tmp_path / "wf.yml"
    wf.write_text(WORKFLOW)
    address = two_workers.address
    run = ctl("run", str(wf), "-y", "--executor-address", address, cwd=repo)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 successful, 1 failed" in run.stdout  # item 2 commits nothing
    assert "[item_0] started on dask worker tcp://127.0.0.1:" in run.stdout
    assert git(repo, "show", "main:file1.txt") == "1\n"
    assert git(repo, "show", "main:file3.txt") == "3\n"
    job = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    workers = set(two_workers.workers)
    assert len(started_on(job)) == 3 and set(started_on(job)) <= workers

    shown = json.loads(ctl("sessions", "show", job, "--json", check=True).stdout)
    assert shown["executor"] == {
        "kind": "dask",
        "address": address,
        "shipping": "bundle",
        "repository": None,
    }
    agents = {a["item_id"]: a for a in shown["agents"]}
    assert set(agents) == {"item_0", "item_1", "item_2"}
    assert {a["worker"] for a in agents.values()} <= workers
    assert agents["item_1"]["status"] == "failed"
    text = ctl("sessions", "show", job, check=True).stdout
    used = len({a["worker"] for a in agents.values()})
    assert f"3 on {used} dask worker" in text
    assert "1 failed on dask" in ctl("ps", check=True).stdout
    [entry] = json.loads(ctl("dlq", "ls", job, "--json", check=True).stdout)
    assert entry["item_id"] == "item_1" and entry["error_type"] == "CommitValidationFailed"

    (repo / "FIXED").write_text("yes\n")
    git(repo, "add", "FIXED")
    git(repo, "commit", "-qm", "fix the cause")
    fixed = ctl("dlq", "retry", job, "-y", "--json", cwd=repo)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert git(repo, "show", "main:file2.txt") == "2\n"  # merged from the worker's bundle
    assert json.loads(ctl("dlq", "ls", job, "--json", check=True).stdout) == []
    retry = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    assert retry != job and len(started_on(retry)) == 1
    assert set(started_on(retry)) <= workers  # the job's executor, kept for its retry


def test_a_dask_executor_without_an_address_is_refused_before_the_job(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(WORKFLOW)
    run = ctl("run", str(wf), "-y", "--executor", "dask", cwd=repo)
    assert run.returncode != 0
    assert "executor dask has no scheduler address" in run.stderr
    assert "--executor-address" in run.stderr
    assert json.loads(ctl("sessions", "ls", "--json", check=True).stdout) == []


def test_a_malformed_address_is_refused_with_its_code_and_a_standard_workflow_warns(
    daemon: Path, repo: Path, tmp_path: Path
):
    """A typo in the address is an error at submission (it was an internal error when the
    map phase connected); --executor on a workflow without map agents says it does nothing."""
    wf = tmp_path / "wf.yml"
    wf.write_text(WORKFLOW)
    run = ctl("run", str(wf), "-y", "--executor-address", "notanaddress", "--json", cwd=repo)
    assert run.returncode != 0
    error = json.loads(run.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "E4007" and "notanaddress" in error["message"]
    assert json.loads(ctl("sessions", "ls", "--json", check=True).stdout) == []

    plain = tmp_path / "plain.yml"
    plain.write_text("commands:\n  - shell: 'true'\n")
    done = ctl("run", str(plain), "-y", "--executor", "dask", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "apply to a MapReduce workflow's map agents" in done.stdout + done.stderr


def test_shared_shipping_set_by_config_runs_on_the_cluster_and_is_refused_without_a_path(
    isolated: Path, repo: Path, tmp_path: Path, two_workers: Cluster
):
    """`config set executor.shipping shared` alone is refused at submission (E4007);
    with `executor.repository` the agents get the repository through it and their work is
    merged as from bundles, leaving no prodigy ref behind."""
    wf = tmp_path / "wf.yml"
    wf.write_text(WORKFLOW)
    shared = tmp_path / "nfs" / "prodigy.git"
    ctl("config", "set", "executor.shipping", "shared", check=True)
    ctl("daemon", "start", check=True)
    try:
        address = two_workers.address
        refused = ctl("run", str(wf), "-y", "--executor-address", address, "--json", cwd=repo)
        assert refused.returncode != 0
        error = json.loads(refused.stderr.strip().splitlines()[-1])["error"]
        assert error["code"] == "E4007"
        assert error["message"] == "executor shipping shared has no repository"
        ctl("daemon", "stop", check=True)
        ctl("config", "set", "executor.repository", str(shared), check=True)
        ctl("daemon", "start", check=True)
        base = git(repo, "rev-parse", "main").strip()
        run = ctl("run", str(wf), "-y", "--executor-address", address, cwd=repo)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "2 successful, 1 failed" in run.stdout
        assert git(repo, "show", "main:file1.txt") == "1\n"
        assert git(repo, "show", "main:file3.txt") == "3\n"
        job = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
        assert set(started_on(job)) <= set(two_workers.workers)
        shown = json.loads(ctl("sessions", "show", job, "--json", check=True).stdout)
        assert shown["executor"]["shipping"] == "shared"
        assert git(shared, "for-each-ref", "refs/prodigy") == ""
        assert git(shared, "cat-file", "-t", base) == "commit\n"  # pushed there
    finally:
        ctl("daemon", "stop")
