"""A map phase's results reach its journal behind the workers, in finishing order, with
the results that finished while one sync ran written by the next single append and sync."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from prodigyd.engine.mapreduce.map_phase import ResultLog
from prodigyd.store import checkpoints


class GatedLog:
    """A journal whose appends wait for `open` (a slow disk) and are counted."""

    def __init__(self) -> None:
        self.appends: list[list[dict[str, Any]]] = []
        self.open = asyncio.Event()

    async def write(self, record: dict[str, Any]) -> None:
        await self.write_all([record])

    async def write_all(self, records: list[dict[str, Any]]) -> None:
        await self.open.wait()
        self.appends.append(list(records))

    async def close(self) -> None:
        pass


async def test_results_that_finish_during_a_sync_share_the_next_append():
    log, durable = GatedLog(), []
    results = ResultLog(log, durable.append)
    shown: list[int] = []
    results.add({"n": 0}, lambda: shown.append(0))
    await asyncio.sleep(0)  # its append has started and waits on the disk
    for n in range(1, 5):
        results.add({"n": n}, partial(shown.append, n))  # the workers go on meanwhile
    assert log.appends == [] and durable == [] and shown == []  # nothing shown yet
    log.open.set()
    await results.flush()
    assert log.appends == [[{"n": 0}], [{"n": n} for n in range(1, 5)]]
    assert shown == [0, 1, 2, 3, 4]  # each shown once durable
    assert durable == [[{"n": n} for n in range(1, 5)], []]  # what is still unwritten


async def test_a_failed_append_stops_new_items_and_the_flush():
    class Full(GatedLog):
        async def write_all(self, records: list[dict[str, Any]]) -> None:
            raise OSError(28, "No space left on device")

    results = ResultLog(Full(), lambda unwritten: None)
    results.add({"n": 0}, lambda: None)
    await asyncio.sleep(0)
    with pytest.raises(OSError, match="No space"):
        results.check()  # what a worker asks before it takes an item
    with pytest.raises(OSError, match="No space"):
        await results.flush()  # what ends the phase


async def test_write_all_appends_every_record_as_its_own_line(isolated: Path):
    writer = checkpoints.CheckpointWriter("mapreduce-20260101-000000-abcdef", "map")
    await writer.write({"kind": "items", "items": [1, 2, 3]})
    await writer.write_all([{"kind": "result", "n": n} for n in range(3)])
    await writer.close()
    assert list(checkpoints.records("mapreduce-20260101-000000-abcdef", "map")) == [
        {"kind": "items", "items": [1, 2, 3]},
        *({"kind": "result", "n": n} for n in range(3)),
    ]


def test_a_result_as_a_dict_has_every_field_and_shares_nothing_with_the_result():
    """`${map.results}` and the journal's records are made from `as_dict`: every field
    (as dataclasses.asdict gives them) plus `success`, in containers of its own."""
    import dataclasses

    from prodigyd.engine.mapreduce.agent import AgentResult
    from prodigyd.failure import FailureReason

    result = AgentResult(
        item_id="item_3",
        item_index=3,
        item={"path": "a.py", "tags": ["x", {"deep": 1}]},
        status="failed",
        commits=["c1"],
        files_modified=["a.py"],
        failure_reason=FailureReason.TIMEOUT,
        log_path="/logs/item_3.attempt-1.log",
    )
    data = result.as_dict()
    assert data == {**dataclasses.asdict(result), "success": False}
    data["item"]["tags"][1]["deep"] = 2
    data["commits"].append("c2")
    assert result.item["tags"][1] == {"deep": 1} and result.commits == ["c1"]
