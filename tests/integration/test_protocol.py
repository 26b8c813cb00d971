"""JSON-RPC 2.0 over the daemon's socket, spoken by hand: errors as the spec says."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.cli import ctl, wait_for


class Raw:
    def __init__(self, home: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(home / "prodigyd.sock"))
        self.reader = self.sock.makefile("rb")

    def send(self, raw: bytes) -> dict[str, Any]:
        self.sock.sendall(raw)
        return json.loads(self.reader.readline())

    def call(self, method: str, params: Any = None, msg_id: Any = 1) -> dict[str, Any]:
        msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        return self.send(json.dumps(msg).encode() + b"\n")

    def close(self) -> None:
        self.sock.close()


def test_ping(daemon: Path):
    raw = Raw(daemon)
    reply = raw.call("ping")
    assert reply["id"] == 1 and reply["result"]["pong"] is True
    assert reply["result"]["protocol"] == 2


def test_parse_error_invalid_request_and_unknown_method(daemon: Path):
    raw = Raw(daemon)
    bad = raw.send(b"{not json\n")
    assert bad["error"]["code"] == -32700 and bad["id"] is None
    no_version = raw.send(b'{"id": 2, "method": "ping"}\n')
    assert no_version["error"]["code"] == -32600 and no_version["id"] == 2
    not_object = raw.send(b"[1, 2]\n")
    assert not_object["error"]["code"] == -32600
    unknown = raw.call("no.such.method", msg_id=3)
    assert unknown["error"]["code"] == -32601 and unknown["id"] == 3
    assert raw.call("ping", msg_id=4)["result"]["pong"]  # the connection survived it all


def test_invalid_params_name_the_field(daemon: Path):
    raw = Raw(daemon)
    reply = raw.call("sessions.list", {"limit": "many"})
    assert reply["error"]["code"] == -32602
    assert "limit" in reply["error"]["message"]
    extra = raw.call("sessions.show", {"session_id": "x", "bogus": 1})
    assert extra["error"]["code"] == -32602 and "bogus" in extra["error"]["message"]


def test_session_ids_cannot_reach_outside_the_store(daemon: Path):
    raw = Raw(daemon)
    for evil in ("../../etc/passwd", "a/b", ".hidden"):
        reply = raw.call("sessions.show", {"session_id": evil})
        assert reply["error"]["code"] == -32000, reply
        assert "invalid session id" in reply["error"]["message"]
    missing = raw.call("sessions.show", {"session_id": "workflow-1-abc"})
    assert missing["error"]["code"] == -32003


def test_a_client_sending_garbage_and_vanishing_does_not_hurt_others(daemon: Path):
    good = Raw(daemon)
    bad = Raw(daemon)
    bad.sock.sendall(b"\x00\xff garbage without newline")
    bad.close()
    assert good.call("ping")["result"]["pong"]
    half = Raw(daemon)
    half.sock.sendall(b'{"jsonrpc": "2.0", "id": 1, "meth')
    half.close()
    assert good.call("ping", msg_id=9)["result"]["pong"]


def _connect_as(uid: int, path: Path) -> str:
    """Connect to the socket from a forked child that dropped to `uid`; report what happened.

    A fork, not a new interpreter: the test's Python may live where `uid` cannot read it.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(10)
            try:
                sock.connect(str(path))
                # The daemon answers a stranger at once and hangs up: the request may find
                # the connection closed (EPIPE), while the answer is still there to read.
                with contextlib.suppress(BrokenPipeError):
                    sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
                out = sock.makefile("rb").readline().decode()
            except OSError as exc:
                out = f"connect-error {exc.errno}"
            os.write(write_fd, out.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        out = fh.read().decode()
    os.waitpid(pid, 0)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a client as another uid")
def test_another_uid_is_refused(daemon: Path):
    sock = daemon / "prodigyd.sock"
    blocked = _connect_as(65534, sock)
    assert "connect-error 13" in blocked, blocked  # EACCES: the 0700 folder
    # Open every file permission on the way (the folders pytest made are 0700 too) so the
    # other uid reaches the SO_PEERCRED check itself; restore them all afterwards.
    opened = [p for p in (sock, *sock.parents) if p != Path("/") and p.stat().st_uid == 0]
    modes = {p: p.stat().st_mode & 0o777 for p in opened}
    for path in opened:
        os.chmod(path, modes[path] | (0o666 if path == sock else 0o711))
    try:
        refused = _connect_as(65534, sock)
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)
    reply = json.loads(refused)
    assert "permission denied" in reply["error"]["message"], refused
    assert "pong" in json.dumps(Raw(daemon).call("ping"))  # the owner is still served


