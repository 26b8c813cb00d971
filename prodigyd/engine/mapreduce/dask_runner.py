"""DaskAgentRunner: a map phase's agents executed on a Dask cluster, delivered in the daemon.

The near side of a remote agent (remote.py is the far side, what a worker runs). The
daemon is a plain client of the cluster's scheduler: one `distributed.Client` per address,
made when a phase first needs it and kept. Per phase (per MergeQueue): every worker is
checked once (git, the claude CLI when the template has claude steps, the same prodigy
version: a ProdigyError naming the worker otherwise), and a bundle of the parent's branch
(the base) is broadcast once; each task then gets only a delta bundle (`start ^base`) when
its agent starts past the base. The task's answer (its commits as bundle bytes) is
`deliver`ed through the merge queue, in the daemon, as a local agent's would be.

With `[executor] shipping = "shared"` no bundle goes out: the daemon pushes the phase's
base commit to the shared bare repository (made with `git init --bare` when missing) as
`refs/prodigy/<session>/base`, and each attempt's start commit as a ref of its own
(`refs/prodigy/<session>/<item>-<attempt>`, deleted when the attempt ends); the worker
clones that repository (`--shared`) and checks out the start by its id, never by a ref
another task may move. The agent's commits still come back as bundle bytes. When the
phase ends (`finish`) every ref under `refs/prodigy/<session>/` goes.

Events travel live: the far side logs each one on a topic of its own (`log_event`), which
this side subscribes to and re-emits in order into the agent's sink (its log file, the
session's events); the answer carries them all too, so any the topic had not brought yet
are emitted from it before the agent's end is reported: each exactly once, in order.

Failures: Dask's own retries are off (prodigy's error policy, retries and DLQ decide). A
worker lost mid-task (KilledWorker, a closed connection, or the task started again after
its worker died: the far side's claim Event tells) is FailureReason.WORKER_LOST. Stopping:
a graceful stop sets the task's stop Event (its step finishes, then it ends, and the item
runs again on resume); a cancel sets its cancel Event and cancels its future, and the far
side kills the step's process group. A daemon killed outright loses its client, whereupon
the scheduler releases the client's tasks and each far side, seeing its task unwanted,
kills its step: a resumed phase runs the item again under a new key and never merges an
old task's work (only the daemon delivers).

`distributed` is imported here only; this module is imported only when an executor of
kind `dask` is used (engine/mapreduce/executors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import distributed
from distributed import KilledWorker
from distributed.client import FutureCancelledError
from distributed.comm import CommClosedError

from prodigyd import errorcodes
from prodigyd.claude.cli import BINARY_ENV
from prodigyd.engine.context import EventSink
from prodigyd.engine.mapreduce import remote
from prodigyd.engine.mapreduce.agent import AgentJob, AgentResult, AgentRun
from prodigyd.engine.mapreduce.merge_queue import MergeQueue
from prodigyd.engine.mask import Masker
from prodigyd.errors import ProdigyError
from prodigyd.failure import FailureReason
from prodigyd.git.cli import git
from prodigyd.store import scratch
from prodigyd.version import version
from prodigyd.workflow.model import every_step

log = logging.getLogger("prodigyd.dask")

#: How long a phase waits for the cluster to have a worker before it fails.
WORKER_WAIT_SECONDS = 30.0

#: How long connecting to the scheduler may take.
CONNECT_SECONDS = 10.0


@dataclass
class _Phase:
    base: str  # the parent's commit the base bundle (or the shared repository) holds
    data: distributed.Future | str  # the base bundle's bytes, on every worker; or the
    # shared repository's path


@dataclass
class _Answer:
    run: AgentRun
    bundle: bytes | None  # the agent's commits
    worker: str | None  # the address of the worker that ran it


@dataclass
class _Events:
    """An attempt's events, re-emitted in order, each once, whether from the topic or the
    answer."""

    sink: EventSink
    emitted: int = 0
    waiting: dict[int, dict[str, Any]] = field(default_factory=dict)

    def receive(self, event: dict[str, Any]) -> None:
        self.waiting[event["n"]] = event
        while self.emitted in self.waiting:
            done = self.waiting.pop(self.emitted)
            self.sink.emit(done["type"], **done["fields"])
            self.emitted += 1


class DaskAgentRunner:
    """Map agents as tasks on the Dask cluster at `address`."""

    def __init__(self, address: str, shared: Path | None = None) -> None:
        self.address = address
        self.shared = shared  # the shared bare repository, with shipping "shared"
        self._client: distributed.Client | None = None
        self._connecting = asyncio.Lock()
        self._phases: weakref.WeakKeyDictionary[MergeQueue, asyncio.Task[_Phase]] = (
            weakref.WeakKeyDictionary()
        )

    async def client(self) -> distributed.Client:
        async with self._connecting:
            if self._client is None or self._client.status in ("closed", "closing"):
                try:
                    self._client = await distributed.Client(
                        self.address, asynchronous=True, timeout=CONNECT_SECONDS
                    )
                except (OSError, TimeoutError, ValueError) as exc:  # ValueError: no address
                    raise ProdigyError(
                        f"cannot reach the Dask scheduler at {self.address}: {exc}",
                        hint="check [executor] address (or --executor-address) and that "
                        "the scheduler runs",
                        code=errorcodes.DASK_UNREACHABLE,
                    ) from None
            return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def run(
        self, job: AgentJob, queue: MergeQueue, events: EventSink, stop: asyncio.Event
    ) -> AgentResult | None:
        phase = self._phases.get(queue)
        if phase is None:
            phase = self._phases[queue] = asyncio.ensure_future(self._prepare(job, queue))
        prepared = await asyncio.shield(phase)
        client = await self.client()
        start_ref = _refs(job.spec.session_id) + f"/{job.item.item_id}-{job.attempt}"
        with scratch.folder("prodigy-dask-") as tmp:
            delta = None
            try:
                if self.shared is not None:
                    await _push(queue, self.shared, job.start, start_ref)
                else:
                    out = Path(tmp) / "delta.bundle"
                    delta = await _delta(queue, job, prepared.base, out)
            except ProdigyError as exc:
                why = f"the agent's start commit could not be shipped: {exc.render()}"
                failed = AgentRun.failure(why, FailureReason.WORKTREE_ERROR)
                return await queue.deliver(job, failed, events)
            try:
                answer = await self._submit(client, job, prepared, delta, events, stop)
            finally:
                if self.shared is not None:
                    await git(self.shared, "update-ref", "-d", start_ref, check=False)
            if answer is None:
                return None
            path = None
            if answer.bundle is not None:
                path = str(Path(tmp) / "agent.bundle")
                Path(path).write_bytes(answer.bundle)
            result = await queue.deliver(job, answer.run, events, bundle=path)
        result.worker = answer.worker
        head = answer.run.head
        if job.spec.keep_failed and not result.success and head not in (None, job.start):
            assert head is not None  # a failed agent's work, kept on a branch
            await git(queue.parent.worktree, "branch", "--force", job.branch, head)
            result.branch_name = job.branch
        return result

    async def _submit(
        self,
        client: distributed.Client,
        job: AgentJob,
        phase: _Phase,
        delta: bytes | None,
        events: EventSink,
        stop: asyncio.Event,
    ) -> _Answer | None:
        """Run the attempt on the cluster: its answer, or None when `stop` ended it first."""
        names = remote.TaskNames(f"prodigy-{job.agent_id}-{job.attempt}-{uuid.uuid4().hex[:8]}")
        order = _Events(events)
        client.subscribe_topic(names.topic, lambda event: order.receive(event[1]))
        future = client.submit(
            remote.worker_task,
            job.to_dict(),
            phase.data,
            phase.base,
            delta,
            names.key,
            key=names.key,
            pure=False,
            retries=0,
        )
        try:
            answer = await _result(future, stop, names)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(distributed.Event(names.cancel, client=client).set(), 5)
                await future.cancel()
            raise
        except (KilledWorker, CommClosedError, FutureCancelledError) as exc:
            return _Answer(_lost(f"the Dask worker running it was lost: {exc}"), None, None)
        except Exception as exc:  # raised in the task, on the worker: this agent failed
            log.warning("agent %s failed on the cluster", job.agent_id, exc_info=True)
            text = exc.render() if isinstance(exc, ProdigyError) else f"{type(exc).__name__}: {exc}"
            why = Masker.of(job.spec.secrets).mask(f"its task failed on a Dask worker: {text}")
            return _Answer(AgentRun.failure(why, FailureReason.WORKTREE_ERROR), None, None)
        finally:
            client.unsubscribe_topic(names.topic)
            future.release()
        for name in (names.claim, names.stop, names.cancel):  # the scheduler forgets them
            await distributed.Event(name, client=client).clear()
        worker = answer["worker"]
        if answer.get("lost"):
            why = f"its Dask worker was lost mid-task (it was started again on {worker})"
            return _Answer(_lost(why), None, worker)
        for event in answer["events"]:
            order.receive(event)
        if answer["run"] is None:
            return None
        return _Answer(AgentRun.from_dict(answer["run"]), answer["bundle"], worker)

    async def finish(self, queue: MergeQueue) -> None:
        """The phase's refs in the shared repository go (its base, and any an attempt
        cancelled mid-way left)."""
        self._phases.pop(queue, None)
        if self.shared is None or not self.shared.is_dir():
            return
        prefix = _refs(queue.parent.session_id)
        listed = await git(self.shared, "for-each-ref", "--format=%(refname)", prefix + "/")
        for ref in listed.stdout.split():
            await git(self.shared, "update-ref", "-d", ref, check=False)

    async def _prepare(self, job: AgentJob, queue: MergeQueue) -> _Phase:
        """Once per phase: the base bundle on each worker (or the base commit in the shared
        repository), and the workers checked."""
        client = await self.client()
        base = await queue.head()
        if self.shared is not None:
            await _push(queue, self.shared, base, _refs(job.spec.session_id) + "/base")
            await _check_workers(client, job, self.address, str(self.shared))
            return _Phase(base, str(self.shared))
        await _check_workers(client, job, self.address, None)
        with scratch.folder("prodigy-dask-") as tmp:
            path = Path(tmp) / "base.bundle"
            ref = f"refs/heads/{queue.branch}"
            await git(queue.parent.worktree, "bundle", "create", "--quiet", str(path), ref)
            data = path.read_bytes()
        future = await client.scatter(data, broadcast=True, hash=False)
        return _Phase(base, future)


def _refs(session_id: str) -> str:
    """The prefix of a session's refs in the shared repository."""
    return f"refs/prodigy/{session_id}"


