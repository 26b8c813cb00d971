"""No secret, nor any part of one, reaches the disk or a client (issue 8, section 6).

Each shape of secret goes through the real client and daemon: in a step display cut to one
short line, in a step's output and a captured variable, in a failing command's error (its
output's tail) and in a capture error (its output's head). Then everything a user can see
or find is searched for the secret, for every prefix and suffix of it that a cut could
leave, and for each of its lines: `run`, `logs`, `events ls`, `events export`,
`sessions show --json`, every file under $PRODIGY_HOME (the journal after the jobs
ended, event logs, checkpoints, the daemon log) and every object of the repository.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import ctl, wait_for
from tests.gitutil import git

#: Fragments this long or longer count as a leak (a 60-character display cut left 17).
MIN_FRAGMENT = 8

SHAPES = {
    "long": "tok-Zq7vL2mX8pR4tY6wKp3nB5cD9fG1hJ0eQ9w8",
    "regex-characters": r"a.b*c(d)+[e]?{2}|^x\y$Kp3nB5cD9f",
    "multi-line": (
        "Zq7vL2mX8pR4tY6wKp3nB5cD9fG1hJ0eQ9w8Vb2c\n"
        "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\n"
        "ab\n"
        "Vb2cD8fG3hJ1kL5mN7pQ9rS2tU4vW6xY"
    ),
}

SECRET = "secrets:\n  TOKEN: {provider: env, key: SECRET_UNDER_TEST}\n"

# Displays are cut inside the secret ("shell: printf '%s\n' '<secret..."); step 3's is its
# commit message too; step 4 names the secret in its own commit message.
SUCCEEDS = (
    SECRET
    + r"""commands:
  - shell: |-
      printf '%s\n' '${TOKEN}'
    capture: got
  - shell: |-
      printf 'seen: %s\n' '${got}'
  - shell: |-
      echo one > one.txt; true '${TOKEN}'
    commit_required: true
    auto_commit: true
  - shell: |-
      echo two > two.txt
    commit_required: true
    auto_commit: true
    commit_config: {message_template: "two ${TOKEN}"}
"""
)

# Step 1 fails printing the secret then 1990 characters: the 2000-character tail of its
# error cuts the secret. Its handler prints 190 characters then the secret: the
# 200-character excerpt of the capture error cuts it too. Both displays are cut in it.
FAILS = (
    SECRET
    + r"""commands:
  - shell: |-
      printf '%s' '${TOKEN}' >&2; printf 'x%.0s' $(seq 1990) >&2; exit 3
    on_failure:
      commands:
        - shell: |-
            printf 'y%.0s' $(seq 190); printf '%s' '${TOKEN}'
          capture: n
          capture_format: number
      fail_workflow: true
