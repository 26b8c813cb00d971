"""Scores read from validators' output: the score formats (engine/score.py), the test
runners' summaries (engine/testsummary.py) and a spec's requirements (engine/speccoverage.py).

The runner outputs in testoutput/ are real: pytest 8 (`-q` and plain), cargo test (Rust
1.9x, a failing unit test, an integration test and doc-tests; passing; a compile error),
go test 1.19 (plain, `-v` and `-json`, two packages, one with a failing subtest) and jest
29 (CI mode, plain and `--verbose`), each run on a small project with passing, failing and
skipped tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.engine.score import ScoreError, parse_score
from prodigyd.engine.speccoverage import requirements
from prodigyd.engine.testsummary import TestCounts, parse_test_summary

OUTPUTS = Path(__file__).parent / "testoutput"
JEST_FAILURE = "sum \u203a is broken"  # jest joins a describe and its test with U+203A


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("score: 85", 85),
        ("Score = 72.5\n", 72.5),
        ("85%", 85),
        ("coverage 87.5%", 87.5),
        ("85/100", 85),
        ("85 / 100", 85),
        ("85 out of 100", 85),
        ('{"score": 85}', 85),
        ('{"score": 66.7, "gaps": ["a"]}', 66.7),
        ("score: -20", 0),  # the original's `$((100 - warnings * 5))` goes negative
        ("score: 140", 100),
        ("building...\n[100%] done\nscore: 40\n", 40),  # an explicit score wins
        ("10% of files\n45%\n", 45),  # the last line with a score wins
        ('running checks\n{"score": 75, "gaps": ["x"]}\n', 75),  # JSON after a log
    ],
)
def test_score_formats(text: str, value: float) -> None:
    assert parse_score(text).value == value


def test_json_gaps_come_with_the_score() -> None:
    found = parse_score('{"score": 75, "gaps": ["no error handling tests", "auth"]}')
    assert found.gaps == ["no error handling tests", "auth"]
    assert parse_score("score: 75").gaps == []


def test_output_without_a_score_is_an_error_showing_it() -> None:
    with pytest.raises(ScoreError) as caught:
        parse_score("all good, nothing to report\n", "the validator `./check.sh`")
    text = caught.value.render()
    assert "no score in the output of the validator `./check.sh`" in text
    assert "all good, nothing to report" in text
    assert "`score: N`, `N%`, `N/100`, `N out of 100`" in text


def test_a_json_score_that_is_no_number_is_an_error() -> None:
    with pytest.raises(ScoreError, match="not a number: 'high'"):
        parse_score('{"score": "high"}')


def test_empty_output_is_shown_as_empty() -> None:
    with pytest.raises(ScoreError) as caught:
        parse_score("")
    assert "(empty)" in caught.value.render()


def _summary(name: str) -> TestCounts:
    counts = parse_test_summary((OUTPUTS / name).read_text())
    assert counts is not None, name
    return counts


def test_pytest_quiet_summary() -> None:
    counts = _summary("pytest-q.txt")  # 1 failed, 2 passed, 1 skipped, 1 xfailed, 1 error
    assert (counts.runner, counts.passed, counts.failed) == ("pytest", 2, 2)
    assert counts.failures == ["test_sample.py::test_two", "test_sample.py::test_six"]
    assert counts.score == 50


def test_pytest_full_summary_line() -> None:
    counts = _summary("pytest-full.txt")
    assert (counts.passed, counts.failed) == (2, 2)


def test_pytest_all_passing_and_none_run() -> None:
    assert _summary("pytest-pass.txt").score == 100
    nothing = _summary("pytest-none.txt")
    assert (nothing.total, nothing.score) == (0, 0)
    assert nothing.describe() == "pytest: no tests ran"


def test_cargo_sums_every_test_binary() -> None:
    counts = _summary("cargo-fail.txt")  # lib: 2 passed 1 failed; it.rs: 1 passed; doc: 0
    assert (counts.runner, counts.passed, counts.failed) == ("cargo test", 3, 1)
    assert counts.failures == ["tests::broken"]
    assert counts.score == 75
    assert _summary("cargo-pass.txt").score == 100


def test_cargo_compile_error_has_no_summary() -> None:
    assert parse_test_summary((OUTPUTS / "cargo-compile-error.txt").read_text()) is None


def test_go_verbose_counts_top_level_tests() -> None:
    counts = _summary("go-v.txt")  # TestAdd, TestUp pass; TestAddBroken, TestTable fail
    assert (counts.runner, counts.passed, counts.failed) == ("go test", 2, 2)
    assert counts.failures == ["TestAddBroken", "TestTable"]
    assert counts.unit == "tests"


def test_go_json_counts_top_level_tests() -> None:
    counts = _summary("go-json.txt")
    assert (counts.passed, counts.failed) == (2, 2)
    assert sorted(counts.failures) == [
        "example.com/sample/calc.TestAddBroken",
        "example.com/sample/calc.TestTable",
    ]


def test_go_plain_output_counts_packages() -> None:
    counts = _summary("go-plain.txt")
    assert (counts.passed, counts.failed, counts.unit) == (1, 1, "packages")
    assert counts.failures == ["example.com/sample/calc"]
    assert counts.describe() == "go test: 1 of 2 packages passed"


def test_jest_summary_and_failures() -> None:
    counts = _summary("jest-fail.txt")  # Tests: 1 failed, 1 skipped, 3 passed, 5 total
    assert (counts.runner, counts.passed, counts.failed) == ("jest", 3, 1)
    assert counts.failures == [JEST_FAILURE]
    assert counts.score == 75
    assert _summary("jest-verbose.txt").failures == [JEST_FAILURE]
    assert _summary("jest-pass.txt").score == 100


def test_output_of_no_known_runner_has_no_summary() -> None:
    assert parse_test_summary("make: Nothing to be done for 'all'.\n") is None


def test_spec_requirement_lines() -> None:
    spec = """# Auth
Contents: AUTH-1, AUTH-2
- AUTH-1: users log in with a password
- AUTH-2: sessions expire after 30 minutes
- [ ] AUTH-10 lockout after 5 failures
Notes without an id.
"""
    found = requirements(spec)
    assert [r.id for r in found] == ["AUTH-1", "AUTH-2", "AUTH-10"]
    assert [r.line for r in found] == [  # the table of contents names none of them
        "- AUTH-1: users log in with a password",
        "- AUTH-2: sessions expire after 30 minutes",
        "- [ ] AUTH-10 lockout after 5 failures",
    ]


def test_spec_requirement_pattern_with_a_group() -> None:
    found = requirements("* [req:login] log in\n* [req:logout] log out\n", r"\[req:(\w+)\]")
    assert [r.id for r in found] == ["login", "logout"]
