"""The durable job journal: SQLite in WAL mode at `$PRODIGY_HOME/journal.db`.

One row per job (= session) holds its queue state, its session record and its private part:
the environment and arguments it was submitted with, verbatim, because a resume (even after
a restart) must run with them. That column never leaves the daemon; everything shown to
clients or written elsewhere is masked. The environment (which holds the user's tokens) is
dropped in the same UPDATE that records a job's end for good (`forget_env`), into pages
`secure_delete` writes with what SQLite frees zeroed. Until a scrub (a TRUNCATE checkpoint)
copies them into the database file and empties the write-ahead log, the file and the log
still hold the old versions; the daemon scrubs once it is quiet (within 4 s of the last
job's end; at most a minute after a drop while jobs keep starting; a log a killed daemon
left, once the next is quiet: scheduler.py, `_scrub_when_due`; `_connect`). A resume
with a new environment, which replaces the old one, owes a scrub as well. Not after
every job: that delayed each job's end by ~1.5 ms, and an emptied log grows again, where a
commit costs more than in a log SQLite reuses (~0.1 ms a submission's, measured alone).

A submission is one committed transaction (WAL, the log fdatasync'd) before the
client is told the job id, so an acknowledged job survives `kill -9` at any instant. Later
changes need not wait for the disk (`transaction`), and the daemon syncs them once no job
runs (`sync_log`), so a submission's commit syncs its own frames only. Every later change
is one UPDATE by primary key: a state transition costs the same with 10 jobs
or 10,000 (bench/startup.py measures it), and nothing is ever rewritten whole (pueue
rewrites its whole state file on every change; we do not).

The daemon is the only writer. A database that is not one (or is corrupt) is moved aside
as `journal.db.corrupt-<time>.<ns>-<pid>` (never deleted) and a fresh one is started, loudly; any
other failure to open it is raised, never taken for corruption. A journal found missing or
empty while the store holds what earlier jobs left is noted as lost (store/aside.py).

A full disk (store/space.py): a write raises NoSpace and changes nothing. A journal whose
shared-memory file cannot be made (a restart on a full disk) is opened in SQLite's
exclusive locking mode, which keeps that index in memory instead, so everything can still
be read; the next write that fits reopens it the usual way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, TypedDict, Unpack

from prodigyd import paths
from prodigyd.errors import NoSpace, StoreError
from prodigyd.store import aside, space
from prodigyd.store.atomic import ensure_dir, move_aside

log = logging.getLogger("prodigyd.journal")

#: 2: the worktrees table (store/worktrees.py); 3: the dlq table (store/dlq.py); 5: the
#: claude_invocations table (store/claude_invocations.py; an older journal gets it when opened).
SCHEMA_VERSION = 5
#: 4: finished jobs keep no environment. A journal written before (its version is below this)
#: still holds theirs: the daemon drops them at startup (scheduler.py, `recover`), and only the
#: transaction that drops them records the new version (`forget_env_where`): a daemon that
#: dies before it has (or opens the journal on a full disk) leaves the drop for the next try.
ENV_DROPPED_SINCE = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- submission order: FIFO within a priority
    id TEXT NOT NULL UNIQUE,                 -- the session id
    idempotency_key TEXT UNIQUE,             -- a client's retry-safe key; NULL when none
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,     -- higher runs first
    action TEXT NOT NULL DEFAULT 'run',      -- what a queued job does when it starts: run|resume
    resume_on_start INTEGER NOT NULL DEFAULT 0,  -- interrupted by a daemon stop: resume at start
    record TEXT NOT NULL,                    -- the SessionRecord as JSON
    private TEXT NOT NULL,                   -- {env, args} as submitted (never shown);
                                             -- env is dropped when the job is finished
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, priority DESC, seq);
-- the queued triggered runs (`keyed`): jobs with a key only, so a plain submission and its
-- status changes write no entry here (it was one index page of each submission's commit);
-- a journal's index of every job, under its old name, is dropped
DROP INDEX IF EXISTS jobs_by_status_key;
CREATE INDEX IF NOT EXISTS jobs_keyed ON jobs (status, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- the jobs a daemon stop interrupted (`to_resume`): startup reads them, not every job
-- ever interrupted (each Ctrl-C leaves one); no version bump, as for any index made if missing
CREATE INDEX IF NOT EXISTS jobs_to_resume ON jobs (seq) WHERE resume_on_start = 1;
CREATE TABLE IF NOT EXISTS worktrees (
    path TEXT PRIMARY KEY,                   -- absolute path of the worktree
    repo TEXT NOT NULL,                      -- the user's repository it belongs to
    state TEXT NOT NULL,                     -- idle | busy | kept
    owner TEXT,                              -- session id, or <session>/<item> for an agent
    session_id TEXT,                         -- the session the owner belongs to
    affinity TEXT,                           -- the workflow the slot last served
    name TEXT,                               -- a named worktree; NULL for pool slots
    strategy TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS worktrees_by_repo ON worktrees (repo, state, last_used_at);
CREATE TABLE IF NOT EXISTS dlq (
    job_id TEXT NOT NULL,                    -- the session (job) the item belongs to
    item_id TEXT NOT NULL,
    repo TEXT NOT NULL,
    entry TEXT NOT NULL,                     -- the entry as JSON (store/dlq.py)
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (job_id, item_id)
);
CREATE TABLE IF NOT EXISTS claude_invocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- the order the invocations ended in
    session_id TEXT NOT NULL,                -- the job whose step ran claude
    step TEXT NOT NULL,                      -- the step's label (`3`, `item_2/1`)
    started_at TEXT NOT NULL,                -- ISO 8601, as the record has it
    record TEXT NOT NULL                     -- the record as JSON (claude/invocation.py)
);
CREATE INDEX IF NOT EXISTS claude_invocations_by_session ON claude_invocations (session_id, seq);
CREATE INDEX IF NOT EXISTS claude_invocations_by_start ON claude_invocations (started_at);
CREATE TABLE IF NOT EXISTS removals (        -- sessions whose files retention still deletes
    session_id TEXT PRIMARY KEY,             -- (store/removals.py); no version bump: a
    repo_id TEXT NOT NULL,                   -- table made if missing needs none
    removed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS event_logs (      -- the index of the event logs (store/eventindex.py);
    session_id TEXT NOT NULL,                -- no version bump: made if missing, and built
    repo_id TEXT NOT NULL,                   -- from the folders when `event_logs_built` is empty
    gen INTEGER NOT NULL DEFAULT 1,          -- bumped each time a log starts writing to it
    newest TEXT,                             -- its newest event's timestamp; NULL: open
    newest_seq INTEGER NOT NULL DEFAULT 0,   -- and that event's seq
    PRIMARY KEY (session_id, repo_id)
);
CREATE INDEX IF NOT EXISTS event_logs_by_newest
    ON event_logs (newest, newest_seq, repo_id, session_id);
CREATE TABLE IF NOT EXISTS event_logs_built (built INTEGER NOT NULL);
"""