def test_fifty_concurrent_clients(daemon: Path):
    def one(index: int) -> bool:
        raw = Raw(daemon)
        try:
            return all(raw.call("ping", msg_id=i)["id"] == i for i in range(20))
        finally:
            raw.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        assert all(pool.map(one, range(50)))


def test_a_subscriber_vanishing_mid_stream_harms_nobody(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("".join(f"- shell: 'echo line {n}; sleep 0.05'\n" for n in range(20)))
    session_id = ctl("run", str(wf), "-y", "--detach", cwd=repo, check=True).stdout.strip()
    raw = Raw(daemon)
    raw.sock.sendall(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "events.subscribe",
                "params": {"session_id": session_id},
            }
        ).encode()
        + b"\n"
    )
    for _ in range(5):  # a few events (and the reply), then hang up without a word
        assert raw.reader.readline()
    raw.close()
    other = Raw(daemon)
    assert other.call("ping")["result"]["pong"]
    wait_for(
        lambda: (
            other.call("sessions.show", {"session_id": session_id})["result"]["status"]
            == "completed"
        ),
        what="the session to finish regardless",
    )


def test_an_oversized_message_is_refused_and_only_that_client_dropped(daemon: Path):
    big = Raw(daemon)
    other = Raw(daemon)
    try:  # the daemon hangs up mid-send: what it said before that is still readable
        big.sock.sendall(
            b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "'
            + b"a" * (9 * 1024 * 1024)
        )
    except (BrokenPipeError, ConnectionResetError):
        pass
    reply = json.loads(big.reader.readline())
    assert reply["error"]["code"] == -32600 and "larger than" in reply["error"]["message"]
    assert big.reader.readline() == b""  # then the daemon hung up on it
    assert other.call("ping")["result"]["pong"]


def _log_has_no_traceback(home: Path) -> None:
    log = (home / "logs" / "prodigyd.log").read_text()
    assert "Traceback" not in log, log


@pytest.mark.parametrize(
    ("line", "code", "reply_id", "says"),
    [
        (b'{"jsonrpc": "2.0", "id": 7, "method": ["ping"]}', -32600, 7, "a string"),
        (b'{"jsonrpc": "2.0", "id": 7, "method": {"x": 1}}', -32600, 7, "a string"),
        (b"[" * 5000 + b"]" * 5000, -32600, None, "nested too deeply"),
        (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', -32600, None, "id must be"),
        (b'{"jsonrpc": "2.0", "id": [1], "method": "ping"}', -32600, None, "id must be"),
        (b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}', -32600, None, "id must be"),
        (b'{"jsonrpc": "2.0", "id": 7, "method": "ping", "params": 3}', -32600, 7, "params"),
        (b'{"jsonrpc": "2.0", "id": 7, "method": "ping", "params": null}', -32600, 7, "params"),
        (b'{"jsonrpc": "2.0", "id": 7, "method": "ping", "params": [1]}', -32602, 7, "named"),
        (b'[{"jsonrpc": "2.0", "id": 7, "method": "ping"}]', -32600, None, "batches"),
        (b"[]", -32600, None, "batches"),
        (b'{"jsonrpc": "2.0", "id": 7, "method": "\xff\xfe"}', -32700, None, "not UTF-8"),
        (b"\xff\xfe{\x00}\x00", -32700, None, "not UTF-8"),
        (b'{"jsonrpc": "2.0", "id": NaN, "method": "ping"}', -32700, None, "NaN"),
        (b'{"jsonrpc": "2.0", "id": 1e400, "method": "ping"}', -32700, None, "out of range"),
    ],
)
def test_a_malformed_envelope_gets_its_error_and_the_connection_lives(
    daemon: Path, line: bytes, code: int, reply_id: Any, says: str
):
    raw = Raw(daemon)
    reply = raw.send(line + b"\n")
    assert reply["jsonrpc"] == "2.0" and reply["id"] == reply_id, reply
    assert reply["error"]["code"] == code and says in reply["error"]["message"]
    assert raw.call("ping", msg_id=8)["result"]["pong"]
    _log_has_no_traceback(daemon)


def test_a_since_that_is_no_time_is_named_in_the_error(daemon: Path):
    reply = Raw(daemon).call("events.list", {"since": "yesterday"})
    assert reply["error"]["message"] == (
        "Invalid params: since: not an ISO 8601 time (2026-11-25T15:22:04Z): 'yesterday'"
    )


@pytest.mark.parametrize(
    "since", ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00", "2026-01-01", "20260101T00"]
)
def test_a_since_in_any_iso_form_or_zone_is_taken_as_its_moment_in_utc(daemon: Path, since: str):
    reply = Raw(daemon).call("analytics.summary", {"since": since})
    assert reply["result"]["since"] == "2026-01-01T00:00:00.000Z", reply


def test_a_lone_surrogate_is_echoed_as_an_escape(daemon: Path):
    raw = Raw(daemon)
    reply = raw.send(b'{"jsonrpc": "2.0", "id": "\\ud800", "method": "no.such\\udfff"}\n')
    assert reply["id"] == "\ud800" and reply["error"]["code"] == -32601
    assert "no.such\udfff" in reply["error"]["message"]
    _log_has_no_traceback(daemon)


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("jobs.submit", {"workflow": "wf\u0000.yml", "cwd": "/", "env": {}}, "workflow"),
        ("jobs.submit", {"workflow": "wf.yml", "cwd": "/", "env": {"A": "\u0000"}}, "env"),
        ("jobs.submit", {"workflow": "wf.yml", "cwd": "/", "env": {"A=B": "c"}}, "env.A=B"),
        ("triggers.list", {"repo": "/tmp/\u0000"}, "repo"),
        ("jobs.submit", {"workflow": "wf.yml", "cwd": ".", "env": {}}, "cwd: expected an abs"),
        ("sessions.list", {"limit": True}, "limit: Input should be a valid integer"),  # no 1
        ("daemon.stop", {"drain": "yes"}, "drain: Input should be a valid boolean"),  # no True
        ("triggers.list", {"repo": "repo"}, "repo: expected an absolute path, got 'repo'"),
        ("worktrees.clean", {"target": "\u0000"}, "target"),
        ("sessions.show", {"session_id": 3}, "session_id"),
        ("dlq.purge", {"item_ids": "all"}, "item_ids"),
        ("analytics.summary", {"since": "\ud800"}, "since"),  # a lone surrogate: no UTF-8
        ("analytics.summary", {"since": "last week"}, "since: not an ISO 8601 time"),
        ("events.list", {"since": "2026-13-01"}, "since: not an ISO 8601 time"),
        ("events.list", {"since": "0001-01-01T00:00:00+01:00"}, "since: not an ISO 8601"),
        ("jobs.submit", {"workflow": "wf.yml", "cwd": "/", "env": {"A": "\udfff"}}, "env"),
    ],
)
def test_bad_params_of_each_type_name_the_field(
    daemon: Path, method: str, params: dict[str, Any], field: str
):
    reply = Raw(daemon).call(method, params)
    assert reply["error"]["code"] == -32602, reply
    assert reply["error"]["message"].startswith(f"Invalid params: {field}")
    _log_has_no_traceback(daemon)


