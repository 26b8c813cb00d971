"""Git hooks and `on:` triggers, against the physical floors, measured in the same run.

(a) What prodigy's hooks add to `git commit`: the same empty commit with a post-commit
    hook that is just `exit 0` (the floor: git spawning any hook at all), and with the
    installed shim (hooks/prodigy-hook), in these states of the daemon:
    - idle: running, and each commit's triggered job done before the next commit;
    - busy: still handling the previous commit's spool entry (its job too) when the next
      commit comes; its floor is the `exit 0` hook with the daemon as busy (the same
      workflow submitted over the socket just before each commit);
    - down: no daemon, bursts of BURST commits in a row; the first commit's hook starts
      one, and the rest of the burst must not start another (the burst's first commits
      are also shown alone: theirs is the one hook that starts a process);
    - alone: a live pid in the pid file and no daemon: the hook's own cost, with nothing
      reacting to its entries (in the other states the daemon's work on them, as soon as
      the hook wrote one, competes with the end of the commit for the cores).
    Target (issue 15): at most 2 ms over the floor in every state. The shim starts no
    process but, with the daemon down, the daemon itself, in the background.
    Peers (with the daemon idle, in the same turns as the floor and the shim): lefthook
    (npm, a temporary prefix) and pre-commit (pip, a temporary venv), each installed as the
    repository's post-commit hook with one command that is `true` (pre-commit: a `local`,
    `language: system` hook, always run), after one warm-up commit each.
(b) `git commit` returned -> `session_queued`: the daemon noticed the spool entry, read the
    repository's triggers and submitted the workflow. The floor is a `jobs.submit` round trip
    of the same workflow over the socket, the least a trigger can cost once noticed.
    Target <= 25 ms (Watchman fires a trigger 22 ms after a write at its default settle).

The daemon, its store, the repository and HOME live in a temporary directory; every
daemon (the one started here, and the ones the hooks start) is stopped at the end.

    python bench/hook_latency.py [--commits 40] [--burst 15] [--loop uvloop] [--peers]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchkit import Peer, Row, add_common_args, emit
from peers import Peers
from submit_latency import Conn, bench_env, daemon, make_repo, ms, row, verdict

TARGET_SHIM_EXTRA_MS = 2.0
TARGET_TRIGGER_MS = 25.0
EXIT_0 = "#!/bin/sh\nexit 0\n"
#: Seconds for a finished job's clean-up (its worktree reset for the pool) to end.
IDLE_PAUSE = 0.2

# merge: never, so that no job moves the branch the benchmark commits to.
TRIGGERED = """\
on: {commit: {merge: never}}
commands:
  - shell: "true"
"""


def commit(repo: Path, env: dict[str, str], message: str) -> float:
    """The wall time of one empty commit (what its hook prints goes nowhere, as in a GUI)."""
    started = time.perf_counter()
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", message],
        cwd=repo,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


#: Which hook each measurement runs: the floor's and prodigy's, taking turns commit by
#: commit (burst by burst with the daemon down), so that both meet the same load.
Walls = dict[str, list[float]]


LEFTHOOK = """\
post-commit:
  commands:
    noop:
      run: "true"
"""

PRE_COMMIT = """\
repos:
  - repo: local
    hooks:
      - id: noop
        name: noop
        entry: "true"
        language: system
        stages: [post-commit]
        always_run: true
        pass_filenames: false
