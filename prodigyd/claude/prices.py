"""What Claude's tokens cost, for the live estimate of a running step's spend.

The CLI reports a run's exact cost only in its final `result` line. A `cost_usd` budget
must be able to stop a run before that, so while it runs prodigy estimates the cost from
the token counts of each API message (`assistant` lines) at these prices. The estimate is
an estimate: the CLI streams a placeholder `output_tokens: 1` until a message is done, and
a model missing here is priced like the CLI prices an unknown one. The result line's own
figure replaces the estimate as soon as it arrives.

Prices are US dollars per million tokens, copied from the model catalog baked into the
pinned Claude Code CLI (2.1.332): input, output, cache write (5-minute), cache read. This
is the one place they live; update them with the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cache_write: float
    cache_read: float


def _tier(input: float, output: float, cache_read: float | None = None) -> Price:
    """The catalog's tiers: cache writes cost 1.25x input; reads 0.1x unless said."""
    return Price(input, output, input * 1.25, input / 10 if cache_read is None else cache_read)


#: Model id prefixes, longest match wins (`claude-sonnet-4-5-20250929` is a
#: `claude-sonnet-4-5`).
PRICES: dict[str, Price] = {
    "claude-3-5-haiku": _tier(0.8, 4),
    "claude-haiku-4-5": _tier(1, 5),
    "claude-haiku-5-5": _tier(0.1, 0.5),
    "claude-3-5-sonnet": _tier(3, 15),
    "claude-3-7-sonnet": _tier(3, 15),
    "claude-sonnet-4": _tier(3, 15),  # 4, 4.5, 4.6
    "claude-sonnet-5": _tier(2, 10),
    "claude-sonnet-5-5": _tier(2, 10, cache_read=0.1),
    "claude-opus-4": _tier(15, 75),  # 4 and 4.1
    "claude-opus-4-5": _tier(5, 25),
    "claude-opus-4-6": _tier(5, 25),
    "claude-opus-4-7": _tier(5, 25),
    "claude-opus-4-8": _tier(5, 25),
    "claude-opus-5": _tier(5, 25),
    "claude-opus-5-5": _tier(4, 20, cache_read=0.2),
    "claude-fable-5": _tier(10, 50),
    "claude-fable-5-1": _tier(10, 50, cache_read=0.25),
    "claude-fable-5-2": _tier(8, 40, cache_read=0.2),
    "claude-mythos-5": _tier(10, 50),
    "claude-mythos-5-1": _tier(10, 50, cache_read=0.25),
    "claude-mythos-5-2": _tier(8, 40, cache_read=0.2),
}

#: What the CLI charges for a model its catalog does not know.
UNKNOWN_MODEL = _tier(5, 25)


def price_of(model: str | None) -> Price:
    """The price of `model` (an id as the CLI reports it), by its longest known prefix."""
    name = (model or "").lower()
    known = [prefix for prefix in PRICES if name.startswith(prefix)]
    return PRICES[max(known, key=len)] if known else UNKNOWN_MODEL


def estimate_usd(
    model: str | None, *, input: int, output: int, cache_write: int, cache_read: int
) -> float:
    """The estimated cost in dollars of these token counts on `model`."""
    price = price_of(model)
    return (
        input * price.input
        + output * price.output
        + cache_write * price.cache_write
        + cache_read * price.cache_read
    ) / 1_000_000