@pytest.mark.timeout(60)  # a FIFO opened the plain way blocks the daemon until a writer comes
@pytest.mark.parametrize(
    ("make", "workflow", "says"),
    [
        ("fifo", "wf.yml", "not a regular file"),
        ("none", "/dev/zero", "not a regular file"),
        ("loop", "wf.yml", "cannot read workflow file"),
    ],
)
def test_a_workflow_path_that_is_no_regular_file_is_refused_unread(
    daemon: Path, tmp_path: Path, make: str, workflow: str, says: str
):
    if make == "fifo":
        os.mkfifo(tmp_path / "wf.yml")
    elif make == "loop":
        (tmp_path / "wf.yml").symlink_to("wf.yml")
    raw = Raw(daemon)
    params = {"workflow": workflow, "cwd": str(tmp_path), "env": {}}
    reply = raw.call("jobs.submit", params)
    assert reply["error"]["code"] == -32001 and says in reply["error"]["message"], reply
    assert raw.call("ping", msg_id=2)["result"]["pong"]
    _log_has_no_traceback(daemon)


def test_a_submit_with_follow_streams_its_jobs_events_on_the_same_connection(
    daemon: Path, repo: Path, tmp_path: Path
):
    """`follow`: no events.subscribe is sent, yet every event after the reply's
    `event_seq` arrives on this connection, in order, once each; the same as stored."""
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo one'\n- shell: 'echo two'\n")
    raw = Raw(daemon)
    params = {"workflow": str(wf), "cwd": str(repo), "env": {}, "merge": "auto", "follow": True}
    raw.sock.sendall(
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "jobs.submit", "params": params}).encode()
        + b"\n"
    )
    reply, events = None, []
    while not events or events[-1]["event_type"] != "session_finished":
        message = json.loads(raw.reader.readline())
        if message.get("id") == 1:
            reply = message["result"]
        else:
            assert message["method"] == "event"
            events.append(message["params"]["event"])
    while reply is None:  # the reply may come after the events, never not at all
        message = json.loads(raw.reader.readline())
        reply = message["result"] if message.get("id") == 1 else None
    assert isinstance(reply["subscription"], int)
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(reply["event_seq"] + 1, reply["event_seq"] + 1 + len(seqs)))
    kinds = [event["event_type"] for event in events]
    assert kinds[0] == "session_started" and kinds.count("step_started") == 2
    assert events[-1]["status"] == "completed"
    stored = raw.call("events.list", {"session_id": reply["id"]}, msg_id=2)["result"]
    assert [e["seq"] for e in stored if e["seq"] > reply["event_seq"]] == seqs
    raw.close()


