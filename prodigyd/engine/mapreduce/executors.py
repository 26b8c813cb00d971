"""Which AgentRunner a job's map agents get: the daemon's `[executor]`, or the job's own.

A job may name its executor (`prodigyctl run --executor dask --executor-address ADDR`); the
choice is stored with the job (SessionRecord.executor), so a resume runs where the run
did unless the resume names another. What the job leaves out comes from `[executor]` in
config.toml. Setup, reduce and every merge run in the daemon whatever the choice: only map
agents go elsewhere.

The daemon keeps one runner per place: the local one (its worktree pool), and one
DaskAgentRunner per scheduler address, made when a job first needs it (so `distributed`
is imported only then, never at the daemon's start) and closed at shutdown.
"""

from __future__ import annotations

import importlib.util
import re
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
        self._dask: dict[str, DaskAgentRunner] = {}

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
        starts when it cannot work (a dask executor without an address or without Dask)."""
        if chosen is None:
            effective = self.default
        else:
            address = chosen.address
            if address is None and self.default.kind == chosen.kind:
                address = self.default.address
            effective = ExecutorConfig(kind=chosen.kind, address=address)
        if effective.kind == "dask":
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
        runner = self._dask.get(effective.address)
        if runner is None:
            from prodigyd.engine.mapreduce.dask_runner import DaskAgentRunner

            runner = self._dask[effective.address] = DaskAgentRunner(effective.address)
        return runner

    async def close(self) -> None:
        for runner in self._dask.values():
            await runner.close()
        self._dask.clear()
