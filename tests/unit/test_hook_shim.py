"""The hook shim, hooks/prodigy-hook, run by real git through the real sh: where it puts its
spool entry and looks for the daemon (paths.py's rules), what environment it keeps, what
HEAD it records, and that a burst of commits with no daemon starts one. No daemon runs
here: the shim is installed with a stand-in for prodigyd that records how it was started."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prodigyctl.commands import hooks, service
from prodigyd import paths
from prodigyd.git.cli import REPO_PINNING_VARS
from prodigyd.main import PROCESS_NAME
from prodigyd.watch import spool
from tests.cli import ctl
from tests.gitutil import commit_files, git, make_repo

ROOT = Path(__file__).parents[2]
SECRET = "aws-secret-0123456789abcdef"


class FakeDaemon:
    """A stand-in for prodigyd: records each start (`<pid> <args>`) and stays alive, as a
    daemon still getting ready does, until the test ends."""

    def __init__(self, folder: Path) -> None:
        self.calls = folder / "daemon-calls"
        self.script = folder / "fake-prodigyd"
        self.script.write_text(f'#!/bin/sh\necho "$$ $*" >> {self.calls}\nexec sleep 60\n')
        self.script.chmod(0o755)

    def starts(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def stop(self) -> None:
        for line in self.starts():
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeDaemon]:
    daemon = FakeDaemon(tmp_path)
    yield daemon
    daemon.stop()


@pytest.fixture
def hooked(repo: Path, fake: FakeDaemon) -> Path:
    assert hooks.install(path=str(repo), as_json=True, _daemon=[str(fake.script)]) == 0
    return repo


@pytest.fixture
def alive(isolated: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A live process whose pid stands for a running daemon's: named as prodigyd names
    itself (a process's name is its program file's)."""
    named = tmp_path / PROCESS_NAME
    named.symlink_to(shutil.which("sleep") or "/bin/sleep")
    with subprocess.Popen([str(named), "60"]) as proc:
        yield proc
        with contextlib.suppress(FileNotFoundError):
            paths.pid_file().unlink()  # before conftest looks for a leaked daemon
        proc.kill()


def daemon_running(proc: subprocess.Popen[bytes]) -> None:
    """Make the shim see a live daemon: a pid file (where paths.py says) with a live pid."""
    paths.pid_file().parent.mkdir(parents=True, exist_ok=True)
    paths.pid_file().write_text(f"{proc.pid}\n")


def entries() -> list[Path]:
    return sorted(paths.spool_dir().glob("*.event")) if paths.spool_dir().exists() else []


