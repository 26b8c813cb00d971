"""One real Dask cluster (a scheduler and two workers on 127.0.0.1) for the whole run of
these tests: it starts in about a second, and is stopped and reaped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dask.cluster import Cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        running.add_worker()
        running.add_worker()
        yield running
    finally:
        running.close()


@pytest.fixture
def two_workers(cluster: Cluster) -> Cluster:
    """The cluster with two workers (a test before may have killed one)."""
    while len(cluster.workers) < 2:
        cluster.add_worker()
    return cluster


def scratch(tmp_path: Path) -> Path:
    folder = tmp_path / "scratch"
    folder.mkdir(exist_ok=True)
    return folder
