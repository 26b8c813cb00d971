"""Which executor a job gets: its own choice over `[executor]`, refused before it starts
when it cannot work, and Dask loaded only for a job that uses it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from prodigyd.config import ExecutorConfig
from prodigyd.engine.mapreduce.executors import Executors
from prodigyd.errors import ProdigyError
from prodigyd.pool import WorktreePool

DASK = ExecutorConfig(kind="dask", address="tcp://127.0.0.1:8786")


def test_a_job_choice_beats_the_config_and_takes_its_address():
    local = Executors(WorktreePool(), ExecutorConfig())
    assert local.resolve(None) == ExecutorConfig()
    assert local.resolve(DASK) == DASK
    configured = Executors(WorktreePool(), DASK)
    assert configured.resolve(None) == DASK
    assert configured.resolve(ExecutorConfig(kind="dask")) == DASK  # the config's address
    assert configured.resolve(ExecutorConfig(kind="local")) == ExecutorConfig()
    assert configured.runner(ExecutorConfig(kind="local")) is configured.local
    assert configured.runner(None) is configured.runner(DASK)  # one per address


def test_dask_without_an_address_is_refused_with_the_way_out():
    with pytest.raises(ProdigyError) as caught:
        Executors(WorktreePool(), ExecutorConfig()).resolve(ExecutorConfig(kind="dask"))
    assert caught.value.message == "executor dask has no scheduler address"
    assert "--executor-address" in (caught.value.hint or "")


def test_the_daemon_loads_no_dask_until_a_job_needs_it():
    probe = (
        "import sys, prodigyd.main, prodigyd.scheduler, prodigyd.engine.mapreduce.executors; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('distributed', 'dask')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