def wait_for_starts(fake: FakeDaemon, count: int) -> list[str]:
    """The background start is the hook's last act; it may land just after git returns."""
    deadline = time.monotonic() + 30
    while len(fake.starts()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return fake.starts()


def test_the_shim_passes_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    done = subprocess.run(
        ["shellcheck", "--shell=sh", str(hooks.SHIM_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_the_installed_hooks_are_the_shipped_file_with_this_prodigyd(repo: Path):
    assert hooks.SHIM_FILE.resolve() == ROOT / "hooks" / "prodigy-hook"
    ctl("hooks", "install", cwd=repo, check=True)
    shipped = (ROOT / "hooks" / "prodigy-hook").read_text()
    daemon = service.daemon_argv()[0]
    for name in spool.HOOKS:
        installed = (repo / ".git" / "hooks" / name).read_text()
        assert installed == shipped.replace(
            hooks.DAEMON_LINE, f'run_prodigyd() {{ exec {daemon} "$@"; }}'
        ).replace(hooks.HOME_LINE, f"installed_home={paths.home()}")  # PRODIGY_HOME is set
        assert os.access(repo / ".git" / "hooks" / name, os.X_OK)
    assert "prodigy-hook" in (ROOT / "pyproject.toml").read_text()  # shipped as package data


def test_the_daemon_start_drops_every_repository_pinning_variable():
    text = hooks.SHIM_FILE.read_text()
    unset = re.search(r"^unset (GIT_(?:[A-Z_ ]|\\\n)+)$", text, re.MULTILINE)
    assert unset is not None
    assert set(unset.group(1).replace("\\\n", " ").split()) >= REPO_PINNING_VARS


@pytest.mark.parametrize(
    "setting",
    [
        {"PRODIGY_HOME": "abs"},
        {"PRODIGY_HOME": "~/under-home"},
        {"PRODIGY_HOME": "relative/home"},
        {"PRODIGY_HOME": None},
        {"PRODIGY_HOME": None, "XDG_RUNTIME_DIR": "runtime"},
        {"PRODIGY_HOME": "abs", "XDG_RUNTIME_DIR": "runtime"},
    ],
    ids=["absolute", "tilde", "relative", "unset", "xdg-runtime", "home-beats-xdg"],
)
def test_the_shim_finds_the_spool_and_the_daemon_where_paths_says(
    hooked: Path,
    fake: FakeDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: dict[str, str | None],
    alive: subprocess.Popen[bytes],
):
    """The spool entry lands in paths.spool_dir(), and a pid file at paths.pid_file() with
    a live pid means no start, under the same environment (installed and committing), from
    the hook's folder."""
    for name, value in setting.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(
                name, str(tmp_path / value) if value in ("abs", "runtime") else value
            )
    monkeypatch.chdir(hooked)  # git runs a hook at the worktree's top: a relative home is there
    assert hooks.install(path=str(hooked), as_json=True, _daemon=[str(fake.script)]) == 0
    daemon_running(alive)
    commit_files(hooked, {"a.txt": "a\n"}, "one")
    [entry] = entries()
    assert spool.read(entry).head == git(hooked, "rev-parse", "HEAD").strip()
    assert fake.starts() == []
    paths.pid_file().unlink()
    commit_files(hooked, {"b.txt": "b\n"}, "two")
    [started] = wait_for_starts(fake, 1)
    pid, _ = paths.hook_start_file().read_text().split()
    assert started.split() == [pid, "--detach"]


def test_a_commit_without_prodigy_home_uses_the_home_the_hooks_were_installed_with(
    hooked: Path, fake: FakeDaemon, isolated: Path, monkeypatch: pytest.MonkeyPatch
):
    """Installed with PRODIGY_HOME set (`hooked` is), a commit from an environment without
    it (an editor's) reaches that home: its spool, and the daemon started for it, where a
    second store on ~/.prodigy took the job out of sight."""
    monkeypatch.delenv("PRODIGY_HOME")
    monkeypatch.setenv("HOME", str(isolated.parent / "elsewhere"))
    commit_files(hooked, {"a.txt": "a\n"}, "one")
    assert [e.parent for e in (isolated / "spool").glob("*.event")] == [isolated / "spool"]
    [started] = wait_for_starts(fake, 1)
    assert started.split()[1:] == ["--detach"]
    assert (isolated / "prodigyd.hook-start").exists()  # the daemon's folder is that home's


def test_status_calls_hooks_installed_for_another_home_installed(
    repo: Path, monkeypatch: pytest.MonkeyPatch
):
    """The home a hook keeps is the one `install` ran with: `status` run without it (or
    with another) must not call the hook outdated, whose advice would drop that home."""
    assert hooks.install(path=str(repo), as_json=True) == 0  # with this test's PRODIGY_HOME
    monkeypatch.delenv("PRODIGY_HOME")
    assert hooks.status(path=str(repo), as_json=True) == 0


def test_a_burst_of_commits_with_no_daemon_starts_one(hooked: Path, fake: FakeDaemon):
    for number in range(5):
        commit_files(hooked, {"a.txt": f"{number}\n"}, f"commit {number}")
    assert len(entries()) == 5  # every event waits for the daemon
    time.sleep(0.5)  # a second start would have been spawned by now
    assert len(wait_for_starts(fake, 1)) == 1


def test_a_later_commit_of_a_burst_writes_nothing_but_its_spool_entry(
    hooked: Path, fake: FakeDaemon, alive: subprocess.Popen[bytes]
):
    """A daemon a hook started is getting ready: the next commit's hook leaves its marker
    as it is (the start sees the commit by the spool entry); rewriting it cost ~5 ms."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    marker = paths.hook_start_file()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{alive.pid} {int(uptime)}\n")
    before = marker.stat().st_mtime_ns
    commit_files(hooked, {"a.txt": "a\n"}, "one")
    assert len(entries()) == 1
    assert (marker.read_text(), marker.stat().st_mtime_ns) == (
        f"{alive.pid} {int(uptime)}\n",
        before,
    )
    assert fake.starts() == []


def test_a_burst_of_over_a_minute_starts_one_daemon(hooked: Path, fake: FakeDaemon):
    """The marker's time is kept fresh by the start while the burst lasts: a commit a
    minute after the burst's first still sees the daemon getting ready. (A marker made
    58 s older stands for the minute.)"""
    marker = paths.hook_start_file()
    commit_files(hooked, {"a.txt": "0\n"}, "first")
    pid, since = marker.read_text().split()
    marker.write_text(f"{pid} {int(since) - 58}\n")
    commit_files(hooked, {"a.txt": "1\n"}, "the burst goes on")
    deadline = time.monotonic() + 30
    while int(marker.read_text().split()[1]) < int(since) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert int(marker.read_text().split()[1]) >= int(since), "the start kept it fresh"
    while float(Path("/proc/uptime").read_text().split()[0]) < int(since) + 2:
        time.sleep(0.01)  # past the planted marker's minute
    commit_files(hooked, {"a.txt": "2\n"}, "a minute on")
    assert len(entries()) == 3
    [started] = wait_for_starts(fake, 1)
    time.sleep(1.5)  # a second start, after its own quiet second, would be there by now
    assert fake.starts() == [started]
    assert started.split() == [pid, "--detach"]


def test_a_stale_pid_file_naming_another_live_process_does_not_stop_the_start(
    hooked: Path, fake: FakeDaemon
):
    """After a kill -9 or a reboot, the pid file may name a live process that is not
    prodigyd: the hook starts a daemon all the same, or its event would wait in the spool
    for whatever starts one next."""
    with subprocess.Popen(["sleep", "60"]) as other:
        try:
            daemon_running(other)
            commit_files(hooked, {"a.txt": "a\n"}, "one")
            assert len(wait_for_starts(fake, 1)) == 1
        finally:
            paths.pid_file().unlink()
            other.kill()


def test_a_daemon_killed_and_not_yet_reaped_is_not_taken_for_a_running_one(
    hooked: Path, fake: FakeDaemon
):
    """A prodigyd a kill -9 ended stays a zombie until its parent reaps it (a container's
    PID 1 may never): kill -0 answers for it, its /proc/PID/stat says Z."""
    zombie = subprocess.Popen(["sh", "-c", "printf prodigyd >/proc/self/comm; exit 0"])
    try:
        state = ""
        while state != "Z":  # it renamed itself and exited; nobody has reaped it yet
            state = Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(") ", 1)[1][0]
        assert Path(f"/proc/{zombie.pid}/comm").read_text() == "prodigyd\n"
        daemon_running(zombie)
        commit_files(hooked, {"a.txt": "a\n"}, "one")
        assert len(wait_for_starts(fake, 1)) == 1
    finally:
        paths.pid_file().unlink()
        zombie.wait()


@pytest.mark.parametrize("marker", ["dead", "old", "garbage"])
def test_a_stale_start_marker_does_not_stop_the_next_start(
    hooked: Path, fake: FakeDaemon, marker: str, alive: subprocess.Popen[bytes]
):
    """The marker holds the daemon a hook started and when; once that daemon died, or a
    minute has passed (its pid may be someone else's by then), the next hook starts one."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    paths.hook_start_file().parent.mkdir(parents=True, exist_ok=True)
    paths.hook_start_file().write_text(
        {
            "dead": f"{dead.pid} {int(uptime)}\n",
            "old": f"{alive.pid} {int(uptime) - 61}\n",
            "garbage": "$(touch pwned) 1x\n",
        }[marker]
    )
    commit_files(hooked, {"a.txt": "a\n"}, "one")
    assert len(wait_for_starts(fake, 1)) == 1
    assert not (hooked / "pwned").exists()


def _env_file(entry: Path) -> bytes:
    return entry.with_suffix(".env").read_bytes()


def test_the_spool_keeps_the_environment_a_job_needs_and_no_other(
    hooked: Path, alive: subprocess.Popen[bytes]
):
    daemon_running(alive)
    note = "two\nexport AWS_SECRET_ACCESS_KEY='x'\nlines"
    env = {
        **os.environ,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "GITHUB_TOKEN": "ghp-0123456789",
        "MY_TOKEN": "mine-0123456789",
        "NOTE": note,
        "PRODIGY_HOOK_ENV": "MY_TOKEN  NOTE UNSET_ONE $(touch${IFS}pwned) A-B * 9X",
        "LC_TIME": "C",
        "SSH_AUTH_SOCK": "/tmp/agent.sock",
        "GIT_AUTHOR_DATE": "2001-02-03T04:05:06",
    }
    (hooked / "GITHUB_TOKEN").write_text("a file `*` must not be globbed into\n")
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=hooked, env=env, check=True
    )
    [entry] = entries()
    kept = spool.read(entry).env
    assert {
        k: kept[k]
        for k in (
            "MY_TOKEN",
            "NOTE",
            "LC_TIME",
            "SSH_AUTH_SOCK",
            "HOME",
            "GIT_AUTHOR_NAME",
            "PRODIGY_HOME",
        )
    } == {
        "MY_TOKEN": "mine-0123456789",
        "NOTE": note,
        "LC_TIME": "C",
        "SSH_AUTH_SOCK": "/tmp/agent.sock",
        "HOME": os.environ["HOME"],
        "GIT_AUTHOR_NAME": os.environ["GIT_AUTHOR_NAME"],
        "PRODIGY_HOME": os.environ["PRODIGY_HOME"],
    }
    assert kept["PATH"].endswith(os.environ["PATH"])  # git puts its own folder first
    for gone in (
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "GIT_AUTHOR_DATE",
        "GIT_INDEX_FILE",
        "GIT_EDITOR",
        "UNSET_ONE",
    ):
        assert gone not in kept
    for part in paths.spool_dir().iterdir():
        assert SECRET.encode() not in part.read_bytes()
        assert part.stat().st_mode & 0o077 == 0  # private to the owner
    assert not (hooked / "pwned").exists()


def test_the_environment_file_keeps_each_value_byte_for_byte(
    hooked: Path, alive: subprocess.Popen[bytes]
):
    """What spool.py reads back is exactly what the hook's shell had, once each."""
    daemon_running(alive)
    odd = "tab\there 'quote' \"dq\" $dollar `tick` \\back\n\nend="
    env = {**os.environ, "ODD": odd, "EMPTY": "", "PRODIGY_HOOK_ENV": "ODD EMPTY"}
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=hooked, env=env, check=True
    )
    [entry] = entries()
    names = [item.split(b"=", 1)[0] for item in _env_file(entry).split(b"\0") if item]
    assert len(names) == len(set(names))
    kept = spool.read(entry).env
    assert kept["ODD"] == odd and kept["EMPTY"] == ""


@pytest.mark.parametrize("where", ["main", "linked worktree", "detached"])
def test_the_recorded_head_and_branch_are_gits(
    hooked: Path, tmp_path: Path, where: str, alive: subprocess.Popen[bytes]
):
    daemon_running(alive)
    target = hooked
    if where == "linked worktree":
        target = tmp_path / "linked"
        git(hooked, "worktree", "add", "-q", "-b", "topic", str(target))
    elif where == "detached":
        git(hooked, "checkout", "-q", "--detach")
    sha = commit_files(target, {"a.txt": "a\n"}, "one")
    [entry] = entries()
    event = spool.read(entry)
    assert (event.head, event.branch, event.repo) == (
        sha,
        {"main": "main", "linked worktree": "topic", "detached": None}[where],
        target,
    )


def test_a_repository_path_with_a_backslash_or_a_link_is_recorded_as_it_is(
    tmp_path: Path, fake: FakeDaemon, alive: subprocess.Popen[bytes]
):
    """The event's values are written with printf (dash's echo reads `\\c` as "stop
    here"), and a path through a link is recorded without the link: the daemon keeps
    workflow paths resolved, and a run queued from either spelling is the same run."""
    daemon_running(alive)
    real = make_repo(tmp_path / "odd\\crepo", {"README.md": "# odd\n"})
    assert hooks.install(path=str(real), as_json=True, _daemon=[str(fake.script)]) == 0
    link = tmp_path / "a link\\cname"  # echo would stop at the \\c
    link.symlink_to(real)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "via the link"],
        cwd=link,
        check=True,
        env={**os.environ, "PWD": str(link)},
    )
    [entry] = entries()
    assert "repo=" + str(link) in entry.read_text()  # git's $PWD: the link, whole
    assert spool.read(entry).repo == real


