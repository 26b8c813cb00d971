"""The retention policy: what the store stops keeping, so an always-on daemon never fills
the disk (`[retention]` in config.toml, docs/config.md; `prodigyctl clean`).

What it removes:

- sessions over for good (`completed`, `cancelled`) last changed more than `max_age_days`
  ago, and those that could still go on (`failed`, `interrupted`, `awaiting_merge`) past
  the longer `resumable_max_age_days`; `queued` and `running` ones never. Then, while all
  sessions' files together take more than `max_total_mb`, the oldest finished ones (never
  a resumable one: it waits for its own expiry). A session goes whole (store/removals.py):
  its row, events, checkpoints, agent and Claude stream logs and lock; the worktrees the
  pool kept for it go back to the pool's collector, its branch stays (the collector deletes
  it when merged elsewhere, and reports it when not);
- never a session with dead letters (they leave only through `dlq retry` or `dlq purge`),
  nor one a kept `dlq retry` job still needs (it reads its setup and arguments);
- crash logs and rejected spool entries older than `max_age_days`; workflows submitted as
  text that no session refers to any more; `prodigyd.out` past `daemon_log_mb` is cut to
  its newest half (`prodigyd.log` rotates itself at that size: main.py).

The daemon applies it a short while after it starts (FIRST_PASS_SECONDS: a pass reads
every job, which must not hold up the first requests of a daemon just started; what a
crash cut off is finished at once) and every `interval_secs`, and `retention.clean` on
request. Everything that reads or walks files runs in a worker thread; the journal is read
and written on the event loop, each batch's choice and removal with no `await` between
them, so nothing the daemon does meanwhile (a resume, a dead letter) slips in between.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prodigyd import paths
from prodigyd.config import RetentionConfig
from prodigyd.errors import NoSpace
from prodigyd.store import aside, removals
from prodigyd.store import sessions as session_store
from prodigyd.store.removals import Job
from prodigyd.store.sessions import Status

log = logging.getLogger("prodigyd.retention")

DAY = 86400.0
MB = 1024 * 1024

#: Sessions removed per journal transaction; the loop is free again between two batches.
BATCH = 200

#: A workflow submitted as text is kept this long after its last submission even when no
#: session refers to it: a submission stores it a moment before its job is recorded.
INLINE_GRACE_SECONDS = 3600.0

FINISHED = frozenset({Status.COMPLETED.value, Status.CANCELLED.value})
RESUMABLE = frozenset({Status.FAILED.value, Status.INTERRUPTED.value, Status.AWAITING_MERGE.value})


@dataclass(frozen=True)
class Policy:
    """`[retention]` in seconds and bytes; None where a limit is off."""

    max_age: float | None = 30 * DAY
    resumable_max_age: float | None = 90 * DAY
    max_total_bytes: int | None = 2048 * MB
    daemon_log_bytes: int | None = 10 * MB
    interval: float | None = 3600.0

    @classmethod
    def from_config(cls, section: RetentionConfig) -> Policy:
        return cls(
            max_age=section.max_age_days * DAY or None,
            resumable_max_age=section.resumable_max_age_days * DAY or None,
            max_total_bytes=int(section.max_total_mb * MB) or None,
            daemon_log_bytes=int(section.daemon_log_mb * MB) or None,
            interval=section.interval_secs or None,
        )


# -- what the store holds ---------------------------------------------------------------


@dataclass
class Measured:
    """Bytes of each session's files, and of each kind of data the store holds."""

    by_session: dict[str, int] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    #: The sessions with a folder of events or checkpoints: what the journal must know.
    folders: set[str] = field(default_factory=set)