"""


def peer_hooks(repo: Path, env: dict[str, str], peers: Peers) -> dict[str, str]:
    """The post-commit hook each installable peer writes, configured to run `true`; the
    repository's own hook is put back afterwards. Each gets a warm-up commit."""
    hooks: dict[str, str] = {}
    hook = repo / ".git" / "hooks" / "post-commit"
    ours = hook.read_text()
    setups = {
        "lefthook": ("lefthook.yml", LEFTHOOK, ["install"]),
        "pre-commit": (".pre-commit-config.yaml", PRE_COMMIT, ["install", "-t", "post-commit"]),
    }
    for name, (config, text, install) in setups.items():
        binary = peers.get(name)
        if binary is None:
            continue
        set_hook(repo, EXIT_0)  # prodigy's hook would start a daemon on this commit
        (repo / config).write_text(text)
        subprocess.run(["git", "add", config], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", f"{name} config"], cwd=repo, env=env, check=True)
        hook.unlink()
        done = subprocess.run(
            [str(binary), *install], cwd=repo, env=env, capture_output=True, text=True
        )
        if done.returncode != 0 or not hook.exists():
            print(f"  peer {name}: skipped (install failed: {done.stderr.strip()[-200:]})")
        else:
            hooks[name] = hook.read_text()
            commit(repo, env, f"{name} warm-up")
        set_hook(repo, ours)
    return hooks


def idle_commits(
    repo: Path, env: dict[str, str], n: int, hooks: dict[str, str], conn: Conn
) -> tuple[Walls, list[float]]:
    """Wall times of `n` commits per hook, and for prodigy's the time from each commit's
    return to its triggered job's `session_queued`. Each job is let finish outside the
    timing, and its worktree go back to the pool (IDLE_PAUSE, for the floor too), so every
    commit meets an idle daemon."""
    walls: Walls = {kind: [] for kind in hooks}
    queued = []
    for i in range(n):
        for kind, text in hooks.items():
            set_hook(repo, text)
            conn.events.clear()
            time.sleep(IDLE_PAUSE)
            walls[kind].append(commit(repo, env, f"idle {i}"))
            returned = time.perf_counter()
            if kind == "shim":
                queued.append(conn.wait_event("session_queued") - returned)
                conn.wait_event("session_finished")
    return walls, queued


def busy_commits(
    repo: Path,
    env: dict[str, str],
    n: int,
    hooks: dict[str, str],
    conn: Conn,
    submit: dict[str, object],
) -> Walls:
    """Wall times of `n` commits per hook, each made as soon as the daemon has handled the
    previous commit's spool entry, while it is still on that entry's job: the entry queued
    a run, or (a run of the workflow on the branch still queued) was coalesced into it, so
    waiting for `session_queued` would wait forever. For the floor (a hook that triggers
    nothing) that job is submitted over the socket just before the commit instead."""
    spool = Path(env["PRODIGY_HOME"]) / "spool"
    walls: Walls = {kind: [] for kind in hooks}
    for i in range(n):
        for kind, text in hooks.items():
            set_hook(repo, text)
            if kind == "floor":
                conn.call("jobs.submit", submit)
            walls[kind].append(commit(repo, env, f"busy {i}"))
            while any(spool.glob("*.event")):
                time.sleep(0.002)
    settle(conn, Path(env["PRODIGY_HOME"]))
    return walls


def settle(conn: Conn, home: Path) -> None:
    """Wait until the spool is empty and no job is queued or running."""
    while True:
        jobs = conn.call("sessions.list", {"limit": 10_000})
        active = [job for job in jobs if job["status"] in ("queued", "running")]
        if not active and not any((home / "spool").glob("*.event")):
            return
        time.sleep(0.05)


def down_commits(
    repo: Path, env: dict[str, str], rounds: int, burst: int, hooks: dict[str, str]
) -> tuple[Walls, Walls]:
    """Wall times of `rounds` bursts of `burst` commits per hook, each burst begun with no
    daemon running, and those of each burst's first commit (the one whose hook starts the
    daemon) alone. A daemon a hook started is stopped after its burst (and waited for).
    The hooks take turns burst by burst, in turns first, so that neither always follows
    the other's burst (and the stop of its daemon)."""
    walls: Walls = {kind: [] for kind in hooks}
    firsts: Walls = {kind: [] for kind in hooks}
    for r in range(rounds):
        for kind in list(hooks) if r % 2 == 0 else reversed(hooks):
            set_hook(repo, hooks[kind])
            try:
                times = [commit(repo, env, f"down {r}.{i}") for i in range(burst)]
            finally:
                stop_hook_daemon(Path(env["PRODIGY_HOME"]))
            walls[kind].extend(times)
            firsts[kind].append(times[0])
    return walls, firsts


def alone_commits(repo: Path, env: dict[str, str], n: int, hooks: dict[str, str]) -> Walls:
    """Wall times of `n` commits per hook with a live pid in the pid file and no daemon
    behind it: the hook does all it does with a daemon running, and nothing reacts."""
    home = Path(env["PRODIGY_HOME"])
    home.mkdir(exist_ok=True)
    walls: Walls = {kind: [] for kind in hooks}
    with subprocess.Popen(["sleep", "600"]) as stand_in:
        (home / "prodigyd.pid").write_text(f"{stand_in.pid}\n")
        try:
            for i in range(n):
                for kind, text in hooks.items():
                    set_hook(repo, text)
                    walls[kind].append(commit(repo, env, f"alone {i}"))
        finally:
            (home / "prodigyd.pid").unlink()
            stand_in.kill()
    return walls


def stop_hook_daemon(home: Path) -> None:
    """SIGTERM the daemon a hook started (once it says it listens) and wait for it to go."""
    pid_file, deadline = home / "prodigyd.pid", time.monotonic() + 60
    while not pid_file.exists():
        if time.monotonic() > deadline or not alive(home / "prodigyd.hook-start"):
            return  # no hook started one, or it is gone
        time.sleep(0.01)
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)


def alive(hook_start: Path) -> bool:
    """Whether the daemon a hook started (`<pid> <uptime>`) is still running."""
    try:
        os.kill(int(hook_start.read_text().split()[0]), 0)
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return False
    return True


def set_hook(repo: Path, text: str) -> None:
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(text)
    hook.chmod(0o755)


def install_hooks(repo: Path, env: dict[str, str]) -> str:
    """`prodigyctl hooks install`; returns the installed post-commit, to put back later."""
    ctl = [sys.executable, "-m", "prodigyctl.main"]
    subprocess.run(
        [*ctl, "hooks", "install"], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL
    )
    return (repo / ".git" / "hooks" / "post-commit").read_text()