#: Open a session folder's row in the event index (store/eventindex.py): a log is about to
#: write into `events/<repo_id>/<session_id>/`. Params: session id, repo id.
OPEN_EVENT_LOG = (
    "INSERT INTO event_logs (session_id, repo_id) VALUES (?, ?)"
    " ON CONFLICT DO UPDATE SET gen = gen + 1, newest = NULL, newest_seq = 0"
)

#: The page cache of each connection, in KiB (see `_connect`).
CACHE_KIB = 256

_connections: dict[tuple[int, str], sqlite3.Connection] = {}
_EXCLUSIVE: set[int] = set()  # ids of connections opened in exclusive mode (a full disk)

#: SQLite's answers for a file that is not a usable database (what moving aside is for).
_NOT_A_DATABASE = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
#: Journals (paths) whose write-ahead log may still hold dropped data, and since when
#: (time.monotonic()): a job's environment dropped, a scrub that failed, a log left by a
#: daemon that was killed.
_SCRUB_OWED: dict[str, float] = {}
_SCRUB_FAILING: set[str] = set()  # warned about once, until a scrub succeeds


def connection() -> sqlite3.Connection:
    """The process's connection to the current PRODIGY_HOME's journal (opened once)."""
    path = paths.journal_file()
    key = (os.getpid(), str(path))
    conn = _connections.get(key)
    if conn is None:
        conn = _connections[key] = _open(path)
    return conn


def close_all() -> None:
    for conn in _connections.values():
        conn.close()
    _connections.clear()
    _EXCLUSIVE.clear()
    _SCRUB_OWED.clear()  # SQLite empties the log of a journal it closes cleanly
    _SCRUB_FAILING.clear()


def degraded() -> bool:
    """Whether the journal is open in the full-disk fallback (exclusive locking mode)."""
    return any(id(conn) in _EXCLUSIVE for conn in _connections.values())