def test_a_plain_submit_is_answered_before_watchers_hear_of_its_job(
    daemon: Path, repo: Path, tmp_path: Path
):
    """A connection watching every session hears a job it submits (no `follow`) after
    its reply, `session_queued` first with the reply's `event_seq`, once; a subscriber
    after that seq gets the job's other events, and the log holds `session_queued` once."""
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo one'\n")
    raw = Raw(daemon)
    assert raw.call("events.subscribe", {})["result"]["subscription"] >= 0
    params = {"workflow": str(wf), "cwd": str(repo), "env": {}, "merge": "auto"}
    raw.sock.sendall(
        json.dumps({"jsonrpc": "2.0", "id": 2, "method": "jobs.submit", "params": params}).encode()
        + b"\n"
    )
    messages = []
    while (
        not messages
        or messages[-1].get("params", {}).get("event", {}).get("event_type") != "session_finished"
    ):
        messages.append(json.loads(raw.reader.readline()))
    assert messages[0]["id"] == 2, messages[0]  # the reply before any event of its job
    reply = messages[0]["result"]
    events = [m["params"]["event"] for m in messages[1:]]
    assert all(e["session_id"] == reply["id"] for e in events)
    assert events[0]["event_type"] == "session_queued" and events[0]["workflow"] == str(wf)
    assert reply["event_seq"] == events[0]["seq"] == 1
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    stored = raw.call("events.list", {"session_id": reply["id"]}, msg_id=3)["result"]
    assert [e["seq"] for e in stored] == [e["seq"] for e in events]
    raw.close()
    later = Raw(daemon)
    subscribed = later.call("events.subscribe", {"session_id": reply["id"], "since": 1})
    assert subscribed["result"]["subscription"] >= 0
    replayed = [json.loads(later.reader.readline())["params"]["event"] for _ in events[1:]]
    assert [e["seq"] for e in replayed] == [e["seq"] for e in events[1:]]
    later.close()


def test_a_refused_submit_with_follow_subscribes_nothing(daemon: Path, tmp_path: Path):
    raw = Raw(daemon)
    params = {"workflow": str(tmp_path / "missing.yml"), "cwd": str(tmp_path), "env": {}}
    refused = raw.call("jobs.submit", {**params, "follow": True})
    assert refused["error"]["code"] == -32001
    assert refused["error"]["message"] == "workflow file not found"
    assert refused["error"]["data"]["location"]["file"] == str(tmp_path / "missing.yml")
    assert raw.call("ping", msg_id=2)["result"]["pong"]  # the next line is its reply
    raw.close()


class _OldDaemon:
    """A stand-in for a daemon from before the client's upgrade: answers `ping` with its
    protocol version and refuses every other request as invalid, as an older daemon
    refuses a parameter it does not know."""

    def __init__(self, path: Path, protocol: int, message: str) -> None:
        self.protocol, self.message = protocol, message
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.pool.submit(self._accept)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.server.accept()
                self.pool.submit(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader, contextlib.suppress(OSError):
            for line in reader:
                request = json.loads(line)
                if request["method"] == "ping":
                    reply: dict[str, Any] = {
                        "result": {
                            "pong": True,
                            "pid": 1,
                            "version": "0",
                            "protocol": self.protocol,
                        }
                    }
                else:
                    reply = {"error": {"code": -32602, "message": self.message}}
                conn.sendall(
                    json.dumps({"jsonrpc": "2.0", "id": request["id"], **reply}).encode() + b"\n"
                )

    def close(self) -> None:
        """Stops the accept loop: closing the socket alone leaves the thread in accept()
        (Linux), and pytest's exit then waits on it for ever."""
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # accept() returns (EINVAL)
        self.server.close()
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize(
    ("protocol", "message", "hint"),
    [
        (1, "Invalid params: status: Input should be a valid string", "speaks protocol 1"),
        (2, "Invalid params: follow: Extra inputs are not permitted", "may be older"),
    ],
)
def test_a_daemon_older_than_the_client_gets_a_restart_hint(
    protocol: int, message: str, hint: str
) -> None:
    """A client upgraded under a running daemon sends what the daemon does not know (`ps`
    asks for a list of statuses): the error says to restart it, not just what was refused."""
    home = Path(os.environ["PRODIGY_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    old = _OldDaemon(home / "prodigyd.sock", protocol, message)
    try:
        done = ctl("ps")
    finally:
        old.close()
    assert done.returncode != 0
    assert hint in done.stderr and "prodigyctl daemon stop" in done.stderr, done.stderr