def submit_floor(conn: Conn, params: dict[str, object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        conn.events.clear()
        started = time.perf_counter()
        conn.call("jobs.submit", params)
        times.append(time.perf_counter() - started)
        conn.wait_event("session_finished")
    return times


@contextlib.contextmanager
def bench_repo(loop: str) -> Iterator[tuple[Path, dict[str, str], dict[str, object]]]:
    """A repository with a triggered workflow, its environment, and the submission that
    runs that workflow as a trigger would."""
    with tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root, "home", loop)
        env["PRODIGY_TRIGGERS__MAX_RUNS"] = "0"  # more runs a minute than the default 10
        repo = make_repo(root, env)
        workflow = repo / ".prodigy" / "workflows" / "on-commit.yml"
        workflow.parent.mkdir(parents=True)
        workflow.write_text(TRIGGERED)
        subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", "trigger"], cwd=repo, env=env, check=True)
        params = {"workflow": str(workflow), "cwd": str(repo), "env": env, "merge": "never"}
        try:
            yield repo, env, params
        finally:
            stop_hook_daemon(Path(env["PRODIGY_HOME"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=40, help="commits per measurement")
    parser.add_argument("--burst", type=int, default=15, help="commits in a row, daemon down")
    add_common_args(parser)
    args = parser.parse_args()
    n = args.commits
    rounds = 2 * math.ceil(n / (2 * args.burst))  # even: each hook's bursts go first as often
    results: dict[str, Walls] = {}
    with bench_repo(args.loop) as (repo, env, params):
        hooks = {"floor": EXIT_0, "shim": install_hooks(repo, env)}
        peers = peer_hooks(repo, env, Peers(args, Path(env["HOME"])))
        with daemon(env) as sock:
            conn = Conn(sock)
            conn.call("events.subscribe", {})
            results["idle"], queued = idle_commits(repo, env, n, {**hooks, **peers}, conn)
            results["busy"] = busy_commits(repo, env, n, hooks, conn, params)
            floor = submit_floor(conn, params, n)
            conn.close()
        results["down"], results["first"] = down_commits(repo, env, rounds, args.burst, hooks)
        results["alone"] = alone_commits(repo, env, n, hooks)
    report(args, rounds, results, queued, floor)


def report(
    args: argparse.Namespace,
    rounds: int,
    results: dict[str, Walls],
    queued: list[float],
    floor: list[float],
) -> None:
    print(
        f"python {sys.version.split()[0]}, git {git_version()}, {args.commits} commits each "
        f"(daemon down: {rounds} bursts of {args.burst})"
    )
    print("(a) git commit --allow-empty wall time, post-commit hook `exit 0` vs prodigy's")
    states = {
        "alone": "the hook alone (nothing reads the spool)",
        "idle": "daemon idle",
        "busy": "daemon busy with the last commit",
        "down": "daemon down (a hook starts one)",
        "first": "daemon down, a burst's first commit",
    }
    worst, worst_state = -math.inf, "idle"
    for state, label in states.items():
        plain, shim = results[state]["floor"], results[state]["shim"]
        print(row(f"floor, {label}", plain))
        print(row(f"shim, {label}", shim))
        extra = ms(shim) - ms(plain)
        if extra > worst:
            worst, worst_state = extra, state
        print(
            f"    ratio shim / exit-0 hook ({state}) {ms(shim) / ms(plain):17.2f}x "
            f"({extra:+.2f} ms)"
        )
    idle = results["idle"]
    for name in idle.keys() - {"floor", "shim"}:
        print(row(f"peer {name}, daemon idle", idle[name]))
    emit(
        Row(
            key="hook",
            metric="hook added to `git commit`, daemon idle",
            unit="ms",
            prodigy=ms(idle["shim"]),
            floor=ms(idle["floor"]),
            floor_label="`git commit` with an `exit 0` hook",
            target=TARGET_SHIM_EXTRA_MS,
            over=True,
            loop=args.loop,
            peers=[
                Peer(name, ms(idle[name]), "`git commit` with its hook running `true`")
                for name in sorted(idle.keys() - {"floor", "shim"})
            ],
        )
    )
    emit(
        Row(
            key="hook_worst",
            metric=f"hook added to `git commit`, worst state ({worst_state})",
            unit="ms",
            prodigy=ms(results[worst_state]["shim"]),
            floor=ms(results[worst_state]["floor"]),
            floor_label="`git commit` with an `exit 0` hook, same state",
            target=TARGET_SHIM_EXTRA_MS,
            over=True,
            loop=args.loop,
        )
    )
    print("(b) commit returned -> triggered job queued")
    print(row("floor: jobs.submit round trip", floor))
    print(row("prodigy: commit -> session_queued", queued))
    print(f"    ratio trigger / submit floor {ms(queued) / ms(floor):20.2f}x")
    print(
        f"    target <= {TARGET_TRIGGER_MS:g} ms (Watchman 22 ms): "
        f"{verdict(ms(queued), TARGET_TRIGGER_MS)}"
    )


def git_version() -> str:
    done = subprocess.run(
        ["git", "--version"], capture_output=True, text=True, check=True, env=os.environ
    )
    return done.stdout.split()[-1]


if __name__ == "__main__":
    main()
