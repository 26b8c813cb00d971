"""The far side and the phase checks on an in-process `LocalCluster` (fast): what comes
back from a worker is masked there, and a worker that lacks what the agents need is named
before any agent runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import distributed
import pytest

from prodigyd.engine.context import EngineSettings
from prodigyd.engine.mapreduce import remote
from prodigyd.engine.mapreduce.agent import AgentJob, AgentSpec, WorkItem
from prodigyd.engine.mapreduce.dask_runner import _check_workers
from prodigyd.errors import ProdigyError
from prodigyd.workflow.model import Step
from tests.gitutil import git

SECRET = "Hx9vQ2mZ7pL4wR8tKc3nB6dF"


@pytest.fixture
async def client() -> AsyncIterator[distributed.Client]:
    async with (
        distributed.LocalCluster(
            processes=False,
            n_workers=1,
            threads_per_worker=2,
            # None serves HTTP on the machine's address, port 8787: tests use 127.0.0.1 only
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            asynchronous=True,
        ) as cluster,
        distributed.Client(cluster, asynchronous=True) as connected,
    ):
        yield connected


def job(start: str, *steps: Step, env: dict[str, str] | None = None) -> AgentJob:
    spec = AgentSpec(
        session_id="s1",
        workflow_name="unit",
        template=steps,
        variables={},
        env={**os.environ, "TOKEN": SECRET, **(env or {})},
        secrets={SECRET: "TOKEN"},
        settings=EngineSettings(),
        timeout=None,
        track_git=False,
        strict_variables=False,
        keep_failed=False,
    )
    return AgentJob(spec, WorkItem(0, "one", 1), 1, start)


async def test_what_a_worker_sends_back_is_masked(client: distributed.Client, repo: Path):
    start = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "bundle", "create", "-q", str(repo.parent / "base.bundle"), "main")
    base = (repo.parent / "base.bundle").read_bytes()
    failing = job(
        start,
        Step(kind="shell", command='echo "token=$TOKEN" && echo "$TOKEN" >&2 && exit 3'),
    )
    key = f"unit-{uuid.uuid4().hex}"
    answer = await client.submit(
        remote.worker_task, failing.to_dict(), base, start, None, key, key=key, pure=False
    )
    assert answer["run"]["reason"] == "CommandFailed"
    assert answer["worker"] in await client.run(os.getpid)  # keyed by worker address
    outputs = [e["fields"]["line"] for e in answer["events"] if e["type"] == "step_output"]
    assert "token=***" in outputs  # the step did print it, masked on the worker
    assert SECRET not in repr(answer) and SECRET[:8] not in repr(answer)
    # ... and the events that travelled live on the topic were masked too
    logged = await client.get_events(remote.TaskNames(key).topic)
    assert logged and SECRET not in repr(logged)


async def test_a_worker_without_the_claude_cli_is_named_at_phase_start(
    client: distributed.Client, repo: Path, tmp_path: Path
):
    start = git(repo, "rev-parse", "HEAD").strip()
    needs_claude = job(
        start,
        Step(kind="claude", command="/fix it"),
        env={"PRODIGY_CLAUDE_BIN": str(tmp_path / "no-such-claude")},
    )
    with pytest.raises(ProdigyError) as caught:
        await _check_workers(client, needs_claude, "inproc", None)
    [worker] = await client.run(os.getpid)
    assert worker in caught.value.message
    assert "the claude CLI" in caught.value.message
    # shell steps alone do not need it
    shell = job(start, Step(kind="shell", command="true"))
    await _check_workers(client, shell, "inproc", None)
    # a shared repository the worker cannot see is named too
    missing = str(tmp_path / "nfs" / "prodigy.git")
    with pytest.raises(ProdigyError) as caught:
        await _check_workers(client, shell, "inproc", missing)
    assert f"cannot read the shared repository {missing}" in caught.value.message