def measure(*, worktrees: bool = False) -> Measured:
    """Walk the store (blocking: run it in a worker thread). The worktrees are walked only
    when asked: they may be large, and retention never removes one itself."""
    found = Measured()
    per = found.by_session
    events = 0
    for repo_dir in _children(paths.events_root()):
        for name, size in _subtree_bytes(repo_dir).items():
            per[name] = per.get(name, 0) + size
            events += size
            found.folders.add(name)
    found.usage["events"] = events
    for kind, root in (
        ("checkpoints", paths.state_root()),
        ("agent_logs", paths.agents_logs_root()),
    ):
        sizes = _subtree_bytes(root)
        found.usage[kind] = sum(sizes.values())
        if kind == "checkpoints":
            found.folders.update(sizes)
        for name, size in sizes.items():
            per[name] = per.get(name, 0) + size
    claude = 0
    for entry in _entries(paths.claude_logs_dir()):
        size = _size(entry)
        claude += size
        owner = paths.claude_log_session(entry.name)
        if owner is not None:
            per[owner] = per.get(owner, 0) + size
    found.usage["claude_logs"] = claude
    found.usage["daemon_logs"] = sum(_size(e) for e in _entries(paths.logs_dir()) if e.is_file())
    journal_file = paths.journal_file()
    found.usage["journal"] = sum(
        _size(Path(f"{journal_file}{suffix}")) for suffix in ("", "-wal", "-shm")
    )
    found.usage["workflows"] = _tree_bytes(paths.inline_workflows_dir())
    found.usage["spool"] = _tree_bytes(paths.spool_dir())
    if worktrees:
        found.usage["worktrees"] = _tree_bytes(paths.worktrees_root())
    return found


def _children(folder: Path) -> list[Path]:
    return [entry for entry in _entries(folder) if entry.is_dir() and not entry.is_symlink()]


def _entries(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as found:
            return [Path(entry.path) for entry in found]
    except OSError:
        return []


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _tree_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        total += sum(_size(Path(root, name)) for name in files)
    return total


def _subtree_bytes(folder: Path) -> dict[str, int]:
    """Bytes under each folder in `folder`, by its name (a session id)."""
    return {child.name: _tree_bytes(child) for child in _children(folder)}


def _note_unknown(folders: set[str]) -> None:
    """The sessions whose folders the store holds and whose jobs the journal does not (a
    journal.db-wal SQLite found damaged drops the commits in it without a word: jobs it had
    acknowledged vanish from every list): noted as a lost journal is (store/aside.py), so
    the user hears of them and nothing of theirs is collected meanwhile. Blocking: a worker
    thread's. Read after the folders were listed: a folder is made after its job's row, so
    a job submitted meanwhile is known; one removed meanwhile (its folder listed, its
    tombstone gone) is not listed again."""
    known = {job.id for job in removals.jobs()} | {sid for sid, _ in removals.pending()}
    unknown = folders - known
    if unknown:  # sessions' folders (not the triggers' log), and still there
        unknown &= aside.session_folders()
    if unknown:
        aside.note_unknown(sorted(unknown))


# -- what goes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    """A session the policy removes (or, in a dry run, would)."""

    id: str
    status: str
    workflow_name: str
    updated_at: str
    bytes: int
    reason: str  # age | size
    repo_id: str


@dataclass(frozen=True)
class Kept:
    """A session past its age that stays, and why (`dead_letters`, `dlq_retry`)."""

    id: str
    status: str
    reason: str


@dataclass
class Plan:
    remove: list[Removal] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)