def test_a_push_of_a_packed_branch_asks_git(
    hooked: Path, tmp_path: Path, alive: subprocess.Popen[bytes]
):
    """A packed ref has no file of its own: the shim falls back on `git rev-parse`."""
    daemon_running(alive)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(hooked, "remote", "add", "origin", str(remote))
    sha = commit_files(hooked, {"a.txt": "a\n"}, "one")
    for entry in entries():
        spool.done(entry)
    git(hooked, "pack-refs", "--all")
    assert not (hooked / ".git" / "refs" / "heads" / "main").exists()
    git(hooked, "push", "-q", "origin", "main")
    [entry] = entries()
    event = spool.read(entry)
    assert (event.hook, event.head, event.branch, event.remote) == (
        "pre-push",
        sha,
        "main",
        "origin",
    )
    assert [r.local_sha for r in event.pushed] == [sha]


def test_status_calls_an_earlier_hook_outdated_and_install_replaces_it(repo: Path):
    folder = repo / ".git" / "hooks"
    folder.mkdir(exist_ok=True)
    (folder / "post-commit").write_text(
        "#!/bin/sh\n# prodigy-hook v1: installed by ...\nenv -0 > somewhere\n"
    )
    ctl("hooks", "install", cwd=repo, check=True)
    (folder / "post-commit").write_text("#!/bin/sh\n# prodigy-hook v1: installed by ...\n")
    shown = ctl("hooks", "status", cwd=repo)
    assert shown.returncode == 1
    assert "post-commit  outdated" in shown.stdout
    assert "`prodigyctl hooks install` replaces the outdated hooks" in shown.stdout
    as_json = ctl("hooks", "status", "--json", cwd=repo)
    assert as_json.returncode == 1  # as the text says it: `hooks status --json || ...`
    assert [r["state"] for r in json.loads(as_json.stdout)["hooks"]] == ["outdated", "installed"]
    installed = json.loads(ctl("hooks", "install", "--json", cwd=repo, check=True).stdout)
    assert [h["chained"] for h in installed["installed"]] == [False, False]  # ours: replaced
    assert not (folder / "post-commit.prodigy-legacy").exists()
    assert ctl("hooks", "status", cwd=repo).returncode == 0


