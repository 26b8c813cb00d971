"""Git hooks and `on:` triggers, against the physical floors, measured in the same run.

(a) What prodigy's post-commit shim adds to `git commit`: the same empty commit with no
    hook, with a hook that is just `exit 0` (the floor: git spawning any hook at all), and
    with the shim installed (a daemon running, so the shim starts none). Target: less than
    lefthook's 16 ms over the `exit 0` hook (lefthook adds 16-20 ms to a commit, pre-commit
    139 ms, a plain sh hook 1.5 ms: reference/peers.md). The shim's own floor is the two
    processes it must start: `git rev-parse` (the commit and branch) and `env -0` (the
    environment the triggered job will run in).
(b) `git commit` returned -> `session_queued`: the daemon noticed the spool entry, read the
    repository's triggers and submitted the workflow. The floor is a `jobs.submit` round trip
    of the same workflow over the socket, the least a trigger can cost once noticed.
    Target <= 25 ms (Watchman fires a trigger 22 ms after a write at its default settle).

The daemon, its store, the repository and HOME live in a temporary directory; the daemon
is always stopped at the end.

    python bench/hook_latency.py [--commits 40]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from submit_latency import Conn, bench_env, daemon, make_repo, ms, row, verdict

TARGET_SHIM_EXTRA_MS = 16.0
TARGET_TRIGGER_MS = 25.0

TRIGGERED = """\
on: {commit: {merge: auto}}
commands:
  - shell: "true"
"""


def timed_commits(
    repo: Path, env: dict[str, str], n: int, conn: Conn | None = None
) -> tuple[list[float], list[float]]:
    """Wall times of `n` empty commits; with `conn` (subscribed to every session), also the
    time from each commit's return to its triggered job's `session_queued`. Each job is let
    finish outside the timing, so every commit meets an idle daemon."""
    walls, queued = [], []
    for i in range(n):
        if conn is not None:
            conn.events.clear()
        started = time.perf_counter()
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", f"bench {i}"],
                       cwd=repo, env=env, check=True)  # fmt: skip
        returned = time.perf_counter()
        walls.append(returned - started)
        if conn is not None:
            queued.append(conn.wait_event("session_queued") - returned)
            conn.wait_event("session_finished")
    return walls, queued


def set_hook(repo: Path, text: str | None) -> None:
    hook = repo / ".git" / "hooks" / "post-commit"
    if text is None:
        hook.unlink(missing_ok=True)
        return
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(text)
    hook.chmod(0o755)


def submit_floor(
    conn: Conn, workflow: Path, repo: Path, env: dict[str, str], n: int
) -> list[float]:
    params = {"workflow": str(workflow), "cwd": str(repo), "env": env, "merge": "auto"}
    times = []
    for _ in range(n):
        conn.events.clear()
        started = time.perf_counter()
        conn.call("jobs.submit", params)
        times.append(time.perf_counter() - started)
        conn.wait_event("session_finished")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=40, help="commits per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root, "home")
        repo = make_repo(root, env)
        workflow = repo / ".prodigy" / "workflows" / "on-commit.yml"
        workflow.parent.mkdir(parents=True)
        workflow.write_text(TRIGGERED)
        subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", "trigger"], cwd=repo, env=env, check=True)
        ctl = [sys.executable, "-m", "prodigyctl.main"]
        with daemon(env) as sock:
            none, _ = timed_commits(repo, env, args.commits)
            set_hook(repo, "#!/bin/sh\nexit 0\n")
            plain, _ = timed_commits(repo, env, args.commits)
            set_hook(repo, None)
            subprocess.run([*ctl, "hooks", "install"], cwd=repo, env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            conn = Conn(sock)
            conn.call("events.subscribe", {})
            shim_commits, shim = timed_commits(repo, env, args.commits, conn)
            floor = submit_floor(conn, workflow, repo, env, args.commits)
            conn.close()
        print(f"python {sys.version.split()[0]}, git {git_version()}, {args.commits} commits each")
        print("(a) git commit --allow-empty wall time")
        print(row("context: no post-commit hook", none))
        print(row("floor: a post-commit hook that is `exit 0`", plain))
        print(row("prodigy's shim (daemon running)", shim_commits))
        extra = ms(shim_commits) - ms(plain)
        print(f"    ratio shim / exit-0 hook {ms(shim_commits) / ms(plain):24.2f}x")
        print(f"    target < {TARGET_SHIM_EXTRA_MS:g} ms over the floor (lefthook): "
              f"{verdict(extra, TARGET_SHIM_EXTRA_MS)}")  # fmt: skip
        print("(b) commit returned -> triggered job queued")
        print(row("floor: jobs.submit round trip", floor))
        print(row("prodigy: commit -> session_queued", shim))
        print(f"    ratio trigger / submit floor {ms(shim) / ms(floor):20.2f}x")
        print(f"    target <= {TARGET_TRIGGER_MS:g} ms (Watchman 22 ms): "
              f"{verdict(ms(shim), TARGET_TRIGGER_MS)}")  # fmt: skip


def git_version() -> str:
    done = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True,
                          env=os.environ)  # fmt: skip
    return done.stdout.split()[-1]


if __name__ == "__main__":
    main()