def plan(
    jobs: Iterable[Job],
    *,
    sizes: dict[str, int],
    dead_letters: set[str],
    busy: set[str],
    policy: Policy,
    older_than: float | None,
    now: float,
) -> Plan:
    """Which sessions go (oldest first) and which expired ones stay (the module docstring
    gives the rules). `older_than` (`clean --older-than`) replaces `max_age`, and raises
    the resumable sessions' limit when it is longer; `busy`: sessions the daemon holds in
    memory (running, or a record a full disk has not let it write yet)."""
    jobs = list(jobs)
    by_id = {job.id: job for job in jobs}
    finished_age = older_than if older_than is not None else policy.max_age
    resumable_age = policy.resumable_max_age
    if resumable_age is not None and older_than is not None:
        resumable_age = max(resumable_age, older_than)
    eligible = [job for job in jobs if job.id not in busy]
    reasons: dict[str, str] = {}
    for job in eligible:
        limit = finished_age if job.status in FINISHED else resumable_age
        if job.status in FINISHED | RESUMABLE and limit is not None and now - job.changed > limit:
            reasons[job.id] = "age"
    kept = {job_id: "dead_letters" for job_id in reasons if job_id in dead_letters}
    if policy.max_total_bytes is not None:
        total = sum(sizes.get(job.id, 0) for job in jobs)
        total -= sum(sizes.get(job_id, 0) for job_id in reasons if job_id not in kept)
        by_age = sorted(
            (j for j in eligible if j.status in FINISHED and j.id not in reasons),
            key=lambda j: j.changed,
        )
        for job in by_age:
            if total <= policy.max_total_bytes:
                break
            if job.id not in dead_letters:
                reasons[job.id] = "size"
                total -= sizes.get(job.id, 0)
    while True:  # a job a staying `dlq retry` session re-runs the items of stays too
        needed = {j.dlq_job for j in jobs if j.dlq_job and (j.id not in reasons or j.id in kept)}
        newly = [job_id for job_id in reasons if job_id in needed and job_id not in kept]
        if not newly:
            break
        kept.update((job_id, "dlq_retry") for job_id in newly)
    going = sorted((by_id[i] for i in reasons if i not in kept), key=lambda j: j.changed)
    return Plan(
        remove=[
            Removal(
                id=job.id,
                status=job.status,
                workflow_name=job.workflow_name,
                updated_at=job.updated_at,
                bytes=sizes.get(job.id, 0),
                reason=reasons[job.id],
                repo_id=job.repo_id,
            )
            for job in going
        ],
        kept=[
            Kept(job_id, by_id[job_id].status, why)
            for job_id, why in kept.items()
            if reasons[job_id] == "age"
        ],
    )