def test_status_json_exits_1_while_a_hook_is_missing(repo: Path):
    missing = ctl("hooks", "status", "--json", cwd=repo)
    assert missing.returncode == 1
    assert {r["state"] for r in json.loads(missing.stdout)["hooks"]} == {"missing"}
    ctl("hooks", "install", cwd=repo, check=True)
    assert ctl("hooks", "status", "--json", cwd=repo).returncode == 0


@pytest.mark.parametrize("action", ["install", "status", "uninstall"])
@pytest.mark.parametrize("where", ["no such folder", "a file", "a folder outside a repository"])
def test_outside_a_repository_the_hooks_commands_say_e3001(tmp_path: Path, action: str, where: str):
    folder = tmp_path / "outside"
    folder.mkdir()
    path = {"no such folder": tmp_path / "nosuch", "a file": tmp_path / "file"}.get(where)
    (tmp_path / "file").write_text("not a repository\n")
    given = ("-p", str(path)) if path is not None else ()
    done = ctl("hooks", action, *given, cwd=folder)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error[E3001]: Not a git repository: {path or folder}\n"
        "hint: run prodigyctl from inside a git repository, or pass -p/--path REPO\n"
    )
    as_json = ctl("hooks", action, *given, "--json", cwd=folder)
    assert as_json.returncode == 2
    assert json.loads(as_json.stderr)["error"]["code"] == "E3001"


