"""Shipping "shared": the repository reaches the workers through a shared bare repository
(the daemon pushes, the workers clone it) instead of bundles; the merged result is the
same, the prodigy refs are gone after the phase, and a shared shipping without a usable
repository is refused before the job starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd import errorcodes
from prodigyd.config import ExecutorConfig
from prodigyd.engine.mapreduce.dask_runner import DaskAgentRunner
from prodigyd.engine.mapreduce.executors import Executors
from prodigyd.errors import ProdigyError
from prodigyd.pool import WorktreePool
from tests.dask.cluster import Cluster
from tests.engine.test_agent_runner import WORKFLOW, shape
from tests.enginekit import run_workflow, write_workflow
from tests.gitutil import git, make_repo


async def test_agents_from_a_shared_repository_merge_as_from_bundles(
    tmp_path: Path, two_workers: Cluster
):
    wf = write_workflow(tmp_path, WORKFLOW)
    results = {}
    for shipping in ("bundle", "shared"):
        repo = make_repo(tmp_path / shipping, {"README.md": "# demo\n"})
        shared = tmp_path / "nfs" / "prodigy.git" if shipping == "shared" else None
        runner = DaskAgentRunner(two_workers.address, shared=shared)
        try:
            run = await run_workflow(wf, repo, runner=runner)
        finally:
            await runner.close()
        assert run.status == "completed", run.record.error
        results[shipping] = shape(run, repo)
        started = run.sink.of("agent_started")
        assert len(started) == 5 and {e["worker"] for e in started} <= set(two_workers.workers)
    assert results["shared"] == results["bundle"]
    assert results["shared"]["dead_letters"] == [("item_4", "CommitValidationFailed")]
    shared = tmp_path / "nfs" / "prodigy.git"
    # made by the daemon, given the parent's commit, and no prodigy ref left in it
    assert git(shared, "rev-parse", "--is-bare-repository").strip() == "true"
    first = git(tmp_path / "shared", "rev-list", "--max-parents=0", "HEAD").strip()
    assert git(shared, "cat-file", "-t", first).strip() == "commit"
    assert git(shared, "for-each-ref", "refs/prodigy") == ""


DASK = ExecutorConfig(kind="dask", address="tcp://127.0.0.1:8786")


@pytest.mark.parametrize(
    ("repository", "message"),
    [
        (None, "executor shipping shared has no repository"),
        ("shared.git", "executor repository 'shared.git' is not an absolute path"),
    ],
)
def test_shared_shipping_without_a_usable_repository_is_refused(
    repository: str | None, message: str
):
    configured = DASK.model_copy(update={"shipping": "shared", "repository": repository})
    executors = Executors(WorktreePool(), configured)
    for chosen in (None, ExecutorConfig(kind="dask")):  # the config's, or a job's --executor
        with pytest.raises(ProdigyError) as caught:
            executors.resolve(chosen)
        assert caught.value.message == message
        assert caught.value.code == errorcodes.EXECUTOR
    # the agents run in the daemon: nothing is shipped, nothing refused
    assert executors.resolve(ExecutorConfig(kind="local")).kind == "local"


def test_a_job_gets_the_daemons_shipping_and_a_runner_of_its_own():
    shared = DASK.model_copy(update={"shipping": "shared", "repository": "/nfs/p.git"})
    executors = Executors(WorktreePool(), shared)
    assert executors.resolve(ExecutorConfig(kind="dask")) == shared
    runner = executors.runner(None)
    assert isinstance(runner, DaskAgentRunner) and runner.shared == Path("/nfs/p.git")
    assert Executors(WorktreePool(), DASK).runner(None).shared is None  # type: ignore[union-attr]


async def test_a_shared_repository_the_daemon_cannot_make_fails_the_phase_clearly(
    tmp_path: Path, two_workers: Cluster
):
    wf = write_workflow(tmp_path, WORKFLOW)
    repo = make_repo(tmp_path / "repo", {"README.md": "# demo\n"})
    (tmp_path / "file").write_text("not a folder\n")
    runner = DaskAgentRunner(two_workers.address, shared=tmp_path / "file" / "prodigy.git")
    try:
        run = await run_workflow(wf, repo, runner=runner)
    finally:
        await runner.close()
    assert run.status == "failed"
    assert f"cannot make the shared repository {tmp_path / 'file' / 'prodigy.git'}" in (
        run.record.error or ""
    )
