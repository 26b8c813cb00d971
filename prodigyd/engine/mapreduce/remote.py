"""The far side of a map agent run away from the daemon: what a worker runs.

A remote runner (dask_runner.py; tests/bundle_runner.py in another process) sends the
worker the job (`AgentJob.to_dict`) and the parent's commits as git bundles (or, with
shipping "shared", the path of a shared bare repository it pushed them to), never the
daemon's repository. Here, on the worker: a private clone (a `--shared` clone of a bare
repository: the shared one, or one made once from the phase's base bundle plus the objects
of a small per-task delta bundle when the agent starts past the base), checked out
detached at `job.start`; the portable `execute` (agent.py) runs there exactly as in the
daemon; and the agent's commits (`refs/heads/agent ^start`) come back as bundle bytes with
its AgentRun. The daemon `deliver`s them through its merge queue (merge_queue.py).

Secrets travel only in the job (its env and `secrets`), never in a bundle; every event,
output and error is masked here with the job's Masker before it leaves the worker.

Nothing here imports Dask at module level: `worker_task` (the function a Dask worker runs)
imports `distributed` when it is called, so tests/bundle_runner.py and a daemon that runs
agents locally pay nothing for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prodigyd.engine.mapreduce.agent import AgentJob, AgentRun, execute
from prodigyd.engine.mask import Masker
from prodigyd.eventtypes import EventType
from prodigyd.git.cli import git

#: How often a running task asks whether it must stop (seconds).
POLL_SECONDS = 0.25

#: The ref the agent's commits travel under in the bundle it sends back.
AGENT_REF = "refs/heads/agent"


@dataclass
class Recorder:
    """The far side's event sink: each event masked, made plain JSON data, numbered, kept
    (they return with the answer) and passed to `forward` (live to the daemon, where a
    runner can)."""

    masker: Masker
    forward: Callable[[dict[str, Any]], None] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, event_type: str, /, **fields: Any) -> None:
        event = {"n": len(self.events), "type": str(event_type), "fields": fields}
        event = json.loads(json.dumps(self.masker.mask_obj(event), default=str))  # plain data
        self.events.append(event)
        if self.forward is not None:
            self.forward(event)


async def clone_at(source: Path, clone: Path, start: str, deltas: list[Path]) -> None:
    """`clone`, checked out detached at `start`: a clone of `source` (a bundle, or a bare
    repository, which it shares objects with) plus the objects of each delta bundle."""
    shared = ("--shared",) if source.is_dir() else ()
    await git(clone.parent, "clone", "--quiet", "--no-checkout", *shared, str(source), str(clone))
    for delta in deltas:
        await git(clone, "bundle", "unbundle", str(delta))
    await git(clone, "checkout", "--quiet", "--detach", start)


async def execute_and_bundle(
    job: AgentJob, clone: Path, events: Recorder, stop: asyncio.Event
) -> tuple[AgentRun | None, bytes | None]:
    """`execute` in `clone`, then its commits as bundle bytes (None when it made none). A
    failed agent's kept work (`keep_failed`) comes back too, for the daemon to keep."""
    run = await execute(job, str(clone), events, stop)
    if run is None:
        return None, None
    masker = events.masker
    run.output = masker.mask(run.output)
    run.error = run.error and masker.mask(run.error)
    if run.head in (None, job.start):
        return run, None
    assert run.head is not None
    out = clone.parent / "agent.bundle"
    await git(clone, "update-ref", AGENT_REF, run.head)
    await git(clone, "bundle", "create", "--quiet", str(out), AGENT_REF, f"^{job.start}")
    return run, out.read_bytes()


# -- on a Dask worker ----------------------------------------------------------------------

_base_locks: dict[str, threading.Lock] = {}
_base_locks_guard = threading.Lock()


def _base_repository(root: Path, base_key: str, base: bytes) -> Path:
    """The phase's base as a bare repository on this worker, made once per phase (the
    worker's threads share it; each agent clones it with `--shared`)."""
    bare = root / "bases" / f"{base_key}.git"
    with _base_locks_guard:
        lock = _base_locks.setdefault(base_key, threading.Lock())
    with lock:
        if not bare.is_dir():
            bare.parent.mkdir(parents=True, exist_ok=True)
            bundle = bare.with_suffix(".bundle")
            bundle.write_bytes(base)
            partial = bare.with_suffix(".partial")
            shutil.rmtree(partial, ignore_errors=True)
            asyncio.run(_clone_bare(bundle, partial))
            partial.rename(bare)
            bundle.unlink()
    return bare


async def _clone_bare(bundle: Path, bare: Path) -> None:
    await git(bare.parent, "clone", "--quiet", "--bare", str(bundle), str(bare))


