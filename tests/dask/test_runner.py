"""DaskAgentRunner against a real cluster: agents run on its workers from bundles, and the
daemon merges their work exactly as it merges local agents'."""

from __future__ import annotations

from pathlib import Path

from prodigyd.engine.mapreduce.dask_runner import DaskAgentRunner
from tests.dask.cluster import Cluster
from tests.engine.test_agent_runner import WORKFLOW, shape
from tests.enginekit import run_workflow, write_workflow
from tests.gitutil import make_repo


async def test_agents_on_the_cluster_merge_as_local_ones(
    tmp_path: Path, repo: Path, two_workers: Cluster
):
    wf = write_workflow(tmp_path, WORKFLOW)
    local = await run_workflow(wf, repo)
    assert local.status == "completed", local.record.error

    other = make_repo(tmp_path / "other", {"README.md": "# demo\n"})
    runner = DaskAgentRunner(two_workers.address)
    try:
        remote = await run_workflow(wf, other, runner=runner)
    finally:
        await runner.close()
    assert remote.status == "completed", remote.record.error
    expected = shape(local, repo)
    assert expected["dead_letters"] == [("item_4", "CommitValidationFailed")]
    assert shape(remote, other) == expected
    # each agent ran on a worker of the cluster, which its events and result name
    started = remote.sink.of("agent_started")
    assert {e["worker"] for e in started} <= set(two_workers.workers)
    assert len(started) == 5
    steps = [e for e in remote.sink.of("step_completed") if e.get("agent_id")]
    assert {e["item_id"] for e in steps} == {f"item_{i}" for i in range(5)}
    [failed] = remote.sink.of("agent_failed")
    assert "agent 5 of 5: forget" in Path(failed["log_path"]).read_text()
