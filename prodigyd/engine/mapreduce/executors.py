"""Which AgentRunner a job's map agents get: the daemon's `[executor]`, or the job's own.

A job may name its executor (`prodigyctl run --executor dask --executor-address ADDR`); the
choice is stored with the job (SessionRecord.executor), so a resume runs where the run
did unless the resume names another. What the job leaves out comes from `[executor]` in
config.toml. Setup, reduce and every merge run in the daemon whatever the choice: only map
agents go elsewhere.

The daemon keeps one runner per place: the local one (its worktree pool), and one
DaskAgentRunner per scheduler address and shared repository, made when a job first needs
it (so `distributed` is imported only then, never at the daemon's start) and closed at
shutdown.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING

from prodigyd import errorcodes
from prodigyd.config import ExecutorConfig
from prodigyd.errors import ProdigyError
from prodigyd.pool import WorktreePool

#: A scheduler address as Dask takes it: `[PROTOCOL://]HOST:PORT` (checked before the job, so
#: a typo is an error at submission, not an internal error when the map phase connects).
ADDRESS = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d{1,5}$")

if TYPE_CHECKING:  # the engine is imported with the first job, not at the daemon's start
    from prodigyd.engine.mapreduce.dask_runner import DaskAgentRunner
    from prodigyd.engine.mapreduce.runner import AgentRunner, LocalAgentRunner


class Executors:
    def __init__(self, pool: WorktreePool, default: ExecutorConfig) -> None:
        self.pool = pool
        self._local: LocalAgentRunner | None = None
        self.default = default
        self._dask: dict[tuple[str, str | None], DaskAgentRunner] = {}  # (address, shared)

    @property
    def local(self) -> LocalAgentRunner:
        """The daemon's own runner, made with the first job (the engine is not imported
        before: the daemon's `ready` does not wait for it)."""
        if self._local is None:
            from prodigyd.engine.mapreduce.runner import LocalAgentRunner

            self._local = LocalAgentRunner(self.pool)
        return self._local

    def resolve(self, chosen: ExecutorConfig | None) -> ExecutorConfig:
        """The job's choice over the daemon's `[executor]`; a ProdigyError before the job
        starts when it cannot work (a dask executor without an address or without Dask, a
        shared repository not named). The job chooses where its agents run, never how the
        repository travels: `shipping` and `repository` are always the daemon's."""
        default = self.default
        if chosen is None:
            effective = default
        else:
            address = chosen.address
            if address is None and default.kind == chosen.kind:
                address = default.address
            effective = default.model_copy(update={"kind": chosen.kind, "address": address})
        if effective.kind == "dask":
            _check_shipping(effective)
            if effective.address is None:
                raise ProdigyError(
                    "executor dask has no scheduler address",
                    hint="set [executor] address (prodigyctl config set executor.address "
                    "tcp://HOST:8786) or pass --executor-address",
                    code=errorcodes.EXECUTOR,
                )
            if not ADDRESS.match(effective.address):
                raise ProdigyError(
                    f"executor address {effective.address!r} is not a Dask scheduler address",
                    hint="give it as tcp://HOST:PORT (a scheduler listens on port 8786 unless "
                    "told otherwise)",
                    code=errorcodes.EXECUTOR,
                )
            if importlib.util.find_spec("distributed") is None:
                raise ProdigyError(
                    "executor dask needs Dask distributed, which is not installed",
                    hint="pip install 'prodigy[dask]'",
                    code=errorcodes.EXECUTOR,
                )
        return effective

    def runner(self, chosen: ExecutorConfig | None) -> AgentRunner:
        effective = self.resolve(chosen)
        if effective.kind == "local" or effective.address is None:
            return self.local
        shared = effective.repository if effective.shipping == "shared" else None
        runner = self._dask.get((effective.address, shared))
        if runner is None:
            from prodigyd.engine.mapreduce.dask_runner import DaskAgentRunner

            runner = DaskAgentRunner(effective.address, shared=Path(shared) if shared else None)
            self._dask[(effective.address, shared)] = runner
        return runner

    async def close(self) -> None:
        for runner in self._dask.values():
            await runner.close()
        self._dask.clear()


def _check_shipping(executor: ExecutorConfig) -> None:
    """`shipping = "shared"` needs `repository`: an absolute path (the daemon and every
    worker resolve it alike; a relative one would name a different place on each)."""
    if executor.shipping != "shared":
        return
    if executor.repository is None:
        raise ProdigyError(
            "executor shipping shared has no repository",
            hint="set [executor] repository to a bare repository's path that the daemon and "
            "every worker can read and write (prodigyctl config set executor.repository "
            "/shared/prodigy.git), or set executor.shipping bundle",
            code=errorcodes.EXECUTOR,
        )
    if not Path(executor.repository).is_absolute():
        raise ProdigyError(
            f"executor repository {executor.repository!r} is not an absolute path",
            hint="give the shared bare repository's full path, the same on the daemon's "
            "machine and every worker",
            code=errorcodes.EXECUTOR,
        )