@dataclass(frozen=True)
class TaskNames:
    """The names one attempt's task shares with the daemon, all made from its unique key:
    the topic its events travel on and the Dask Events that stop it, cancel it, or say it
    already started (a task Dask starts again after its worker died must not run twice)."""

    key: str

    @property
    def topic(self) -> str:
        return f"{self.key}/events"

    @property
    def stop(self) -> str:
        return f"{self.key}/stop"

    @property
    def cancel(self) -> str:
        return f"{self.key}/cancel"

    @property
    def claim(self) -> str:
        return f"{self.key}/claim"


def worker_task(
    job_data: dict[str, Any], base: bytes | str, base_key: str, delta: bytes | None, key: str
) -> dict[str, Any]:
    """What a Dask worker runs for one attempt of a map agent, from `base`: the phase's base
    bundle, or the path of the shared bare repository (shipping "shared"), which holds the
    start already. Its answer: the AgentRun (a dict; None when it was stopped), the agent's
    commits as bundle bytes, the worker's address, every event; or `lost` when this attempt
    already started elsewhere."""
    import distributed

    worker = distributed.get_worker()
    names = TaskNames(key)
    claim = distributed.Event(names.claim)
    if claim.is_set():  # started before, on a worker that died: that is a lost worker
        return {"lost": True, "worker": worker.address}
    claim.set()
    root = Path(worker.local_directory) / "prodigy"
    # Claude's raw stream logs stay on the worker: the daemon's folder is not here.
    settings = {**job_data["spec"]["settings"], "claude_log_dir": str(root / "claude-logs")}
    job = AgentJob.from_dict({**job_data, "spec": {**job_data["spec"], "settings": settings}})
    bare = Path(base) if isinstance(base, str) else _base_repository(root, base_key, base)
    folder = root / "agents" / key.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(
        Masker.of(job.spec.secrets), lambda event: worker.log_event(names.topic, event)
    )
    try:
        run, bundle = asyncio.run(
            _attempt(job, folder, bare, delta, recorder, worker.address, _watcher(worker, names))
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "run": run and run.to_dict(),
        "bundle": bundle,
        "worker": worker.address,
        "events": recorder.events,
    }


async def _attempt(
    job: AgentJob,
    folder: Path,
    bare: Path,
    delta: bytes | None,
    events: Recorder,
    worker: str,
    watch: Callable[[asyncio.Event], Awaitable[bool]],
) -> tuple[AgentRun | None, bytes | None]:
    """Clone, execute and bundle, while `watch` polls the daemon's wishes: a graceful stop
    sets `stop` (the step ends, then execute returns None); a cancel (or the daemon gone)
    cancels execute, which kills the running step's process group (proc.run)."""
    deltas = []
    if delta is not None:
        deltas.append(folder / "delta.bundle")
        deltas[0].write_bytes(delta)
    clone = folder / "clone"
    await clone_at(bare, clone, job.start, deltas)
    events.emit(
        EventType.AGENT_STARTED,
        worktree=str(clone),
        worker=worker,
        attempt=job.attempt,
        item_index=job.item.index,
        item_total=job.item.total,
    )
    stop = asyncio.Event()
    work = asyncio.ensure_future(execute_and_bundle(job, clone, events, stop))
    watcher = asyncio.ensure_future(watch(stop))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done() and watcher.result():  # cancelled: kill it
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            return None, None
        return await work
    finally:
        watcher.cancel()


def _watcher(worker: Any, names: TaskNames) -> Callable[[asyncio.Event], Awaitable[bool]]:
    """A poller of the task's fate. Returns True when the attempt must end now: its cancel
    Event is set, or Dask no longer wants the task (the daemon cancelled its future, or
    died: the scheduler releases a lost client's tasks). Sets `stop` for a graceful stop."""
    import distributed

    key = worker.get_current_task()
    stop_event, cancel_event = distributed.Event(names.stop), distributed.Event(names.cancel)

    def wanted() -> bool:
        task = worker.state.tasks.get(key)
        return task is not None and task.state not in ("cancelled", "released", "forgotten")

    async def watch(stop: asyncio.Event) -> bool:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if not wanted() or await asyncio.to_thread(cancel_event.is_set):
                return True
            if not stop.is_set() and await asyncio.to_thread(stop_event.is_set):
                stop.set()

    return watch


def check_worker(
    needs_claude: bool, claude: str, path: str | None, version: str, shared: str | None
) -> list[str]:
    """What this worker lacks to run the phase's agents (run on every worker at phase
    start): git, the claude CLI when the template has claude steps (looked up on the
    job's PATH), this very prodigy version, and the shared repository when there is one."""
    from prodigyd.version import version as installed

    problems = []
    if shutil.which("git") is None:
        problems.append("git is not on its PATH")
    if needs_claude and shutil.which(claude, path=path or os.environ.get("PATH")) is None:
        problems.append(f"the claude CLI ({claude}) is not on the job's PATH")
    if installed() != version:
        problems.append(f"prodigy {installed()} is installed, the daemon runs {version}")
    if shared is not None and not os.access(Path(shared) / "objects", os.R_OK | os.X_OK):
        problems.append(f"it cannot read the shared repository {shared}")
    return problems