def reopen() -> None:
    """Leave the full-disk fallback once the disk has room: close, open the usual way (or
    the fallback again, when it still has none)."""
    path = paths.journal_file()
    key = (os.getpid(), str(path))
    conn = _connections.get(key)
    if conn is None or id(conn) not in _EXCLUSIVE:
        return
    _EXCLUSIVE.discard(id(conn))  # closed first: it holds the lock the new one needs
    conn.close()
    del _connections[key]
    fresh = _connections[key] = _open(path)  # the fallback again when there is still no room
    if id(fresh) not in _EXCLUSIVE:
        log.info("journal %s reopened in shared mode", path)


def found_version() -> int:
    """The schema version the journal file says it has: below ENV_DROPPED_SINCE, the
    daemon still has to drop old environments (read each time: the drop records it)."""
    return int(connection().execute("PRAGMA user_version").fetchone()[0])


def damage(exc: BaseException) -> StoreError | None:
    """`exc` as the error a user is shown when it says the open journal is damaged (pages
    SQLite finds malformed: the file opened, so it was not set aside), else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.DatabaseError) or code is None:
        return None
    if code & 0xFF not in _NOT_A_DATABASE:
        return None
    path = paths.journal_file()
    return StoreError(
        f"the job journal {path} is damaged ({exc})",
        hint="stop the daemon (`prodigyctl daemon stop`), keep a copy of the file, and make "
        f"a working one with SQLite (`sqlite3 {path} .recover | sqlite3 recovered.db`, then "
        f"put recovered.db at {path}); docs/daemon.md, 'A lost or damaged journal'",
    )


def _open(path: Path) -> sqlite3.Connection:
    ensure_dir(path.parent)
    try:
        return _connect(path)
    except sqlite3.DatabaseError as exc:
        if space.is_no_space(exc, path):
            return _connect_full(path)
        if getattr(exc, "sqlite_errorcode", 26) & 0xFF not in _NOT_A_DATABASE:
            raise  # locked, unreadable, an I/O error: not a reason to set the jobs aside
        aside = move_aside(path)
        log.error("journal %s cannot be opened (%s); moved aside to %s", path, exc, aside)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        return _connect(path)


def _connect_full(path: Path) -> sqlite3.Connection:
    """Open on a full disk: exclusive locking keeps the WAL index in memory, so no
    shared-memory file is needed to read (the daemon is the journal's only user)."""
    log.warning("journal %s opened read-mostly: its disk is full", path)
    with space.guard(path):
        conn = _connect(path, exclusive=True)
    _EXCLUSIVE.add(id(conn))
    return conn


def _connect(path: Path, *, exclusive: bool = False) -> sqlite3.Connection:
    with contextlib.suppress(FileNotFoundError):
        if os.stat(f"{path}-wal").st_size:  # left by a daemon killed: may hold dropped data
            _owe_scrub(str(path))
    with space.guard(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # private before SQLite creates it
        os.close(fd)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        if exclusive:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")  # before the first WAL access
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # a durable commit syncs itself: `_sync`
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA secure_delete=ON")  # freed space is zeroed: a dropped env is gone
        # SQLite's own page cache, 2 MB by default, fills as the journal grows and stays full
        # in a long-lived daemon (+3.5 MB resident after 1,000 jobs, bench/rss.py). Its lookups
        # by key touch a few pages (the B-tree's upper levels stay here); the rest is in the
        # OS page cache, a pread away.
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        fresh = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchone() is None
        if fresh:  # a lost journal's jobs may own what is nobody's now: held until looked at
            aside.note_lost()  # (before the tables: a crash in between finds it fresh again)
        conn.executescript(_SCHEMA)  # writes nothing when the tables and indexes exist
        # The tables are made now; an old journal's environments are dropped later, and
        # the version says so only once they are (`forget_env_where`).
        version = SCHEMA_VERSION if fresh or found >= ENV_DROPPED_SINCE else ENV_DROPPED_SINCE - 1
        if found != version:
            conn.execute(f"PRAGMA user_version={version}")
    except BaseException:
        conn.close()
        raise
    # No `PRAGMA quick_check` here: it reads the whole file (25 ms at 10,000 jobs) on the
    # startup path; a file that is not a database already fails the statements above.
    return conn


@contextlib.contextmanager
def transaction(*, durable: bool = True) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT. `durable`: the commit is on disk when this block exits
    (a submission, a dead letter): the write-ahead log is synced (`_sync`). Otherwise
    (status changes, pool bookkeeping) it survives a crash of the daemon, not of the
    machine: WAL with synchronous=NORMAL, and the next durable commit makes it durable
    too, in order. What such a change records is either re-derived after a power loss (a
    job found `queued` instead of `running` just starts again) or re-done (a pool slot
    claimed again).

    A full disk raises NoSpace and the transaction is rolled back whole; a sync that fails
    for want of space raises NoSpace too, the commit made but not known to be durable (the
    caller acknowledges nothing)."""
    path = paths.journal_file()
    conn = connection()
    with space.guard(path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        if durable:
            _sync(path)
    if id(conn) in _EXCLUSIVE:
        reopen()  # it fit: there is room again


def insert(
    job_id: str,
    *,
    status: str,
    record: dict[str, Any],
    private: dict[str, Any],
    priority: int = 0,
    idempotency_key: str | None = None,
) -> dict[str, Any] | None:
    """Add a job. With a key already used, add nothing and return that job's record.

    The same commit opens the job's row in the event index (store/eventindex.py): its log
    then writes its first line without a journal write of its own (EventLog `opened`)."""
    now = time.time()
    with transaction() as conn:
        if idempotency_key is not None:
            row = conn.execute(
                "SELECT record FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if row is not None:
                return dict(json.loads(row["record"]))
        conn.execute(
            "INSERT INTO jobs (id, idempotency_key, status, priority, record, private, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, idempotency_key, status, priority, _dumps(record), _dumps(private), now, now),
        )
        if record.get("repo_id"):
            conn.execute(OPEN_EVENT_LOG, (job_id, record["repo_id"]))
    return None


def update(
    job_id: str,
    *,
    record: dict[str, Any] | None = None,
    private: dict[str, Any] | None = None,
    forget_env: bool = False,
    durable: bool = False,
    **columns: Unpack[Columns],
) -> None:
    """Change one job's columns (status, action, resume_on_start, priority), record, private.

    `durable` for changes a client is told about (a resume or a cancel it asked for); the
    engine's own status changes need not wait for the disk (see `transaction`).
    `forget_env` drops the environment from the private part in the same statement (the
    arguments stay: `dlq retry` runs a finished job's items with them again)."""
    sets = {key: value for key, value in columns.items() if key in _MUTABLE}
    if record is not None:
        sets["record"] = _dumps(record)
        sets.setdefault("status", record.get("status"))
    if private is not None:
        sets["private"] = _dumps(private)
    sets["updated_at"] = time.time()
    assignments = ", ".join(f"{key} = ?" for key in sets)
    if forget_env and private is None:
        assignments += ", private = json_remove(private, '$.env')"
    dropped = False
    with transaction(durable=durable or private is not None) as conn:
        if forget_env:
            dropped = _has_env(conn, "id = ?", (job_id,))
        conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*sets.values(), job_id))
    if dropped or private is not None:  # a resume's environment replaced the old one
        _owe_scrub(str(paths.journal_file()))


def forget_env_where(statuses: tuple[str, ...]) -> int:
    """Drop the environment of every job in one of `statuses` that still has one (jobs that
    ended before the environment was dropped at the end); returns how many had one.

    The same transaction records the journal's version as current: until it commits (a
    crash, a full disk), `found_version` stays old and the next start drops them again."""
    marks = ", ".join("?" for _ in statuses)
    where = f"status IN ({marks}) AND json_type(private, '$.env') IS NOT NULL"
    with transaction() as conn:
        count = conn.execute(
            f"UPDATE jobs SET private = json_remove(private, '$.env') WHERE {where}", statuses
        ).rowcount
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    if count:
        scrub()
    return count


def _has_env(conn: sqlite3.Connection, where: str, values: tuple[Any, ...]) -> bool:
    sql = f"SELECT 1 FROM jobs WHERE {where} AND json_type(private, '$.env') IS NOT NULL"
    return conn.execute(sql, values).fetchone() is not None


def _owe_scrub(path: str) -> None:
    """Note that the journal at `path` holds dropped data (since now, unless earlier)."""
    _SCRUB_OWED.setdefault(path, time.monotonic())


def scrub() -> bool:
    """Empty the write-ahead log into the database file: the log still holds the pages of
    data dropped, as they were. (~1 ms: the daemon does it when quiet, see the module
    docstring.)

    Best effort, never raised: it runs after the change that dropped the data committed,
    and a failure here (a full disk, even to open the journal; an I/O error; a busy
    reader) must not turn that change into an error. The scrub stays owed
    (`scrub_owed_since`): the daemon's next quiet moment or SQLite's own checkpoint on
    close does it. False when not done."""
    path = str(paths.journal_file())
    try:
        busy, _, _ = connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except (sqlite3.Error, OSError, NoSpace) as exc:
        _scrub_failed(path, str(exc))
        return False
    if busy:  # a reader held the log
        _scrub_failed(path, "busy")
        return False
    _SCRUB_OWED.pop(path, None)
    _SCRUB_FAILING.discard(path)
    return True


def sync_log() -> None:
    """Make the commits that did not wait for the disk durable now: fdatasync the
    write-ahead log. A durable commit (a submission's) syncs every frame written before
    it, its own and the earlier commits' (`transaction`), and a job's end leaves a few
    dozen such frames: synced by the next submission, they cost it ~0.15-0.4 ms more than
    its own commit. The daemon calls this in a worker thread once no job runs (scheduler.py,
    `_sync_when_idle`), so the next submission's commit syncs its own frames only.

    Best effort, never raised: nothing waits for it, and a commit that is durable has
    synced itself."""
    try:
        _sync(paths.journal_file())
    except FileNotFoundError:
        pass  # no journal yet: nothing to sync
    except OSError as exc:
        log.warning("journal: its write-ahead log could not be synced (%s)", exc)


def _sync(path: Path) -> None:
    """fdatasync the write-ahead log of the journal at `path` (the database itself when it
    has none: a file system where WAL could not be had): what synchronous=FULL has SQLite
    do at every commit, done for the durable ones alone. The connection stays NORMAL:
    switching the pragma for a durable commit and back cost a submission and its job's
    start ~0.08 ms each on an idle daemon (an interleaved A/B, 300 jobs a side: submit
    -0.07 to -0.23 ms). (SQLite keeps the log open; a second descriptor syncs the same
    file, header and all: after a scrub empties it, the first commit's header as well.)"""
    try:
        fd = os.open(f"{path}-wal", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _scrub_failed(path: str, why: str) -> None:
    """The scrub stays owed; said in the daemon log once, until a scrub succeeds (the
    daemon tries again every couple of seconds while the disk is full)."""
    if path not in _SCRUB_FAILING:
        log.warning("journal: the write-ahead log could not be emptied now (%s)", why)
        _SCRUB_FAILING.add(path)
    _owe_scrub(path)


def scrub_owed_since() -> float | None:
    """Since when (time.monotonic()) dropped data may be in the write-ahead log; None when
    it is not (see `_SCRUB_OWED`)."""
    return _SCRUB_OWED.get(str(paths.journal_file()))


def settle() -> None:
    """What the daemon's mender does for the journal once there may be room: leave the
    full-disk fallback (a scrub owed is left to the daemon's next quiet moment). NoSpace
    when it still does not fit."""
    reopen()


class Columns(TypedDict, total=False):
    """The columns `update` may set besides the record and the private part."""

    status: str
    action: str  # run | resume
    resume_on_start: int  # 0 | 1
    priority: int


_MUTABLE = frozenset(Columns.__annotations__)


def get(job_id: str) -> sqlite3.Row | None:
    return connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()


def ids_starting(prefix: str, limit: int) -> list[str]:
    """Up to `limit` job ids that start with `prefix` (a range on the id's unique index)."""
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # the first id past the prefix
    sql = "SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"
    return [row[0] for row in connection().execute(sql, (prefix, after, limit))]


def ids_ending(suffix: str, limit: int) -> list[str]:
    """Up to `limit` job ids that end with `suffix`: a walk of the id index (covering; no
    index serves a suffix), for the short tags people copy from the output."""
    sql = "SELECT id FROM jobs WHERE substr(id, ?) = ? LIMIT ?"
    return [row[0] for row in connection().execute(sql, (-len(suffix), suffix, limit))]


def has_key(idempotency_key: str) -> bool:
    """Whether a job was submitted with this idempotency key (one indexed lookup)."""
    row = (
        connection()
        .execute("SELECT 1 FROM jobs WHERE idempotency_key = ?", (idempotency_key,))
        .fetchone()
    )
    return row is not None


def key_of(job_id: str) -> str | None:
    """The job's idempotency key (None without one, or without the job): that column only,
    for a dispatch that asks it of each running triggered job (scheduler.py)."""
    sql = "SELECT idempotency_key FROM jobs WHERE id = ?"
    row = connection().execute(sql, (job_id,)).fetchone()
    return None if row is None else row[0]


def private_of(job_id: str) -> dict[str, Any] | None:
    row = connection().execute("SELECT private FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else dict(json.loads(row["private"]))


def next_queued(skip: Collection[str] = ()) -> sqlite3.Row | None:
    """The job to start next: highest priority, then first submitted; none of `skip`. Its
    `id` and `action` only: the start reads the record once it holds the job's lock, and
    every dispatch asks (the row's record and environment are kilobytes of text)."""
    marks = ", ".join("?" for _ in skip)
    sql = f"SELECT id, action FROM jobs WHERE status = 'queued' AND id NOT IN ({marks})"
    return connection().execute(f"{sql} ORDER BY priority DESC, seq LIMIT 1", (*skip,)).fetchone()


def with_status(*statuses: str, limit: int | None = None) -> list[sqlite3.Row]:
    marks = ", ".join("?" for _ in statuses)
    sql = f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY seq DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return list(connection().execute(sql, statuses))


def to_resume(status: str) -> list[str]:
    """The ids of the jobs with `status` that a daemon stop interrupted (resume_on_start),
    newest first: a walk of the partial index `jobs_to_resume`, whatever the number of
    other jobs with that status."""
    sql = (  # INDEXED BY: with no statistics SQLite takes an index on status and reads them all
        "SELECT id FROM jobs INDEXED BY jobs_to_resume"
        " WHERE resume_on_start = 1 AND status = ? ORDER BY seq DESC"
    )
    return [row["id"] for row in connection().execute(sql, (status,))]


def keyed(prefix: str, status: str) -> list[sqlite3.Row]:
    """The jobs with `status` whose idempotency key starts with `prefix`: a range of
    `jobs_keyed` (the few queued triggered runs among many queued jobs: the range implies
    a key, which lets SQLite use that partial index)."""
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # the first key past the prefix
    sql = "SELECT * FROM jobs WHERE status = ? AND idempotency_key >= ? AND idempotency_key < ?"
    return list(connection().execute(sql, (status, prefix, after)))


def recent(
    limit: int, statuses: Collection[str] | None = None, also: Collection[str] = ()
) -> list[sqlite3.Row]:
    """The newest jobs first: all, or those with one of `statuses` and those of `also` (jobs
    whose status the caller knows better than the journal: see sessions.list_all)."""
    values: tuple[str, ...]
    if statuses is None:
        sql, values = "SELECT * FROM jobs", ()
    else:
        wanted = f"status IN ({', '.join('?' for _ in statuses)})"
        values = (*statuses,)
        if not also:  # the status index: with `OR id IN ()` SQLite reads every job instead
            sql = f"SELECT * FROM jobs WHERE {wanted}"
        else:
            marks = ", ".join("?" for _ in also)
            sql, values = f"SELECT * FROM jobs WHERE {wanted} OR id IN ({marks})", (*values, *also)
    return list(connection().execute(f"{sql} ORDER BY seq DESC LIMIT ?", (*values, limit)))


#: What analytics reads of each job, straight from its record (SQLite's JSON functions:
#: no record is parsed in Python, so a summary of 10,000 jobs stays cheap).
_USAGE = """
SELECT id, status,
       json_extract(record, '$.workflow_name') AS workflow,
       json_extract(record, '$.repo') AS repo,
       json_extract(record, '$.started_at') AS started_at,
       json_extract(record, '$.completed_at') AS completed_at,
       json_extract(record, '$.budget_used.seconds') AS ran_seconds,
       json_extract(record, '$.cost_usd') AS cost_usd,
       json_extract(record, '$.input_tokens') AS input_tokens,
       json_extract(record, '$.output_tokens') AS output_tokens
FROM jobs WHERE ? IS NULL OR json_extract(record, '$.started_at') >= ? ORDER BY seq
"""


def usage(since: str | None = None) -> list[sqlite3.Row]:
    """Per job: status, workflow, repo, start and end times, the seconds it ran (over all
    its runs: store/sessions.py BudgetUse), cost and tokens; jobs started
    at or after `since` (an ISO 8601 time as records store it), or all."""
    return connection().execute(_USAGE, (since, since)).fetchall()


def counts() -> dict[str, int]:
    rows = connection().execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
    return {row["status"]: row["n"] for row in rows}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
