"""Crash safety: a stream of submissions while prodigyd is `kill -9`ed at random moments.

Afterwards every acknowledged job exists exactly once (idempotency keys make retries safe)
and reaches a terminal state on its own (auto-resume), every step ran at least once, and
no step ever *started* after its completion had been recorded: a completed step never runs
again, while the step in flight at a crash may (at-least-once), as documented.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from prodigyd.store import checkpoints
from tests.cli import ctl, wait_for
from tests.daemonkit import Daemon, rpc
from tests.gitutil import git

KILLS = 50  # kill points in this test (the issue asks for at least 50 in the suite)
RESOLUTION = 0.001  # completed_at is recorded to the millisecond
STEPS = 3


def _submitter(
    home: Path, workflow: Path, repo: Path, stop: threading.Event, acked: dict[str, str]
) -> None:
    """Submit jobs back to back; retry each key until acknowledged, across crashes."""
    number = 0
    while not stop.is_set():
        key = f"crash-test-{number}"
        params = {
            "workflow": str(workflow),
            "cwd": str(repo),
            "env": dict(os.environ),
            "merge": "auto",
            "idempotency_key": key,
        }
        while not stop.is_set():
            try:
                acked[key] = rpc(home, "jobs.submit", params)["id"]
                break
            except (OSError, ValueError, RuntimeError):
                time.sleep(0.01)  # the daemon is down: try the same key again
        number += 1
        time.sleep(0.02)


def _parse_iso(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.timeout(900)
def test_kill_9_at_random_moments_loses_nothing(isolated: Path, repo: Path, tmp_path: Path):
    effects = tmp_path / "effects.log"
    step = (
        f's=$(date +%s.%N); echo "$PRODIGY_SESSION_ID {{n}} $s" >> {effects}; '
        'echo {n} > "f-$PRODIGY_SESSION_ID-{n}.txt"'
    )
    workflow = tmp_path / "wf.yml"
    workflow.write_text(
        "".join(
            f"- shell: '{step.format(n=n)}{'; git add -A; git diff --cached --quiet || git commit -qm s' + str(n) if n == 1 else ''}'\n"
            for n in range(STEPS)
        )
    )
    daemon = Daemon(isolated)
    daemon.start()
    acked: dict[str, str] = {}
    stop = threading.Event()
    submitter = threading.Thread(
        target=_submitter, args=(isolated, workflow, repo, stop, acked), daemon=True
    )
    submitter.start()
    rng = random.Random(20261125)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.0, 0.25))
            daemon.kill()
            daemon.start()
        stop.set()
        submitter.join(timeout=60)

        def all_terminal() -> bool:
            states = {
                rpc(isolated, "sessions.show", {"session_id": sid})["status"]
                for sid in acked.values()
            }
            return states <= {"completed", "failed", "cancelled"}

        try:
            wait_for(all_terminal, timeout=300, what="every acknowledged job to finish")
        except AssertionError:
            stuck = [rpc(isolated, "sessions.show", {"session_id": sid}) for sid in acked.values()]
            raise AssertionError(
                "jobs not finished: "
                + "; ".join(
                    f"{r['id']} {r['status']} {r['error']}"
                    for r in stuck
                    if r["status"] not in ("completed", "failed", "cancelled")
                )
            ) from None
    finally:
        stop.set()
        ctl("daemon", "stop")

    assert len(acked) >= KILLS // 2, "too few submissions to mean anything"
    listed = json.loads(ctl("sessions", "ls", "--json", "--limit", "10000", check=True).stdout)
    ctl("daemon", "stop", check=True)
    assert sorted(r["id"] for r in listed) == sorted(acked.values())  # each key made one job
    assert {r["status"] for r in listed} == {"completed"}
    started: dict[tuple[str, int], list[float]] = {}
    for line in effects.read_text().splitlines():
        sid, index, stamp = line.split()
        started.setdefault((sid, int(index)), []).append(float(stamp))
    for sid in acked.values():
        done = {
            s["step_index"]: _parse_iso(s["completed_at"])
            for s in checkpoints.load(sid)["completed_steps"]
        }
        assert sorted(done) == list(range(STEPS)), sid
        for index, completed_at in done.items():
            runs = started[(sid, index)]
            assert all(begun <= completed_at + RESOLUTION for begun in runs), (
                f"{sid} step {index} started again after its completion was recorded"
            )
    merged = set(git(repo, "ls-tree", "--name-only", "main").split())
    for sid in acked.values():
        assert {f"f-{sid}-{n}.txt" for n in range(STEPS)} <= merged
    assert git(repo, "status", "--porcelain") == ""