def test_install_names_core_hooks_path_and_says_what_to_add_for_anything_to_run(repo: Path):
    installed = ctl("hooks", "install", "--json", cwd=repo, check=True)
    assert json.loads(installed.stdout)["hooks_path"] is None
    workflows = repo / ".prodigy" / "workflows"
    told = ctl("hooks", "install", cwd=repo, check=True).stdout.splitlines()[-1]
    assert told == (
        f"nothing runs yet: the hooks start the workflows in {workflows}/ with `on: commit` or "
        '`on: push`, and there are none; add one (docs/workflows.md, "Triggers")'
    )
    workflows.mkdir(parents=True)
    (workflows / "lint.yml").write_text("on: commit\ncommands:\n  - shell: 'true'\n")
    told = ctl("hooks", "install", cwd=repo, check=True).stdout.splitlines()[-1]
    assert told.startswith("workflows in .prodigy/workflows/ with `on: commit` or `on: push` now")
    git(repo, "config", "core.hooksPath", "my-hooks")  # a husky's folder, committed
    refused = ctl("hooks", "install", cwd=repo)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert f"core.hooksPath is {repo / 'my-hooks'}, inside the working tree" in refused.stderr
    assert "--force" in refused.stderr and not (repo / "my-hooks").exists()
    installed = ctl("hooks", "install", "--force", "--json", cwd=repo, check=True)
    assert json.loads(installed.stdout)["hooks_path"] == str(repo / "my-hooks")
    outside = repo.parent / f"{repo.name}-hooks"  # a folder of the user's, not committed
    git(repo, "config", "core.hooksPath", str(outside))
    installed = ctl("hooks", "install", "--json", cwd=repo, check=True)
    assert json.loads(installed.stdout)["hooks_path"] == str(outside)


def test_hooks_are_not_installed_in_a_bare_repository(tmp_path: Path, isolated: Path):
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    refused = ctl("hooks", "install", "--force", "-p", str(bare))  # forced: as useless
    assert refused.returncode == 2
    assert f"{bare} is a bare repository: git runs no post-commit or pre-push" in refused.stderr
    assert "the clone you commit and push from" in refused.stderr
    assert not (bare / "hooks" / "post-commit").exists()


def test_the_docs_name_every_variable_the_hooks_keep():
    kept = re.findall(r'\$\{(\w+)\+"(\w+)=\$(\w+)"\}', hooks.SHIM_FILE.read_text())
    assert [spelled for spelled in kept if len(set(spelled)) != 1] == []  # X=$X if X is set
    names = [name for name, _, _ in kept]
    docs = (ROOT / "docs" / "workflows.md").read_text()
    assert len(names) > 60
    assert [name for name in names if f"`{name}`" not in docs] == []
