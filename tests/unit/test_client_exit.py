"""prodigyctl ends without the interpreter's teardown (main.exit_now) only when nothing a
user could see depends on it: what it wrote is all there, with its exit code, and atexit
functions and other threads still finish as they would with sys.exit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess[str]:
    """`code`, then `exit_now`, in a new interpreter whose stdout is a buffered pipe."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    script = f"import sys\nfrom prodigyctl.main import exit_now\n{code}"
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )


def test_buffered_output_is_all_written_and_the_exit_code_kept():
    done = run("sys.stdout.write('x' * 100_000)\nsys.stderr.write('err')\nexit_now(3)")
    assert (done.returncode, len(done.stdout), done.stderr) == (3, 100_000, "err")


@pytest.mark.parametrize(("code", "returncode"), [("None", 0), ("0", 0), ("True", 1)])
def test_exit_codes_are_those_of_sys_exit(code: str, returncode: int):
    assert run(f"exit_now({code})").returncode == returncode


def test_a_text_exit_code_is_printed_as_sys_exit_prints_it():
    done = run("exit_now('bad thing')")
    assert (done.returncode, done.stderr) == (1, "bad thing\n")


def test_atexit_functions_still_run():
    done = run("import atexit\natexit.register(print, 'atexit ran')\nexit_now(0)")
    assert done.stdout == "atexit ran\n"


def test_another_thread_still_finishes():
    done = run(
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread done'))).start()\n"
        "exit_now(0)"
    )
    assert done.stdout == "thread done\n"