async def _push(queue: MergeQueue, shared: Path, commit: str, ref: str) -> None:
    """`commit` (by id) into the shared bare repository as `ref`, the repository made when
    missing. `--no-verify`: the user's pre-push hooks are for their remotes, not this."""
    if not shared.is_dir():
        try:
            shared.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProdigyError(
                f"cannot make the shared repository {shared}: {exc.strerror}",
                hint="check [executor] repository: a path the daemon can write",
                code=errorcodes.EXECUTOR,
            ) from None
        await git(shared.parent, "init", "--quiet", "--bare", str(shared))
    worktree = queue.parent.worktree
    await git(worktree, "push", "--quiet", "--no-verify", "--force", str(shared), f"{commit}:{ref}")


def _lost(why: str) -> AgentRun:
    return AgentRun.failure(why, FailureReason.WORKER_LOST)


async def _result(
    future: distributed.Future, stop: asyncio.Event, names: remote.TaskNames
) -> dict[str, Any]:
    """The task's answer; `stop` set meanwhile sets its stop Event (it ends after its step)."""
    done = asyncio.ensure_future(future.result())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({done, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            await distributed.Event(names.stop, client=future.client).set()
        answer: dict[str, Any] = await done
        return answer
    finally:
        stopping.cancel()
        done.cancel()


async def _delta(queue: MergeQueue, job: AgentJob, base: str, path: Path) -> bytes | None:
    """The commits from the phase's base to the agent's start, as bundle bytes (None when
    the base holds the start). The start is bundled under a private ref of its own, not
    the branch, which other agents' merges move meanwhile."""
    worktree = queue.parent.worktree
    inside = await git(worktree, "merge-base", "--is-ancestor", job.start, base, check=False)
    if inside.returncode == 0:
        return None
    ref = f"refs/prodigy/dask/{job.agent_id}-{job.attempt}"
    await git(worktree, "update-ref", ref, job.start)
    try:
        await git(worktree, "bundle", "create", "--quiet", str(path), ref, f"^{base}")
    finally:
        await git(worktree, "update-ref", "-d", ref, check=False)
    return path.read_bytes()


async def _check_workers(
    client: distributed.Client, job: AgentJob, address: str, shared: str | None
) -> None:
    """Every worker can run the phase's agents, or a ProdigyError names those that cannot."""
    try:
        await cast(Awaitable[None], client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS))
    except TimeoutError:
        raise ProdigyError(
            f"the Dask cluster at {address} has no worker (waited {WORKER_WAIT_SECONDS:.0f} s)",
            hint="start workers with `dask worker " + address + "`",
            code=errorcodes.DASK_UNREACHABLE,
        ) from None
    spec = job.spec
    needs_claude = any(step.kind == "claude" for step in every_step(spec.template))
    claude = spec.env.get(BINARY_ENV) or spec.settings.claude_bin or "claude"
    found = await client.run(
        remote.check_worker, needs_claude, claude, spec.env.get("PATH"), version(), shared
    )
    problems = [f"{worker}: {', '.join(lacks)}" for worker, lacks in found.items() if lacks]
    if problems:
        raise ProdigyError(
            "Dask workers cannot run this job's agents: " + "; ".join(sorted(problems)),
            hint="docs/dask.md says what a worker needs",
            code=errorcodes.DASK_WORKER_LACKS,
        )
