"""A test-only AgentRunner that runs each map agent the way a remote worker would.

Near side (`BundleAgentRunner`, in the engine's process): for each agent, a git bundle of
the parent's branch (it holds the commit the agent starts at) and the job as JSON go to a
separate Python process running this file. Far side (`main`, that process): the engine's
own far side (prodigyd/engine/mapreduce/remote.py, as a Dask worker runs it): a clone of the
bundle checked out at the job's start, the portable `execute` there, its events printed as
JSON lines (the near side re-emits them into the agent's sink, so its log and the session's
events are as for a local agent); then its commits as a bundle and its AgentRun as a last
JSON line. The near side `deliver`s the bundle through the merge
queue. The far side imports nothing but prodigyd: what it runs is what a worker that has
the package installed could run.

Not supported, as the tests need neither: `keep_failed` (a failed agent's work stays in its
clone) and a stop request (the process runs its agent to the end).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from prodigyd import proc
from prodigyd.engine.context import EventSink
from prodigyd.engine.mapreduce import remote
from prodigyd.engine.mapreduce.agent import AgentJob, AgentResult, AgentRun
from prodigyd.engine.mapreduce.merge_queue import MergeQueue
from prodigyd.engine.mask import Masker
from prodigyd.git.cli import git


class BundleAgentRunner:
    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch  # a folder for each agent's bundles and clone

    async def finish(self, queue: MergeQueue) -> None:
        """Each attempt's folder went with it."""

    async def run(
        self, job: AgentJob, queue: MergeQueue, events: EventSink, stop: asyncio.Event
    ) -> AgentResult | None:
        folder = Path(tempfile.mkdtemp(prefix=f"{job.item.item_id}-", dir=self.scratch))
        request = {
            "job": job.to_dict(),
            "bundle": str(folder / "parent.bundle"),
            "clone": str(folder / "clone"),
            "out": str(folder / "agent.bundle"),
        }
        # the start under a branch of its own (a clone takes branches), as the Dask runner
        # pins it (dask_runner._delta): the parent's branch moves with other agents' merges
        # meanwhile, and a bundle of it made mid-move was refused as empty
        worktree, ref = queue.parent.worktree, f"refs/heads/bundle-{job.agent_id}-{job.attempt}"
        await git(worktree, "update-ref", ref, job.start)
        try:
            await git(worktree, "bundle", "create", "--quiet", request["bundle"], ref)
        finally:
            await git(worktree, "update-ref", "-d", ref, check=False)
        (folder / "request.json").write_text(json.dumps(request))
        events.emit(
            "agent_started",
            worktree=request["clone"],
            attempt=job.attempt,
            item_index=job.item.index,
            item_total=job.item.total,
        )
        answer: dict[str, Any] = {}

        def line(text: str) -> None:
            message = json.loads(text)
            if "event" in message:
                events.emit(message["event"], **message["fields"])
            else:
                answer.update(message)

        done = await proc.run(
            [sys.executable, __file__, str(folder / "request.json")],
            cwd=folder,
            on_stdout_line=line,
        )
        assert done.ok and "run" in answer, done.stderr
        if answer["run"] is None:
            return None
        return await queue.deliver(
            job, AgentRun.from_dict(answer["run"]), events, bundle=answer["bundle"]
        )


def _print(event: dict[str, Any]) -> None:
    print(json.dumps({"event": event["type"], "fields": event["fields"]}, default=str), flush=True)


def main(request_file: str) -> None:
    request = json.loads(Path(request_file).read_text())
    job = AgentJob.from_dict(request["job"])
    clone = Path(request["clone"])
    events = remote.Recorder(Masker.of(job.spec.secrets), _print)

    async def attempt() -> tuple[AgentRun | None, bytes | None]:
        await remote.clone_at(Path(request["bundle"]), clone, job.start, [])
        return await remote.execute_and_bundle(job, clone, events, asyncio.Event())

    run, commits = asyncio.run(attempt())
    bundle = None
    if commits is not None:
        bundle = request["out"]
        Path(bundle).write_bytes(commits)
    print(
        json.dumps({"run": run.to_dict() if run is not None else None, "bundle": bundle}),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1])