"""
)


def fragments(secret: str) -> set[str]:
    """The secret, each of its lines, in their JSON spellings too, and every prefix and
    suffix of those at least MIN_FRAGMENT long."""
    pieces = {secret, *(line for line in secret.splitlines() if len(line) >= MIN_FRAGMENT)}
    pieces |= {json.dumps(piece)[1:-1] for piece in pieces}
    found = set()
    for piece in pieces:
        for size in range(MIN_FRAGMENT, len(piece) + 1):
            found |= {piece[:size], piece[-size:]}
    return found


def leaks(text: str | bytes, secret: str) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode()
    return sorted(f for f in fragments(secret) if f.encode() in data)


def store_files(home: Path) -> Iterator[tuple[Path, bytes]]:
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.is_socket():
            yield path, path.read_bytes()


def journal_files(home: Path) -> Iterator[tuple[Path, bytes]]:
    return ((path, data) for path, data in store_files(home) if path.name.startswith("journal.db"))


def repository_contents(repo: Path) -> bytes:
    """Every object of the repository (commits, trees, blobs: packed or loose, decompressed)
    and every plain file of its .git (refs, logs, config)."""
    objects = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    plain = b"".join(data for _, data in store_files(repo / ".git"))
    return objects + plain


def client_views(session_ids: list[str]) -> dict[str, str]:
    views = {
        "events ls": ctl("events", "ls", "--limit", "100000", check=True).stdout,
        "events ls --json": ctl("events", "ls", "--json", "--limit", "100000", check=True).stdout,
        "events export": ctl("events", "export", check=True).stdout,
        "events export csv": ctl("events", "export", "--format", "csv", check=True).stdout,
        "sessions ls --json": ctl("sessions", "ls", "--json", check=True).stdout,
    }
    for sid in session_ids:
        views[f"logs {sid}"] = ctl("logs", sid, check=True).stdout
        views[f"logs --json {sid}"] = ctl("logs", sid, "--json", check=True).stdout
        views[f"sessions show --json {sid}"] = ctl(
            "sessions", "show", sid, "--json", check=True
        ).stdout
    return views


def stored_envs(home: Path) -> dict[str, object]:
    """Each job's kept environment, read from the journal (None: none kept)."""
    with sqlite3.connect(f"file:{home / 'journal.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, json_extract(private, '$.env') FROM jobs").fetchall()
    return {sid: (json.loads(env) if env else None) for sid, env in rows}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_no_part_of_a_secret_is_stored_or_shown(
    daemon: Path, repo: Path, tmp_path: Path, shape: str
):
    secret = SHAPES[shape]
    env = {**os.environ, "SECRET_UNDER_TEST": secret}
    (tmp_path / "ok.yml").write_text(SUCCEEDS)
    (tmp_path / "fail.yml").write_text(FAILS)

    ok = ctl("run", str(tmp_path / "ok.yml"), "-y", cwd=repo, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    failed = ctl("run", str(tmp_path / "fail.yml"), "-y", cwd=repo, env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "output is not a number" in failed.stdout + failed.stderr
    rows = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
    by_status = {row["status"]: row["id"] for row in rows}
    assert set(by_status) == {"completed", "failed"}

    kept = stored_envs(daemon)
    ctl("cancel", by_status["failed"], check=True)  # closed for good: nothing runs again

    # the journal's write-ahead log keeps the dropped environments until the daemon is quiet
    # (scheduler.py, `_scrub_when_due`): within 4 s of the last job's end
    wait_for(
        lambda: not any(leaks(data, secret) for _, data in journal_files(daemon)),
        timeout=15,
        what="the journal scrubbed of the environments dropped",
    )
    shown = {"run ok": ok.stdout + ok.stderr, "run failed": failed.stdout + failed.stderr}
    shown |= client_views(list(by_status.values()))
    found = {name: leaks(text, secret) for name, text in shown.items()}
    found |= {str(path): leaks(data, secret) for path, data in store_files(daemon)}
    found["repository"] = leaks(repository_contents(repo), secret)
    assert {where: what for where, what in found.items() if what} == {}
    assert "seen: ***" in ok.stdout  # the secret was there, and masked
    # a failed job may be resumed: it kept the environment it runs in until it was closed
    assert kept[by_status["completed"]] is None
    assert kept[by_status["failed"]]["SECRET_UNDER_TEST"] == secret  # type: ignore[index]
    assert set(stored_envs(daemon).values()) == {None}
    assert git(repo, "show", "main:two.txt") == "two\n"  # it did commit and merge


def test_a_secret_too_short_to_mask_is_refused_at_submission(
    daemon: Path, repo: Path, tmp_path: Path
):
    (tmp_path / "ok.yml").write_text(SUCCEEDS)
    env = {**os.environ, "SECRET_UNDER_TEST": "Q7z"}
    done = ctl("run", str(tmp_path / "ok.yml"), "-y", cwd=repo, env=env)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert (
        f"error[E1000]: {tmp_path / 'ok.yml'} (secrets.TOKEN): secret TOKEN is only 3 character(s)"
        " long; a secret needs at least 4, since a shorter one cannot be masked"
    ) in message
    assert "Q7z" not in message
    assert json.loads(ctl("sessions", "ls", "--json", check=True).stdout) == []
