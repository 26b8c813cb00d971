"""`budget:` in workflow files, and the budget meters' arithmetic and messages."""

from __future__ import annotations

from prodigyd.claude import prices
from prodigyd.engine.budget import Ledger, Meter, Spend
from prodigyd.workflow.model import Budget
from tests.unit.test_workflow_load import failure, parse


def test_budgets_load_at_workflow_step_and_map_level() -> None:
    standard = parse(
        "budget: {cost_usd: 5, tokens: 1000, time: 1h}\n"
        "commands:\n  - claude: /go\n    budget: {time: 90s}\n"
    ).workflow
    assert standard.budget == Budget(cost_usd=5, tokens=1000, time=3600)
    assert standard.steps[0].budget == Budget(time=90)
    mapreduce = parse(
        "mode: mapreduce\nmap:\n  input: items.json\n  budget: {cost_usd: 0.5}\n"
        "  agent_template:\n    - claude: /fix\n"
    ).workflow
    assert mapreduce.map is not None and mapreduce.map.budget == Budget(cost_usd=0.5)


def test_a_bad_budget_names_its_line_and_field() -> None:
    error = failure("- shell: 'true'\n  budget: {tokens: 0}\n")
    assert error.location is not None and error.location.line == 2
    assert "budget.tokens" in error.render() and "must be at least 1" in error.render()
    assert "expected a mapping" in failure("budget: 5\ncommands:\n  - shell: 'true'\n").render()


def test_an_unknown_budget_key_is_warned_about() -> None:
    loaded = parse("budget: {cost: 5}\ncommands:\n  - shell: 'true'\n")
    assert any("unknown key 'cost'" in w and "cost_usd" in w for w in loaded.warnings)


def test_a_meter_reports_what_was_spent_and_stops_every_run_charging_it() -> None:
    job = Meter("workflow", Budget(cost_usd=1.0), Spend(0.25, 10), session_id="s-1")
    ledger = Ledger().plus(job)
    tripped: list[tuple[str, str]] = []
    first = ledger.charge(lambda reason: tripped.append(("first", reason)))
    second = ledger.charge(lambda reason: tripped.append(("second", reason)))
    first.update(Spend(0.5, 100, estimated=True))
    assert not tripped and ledger.remaining_usd() == 0.25
    second.update(Spend(0.3, 100))  # 0.25 + 0.5 + 0.3: every run of the meter is stopped
    reason = (
        "budget exceeded: $1.05 (estimated) of $1.00 (workflow budget; "
        "resume with a larger one: prodigyctl resume s-1 --budget-usd N)"
    )
    assert tripped == [("first", reason), ("second", reason)]
    first.close()
    second.close()
    assert job.total() == Spend(1.05, 210, estimated=True)


def test_the_estimate_prices_a_model_by_its_longest_known_prefix() -> None:
    cost = prices.estimate_usd(
        "claude-sonnet-4-5-20250929", input=1_000_000, output=0, cache_write=0, cache_read=0
    )
    assert cost == 3.0
    assert prices.price_of("claude-opus-4-1-20250805").input == 15
    assert prices.price_of("claude-opus-4-5").input == 5
    assert prices.price_of("some-new-model") == prices.UNKNOWN_MODEL
