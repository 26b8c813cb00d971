"""prodigyd/no_openssl.py: the daemon's loop and hashes without OpenSSL, and its fallbacks.

Each case runs in a fresh interpreter: what is imported, and how, is the point."""

from __future__ import annotations

import subprocess
import sys

import pytest

from prodigyd import no_openssl

RUN_A_LOOP = """
import sys
from prodigyd import no_openssl  # first, as in prodigyd/main.py
import asyncio, hashlib, hmac
{patch}
factory = no_openssl.loop_factory({loop!r})

async def child() -> int:
    proc = await asyncio.create_subprocess_exec("true")
    return await proc.wait()

print(asyncio.Runner(loop_factory=factory).run(child()), type(asyncio.get_event_loop_policy()))
print(sorted(name for name in ("ssl", "_ssl", "_hashlib") if name in sys.modules))
print(hashlib.sha256(b"abc").hexdigest()[:16], hmac.compare_digest(b"a", b"a"))
import ssl
print(hasattr(ssl, "SSLSocket"), ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED)
"""

#: SHA-256 of b"abc" (FIPS 180-2, appendix B.1), first 16 hex digits.
ABC = "ba7816bf8f01cfea"

needs_builtin_hashes = pytest.mark.skipif(
    not no_openssl._builtin_hashes(), reason="this Python has no built-in hashes"
)


def run(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@needs_builtin_hashes
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_loop_runs_children_and_hashes_are_right_without_openssl(loop: str):
    """No `ssl` nor `_hashlib` once the loop ran a child; the digests are the standard's;
    a later `import ssl` gets the real module (distributed's comms may need it)."""
    out = run(RUN_A_LOOP.format(loop=loop, patch=""))
    assert out[0].startswith("0 ")
    assert out[1:] == ["[]", f"{ABC} True", "True True"]


#: The stand-in lacks a name uvloop reads: as `ssl.NAME` does (AttributeError), and as
#: `from ssl import NAME` does (ImportError).
LACKING = {
    "attribute": 'no_openssl._UVLOOP_READS_ERRORS = ("SSLError",)',
    "from-import": """
_real = no_openssl._tls_stand_in
def _lacking():
    stand_in = _real()
    del stand_in.SSLZeroReturnError
    def refuse(name):
        raise ImportError(f"cannot import name {name!r} from 'ssl'", name="ssl")
    stand_in.__getattr__ = refuse
    return stand_in
no_openssl._tls_stand_in = _lacking
""",
}


@needs_builtin_hashes
@pytest.mark.parametrize("how", list(LACKING))
def test_a_uvloop_reading_more_of_ssl_than_the_stand_in_has_is_loaded_with_the_real_one(how):
    """uvloop is then imported again with `ssl`, and works (no worse than before the
    stand-in)."""
    out = run(RUN_A_LOOP.format(loop="uvloop", patch=LACKING[how]))
    assert out[0].startswith("0 ")
    assert out[1] == "['_ssl', 'ssl']"  # loaded for uvloop; hashlib still without OpenSSL
    assert out[2:] == [f"{ABC} True", "True True"]


def test_a_python_without_built_in_sha2_is_told_apart(monkeypatch: pytest.MonkeyPatch):
    """A Python built with only blake2 built in (Fedora's): hashlib is then imported as
    usual, with OpenSSL's hashes (`_builtin_hashes` is what decides it)."""
    real = no_openssl.importlib.util.find_spec
    monkeypatch.setattr(
        no_openssl.importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("_sha2", "_sha256") else real(name, *a),
    )
    assert no_openssl._builtin_hashes() is False


def test_a_process_that_imported_ssl_first_keeps_it():
    """prodigyd.main imported by a process that uses ssl already (a test, a tool)."""
    code = "import ssl, asyncio, sys\nimport prodigyd.main\nprint(sys.modules['ssl'] is ssl)"
    assert run(code) == ["True"]


def test_a_uvloop_that_cannot_be_imported_fails_as_without_the_stand_in():
    """Not taken for a name the stand-in lacks: the error is uvloop's own, and the
    stand-in is out of sys.modules."""
    code = """
import sys
from prodigyd import no_openssl
sys.modules["uvloop"] = None
try:
    no_openssl.loop_factory("uvloop")
except ImportError as exc:
    print(type(exc).__name__, exc.name, "ssl" in sys.modules)
"""
    assert run(code) == ["ModuleNotFoundError uvloop False"]


def test_the_stand_in_refuses_tls_clearly():
    stand_in = no_openssl._tls_stand_in()
    for name in no_openssl._UVLOOP_READS_CLASSES:
        with pytest.raises(RuntimeError, match="without TLS support"):
            getattr(stand_in, name)()