def delete_session_files(sessions: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Delete the files of removed sessions (id, repository id); blocking. Returns the ids
    whose files are all gone, and the errors (a session with one keeps its tombstone, and
    the next pass tries again)."""
    claude = _entries(paths.claude_logs_dir())
    done: list[str] = []
    errors: list[str] = []
    for session_id, repo_id in sessions:
        problems: list[str] = []
        folders = [paths.state_dir(session_id), paths.agent_logs_dir(session_id)]
        if repo_id:
            folders.append(paths.events_dir(repo_id, session_id))
        for folder in folders:
            _rmtree(folder, problems)
        prefix = paths.claude_log_prefix(session_id)
        for path in [
            paths.lock_file(session_id),
            *(p for p in claude if p.name.startswith(prefix)),
        ]:
            _unlink(path, problems)
        if problems:
            errors.extend(f"session {session_id}: {problem}" for problem in problems)
        else:
            done.append(session_id)
    return done, errors


def _rmtree(folder: Path, problems: list[str]) -> None:
    def note(_function: Callable[..., Any], path: str, info: Any) -> None:
        error = info[1]
        if not isinstance(error, FileNotFoundError):
            problems.append(f"cannot delete {path}: {error}")

    shutil.rmtree(folder, onerror=note)


def _unlink(path: Path, problems: list[str]) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        _rmtree(path, problems)
    except OSError as exc:
        problems.append(f"cannot delete {path}: {exc.strerror}")


# -- other files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRemoval:
    path: str
    bytes: int
    kind: str  # crash_log | rejected_spool | inline_workflow | daemon_output (the part cut)


def tidy_files(
    policy: Policy, referenced: set[str], *, now: float, dry_run: bool
) -> tuple[list[FileRemoval], list[str]]:
    """Crash logs and rejected spool entries past `max_age`, inline workflows no session
    refers to (`referenced`: workflow paths), `prodigyd.out` past its size; blocking.
    Returns what went (or would go) and the errors."""
    chosen: list[tuple[Path, str]] = []
    if policy.max_age is not None:
        old = now - policy.max_age
        crash = paths.crash_log_prefix()
        logs = [p for p in _entries(paths.logs_dir()) if p.name.startswith(crash)]
        chosen += [(p, "crash_log") for p in logs if _mtime(p) < old]
        rejected = _entries(paths.rejected_spool_dir())
        chosen += [(p, "rejected_spool") for p in rejected if _mtime(p) < old]
    grace = now - INLINE_GRACE_SECONDS
    inline = [p for p in _entries(paths.inline_workflows_dir()) if p.name.startswith("inline-")]
    if aside.set_aside():  # the jobs of a set-aside journal may refer to any (store/aside.py)
        inline = []
    chosen += [
        (p, "inline_workflow") for p in inline if str(p) not in referenced and _mtime(p) < grace
    ]
    found: list[FileRemoval] = []
    errors: list[str] = []
    for path, kind in chosen:
        size = _size(path)
        if not dry_run:
            if kind == "inline_workflow" and _mtime(path) >= grace:
                continue  # submitted again meanwhile (store/inline.py touches it)
            problems: list[str] = []
            _unlink(path, problems)
            if problems:
                errors += problems
                continue
        found.append(FileRemoval(str(path), size, kind))
    try:
        cut = _trim_output(policy.daemon_log_bytes, dry_run=dry_run)
    except OSError as exc:
        errors.append(f"cannot cut {paths.daemon_output_file()}: {exc.strerror}")
        cut = 0
    if cut:
        found.append(FileRemoval(str(paths.daemon_output_file()), cut, "daemon_output"))
    return found, errors


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return float("inf")  # gone already: nothing to do


def _trim_output(limit: int | None, *, dry_run: bool) -> int:
    """Cut `prodigyd.out` past `limit` to its newest half; the bytes cut. Its writers
    (a daemon's stdout, hook shims) append (O_APPEND), so they go on at the new end."""
    path = paths.daemon_output_file()
    size = _size(path)
    if limit is None or size <= limit:
        return 0
    keep = limit // 2
    if dry_run:
        return size - keep
    with open(path, "r+b") as fh:
        fh.seek(size - keep)
        tail = fh.read()
        fh.seek(0)
        fh.truncate()
        fh.write(tail)
    return size - keep


# -- the daemon's part --------------------------------------------------------------------


@dataclass
class Report:
    """What a pass removed (or, dry, would): the `retention.clean` result."""

    dry_run: bool
    older_than: float | None
    sessions: list[Removal] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    files: list[FileRemoval] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return sum(s.bytes for s in self.sessions) + sum(f.bytes for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        sessions = [{k: v for k, v in asdict(s).items() if k != "repo_id"} for s in self.sessions]
        return {
            "dry_run": self.dry_run,
            "older_than": self.older_than,
            "sessions": sessions,
            "kept": [asdict(k) for k in self.kept],
            "files": [asdict(f) for f in self.files],
            "freed_bytes": self.freed_bytes,
            "usage": {**self.usage, "total": sum(self.usage.values())},
            "errors": self.errors,
        }


#: How long after start the daemon's first pass waits. A pass reads every job: with
#: 10,000 it held the event loop for 0.5-1.5 s, the first requests of a daemon just
#: started (bench/startup.py) waiting behind it.
FIRST_PASS_SECONDS = 30.0


class Retention:
    """Applies the policy for the daemon: one pass at a time, soon after start, every
    `interval`, and on request (`apply`)."""

    def __init__(
        self, policy: Policy, busy: Callable[[], set[str]], forget: Callable[[str], None]
    ) -> None:
        """`busy`: the sessions the daemon holds in memory now (never removed);
        `forget`: drop what the daemon keeps of a removed session (its event hub)."""
        self.policy = policy
        self._busy = busy
        self._forget = forget
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        """The daemon's task: at start, what a crash cut off is finished; a pass
        FIRST_PASS_SECONDS later (at most `interval`) and every `interval` after; with no
        interval, nothing more (the policy then applies on `clean` alone)."""
        delay: float | None = None  # None: the start, before the first pass
        while True:
            try:
                await self._pass(whole=delay is not None)
            except NoSpace as exc:  # removing a record is a write too: the next pass
                log.warning("retention pass cut short: %s", exc.message)
            except Exception:
                log.exception("retention pass failed")
            if self.policy.interval is None:
                return
            if delay is None:
                delay = min(self.policy.interval, FIRST_PASS_SECONDS)
            else:
                delay = self.policy.interval
            await asyncio.sleep(delay)

    async def _pass(self, *, whole: bool) -> None:
        """The policy's pass (`whole`), or only what a crash cut off (cheap: the tombstones)."""
        if not whole:
            async with self._lock:
                errors = await self._finish_pending()
            if errors:
                log.warning("retention: %s", "; ".join(errors))
            return
        report = await self.apply()
        if report.sessions or report.files or report.errors:
            log.info(
                "retention: removed %d sessions and %d files (%d bytes)%s",
                len(report.sessions),
                len(report.files),
                report.freed_bytes,
                f"; errors: {'; '.join(report.errors)}" if report.errors else "",
            )

    async def apply(
        self, *, older_than: float | None = None, dry_run: bool = False, worktrees: bool = False
    ) -> Report:
        """One pass (`worktrees`: measure them too, for the report)."""
        async with self._lock:
            report = Report(dry_run=dry_run, older_than=older_than)
            measured = await asyncio.to_thread(measure, worktrees=worktrees)
            report.usage = measured.usage
            # First the files no record names: on a full disk, removing a record may not
            # fit until they are gone.
            referenced = {job.workflow for job in removals.jobs()}
            report.files, report.errors = await asyncio.to_thread(
                tidy_files, self.policy, referenced, now=time.time(), dry_run=dry_run
            )
            if dry_run:
                chosen = self._plan(measured.by_session, older_than)
                report.sessions, report.kept = chosen.remove, chosen.kept
                return report
            report.errors += await self._finish_pending()
            await asyncio.to_thread(_note_unknown, measured.folders)
            await self._remove(measured.by_session, older_than, report)
            return report

    def _plan(self, sizes: dict[str, int], older_than: float | None) -> Plan:
        return plan(
            removals.jobs(),
            sizes=sizes,
            dead_letters=removals.dead_letter_jobs(),
            busy=self._busy() | set(session_store.unsaved_ids()),
            policy=self.policy,
            older_than=older_than,
            now=time.time(),
        )

    async def _remove(
        self, sizes: dict[str, int], older_than: float | None, report: Report
    ) -> None:
        """Choose and remove a batch at a time (no `await` between the two), then delete
        its files in a worker thread, until nothing more is chosen."""
        while True:
            chosen = self._plan(sizes, older_than)
            if not report.sessions:
                report.kept = chosen.kept
            batch = chosen.remove[:BATCH]
            if not batch:
                return
            gone = set(removals.remove((s.id, s.repo_id) for s in batch))
            for session_id in gone:
                self._forget(session_id)
                sizes.pop(session_id, None)
            report.sessions += [s for s in batch if s.id in gone]
            targets = [(s.id, s.repo_id) for s in batch if s.id in gone]
            report.errors += await self._delete(targets)
            if len(gone) < len(batch):
                return  # some changed under us (a dead letter): the next pass sees them

    async def _finish_pending(self) -> list[str]:
        return await self._delete(removals.pending())

    async def _delete(self, sessions: list[tuple[str, str]]) -> list[str]:
        if not sessions:
            return []
        done, errors = await asyncio.to_thread(delete_session_files, sessions)
        removals.done(done)
        return errors
