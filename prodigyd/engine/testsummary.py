"""How many tests passed, read from a test runner's own summary: the `tests` validator.

Runners read: pytest (`2 failed, 5 passed, 1 skipped in 0.12s`), cargo test (one
`test result:` line per test binary, summed), go test (`-v` or `-json` output: each
top-level test; plain output names only packages, so there the packages count), and jest
(`Tests: 1 failed, 3 passed, 4 total`). Skipped, ignored and expected failures count
neither way. Errors (pytest's setup errors) count as failures. The original read only
cargo's first `test result:` line, and only when it had `passed` before `failed`.

Each parser returns None when its runner's summary is not in the output, and the first
that finds one wins, so a runner's own words decide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

#: Colour codes (jest and cargo colour their output when they think a terminal is there).
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class TestCounts:
    """What a test run reported: `failures` names the failing tests (or packages)."""

    __test__ = False  # not a pytest test class, whatever its name

    runner: str
    passed: int
    failed: int
    failures: list[str] = field(default_factory=list)
    unit: str = "tests"  # "packages" for go test without -v

    @property
    def total(self) -> int:
        return self.passed + self.failed

    @property
    def score(self) -> float:
        """The share of tests passing, 0-100; 0 when none ran (nothing was shown to pass)."""
        return 100.0 * self.passed / self.total if self.total else 0.0

    def describe(self) -> str:
        if not self.total:
            return f"{self.runner}: no {self.unit} ran"
        return f"{self.runner}: {self.passed} of {self.total} {self.unit} passed"


def parse_test_summary(text: str) -> TestCounts | None:
    """The counts of the first runner whose summary is in `text`, or None."""
    clean = _ANSI.sub("", text)
    for parser in PARSERS:
        counts = parser(clean)
        if counts is not None:
            return counts
    return None


# --- pytest

_PYTEST_SUMMARY = re.compile(
    r"^=*\s*((?:\d+ (?:passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)"
    r"(?:, )?)+) in [\d.]+s\b.*$",
    re.M,
)
_PYTEST_NOTHING = re.compile(r"^=*\s*no tests ran in [\d.]+s", re.M)
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|xpassed)")
_PYTEST_FAILURE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def _pytest(text: str) -> TestCounts | None:
    summaries = _PYTEST_SUMMARY.findall(text)
    if not summaries:
        return TestCounts("pytest", 0, 0) if _PYTEST_NOTHING.search(text) else None
    passed, failed = _tally(_PYTEST_COUNT.findall(summaries[-1]), ("passed", "xpassed"))
    return TestCounts("pytest", passed, failed, _PYTEST_FAILURE.findall(text))


def _tally(counts: list[tuple[str, str]], passing: tuple[str, ...]) -> tuple[int, int]:
    """(passed, failed) from a summary's `(number, word)` pairs: a word of `passing` counts
    as passed, any other (failed, error...) as failed."""
    passed = sum(int(number) for number, word in counts if word in passing)
    return passed, sum(int(number) for number, word in counts if word not in passing)


# --- cargo test

_CARGO_RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed;", re.M)
_CARGO_FAILURE = re.compile(r"^test (\S+) \.\.\. FAILED$", re.M)


def _cargo(text: str) -> TestCounts | None:
    results = _CARGO_RESULT.findall(text)
    if not results:
        return None
    passed = sum(int(p) for p, _ in results)
    failed = sum(int(f) for _, f in results)
    return TestCounts("cargo test", passed, failed, _CARGO_FAILURE.findall(text))


# --- go test

_GO_TEST = re.compile(r"^--- (PASS|FAIL): (\S+)", re.M)  # top-level tests only (no indent)
_GO_VERBOSE = re.compile(r"^=== RUN ", re.M)
_GO_PACKAGE = re.compile(r"^(ok|FAIL)\s+(\S+)\s+(?:[\d.]+s|\(cached\))", re.M)


def _go(text: str) -> TestCounts | None:
    from_json = _go_json(text)
    if from_json is not None:
        return from_json
    tests = _GO_TEST.findall(text)
    packages = _GO_PACKAGE.findall(text)
    if tests and _GO_VERBOSE.search(text):  # -v: every test is listed
        failures = [name for word, name in tests if word == "FAIL"]
        return TestCounts("go test", len(tests) - len(failures), len(failures), failures)
    if not packages:
        return None
    failures = [name for word, name in packages if word == "FAIL"]
    passed = len(packages) - len(failures)
    return TestCounts("go test", passed, len(failures), failures, unit="packages")


def _go_json(text: str) -> TestCounts | None:
    """`go test -json`: one event per line; top-level tests end with pass, fail or skip."""
    outcomes: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith('{"'):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        test = event.get("Test") if isinstance(event, dict) else None
        if isinstance(test, str) and "/" not in test and event.get("Action") in ("pass", "fail"):
            outcomes[f"{event.get('Package', '')}.{test}"] = event["Action"]
    if not outcomes:
        return None
    failures = [name for name, action in outcomes.items() if action == "fail"]
    return TestCounts("go test", len(outcomes) - len(failures), len(failures), failures)


# --- jest

_JEST_TESTS = re.compile(r"^Tests:\s+(.*\d+ total)$", re.M)
_JEST_COUNT = re.compile(r"(\d+) (passed|failed)")
_JEST_FAILURE = re.compile(r"^\s*● (.+)$", re.M)


def _jest(text: str) -> TestCounts | None:
    summaries = _JEST_TESTS.findall(text)
    if not summaries:
        return None
    passed, failed = _tally(_JEST_COUNT.findall(summaries[-1]), ("passed",))
    failures = [name.strip() for name in _JEST_FAILURE.findall(text)]
    failures = [name for name in failures if not name.startswith("Console")]
    return TestCounts("jest", passed, failed, failures)


#: Tried in order; the first runner whose summary is found decides.
PARSERS: tuple[Callable[[str], TestCounts | None], ...] = (_pytest, _cargo, _go, _jest)
RUNNERS = "pytest, cargo test, go test or jest"
